#!/usr/bin/env bash
# The demo: set up (idempotent), then a whole site on this machine (fake cloud, broker,
# simulated serial and BLE locks, the gateway) with a live view. Ctrl-C ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --demo
exec .venv/bin/lockgate-sim demo "$@"
