#!/usr/bin/env bash
# README's run command: set everything up, start the stack, migrate, run the worker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/bootstrap.sh"
cd "$ROOT"
exec "${CITYBRAIN_VENV:-$ROOT/.venv}/bin/citybrain" run "$@"
