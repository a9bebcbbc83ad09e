#!/usr/bin/env bash
# The scale benchmark (docs/BENCHMARKS.md "Scale: 100 to 1 000 devices, and the floor"):
# the site benchmark at 100, 300 and 1 000 devices (one port per device) and at 1 000
# devices as 100 Modbus TCP gateways with 10 unit ids each, every time with 50 SNMP
# agents and every sink of the round configured (MQTT, InfluxDB, syslog, SMS on a pty
# modem; the journal is always on), beside the floor client and collectd.
#
#   benches/scale.sh                 # about 35 minutes on 2 cores
#   SECONDS_PER_RUN=20 ROUNDS=1 benches/scale.sh   # a shorter pass
#
# Each size leaves its own folder under target/bench-site/scale-<time>/ with results.md
# and results.json; the last lines printed are the scale table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${SECONDS_PER_RUN:-40}
rounds=${ROUNDS:-2}
changes=${ALARM_CHANGES:-100}
out="target/bench-site/scale-$(date +%s)"
mkdir -p "$out"
# Peers and the bench build, as benches/run.sh does them (installs only what is missing).
benches/run.sh --help >/dev/null
command -v snmpsimd >/dev/null || { echo "snmpsimd missing: apt-get install snmpsim" >&2; exit 1; }
command -v socat >/dev/null || { echo "socat missing: apt-get install socat" >&2; exit 1; }
run() {
    local name=$1; shift
    cargo bench --profile bench-release --bench site -- --only dc-gateway,floor,collectd \
        --seconds "$secs" --rounds "$rounds" --warmup 10 --alarm-changes "$changes" \
        --snmp-agents 50 --all-sinks --out "$out/$name" "$@"
}
run n100 --devices 100
run n300 --devices 300
run n1000 --devices 1000
run n1000-units --devices 1000 --units 10
echo
echo "| Site | Contender | CPU s / 1 000 values | × floor | × collectd | Peak RSS MiB (anon / file at end) | Missed polls | Alarm p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for d in n100 n300 n1000 n1000-units; do
    python3 - "$out/$d/results.json" "$d" <<'PY'
import json, sys, statistics as st
r = json.load(open(sys.argv[1])); site = sys.argv[2]
runs = r["runs"]
def of(c): return [x for x in runs if x["contender"] == c]
def per1000(x): return x["cpu_s"] * 1000 / x["values_polled"] if x["values_polled"] else float("nan")
def ratio(c, base):
    v = []
    for x in of(c):
        b = [y for y in of(base) if y["round"] == x["round"]]
        if b and per1000(b[0]) > 0: v.append(per1000(x) / per1000(b[0]))
    return f"{st.mean(v):.2f}" if v else "—"
lat = {l["contender"]: l for l in r.get("alarm_latency", [])}
for c in ["dc-gateway", "floor", "collectd"]:
    xs = of(c)
    if not xs: continue
    p99 = "—"
    if c in lat and lat[c]["from_read_ms"]:
        v = sorted(lat[c]["from_read_ms"]); p99 = f"{v[min(len(v)-1, int(0.99*len(v)))]:.0f}"
    print(f"| {site} | {c} | {st.mean(per1000(x) for x in xs):.4f} | {ratio(c,'floor')} | {ratio(c,'collectd')} | "
          f"{max(x['peak_rss_kb'] for x in xs)/1024:.1f} ({st.mean(x.get('rss_anon_kb',0) for x in xs)/1024:.1f} / {st.mean(x.get('rss_file_kb',0) for x in xs)/1024:.1f}) | "
          f"{sum(x['missed_polls'] for x in xs)} | {p99} |")
PY
done | tee "$out/scale.md"
