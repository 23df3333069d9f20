"""`citybrain doctor`: check connectivity and configuration, and say how to fix each fault."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from citybrain.settings import Settings


@dataclass
class Check:
    """One finding: what was checked, whether it holds, and how to fix it if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_kafka(settings: Settings) -> Check:
    from citybrain.streams.clients import KafkaLoginError, check_login

    address = settings.kafka_bootstrap_servers
    try:
        cluster = check_login(settings, timeout_s=5.0)
    except KafkaLoginError as exc:
        return Check("kafka", False, str(exc), "fix the setting named above")
    except Exception as exc:
        return Check(
            "kafka",
            False,
            f"Kafka broker at {address} is not reachable ({type(exc).__name__}: {exc})",
            "start the local stack with `citybrain stack up`, or point "
            "CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS at a running broker",
        )
    brokers = cluster.get("brokers") or []
    count = len(brokers) if isinstance(brokers, list) else 0
    return Check(
        "kafka",
        True,
        f"broker at {address} ({settings.kafka_security_protocol}): {count} broker(s), "
        f"cluster {cluster.get('cluster_id')}",
    )


def check_database(settings: Settings) -> Check:
    from citybrain.db.connect import connect

    target = settings.safe_conninfo()
    try:
        with connect(settings, connect_timeout=4) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception as exc:
        return Check(
            "database",
            False,
            f"database {target} is not reachable ({type(exc).__name__}: {str(exc).strip()})",
            "start the local stack with `citybrain stack up`, or set CITYBRAIN_DATABASE_URL "
            "(or CITYBRAIN_DB_HOST/PORT/NAME/USER/PASSWORD)",
        )
    return Check("database", True, f"{target}: PostgreSQL {row[0] if row else '?'}")


def check_migrations(settings: Settings) -> Check:
    from citybrain.db.connect import connect
    from citybrain.db.migrate import current_version, pending

    try:
        with connect(settings, connect_timeout=4) as conn:
            todo = pending(conn)
            version = current_version(conn)
            conn.rollback()
    except Exception as exc:
        return Check(
            "migrations",
            False,
            f"cannot read schema_migrations: {exc}",
            "fix the database check first",
        )
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        return Check(
            "migrations",
            False,
            f"schema at version {version}; pending: {names}",
            "run `citybrain db migrate`",
        )
    return Check("migrations", True, f"schema at version {version}, up to date")


def check_java(settings: Settings) -> Check:
    if not (settings.kafka_home / "pom.xml").exists():
        return Check("java", True, "no local stack here (kafka_home has no pom.xml)")
    java = shutil.which("java")
    if java is None:
        return Check(
            "java",
            False,
            "no `java` on PATH (the local Kafka broker needs it)",
            "install Java 17: `apt-get install openjdk-17-jre-headless`",
        )
    return Check("java", True, java)


CHECKS: list[Callable[[Settings], Check]] = [
    check_java,
    check_kafka,
    check_database,
    check_migrations,
]


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; the database-dependent ones are skipped if it is down."""
    results: list[Check] = []
    for check in CHECKS:
        if check is check_migrations and not all(r.ok for r in results if r.name == "database"):
            results.append(
                Check(
                    "migrations",
                    False,
                    "skipped: database not reachable",
                    "fix the database check first",
                )
            )
            continue
        results.append(check(settings))
    return results
