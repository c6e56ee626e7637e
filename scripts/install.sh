#!/usr/bin/env bash
# Install Lockgate on Debian 12 / Raspberry Pi OS (bookworm) as a systemd service.
#
#   sudo scripts/install.sh --gateway-id ID [--source DIR|WHEEL] [--api-key-file FILE] [--no-start]
#
# --gateway-id names this gateway on the broker and in its topics (letters, digits, _ . -; up
# to 64): choose one per site and door controller, e.g. "acme-hq-1". It is never taken from the
# hostname (every Raspberry Pi is "raspberrypi"); needed the first time, kept afterwards.
#
# Lays out:
#   /opt/lockgate/venv                   -> releases/<time>/, a virtual environment with Lockgate
#   /etc/lockgate/lockgate.toml          starter config (root:lockgate 0640; never overwritten)
#   /etc/lockgate/credentials/           root-only secrets, loaded by the unit (LoadCredential=)
#       seam-api-key                     from --api-key-file, or typed at the prompt
#       store-key                        32 random bytes, made once
#   /var/lib/lockgate                    the store (StateDirectory=, made by systemd)
#   /etc/systemd/system/lockgate.service, /etc/sysusers.d/lockgate.conf (user lockgate),
#   /etc/dbus-1/system.d/lockgate.conf   (lockgate may call BlueZ)
#
# Running it again is safe: it keeps the config, the secrets and the store. To move to a new
# version use scripts/upgrade.sh, which also backs up the store and rolls back on failure.
set -euo pipefail

PREFIX=/opt/lockgate
VENV=$PREFIX/venv
ETC=/etc/lockgate
CREDS=$ETC/credentials
STATE=/var/lib/lockgate
UNIT=/etc/systemd/system/lockgate.service

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
SOURCE=$REPO
API_KEY_FILE=
GATEWAY_ID=
START=1

say() { printf 'lockgate-install: %s\n' "$*"; }
die() { printf 'lockgate-install: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --source) SOURCE=${2:?--source needs a directory or a wheel}; shift 2 ;;
        --api-key-file) API_KEY_FILE=${2:?--api-key-file needs a file}; shift 2 ;;
        --gateway-id) GATEWAY_ID=${2:?--gateway-id needs a name}; shift 2 ;;
        --no-start) START=0; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n' "$1" >&2; usage 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
for f in systemd/lockgate.service systemd/lockgate.sysusers systemd/lockgate-dbus.conf \
         systemd/lockgate.toml.in; do
    [ -f "$REPO/$f" ] || die "$REPO/$f is missing: run this script from a Lockgate checkout"
done

# --- Python ----------------------------------------------------------------------------------
# The distribution's interpreter: one under /home or /root (pyenv, conda) is hidden from the
# service by ProtectHome=.
PYTHON=${PYTHON:-/usr/bin/python3}
py_path=$(command -v "$PYTHON") || die "$PYTHON not found (apt-get install python3)"
case $(readlink -f "$py_path") in
    /home/*|/root/*) die "$PYTHON lives in a home directory, which the service cannot see" ;;
esac
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    die "Lockgate needs Python 3.11 or newer (Debian 12 / Raspberry Pi OS bookworm has it)"
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    say "installing python3-venv"
    apt-get update -qq
    apt-get install -y python3-venv
fi

# --- the user --------------------------------------------------------------------------------
install -D -m 0644 "$REPO/systemd/lockgate.sysusers" /etc/sysusers.d/lockgate.conf
systemd-sysusers /etc/sysusers.d/lockgate.conf
id lockgate >/dev/null

# --- the virtual environment -----------------------------------------------------------------
# Each version gets its own venv under releases/ (a venv cannot be moved: its scripts name
# their interpreter by absolute path); $VENV is a symlink to the one in use.
install -d -m 0755 "$PREFIX" "$PREFIX/releases" "$PREFIX/share/docs"
if [ ! -x "$VENV/bin/lockgate" ]; then
    release=$PREFIX/releases/$(date -u +%Y%m%dT%H%M%SZ)
    say "installing Lockgate from $SOURCE into $release"
    "$PYTHON" -m venv "$release"
    "$release/bin/pip" install --quiet --disable-pip-version-check "$SOURCE" \
        || { rm -rf "$release"; die "pip install failed"; }
    ln -sfn "$release" "$VENV.tmp"
    mv -T "$VENV.tmp" "$VENV"
else
    say "$VENV exists: keeping it (scripts/upgrade.sh installs a new version)"
fi
install -m 0644 "$REPO/docs/install.md" "$PREFIX/share/docs/install.md" 2>/dev/null || true

# --- config and secrets ----------------------------------------------------------------------
install -d -m 0750 -o root -g lockgate "$ETC"
install -d -m 0700 -o root -g root "$CREDS"
if [ ! -e "$ETC/lockgate.toml" ]; then
    [ -n "$GATEWAY_ID" ] || die "choose this gateway's name: --gateway-id ID (e.g. acme-hq-1; \
not the hostname: every Raspberry Pi is 'raspberrypi', and two gateways with one name collide)"
    printf '%s' "$GATEWAY_ID" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' \
        || die "--gateway-id '$GATEWAY_ID': letters, digits, _ . - (up to 64), first a letter or digit"
    sed "s/@GATEWAY_ID@/$GATEWAY_ID/g" "$REPO/systemd/lockgate.toml.in" > "$ETC/lockgate.toml.new"
    chown root:lockgate "$ETC/lockgate.toml.new"
    chmod 0640 "$ETC/lockgate.toml.new"
    mv "$ETC/lockgate.toml.new" "$ETC/lockgate.toml"
    say "wrote $ETC/lockgate.toml (gateway_id = $GATEWAY_ID); add your locks there"
else
    say "keeping $ETC/lockgate.toml"
    [ -z "$GATEWAY_ID" ] || grep -q "^gateway_id = \"$GATEWAY_ID\"" "$ETC/lockgate.toml" \
        || say "note: $ETC/lockgate.toml keeps its own gateway_id; --gateway-id was not applied"
fi
# The command on the PATH (through the venv link, so it follows upgrades).
ln -sfn "$VENV/bin/lockgate" /usr/local/bin/lockgate

umask 077
if [ ! -e "$CREDS/store-key" ]; then
    if [ -e "$STATE/store.key" ]; then
        # A store made with the default config keeps its key beside it: adopt that key.
        cp "$STATE/store.key" "$CREDS/store-key"
        say "adopted the existing store key from $STATE/store.key"
    elif [ -e "$STATE/lockgate.db" ]; then
        die "$STATE/lockgate.db exists but $CREDS/store-key does not: restore the key \
(a new one cannot read the PIN codes in that store)"
    else
        head -c 32 /dev/urandom > "$CREDS/store-key.new"
        mv "$CREDS/store-key.new" "$CREDS/store-key"
        say "made a new store key in $CREDS/store-key: keep a copy somewhere safe"
    fi
fi
if [ ! -e "$CREDS/seam-api-key" ]; then
    if [ -n "$API_KEY_FILE" ]; then
        tr -d '\r\n' < "$API_KEY_FILE" > "$CREDS/seam-api-key"
    elif [ -t 0 ]; then
        read -r -s -p "Seam API key (input hidden, empty to add it later): " key; echo
        if [ -n "$key" ]; then printf '%s' "$key" > "$CREDS/seam-api-key"; fi
        unset key
    fi
fi
chmod 0600 "$CREDS"/* 2>/dev/null || true
umask 022
# The config and every file it names (secrets 0600, the store key against the store, the
# operators file); the same checks `lockgate run` makes before it starts.
if [ -s "$CREDS/seam-api-key" ]; then
    "$VENV/bin/lockgate" check-config -c "$ETC/lockgate.toml" --credentials-dir "$CREDS"
fi

# --- the unit and the D-Bus policy -----------------------------------------------------------
install -m 0644 "$REPO/systemd/lockgate.service" "$UNIT"
install -D -m 0644 "$REPO/systemd/lockgate-dbus.conf" /etc/dbus-1/system.d/lockgate.conf
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT" || say "warning: systemd-analyze verify complained (above)"
fi

if [ ! -d /run/systemd/system ]; then
    say "systemd is not running here: done; enable with 'systemctl enable --now lockgate'"
    exit 0
fi
systemctl reload dbus.service 2>/dev/null || true
systemctl daemon-reload
systemctl enable lockgate.service
if [ ! -s "$CREDS/seam-api-key" ]; then
    say "no API key yet: put it in $CREDS/seam-api-key (mode 600), then"
    say "    systemctl start lockgate && journalctl -u lockgate -f"
elif [ "$START" -eq 1 ]; then
    # Type=notify: this returns once the gateway said READY=1 (or failed to start).
    systemctl restart lockgate.service
    systemctl --no-pager --lines=5 status lockgate.service || true
else
    say "installed; start with: systemctl start lockgate"
fi
