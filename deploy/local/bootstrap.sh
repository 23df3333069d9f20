#!/usr/bin/env bash
# Idempotent set-up of everything citybrain needs on a Debian machine without Docker:
# the Python virtualenv with the project, Java/Maven (apt, when absent and root), the
# Kafka jars from Maven Central, PostgreSQL 15 and mosquitto (apt, when absent and root), the
# Node packages of the WebAssembly TimescaleDB used by the tests and of the Grafana schema check,
# and Debian's chromium with CJK fonts for the console's browser tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${CITYBRAIN_VENV:-$ROOT/.venv}"
say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: $* - install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# --- Python -------------------------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11+ is required" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV with $PY"
  "$PY" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$PY" -m venv "$VENV"; }
fi
# the development install: the runtime with its dev extra, and the tools (tools/: bench,
# chaos, the simulator), which plug their commands into `citybrain`
STAMP="$VENV/.citybrain-installed"
HASH="$(cat pyproject.toml tools/pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  say "installing citybrain, its development tools and their dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # the versions CI tested (requirements.lock) as constraints
  "$VENV/bin/python" -m pip install -q -c requirements.lock -e ".[dev]" -e ./tools
  echo "$HASH" > "$STAMP"
fi

# --- Java, Maven, Kafka jars ----------------------------------------------------------
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven
if ! ls deploy/local/kafka/lib/kafka_2.13-*.jar >/dev/null 2>&1; then
  say "resolving Kafka jars from Maven Central into deploy/local/kafka/lib"
  mvn -q -B -f deploy/local/kafka/pom.xml dependency:copy-dependencies
fi

# --- PostgreSQL -----------------------------------------------------------------------
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && [ -z "${CITYBRAIN_PG_BIN_DIR:-}" ]; then
  apt_install postgresql-15
fi

# --- mosquitto: the MQTT broker of the feeds that come by MQTT (`citybrain stack up` runs
# it, `citybrain bridge mqtt` reads it) and mosquitto_pub/mosquitto_sub for tests --------
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  apt_install mosquitto mosquitto-clients
fi
command -v mosquitto_pub >/dev/null || apt_install mosquitto-clients

# --- WebAssembly TimescaleDB (tests of the TimescaleDB path) -----------------------------
TSDB="deploy/local/timescale"
if [ -f "$TSDB/package-lock.json" ] && [ "${CITYBRAIN_SKIP_TIMESCALE:-0}" != 1 ]; then
  if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  if [ ! -d "$TSDB/node_modules" ] || [ "$TSDB/package-lock.json" -nt "$TSDB/node_modules" ]; then
    say "installing the WebAssembly TimescaleDB (npm ci in $TSDB)"
    (cd "$TSDB" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
fi

# --- Grafana dashboard schema check (@grafana/schema + TypeScript, tests/grafana) -------
GCHECK="grafana/check"
if [ -f "$GCHECK/package-lock.json" ]; then
  if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  if [ ! -d "$GCHECK/node_modules" ] || [ "$GCHECK/package-lock.json" -nt "$GCHECK/node_modules" ]; then
    say "installing the Grafana dashboard schema check (npm ci in $GCHECK)"
    (cd "$GCHECK" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
fi
# --- the console's browser tests: Debian's chromium (Playwright drives it; its own browser
# download cannot work offline) and CJK fonts, or Chinese renders as boxes --------------
if [ "${CITYBRAIN_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || apt_install chromium
  fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || apt_install fonts-noto-cjk
fi
say "ready: $VENV/bin/citybrain"
