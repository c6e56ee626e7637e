#!/usr/bin/env bash
# The test command: set up (idempotent), lint, type-check, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check gateway drivers lockgate firmware-sim fakecloud tests bench
echo "== mypy --strict (all the project's Python: the same directories as ruff)"
.venv/bin/mypy gateway drivers lockgate firmware-sim/lockgate_sim fakecloud tests bench
echo "== pytest"
.venv/bin/pytest "$@"
