#!/usr/bin/env bash
# start the local stack (Kafka in KRaft mode + PostgreSQL): `citybrain stack up`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/bootstrap.sh"
exec "${CITYBRAIN_VENV:-$ROOT/.venv}/bin/citybrain" stack up
