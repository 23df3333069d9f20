#!/usr/bin/env bash
# README's test command: set everything up, start the stack, lint, type-check, and run
# the whole test suite (unit and integration, against the real broker and database).
# Extra arguments go to pytest, e.g. `deploy/local/test.sh -m "not integration"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/bootstrap.sh"
cd "$ROOT"
BIN="${CITYBRAIN_VENV:-$ROOT/.venv}/bin"
echo "[test] starting the local stack"
# with the SCRAM listener the SASL tests log in on (a stack running in another shape is
# restarted in this one)
"$BIN/citybrain" stack up --sasl || { "$BIN/citybrain" stack down && "$BIN/citybrain" stack up --sasl; }
echo "[test] ruff"
"$BIN/ruff" check .
echo "[test] mypy"
"$BIN/mypy"
echo "[test] pytest"
set +e
"$BIN/pytest" "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "[test] pytest collected no tests (exit 5): that is a failure here" >&2
  exit 1
fi
exit "$rc"
