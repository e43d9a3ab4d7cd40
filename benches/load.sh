#!/usr/bin/env bash
# End-to-end load with wrk, over loopback: the veilgate sidecar against a bare hyper
# pass-through proxy and against the mock upstream directly, all three served by
# `benches/proxy.rs --serve` in one process, measured in one run.
#
#   bash benches/load.sh                     # 64 connections, 8 s per target
#   DURATION=4 CONNECTIONS=32 bash benches/load.sh
#   BENCH_BIN=target/release/deps/proxy-<hash> bash benches/load.sh   # skip the build
#
# Installs wrk (Debian package) when it is missing, builds the bench, starts it, runs wrk
# against each URL with a Lua script posting the 2 KB chat body, prints requests/s and
# p50/p99 with ratios against the bare proxy, and stops the server on exit (trap; the
# server also exits when this script's end of its stdin closes). Streams (time to first
# and last byte) are measured by `cargo bench --bench proxy`: wrk cannot see them.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}          # seconds per target
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}            # wrk threads
WARMUP=${WARMUP:-1}              # seconds per target, not counted

for v in DURATION CONNECTIONS THREADS WARMUP; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ] || [ "${!v}" -gt 600 ]; then
        echo "load.sh: $v must be a number from 1 to 600" >&2
        exit 2
    fi
done

NAME=load.sh
. benches/common.sh
need_packages wrk
bench_bin
workdir

# The server's stdin is a FIFO whose write end this script holds on fd 3: when the
# script ends, however it ends, the server sees end of input and exits.
mkfifo "$tmp/stdin"
"$bin" --serve <"$tmp/stdin" >"$tmp/urls" 2>"$tmp/server.log" &
server=$!
exec 3>"$tmp/stdin"
wait_urls 300
line=$(head -n1 "$tmp/urls")
declare -A url
for kv in $line; do url[${kv%%=*}]=${kv#*=}; done
for t in direct bare veilgate; do
    case "${url[$t]:-}" in
        http://127.0.0.1:*) ;;
        *) echo "load.sh: no loopback URL for $t in: $line" >&2; exit 1 ;;
    esac
done

# wrk latency figures come as 1.23ms / 456.00us / 1.02s: milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

declare -A rps p50 p99 non2xx
echo "load.sh: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per target, $(wc -c <"$tmp/body.json") B body" >&2
for t in direct bare veilgate; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$tmp/post.lua" "${url[$t]}" >/dev/null
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$tmp/post.lua" "${url[$t]}" \
        >"$tmp/wrk-$t.txt"
    rps[$t]=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk-$t.txt")
    p50[$t]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$tmp/wrk-$t.txt")")
    p99[$t]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$tmp/wrk-$t.txt")")
    non2xx[$t]=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk-$t.txt")
    echo "  $t: ${rps[$t]} req/s" >&2
done

echo
printf '%-9s %10s %9s %9s %9s %9s %8s\n' target req/s "p50 ms" "p99 ms" "rps/bare" "p99/bare" non-2xx
for t in direct bare veilgate; do
    printf '%-9s %10.0f %9.3f %9.3f %9.3f %9.3f %8s\n' "$t" "${rps[$t]}" "${p50[$t]}" "${p99[$t]}" \
        "$(awk -v a="${rps[$t]}" -v b="${rps[bare]}" 'BEGIN {print a / b}')" \
        "$(awk -v a="${p99[$t]}" -v b="${p99[bare]}" 'BEGIN {print a / b}')" \
        "${non2xx[$t]:-0}"
done
echo
awk -v r="${rps[veilgate]}" -v b="${rps[bare]}" -v p="${p99[veilgate]}" -v q="${p99[bare]}" 'BEGIN {
    printf "veilgate against bare: req/s %.3f x (target >= 0.85: %s), p99 %.3f x (target <= 1.20: %s)\n",
        r / b, (r / b >= 0.85 ? "PASS" : "MISS"), p / q, (p / q <= 1.20 ? "PASS" : "MISS") }'
