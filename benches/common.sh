# Shared by benches/load.sh and benches/cost.sh (sourced, not run). Expects `set -euo
# pipefail`, the repository root as the working directory, and $NAME (the script's name
# for messages). It installs what is missing (Debian packages), finds or builds the
# proxy bench binary ($bin), and creates $tmp with body.json and post.lua (wrk posts
# the 2 KB chat body); $tmp and a running $server are cleaned up on exit.

# need_packages PACKAGE...: apt-get install those whose command is missing.
need_packages() {
    local missing=()
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "$NAME: installing ${missing[*]} (apt-get)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null 2>&1; then
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
    fi
}

# BENCH_BIN: an already built bench binary (skips the build).
bench_bin() {
    bin=${BENCH_BIN:-}
    if [ -z "$bin" ]; then
        echo "$NAME: building the bench (cargo bench --bench proxy --no-run)" >&2
        bin=$(cargo bench --bench proxy --no-run 2>&1 | tee /dev/stderr \
            | sed -n 's/^ *Executable .*benches\/proxy\.rs (\(.*\))$/\1/p' | tail -n1)
    fi
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "$NAME: could not find the built bench binary" >&2
        exit 1
    fi
}

# A temporary directory with the request body and wrk's Lua script; removed on exit,
# together with the server if one is still running.
workdir() {
    tmp=$(mktemp -d)
    server=""
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    "$bin" --print-body >"$tmp/body.json"
    cat >"$tmp/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("VEILGATE_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-not-a-real-key"
LUA
    export VEILGATE_BENCH_BODY="$tmp/body.json"
}

cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}

# wait_urls TENTHS: waits up to TENTHS tenths of a second for the started $server to
# print its URLs into $tmp/urls; exits with the server's log if it dies first.
wait_urls() {
    for _ in $(seq 1 "$1"); do
        [ -s "$tmp/urls" ] && return 0
        kill -0 "$server" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
        sleep 0.1
    done
}
