#!/usr/bin/env bash
# The test command: installs the real test peers the integration tests need (only what
# is missing, so a second run is fast), then runs the whole suite and exits with its
# status.
#
#   ./tests/run.sh                      # everything
#   ./tests/run.sh -E 'binary(it)'      # extra arguments go to `cargo nextest run`
#
# On Debian 12 as root (or with sudo). What it sets up:
#   - Debian packages: the peers (Mosquitto, VictoriaMetrics, InfluxDB 1.x, net-snmp,
#     socat, mbpoll, Chromium, rsyslog); `apt-get update` runs only when one is missing.
#     Their system services are stopped: tests start their own instances on free ports.
#   - tests/.venv: Python venv with tests/requirements.txt (pymodbus), made when missing,
#     reinstalled when requirements.txt changes.
#   - cargo-deb (pinned), installed once per machine with `cargo install --locked`.
#   - tests/web/node_modules: when tests/web/package.json exists (npm ci / npm install;
#     no browser download, tests use Debian's /usr/bin/chromium).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START=$(date +%s)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

if [ -t 1 ]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
warn() { printf '==> WARNING: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "tests/run.sh: need root to run: $*" >&2
        return 1
    fi
}

# --- Debian packages -------------------------------------------------------------
APT_PACKAGES=(
    mosquitto mosquitto-clients # MQTT broker + mosquitto_sub/pub (ground truth)
    victoria-metrics            # line protocol, /api/v2/write
    influxdb                    # InfluxDB 1.x: error paths, partial writes, auth
    snmpd snmp                  # SNMP agent + client tools
    snmpsim                     # SNMP simulator serving recordings
    bzip2                       # bzcat: snmpsim-data's compressed recordings
    socat mbpoll                # RS-485 pty pairs, independent Modbus client
    chromium                    # headless browser for the web page tests
    openssl                     # test TLS certificates
    rsyslog rsyslog-relp rsyslog-gnutls # syslog receiver: imudp, imtcp, imrelp, TLS (gtls)
    lintian dpkg-dev binutils   # the Debian package test: lintian, dpkg-shlibdeps, strip
    chrony faketime             # NTP server for the clock check, with a known offset
    ca-certificates
    sqlite3                     # reading buffer.db beside a running gateway
    util-linux                  # unshare, nsenter: a small tmpfs state disk in a mount namespace
)
APT_UPDATED=0

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

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
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    say "Debian packages: all ${#APT_PACKAGES[@]} present"
fi

# Their system services must not hold the default ports or CPU; tests start their own.
# Only the packaged daemons are stopped (through their init scripts/units), never a
# process some test started.
for svc in mosquitto influxdb snmpd victoria-metrics; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        say "stopping system service $svc"
        as_root systemctl stop "$svc" || true
        as_root systemctl disable "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ] && service "$svc" status >/dev/null 2>&1; then
        say "stopping system service $svc"
        as_root service "$svc" stop >/dev/null 2>&1 || true
    fi
done
if command -v ss >/dev/null 2>&1; then
    busy=$(ss -Hltnup 2>/dev/null | grep -E '127\.0\.0\.1:(1883|8883|8086|8088|8428)\b|0\.0\.0\.0:(1883|8883|8086|8088|8428|161)\b|\*:(1883|8086|8428)\b' || true)
    [ -z "$busy" ] || warn "default peer ports are in use (tests use their own ports):"$'\n'"$busy"
fi

# --- Python venv (pymodbus) ------------------------------------------------------
VENV=tests/.venv
REQ=tests/requirements.txt

pick_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating $VENV"
    rm -rf "$VENV"
    if ! PY=$(pick_python); then
        apt_install python3 python3-venv python3-pip
        PY=/usr/bin/python3
    fi
    "$PY" -m venv "$VENV"
fi
REQ_SUM=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$REQ_SUM" ] \
    || ! "$VENV/bin/python" -c 'import pymodbus, serial, snmpsim_data' >/dev/null 2>&1; then
    say "pip install -r $REQ"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    echo "$REQ_SUM" >"$VENV/.requirements.sha256"
else
    say "python venv: up to date"
fi

# --- Browser test driver (only when the web tests declare one) --------------------
if [ -f tests/web/package.json ]; then
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    (
        cd tests/web
        if [ -f package-lock.json ]; then
            if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
                say "npm ci (tests/web)"
                npm ci --no-audit --no-fund --loglevel=error
            else
                say "tests/web/node_modules: up to date"
            fi
        elif [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
            say "npm install (tests/web)"
            npm install --no-audit --no-fund --loglevel=error
            touch node_modules
        else
            say "tests/web/node_modules: up to date"
        fi
    )
fi

# --- cargo-deb (tests/it/package.rs builds the .deb) -------------------------------
# A cargo subcommand compiled from crates.io: minutes on 2 cores, so it is installed
# once per machine into ~/.cargo/bin (cache that directory in CI) and only checked on
# later runs. Pinned, so every machine packages the same way.
CARGO_DEB_VERSION=3.8.0
if cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    say "cargo-deb $CARGO_DEB_VERSION: present"
else
    say "cargo install cargo-deb --locked --version $CARGO_DEB_VERSION (once per machine, a few minutes)"
    (cd / && cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet)
fi

# --- Summary of the peers --------------------------------------------------------
first_line() { "$@" 2>&1 | head -n 1 || true; }
say "test peers:"
printf '    %-18s %s\n' \
    mosquitto "$(dpkg-query -W -f='${Version}' mosquitto)" \
    victoria-metrics "$(dpkg-query -W -f='${Version}' victoria-metrics)" \
    influxdb "$(dpkg-query -W -f='${Version}' influxdb)" \
    snmpd "$(dpkg-query -W -f='${Version}' snmpd)" \
    socat "$(dpkg-query -W -f='${Version}' socat)" \
    mbpoll "$(dpkg-query -W -f='${Version}' mbpoll)" \
    chromium "$(dpkg-query -W -f='${Version}' chromium)" \
    lintian "$(dpkg-query -W -f='${Version}' lintian)" \
    cargo-deb "$(cargo deb --version 2>/dev/null | head -n 1)" \
    pymodbus "$("$VENV/bin/python" -c 'import pymodbus; print(pymodbus.__version__)')"
SETUP_S=$(($(date +%s) - START))
say "setup took ${SETUP_S}s"

# --- The suite -------------------------------------------------------------------
set +e
if cargo nextest --version >/dev/null 2>&1; then
    say "cargo nextest run --workspace --no-fail-fast $*"
    cargo nextest run --workspace --no-fail-fast "$@"
    STATUS=$?
else
    warn "cargo-nextest not found; falling back to cargo test (integration tests one at a time)"
    cargo test --workspace --no-fail-fast "$@" -- --test-threads=1
    STATUS=$?
fi
set -e

TOTAL_S=$(($(date +%s) - START))
if [ "$STATUS" = 0 ]; then
    say "tests/run.sh: all tests passed (setup ${SETUP_S}s, total ${TOTAL_S}s)"
else
    say "tests/run.sh: TESTS FAILED, exit status $STATUS (setup ${SETUP_S}s, total ${TOTAL_S}s)"
fi
exit "$STATUS"
