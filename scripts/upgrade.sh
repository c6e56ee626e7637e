#!/usr/bin/env bash
# Upgrade an installed Lockgate to the version in this checkout (or --source DIR|WHEEL).
#
#   sudo scripts/upgrade.sh [--source DIR|WHEEL]
#
# 1. installs the new version into its own venv, /opt/lockgate/releases/<time>, and checks the
#    live config with it, while the old version keeps serving;
# 2. stops the service (SIGTERM: lock operations in flight finish, the store is closed) and
#    backs the store up to /var/lib/lockgate/backups/ (the last 5 are kept);
# 3. points /opt/lockgate/venv at the new release and refreshes the unit;
# 4. starts it: schema migrations run at start, and systemctl returns once the gateway has
#    reported READY=1. If it does not come up, the previous release, unit and store backup
#    are put back and the previous version is started again.
# The config in /etc/lockgate and the secrets are never touched. The last 3 releases are kept.
set -euo pipefail

PREFIX=/opt/lockgate
VENV=$PREFIX/venv
RELEASES=$PREFIX/releases
ETC=/etc/lockgate
STATE=/var/lib/lockgate
DB=$STATE/lockgate.db
BACKUPS=$STATE/backups
UNIT=/etc/systemd/system/lockgate.service
KEEP_BACKUPS=5
KEEP_RELEASES=3

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
SOURCE=$REPO

say() { printf 'lockgate-upgrade: %s\n' "$*"; }
die() { printf 'lockgate-upgrade: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --source) SOURCE=${2:?--source needs a directory or a wheel}; shift 2 ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: $1" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -x "$VENV/bin/lockgate" ] || die "no installation in $VENV: run scripts/install.sh first"
[ -f "$REPO/systemd/lockgate.service" ] || die "$REPO is not a Lockgate checkout"
# The distribution's interpreter: one under /home or /root (pyenv, conda) is hidden from the
# service by ProtectHome=.
PYTHON=${PYTHON:-/usr/bin/python3}
py_path=$(command -v "$PYTHON") || die "$PYTHON not found (apt-get install python3)"
case $(readlink -f "$py_path") in
    /home/*|/root/*) die "$PYTHON lives in a home directory, which the service cannot see" ;;
esac
version() { "$1/bin/python" -c 'from importlib.metadata import version; print(version("lockgate"))'; }
point_venv_at() { ln -sfn "$1" "$VENV.tmp" && mv -T "$VENV.tmp" "$VENV"; }
systemd_running() { [ -d /run/systemd/system ]; }

# --- 1. install and check the new version beside the running one -----------------------------
old_release=$(readlink -f "$VENV")
old_version=$(version "$VENV")
release=$RELEASES/$(date -u +%Y%m%dT%H%M%SZ)
[ "$release" != "$old_release" ] || die "a release was made this second; try again"
say "installing from $SOURCE into $release (running: $old_version)"
install -d -m 0755 "$RELEASES"
"$PYTHON" -m venv "$release"
"$release/bin/pip" install --quiet --disable-pip-version-check "$SOURCE" \
    || { rm -rf "$release"; die "pip install failed; nothing was changed"; }
new_version=$(version "$release")
if ! "$release/bin/lockgate" check-config -c "$ETC/lockgate.toml" \
        --credentials-dir "$ETC/credentials"; then
    rm -rf "$release"
    die "lockgate $new_version rejects $ETC/lockgate.toml; nothing was changed"
fi

# --- 2. stop and back up the store -----------------------------------------------------------
was_active=0
if systemd_running && systemctl is-active --quiet lockgate.service; then
    was_active=1
    say "stopping lockgate $old_version"
    systemctl stop lockgate.service
fi
backup=
if [ -e "$DB" ]; then
    install -d -m 0700 -o lockgate -g lockgate "$BACKUPS"
    backup=$BACKUPS/lockgate-$old_version-$(date -u +%Y%m%dT%H%M%SZ).db
    # SQLite's backup API: a consistent copy even if a -wal file was left behind. As the
    # service's user, so that no file in the state directory ends up owned by root.
    runuser -u lockgate -- "$PYTHON" - "$DB" "$backup" <<'EOF'
import os, sqlite3, sys
os.umask(0o077)
src = sqlite3.connect(sys.argv[1])
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
dst.close()
src.close()
sys.exit(0 if ok == "ok" else f"the backup failed its integrity check: {ok}")
EOF
    say "store backed up to $backup"
    # shellcheck disable=SC2012  # the names are ours: lockgate-<version>-<time>.db
    ls -1t "$BACKUPS"/lockgate-*.db | tail -n +$((KEEP_BACKUPS + 1)) | xargs -r rm -f --
fi

# --- 3. switch -------------------------------------------------------------------------------
cp -p "$UNIT" "$PREFIX/lockgate.service.previous"
point_venv_at "$release"
install -m 0644 "$REPO/systemd/lockgate.service" "$UNIT"
install -D -m 0644 "$REPO/systemd/lockgate-dbus.conf" /etc/dbus-1/system.d/lockgate.conf
install -m 0644 "$REPO/docs/install.md" "$PREFIX/share/docs/install.md" 2>/dev/null || true
# shellcheck disable=SC2012  # the names are ours: timestamps
ls -1d "$RELEASES"/*/ | sort | head -n -"$KEEP_RELEASES" | while read -r old; do
    old=${old%/}
    [ "$old" = "$release" ] || [ "$old" = "$old_release" ] || rm -rf "$old"
done

if ! systemd_running; then
    say "installed $new_version (systemd is not running here: start it yourself)"
    exit 0
fi
systemctl daemon-reload
if [ "$was_active" -eq 0 ]; then
    say "installed $new_version; the service was not running and was left stopped"
    exit 0
fi

# --- 4. start; roll back if it does not come up ----------------------------------------------
say "starting lockgate $new_version (store migrations run now)"
if systemctl start lockgate.service; then
    say "upgraded $old_version -> $new_version; the previous release is $old_release"
    exit 0
fi
say "lockgate $new_version did not start; rolling back to $old_version"
journalctl -u lockgate.service -n 30 --no-pager || true
systemctl stop lockgate.service || true
point_venv_at "$old_release"
install -m 0644 "$PREFIX/lockgate.service.previous" "$UNIT"
if [ -n "$backup" ]; then
    rm -f "$DB-wal" "$DB-shm"
    install -m 0600 -o lockgate -g lockgate "$backup" "$DB"
    say "store restored from $backup"
fi
systemctl daemon-reload
systemctl reset-failed lockgate.service || true
systemctl start lockgate.service
die "rolled back to $old_version; the failed release $release is kept for inspection"
