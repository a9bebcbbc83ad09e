#!/usr/bin/env bash
# The demo's footprint: the release binary's size, and the peak RSS and CPU of
# `dc-gateway demo` over a window (60 s by default), measured on the gateway process
# alone: the simulated devices run in a separate `dc-gateway simulate` process and the
# demo reaches them with `--simulator ADDR`.
#
#   benches/demo_footprint.sh            # 60 s
#   benches/demo_footprint.sh 120        # another window, in seconds
#   DCGW_BIN=path/to/dc-gateway benches/demo_footprint.sh
#
# Builds target/release/dc-gateway when it is missing. CPU is user + system time from
# /proc/<pid>/stat (from process start, so start-up is included), peak RSS is VmHWM
# from /proc/<pid>/status. No external service is used (no --mqtt / --influx).
# See docs/BENCHMARKS.md, section "Demo footprint".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
WINDOW=${1:-60}
BIN=${DCGW_BIN:-target/release/dc-gateway}
if [ ! -x "$BIN" ]; then
    echo "==> cargo build --release --bin dc-gateway" >&2
    cargo build --release --bin dc-gateway
fi

TMP=$(mktemp -d)
SIM=""
GW=""
cleanup() {
    for p in $GW $SIM; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $GW $SIM; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port, what
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "$2 does not listen on $1" >&2
    return 1
}
TICKS=$(getconf CLK_TCK)
cpu_s() { # pid -> user+sys seconds (children included)
    awk -v t="$TICKS" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"
}
kb() { # pid, field -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

SIM_PORT=$(free_port)
WEB_PORT=$(free_port)
"$BIN" simulate --listen "127.0.0.1:$SIM_PORT" >"$TMP/simulate.log" 2>&1 &
SIM=$!
wait_port "$SIM_PORT" "dc-gateway simulate"
START=$(date +%s.%N)
"$BIN" demo --simulator "127.0.0.1:$SIM_PORT" --listen "127.0.0.1:$WEB_PORT" --state-dir "$TMP/state" \
    >"$TMP/demo.log" 2>&1 &
GW=$!
wait_port "$WEB_PORT" "dc-gateway demo"
echo "==> measuring dc-gateway demo (pid $GW) for $WINDOW s ..." >&2
sleep "$WINDOW"
kill -0 "$GW" 2>/dev/null || { echo "dc-gateway demo exited:" >&2; cat "$TMP/demo.log" >&2; exit 1; }

ELAPSED=$(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
GW_CPU=$(cpu_s "$GW")
GW_HWM=$(kb "$GW" VmHWM)
GW_RSS=$(kb "$GW" VmRSS)
GW_THREADS=$(kb "$GW" Threads)
SIM_CPU=$(cpu_s "$SIM")
SIM_HWM=$(kb "$SIM" VmHWM)
GOOD=$( (exec 3<>"/dev/tcp/127.0.0.1/$WEB_PORT"; printf 'GET /api/v1/readings HTTP/1.0\r\nHost: x\r\n\r\n' >&3; cat <&3) \
    | grep -o '"quality":"good"' | wc -l || true)
SIZE=$(stat -c %s "$BIN")
STRIPPED=$(cp "$BIN" "$TMP/bin" && strip --strip-all "$TMP/bin" 2>/dev/null && stat -c %s "$TMP/bin" || echo "")

echo "dc-gateway demo footprint ($(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "  binary            $BIN: $SIZE bytes ($(mib $((SIZE / 1024))) MiB)${STRIPPED:+, $STRIPPED bytes ($(mib $((STRIPPED / 1024))) MiB) after strip --strip-all}"
echo "  command           $BIN demo --simulator 127.0.0.1:$SIM_PORT --listen 127.0.0.1:$WEB_PORT --state-dir DIR"
echo "  window            ${ELAPSED} s from process start (start-up included)"
echo "  gateway CPU       ${GW_CPU} s user+sys = $(awk -v c="$GW_CPU" -v e="$ELAPSED" 'BEGIN { printf "%.2f", 100 * c / e }') % of one core"
echo "  gateway peak RSS  $(mib "$GW_HWM") MiB (VmHWM), $(mib "$GW_RSS") MiB at the end, $GW_THREADS threads"
echo "  good readings     $GOOD points with quality good at the end"
echo "  simulator (apart) ${SIM_CPU} s CPU, peak RSS $(mib "$SIM_HWM") MiB"
