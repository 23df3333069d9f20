"""A PostgreSQL cluster from Debian's packages, owned by the project's data folder.

`up()` installs PostgreSQL 15 with apt when no server binaries are found (as root), runs
`initdb` once into `<data_dir>/postgres/data`, starts it on 127.0.0.1:<db_port> with a
private socket folder, and creates the writer role and the database. As root the server
runs as the `postgres` OS user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from citybrain.settings import Settings
from citybrain.stack.process import (
    ServiceStatus,
    StackError,
    apt_install,
    port_open,
    tail,
    wait_until,
)

POSTGRESQL_CONF = """\
# Added by `citybrain stack up`.
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 128MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 15min
log_min_duration_statement = 2000
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
"""

SUPERUSER = "postgres"


def find_bin_dir(configured: Path | None) -> Path | None:
    """The folder holding pg_ctl: the setting, else Debian's newest (15 preferred)."""
    if configured is not None:
        return configured if (configured / "pg_ctl").exists() else None
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    preferred = [c for c in candidates if c.parent.parent.name == "15"]
    chosen = preferred or candidates
    if chosen:
        return chosen[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


class PostgresService:
    """Start, stop and inspect the local PostgreSQL cluster."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = (settings.data_dir / "postgres").resolve()
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_file = settings.resolved_log_dir / "postgres.log"
        self.host = "127.0.0.1"
        self.port = settings.db_port
        self._bin: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- helpers -------------------------------------------------------------------
    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def bin(self, tool: str) -> str:
        if self._bin is None:
            self._bin = find_bin_dir(self.settings.pg_bin_dir)
        if self._bin is None:
            raise StackError(
                "postgres: no PostgreSQL server binaries found; "
                "`apt-get install postgresql-15` or set CITYBRAIN_PG_BIN_DIR"
            )
        return str(self._bin / tool)

    def run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a server tool, as the postgres OS user when we are root."""
        cmd = ["runuser", "-u", SUPERUSER, "--", *args] if self.as_root else args
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise StackError(
                f"postgres: `{' '.join(args[:2])}` failed ({proc.returncode}): "
                f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}; see {self.log_file}"
            )
        return proc

    def ensure_installed(self) -> None:
        """apt-get install PostgreSQL 15 when no server is on the machine (root only)."""
        if find_bin_dir(self.settings.pg_bin_dir) is not None:
            return
        apt_install("postgres", ["postgresql-15"], " (or set CITYBRAIN_PG_BIN_DIR)")

    def _own(self, *paths: Path) -> None:
        if self.as_root:
            for path in paths:
                shutil.chown(path, SUPERUSER, SUPERUSER)

    def init_cluster(self) -> None:
        """initdb once; (re)write our settings file included from postgresql.conf."""
        for path in (self.root, self.socket_dir, self.settings.resolved_log_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._own(self.root, self.socket_dir)
        if self.as_root and not self.log_file.exists():
            self.log_file.touch()
            self._own(self.log_file)
        if not (self.data / "PG_VERSION").exists():
            self.run(
                [
                    self.bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ]
            )
        conf = self.data / "postgresql.conf"
        include = "include_if_exists = 'citybrain.conf'"
        text = conf.read_text()
        if include not in text:
            conf.write_text(text + f"\n{include}\n")
        own = self.data / "citybrain.conf"
        own.write_text(
            POSTGRESQL_CONF.format(host=self.host, port=self.port, socket_dir=self.socket_dir)
        )
        self._own(own)

    def superuser_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def running(self) -> bool:
        return (
            self.run([self.bin("pg_ctl"), "status", "-D", str(self.data)], check=False).returncode
            == 0
        )

    def accepting(self) -> bool:
        proc = self.run(
            [self.bin("pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port), "-t", "2"],
            check=False,
        )
        return proc.returncode == 0

    # --- lifecycle ---------------------------------------------------------------
    def up(self) -> None:
        self.ensure_installed()
        self.init_cluster()
        if not self.running():
            if port_open(self.host, self.port):
                raise StackError(
                    f"postgres: port {self.address} is taken by another program; "
                    "free it or set CITYBRAIN_DB_PORT"
                )
            proc = self.run(
                [
                    self.bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(self.settings.stack_timeout)),
                ],
                check=False,
            )
            if proc.returncode != 0:
                raise StackError(
                    f"postgres did not come up at {self.address}; see {self.log_file}:\n"
                    f"{proc.stdout}{proc.stderr}\n{tail(self.log_file)}"
                )
        if not wait_until(self.accepting, self.settings.stack_timeout, interval=0.5):
            raise StackError(
                f"postgres is not accepting connections at {self.address}; "
                f"see {self.log_file}:\n{tail(self.log_file)}"
            )
        self.ensure_role_and_database()

    def ensure_role_and_database(self) -> None:
        """Create (or re-password) the writer role and create its database."""
        import psycopg
        from psycopg import sql

        user = self.settings.db_user
        password = self.settings.db_password.get_secret_value()
        with psycopg.connect(self.superuser_conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                )
            )
            db = self.settings.db_name
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(db), sql.Identifier(user)
                    )
                )

    def down(self) -> None:
        if (self.data / "PG_VERSION").exists() and self.running():
            self.run(
                [
                    self.bin("pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(self.settings.stack_timeout)),
                ]
            )

    def kill(self) -> None:
        """Stop immediately, like a crash (fault injection)."""
        if self.running():
            self.run([self.bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"])

    # --- inspection ----------------------------------------------------------------
    def status(self) -> ServiceStatus:
        details: dict[str, str] = {}
        running = False
        try:
            import psycopg

            with psycopg.connect(self.settings.conninfo(), connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                details["version"] = str(row[0]) if row else "?"
                ts = conn.execute(
                    "SELECT default_version, installed_version FROM pg_available_extensions "
                    "WHERE name = 'timescaledb'"
                ).fetchone()
                details["timescaledb"] = (
                    f"available {ts[0]}" + (f", installed {ts[1]}" if ts[1] else "")
                    if ts
                    else "not available (plain PostgreSQL mode)"
                )
                running = True
        except Exception as exc:
            details["error"] = f"{type(exc).__name__}: {str(exc).strip()}"
        details["data"] = str(self.data)
        return ServiceStatus(self.name, running, self.address, details, self.log_file)
