#!/usr/bin/env bash
# CPU cost per request, in instructions, of the three targets of `benches/proxy.rs`:
# the mock upstream alone (`direct`), the bare pass-through proxy (`bare`) and the
# sidecar (`veilgate`), plus the sidecar with its scans turned off (`plumbing`).
#
#   bash benches/cost.sh                  # 4 s of load per target, about 2 minutes
#   SECONDS_PER_TARGET=8 bash benches/cost.sh
#   BENCH_BIN=target/release/deps/proxy-<hash> bash benches/cost.sh   # skip the build
#
# Each target runs in its own `--serve` process under `valgrind --tool=callgrind`, with
# instrumentation off until the server is up and warmed, then on for a bounded wrk load
# (1 thread, 4 connections, loopback only), then off again. Instructions counted divided
# by requests completed is the whole server process's cost per request (the mock's
# included, so `bare - direct` is the bare proxy's own cost). Instruction counts do not
# depend on what else the machine is doing, so unlike requests/s these figures repeat
# within a few percent on a busy 2-core machine. They leave out the kernel (syscalls,
# context switches) and cache misses, so they complement `cargo bench --bench proxy`;
# they do not replace it.
#
# Under valgrind, sha2 cannot use the CPU's SHA extensions, so HMACs (key ids,
# pseudonyms) count several times what they cost natively.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_TARGET:-4}
if ! [[ $SECS =~ ^[0-9]+$ ]] || [ "$SECS" -lt 1 ] || [ "$SECS" -gt 60 ]; then
    echo "cost.sh: SECONDS_PER_TARGET must be a number from 1 to 60" >&2
    exit 2
fi

NAME=cost.sh
. benches/common.sh
need_packages wrk valgrind
bench_bin
workdir

# measure NAME URL-KEY [env...]: prints instructions per request.
measure() {
    local name=$1 key=$2
    shift 2
    rm -f "$tmp/urls" "$tmp/stdin"
    mkfifo "$tmp/stdin"
    env "$@" valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$tmp/cg.$name" "$bin" --serve \
        <"$tmp/stdin" >"$tmp/urls" 2>"$tmp/server.log" &
    server=$!
    exec 3>"$tmp/stdin"
    wait_urls 600
    local url
    url=$(tr ' ' '\n' <"$tmp/urls" | sed -n "s/^$key=//p")
    case "$url" in
        http://127.0.0.1:*) ;;
        *) echo "cost.sh: no loopback URL for $key" >&2; exit 1 ;;
    esac
    wrk -t1 -c4 -d1s -s "$tmp/post.lua" "$url" >/dev/null
    callgrind_control -i on "$server" >/dev/null 2>&1
    local n
    n=$(wrk -t1 -c4 -d"${SECS}s" -s "$tmp/post.lua" "$url" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$server" >/dev/null 2>&1
    exec 3>&-
    wait "$server" 2>/dev/null || true
    server=""
    local total
    total=$(callgrind_annotate "$tmp/cg.$name" 2>/dev/null \
        | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    if [ -z "$n" ] || [ "$n" -eq 0 ] || [ -z "$total" ]; then
        echo "cost.sh: no requests measured for $name" >&2
        exit 1
    fi
    echo "$((total / n))"
}

declare -A cost
cost[direct]=$(measure direct direct)
cost[bare]=$(measure bare bare)
cost[veilgate]=$(measure veilgate veilgate)
cost[plumbing]=$(measure plumbing veilgate VEILGATE_BENCH_REDACT=$'requests = false\nresponses = false')

mock=${cost[direct]}
echo
printf '%-9s %14s %16s %12s\n' target "instr/request" "minus the mock" "vs bare"
for t in direct bare plumbing veilgate; do
    own=$((cost[$t] - mock))
    printf '%-9s %14d %16d %12s\n' "$t" "${cost[$t]}" "$own" \
        "$(awk -v a="${cost[$t]}" -v b="${cost[bare]}" 'BEGIN {printf "%.2f x", a / b}')"
done
echo
echo "plumbing = the sidecar with [redact] requests = false, responses = false (no scans);"
echo "the scans cost veilgate - plumbing = $((cost[veilgate] - cost[plumbing])) instructions per request."
