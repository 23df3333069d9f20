#!/usr/bin/env bash
# stop the local stack (Kafka in KRaft mode + PostgreSQL): `citybrain stack down`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

exec "${CITYBRAIN_VENV:-$ROOT/.venv}/bin/citybrain" stack down
