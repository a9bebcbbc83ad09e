#!/usr/bin/env bash
# The site benchmark command: installs the peers it compares against and measures with
# (only what is missing, so a second run is fast), then runs benches/site.rs.
#
#   benches/run.sh                  # defaults: 100 devices x 20 registers, 60 s, 3 rounds
#   benches/run.sh --quick          # smoke run (10 devices, 10 s, 1 round)
#   benches/run.sh --help           # every flag
#
# Extra arguments go to the benchmark (`cargo bench --profile bench-release --bench site -- ARGS`).
# On Debian 12 as root (or with sudo). What it sets up:
#   - Debian packages: mosquitto + clients, victoria-metrics, collectd-core and the
#     libraries its modbus/snmp/mqtt plugins load (libmodbus5, libsnmp40,
#     libmosquitto1), nodejs/npm when missing; `apt-get update` only when one is missing.
#     Their system services are stopped: the benchmark starts its own instances.
#   - benches/node-red/node_modules: Node-RED 4 and node-red-contrib-modbus 5.23.3
#     (npm ci from the lock file).
# Results: printed, and written to target/bench-site/<unix time>/results.{md,json}
# with every generated config and log. See docs/BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "benches/run.sh: need root to run: $*" >&2
        return 1
    fi
}

APT_PACKAGES=(
    mosquitto mosquitto-clients # broker + mosquitto_pub (collectd's alarm path)
    victoria-metrics            # InfluxDB API sink of dc-gateway
    collectd-core libmodbus5 libsnmp40 libmosquitto1 # collectd 5.12 and its plugins' libraries
)
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    say "Debian packages: all present"
fi

# Packaged daemons must not hold CPU during the measurement; the benchmark runs its own.
for svc in mosquitto victoria-metrics collectd; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        say "stopping system service $svc"
        as_root systemctl stop "$svc" || true
    elif [ -x "/etc/init.d/$svc" ] && service "$svc" status >/dev/null 2>&1; then
        say "stopping system service $svc"
        as_root service "$svc" stop >/dev/null 2>&1 || true
    fi
done

# Node-RED and node-red-contrib-modbus, pinned by the lock file.
(
    cd benches/node-red
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        say "npm ci (benches/node-red)"
        npm ci --no-audit --no-fund --loglevel=error
    else
        say "benches/node-red/node_modules: up to date"
    fi
)

# The bench profile's own directory (target/bench-release/, see Cargo.toml): a plain
# `cargo bench` would put a dc-gateway built with dev-dependency features in
# target/release/ and replace the one `cargo build --release` made.
say "cargo bench --profile bench-release --bench site -- $*"
exec cargo bench --profile bench-release --bench site -- "$@"
