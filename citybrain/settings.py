"""All runtime settings, read from `CITYBRAIN_*` environment variables (and `.env`).

One class, one place: every other module receives a `Settings` instance instead of
reading the environment itself. Secrets are `SecretStr` so they never print.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root when running from a checkout (deploy/local lives there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration. Field names map to `CITYBRAIN_<NAME>` variables."""

    model_config = SettingsConfigDict(
        env_prefix="CITYBRAIN_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- Kafka -------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated host:port."
    )
    kafka_controller_port: int = Field(
        9093, description="Local stack only: KRaft controller listener port."
    )
    kafka_heap: str = Field("512m", description="Local stack only: broker JVM heap (-Xmx/-Xms).")
    kafka_home: Path = Field(
        PROJECT_ROOT / "deploy" / "local" / "kafka",
        description="Local stack only: folder with pom.xml; jars are resolved into its lib/.",
    )
    topic_partitions: int = Field(
        4,
        description="Partitions of the raw and processed topics citybrain creates (their "
        "tables' changelogs follow them); correlate.v1 has one by design.",
    )
    topic_partitions_dead_letters: int = Field(
        2, ge=1, description="Partitions of each dead-letter topic (`<topic>.dlq`)."
    )
    topic_partitions_departments: int = Field(
        2, ge=1, description="Partitions of each department's task topic (`dispatch.<dept>.v1`)."
    )
    kafka_replication_factor: int = Field(
        0,
        ge=0,
        description="Replicas of every topic citybrain creates (changelogs and dead letters "
        "too); 0: what the cluster allows (3 with three brokers or more, else the broker "
        "count).",
    )
    kafka_min_insync_replicas: int = Field(
        0,
        ge=0,
        description="`min.insync.replicas` of those topics: with `acks=all` a write needs "
        "this many replicas; 0: a majority of the replicas (2 of 3), 1 below three.",
    )
    kafka_idempotence: bool = Field(
        True,
        description="Idempotent producers (`enable.idempotence`, with acks=all): a retried "
        "send is written once.",
    )
    kafka_brokers: int = Field(
        1,
        ge=1,
        description="Local stack only: brokers `citybrain stack up` runs (1, or 3 for a "
        "replicated cluster; broker n listens on the bootstrap port + 100 * (n - 1)).",
    )
    kafka_sasl_port: int = Field(
        0,
        ge=0,
        description="Local stack only: the SASL_SSL listener of `citybrain stack up --sasl`; "
        "0: the bootstrap port + 2.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects to the brokers."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with SASL_SSL or SASL_PLAINTEXT)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA that signed the brokers' certificates (SSL, "
        "SASL_SSL); unset: the system's trust store.",
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to."
    )

    # --- PostgreSQL / TimescaleDB ------------------------------------------------
    db_host: str = Field("127.0.0.1", description="Database host.")
    db_port: int = Field(5433, description="Database port (the local stack listens here).")
    db_name: str = Field("citybrain", description="Database name.")
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = (
        Field(
            "prefer",
            description="libpq `sslmode`: `verify-full` checks the server's certificate and "
            "name against `CITYBRAIN_DB_SSLROOTCERT`.",
        )
    )
    db_sslrootcert: Path | None = Field(
        None, description="PEM file of the CA that signed the database server's certificate."
    )
    db_user: str = Field("citybrain", description="The platform's writer role.")
    db_password: SecretStr = Field(
        SecretStr("citybrain-dev"), description="Password of the writer role (secret)."
    )
    database_url: SecretStr | None = Field(
        None,
        description="Full libpq URL; when set it overrides the db_* fields (secret).",
    )
    db_pool_max: int = Field(8, description="Max connections in the worker's pool.")
    db_mode: Literal["auto", "timescale", "plain"] = Field(
        "auto",
        description="Storage mode: TimescaleDB if the extension is available (auto), or forced.",
    )
    db_write_method: Literal["copy", "insert"] = Field(
        "copy",
        description="Batch writes by binary COPY into a staging table (copy) or by INSERT.",
    )
    db_prepared_statements: bool = Field(
        True,
        description="Use server-side prepared statements; turn off behind PgBouncer in "
        "transaction mode.",
    )
    grafana_reader_password: SecretStr = Field(
        SecretStr("grafana-reader-dev"),
        description="Password of the read-only grafana_reader role (secret).",
    )
    retention_events_days: int = Field(400, description="Keep events this long (0 = forever).")
    retention_readings_days: int = Field(90, description="Keep sensor readings this long.")
    retention_personal_days: int = Field(
        180,
        description="Keep callers' contacts (personal_contacts) this long; PIPL: no longer "
        "than the case needs (0 = forever).",
    )
    retention_history_days: int = Field(
        800, description="Keep incident and dispatch history this long."
    )
    compress_readings_after_days: int = Field(
        2, description="TimescaleDB: compress reading chunks older than this (0 = never)."
    )
    compress_events_after_days: int = Field(
        14, description="TimescaleDB: compress event chunks older than this (0 = never)."
    )
    pg_bin_dir: Path | None = Field(
        None, description="Local stack only: PostgreSQL server binaries (auto-detected)."
    )

    # --- Local stack -------------------------------------------------------------
    data_dir: Path = Field(
        PROJECT_ROOT / ".citybrain",
        description="Local stack data: Kafka log dirs, PostgreSQL cluster, pid files.",
    )
    log_dir: Path | None = Field(
        None, description="Local stack service logs (default: <data_dir>/log)."
    )
    stack_timeout: float = Field(
        90.0, description="Seconds to wait for each service to come up or go down."
    )

    # --- MQTT (feeds declared `transport: {mqtt: {topic: ...}}`) --------------------------
    mqtt_host: str = Field(
        "127.0.0.1",
        description="The MQTT broker `citybrain bridge mqtt` subscribes to (the local stack's "
        "mosquitto listens on this address).",
    )
    mqtt_port: int = Field(
        1883, description="The MQTT broker's port (the local stack's mosquitto listens here)."
    )
    mqtt_username: str = Field(
        "citybrain-bridge",
        description="The bridge's MQTT login (the local stack's mosquitto has this user).",
    )
    mqtt_password: SecretStr | None = Field(
        None,
        description="The bridge's MQTT password (secret); unset: the local stack's, generated "
        "once into <data_dir>/mosquitto/bridge.password.",
    )
    mqtt_client_id: str = Field(
        "citybrain-bridge",
        description="The bridge's MQTT client id, which names its persistent session: the "
        "broker keeps what comes for it while it is away. One bridge per id.",
    )
    mqtt_in_flight: int = Field(
        1000,
        ge=1,
        le=65_535,
        description="Messages the broker may send the bridge before the first of them is "
        "acknowledged (MQTT 5 receive maximum); each is acknowledged once Kafka has it.",
    )
    bridge_metrics_port: int = Field(
        9110, description="Prometheus metrics port of `citybrain bridge mqtt`; 0 = off."
    )
    bridge_metrics_host: str = Field(
        "127.0.0.1",
        description="Address the bridge's metrics port binds (0.0.0.0 in a container).",
    )

    # --- Geo ---------------------------------------------------------------------
    city_pack: str = Field(
        "shanghai",
        description="City pack: the name of a shipped pack or the path of a pack folder.",
    )

    feeds_dir: str | None = Field(
        None,
        description="Extra folders of feed definitions (colon separated), read on worker "
        "start after the built-in ones.",
    )

    # --- Dispatch ----------------------------------------------------------------
    departments_file: Path | None = Field(
        None,
        description="Departments file (default: the city pack's, else the shipped Shanghai"
        " departments).",
    )
    routes_file: Path | None = Field(
        None,
        description="Routing tree file (default: the city pack's, else the shipped Shanghai"
        " routes).",
    )
    sla_file: Path | None = Field(
        None, description="SLA policy file (default: the shipped policy and holidays)."
    )
    delivery_interval: float = Field(
        1.0, description="Seconds between passes over the outbox for due deliveries."
    )
    delivery_max_attempts: int = Field(
        14,
        description="Attempts per delivery before it is dead-lettered. With the default "
        "backoff (full jitter from 2 s, doubling, capped at 600 s) 14 attempts wait about "
        "28 minutes on average (57 at most): an endpoint down for a while still gets its "
        "tasks.",
    )
    delivery_backoff_base: float = Field(
        2.0, description="Seconds: the first retry waits up to this long, then doubling."
    )
    delivery_backoff_cap: float = Field(600.0, description="Seconds: the longest retry wait.")
    webhook_timeout: float = Field(5.0, description="Seconds before a webhook call times out.")
    delivery_lease: float = Field(
        60.0,
        ge=5,
        description="Seconds a delivery is leased to the worker sending it. A worker that dies"
        " mid-send holds its deliveries this long; then another looks for each on its Kafka"
        " topic or sends it again. It must outlast the slowest send: at least 3 x"
        " CITYBRAIN_WEBHOOK_TIMEOUT + 5 (an e-mail's).",
    )
    webhook_concurrency: int = Field(
        8,
        ge=1,
        description="Calls one worker makes to one webhook endpoint at once; more wait their"
        " turn (a receiver back from an outage gets its backlog at a pace it can answer).",
    )
    escalation_interval: float = Field(
        15.0, description="Seconds between passes of the reminder and escalation timers."
    )
    robot_rate_limit_wait: float = Field(
        0.0,
        ge=0,
        description="Seconds a group robot waits after its platform answered 'too fast'; 0: the"
        " platform's own wait (WeCom and Feishu a minute, DingTalk ten).",
    )
    smtp_host: str = Field("", description="SMTP server of the e-mail channels (empty: none).")
    smtp_port: int = Field(587, description="SMTP port (587: submission with STARTTLS).")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_cafile: Path | None = Field(
        None, description="CA certificate(s) the SMTP server's certificate must chain to."
    )
    smtp_user: str = Field("", description="SMTP login (empty: no login).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (secret).")
    smtp_from: str = Field("citybrain@localhost", description="The From address of task e-mails.")
    public_url: str = Field(
        "",
        description="Where people open the console (https://cityops.example.gov.cn), for the"
        " task links in robot and e-mail messages; empty: http://<api host>:<api port>.",
    )

    # --- API ---------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Address `citybrain api` listens on.")
    api_port: int = Field(8080, description="Port of `citybrain api`.")
    api_rate: float = Field(20.0, description="Requests per second per API token (average).")
    api_burst: float = Field(40.0, description="Requests per API token allowed in a burst.")
    api_max_body: int = Field(65_536, description="Largest request body in bytes (413 above).")
    ingest_max_records: int = Field(
        5000,
        ge=1,
        description="Records one `POST /ingest/v1/{feed}` may carry (413 above), unless the "
        "feed declares `transport: {http: {max_records: N}}`.",
    )
    ingest_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1,
        description="Largest `POST /ingest/v1/{feed}` body in bytes (413 above); the other "
        "routes keep CITYBRAIN_API_MAX_BODY.",
    )
    ingest_rate: float = Field(
        20.0, gt=0, description="Ingestion requests per second per ingest token (average)."
    )
    ingest_burst: float = Field(
        40.0, ge=1, description="Ingestion requests per ingest token allowed in a burst."
    )
    ingest_ack_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds an ingestion request waits for the broker to acknowledge its "
        "records before it answers 503 (retry with the same Idempotency-Key).",
    )
    ingest_idempotency_hours: float = Field(
        24.0,
        gt=0,
        description="How long an accepted ingestion request's Idempotency-Key is kept (a "
        "retry within it gets the first answer again); older keys are removed by the "
        "database maintenance.",
    )
    console_session_hours: float = Field(
        12.0, gt=0, description="How long a console sign-in lasts (a shift), in hours."
    )
    console_secure_cookie: bool = Field(
        False, description="Mark the console's session cookie Secure (serve it over HTTPS)."
    )
    console_tiles: str = Field(
        "",
        description="A tile URL template for the console's map ({z}/{x}/{y}); empty: districts"
        " and grid only, no tile server needed. On GCJ-02 tiles (most Chinese providers) the"
        " console draws the WGS-84 data shifted to GCJ-02, and shifts clicks back.",
    )
    console_tiles_crs: str = Field(
        "GCJ-02", description="The tiles' coordinate system: GCJ-02 or WGS-84."
    )

    # --- Worker ------------------------------------------------------------------
    worker_role: Literal["all", "telemetry", "reports"] = Field(
        "all",
        description="What this worker is for (`citybrain.roles`): `all` runs everything; "
        "`telemetry` reads the feeds that send readings in the group `<app id>-telemetry` "
        "at niceness 10 on the database's bulk lane; `reports` reads the alarm and call "
        "feeds and runs every other stage. Settings given in the environment win over the "
        "role's.",
    )
    app_id: str = Field("citybrain", description="Faust app id (consumer group prefix).")
    stages: str = Field(
        "all",
        description="Comma-separated stages this worker runs (normalize, correlate, persist, "
        "dispatch, status, maintenance, monitor, ping) or `all`. Workers of one app id run "
        "the same stages; give a separate set its own `CITYBRAIN_APP_ID`.",
    )
    normalize_feeds: str = Field(
        "all",
        description="The feeds this worker's normalize stage reads: `all`, `telemetry` "
        "(feeds that send readings), `reports` (the others: alarms and calls, the latency "
        "path) or comma-separated feed names. Run telemetry in a worker of its own (its "
        "own `CITYBRAIN_APP_ID`) and its bulk never delays a report.",
    )
    worker_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="CPU niceness the worker takes at start (0-19; higher yields the CPU "
        "sooner). On a machine the workers share, give the telemetry worker 10: its bulk "
        "then waits for the report path instead of the other way round.",
    )
    worker_web_port: int = Field(
        6066, description="Faust worker's web port: its probes /healthz and /readyz."
    )
    worker_web_host: str = Field(
        "127.0.0.1",
        description="Address the worker's web port binds (0.0.0.0 in a container, to be "
        "reached from outside it).",
    )
    metrics_port: int = Field(9108, description="Prometheus metrics port of the worker; 0 = off.")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the worker's metrics port binds (0.0.0.0 in a container).",
    )
    maintenance_interval: float = Field(
        60.0,
        description="Plain PostgreSQL mode: seconds between partition upkeep and refreshes "
        "of the dashboard views by the worker.",
    )
    batch_wait: float = Field(
        0.1,
        description="Longest seconds a batch fills while its agent is busy (an idle agent gets "
        "what has come at once; a busy one finds its next batch filled meanwhile).",
    )
    telemetry_batch_max: int = Field(
        4000,
        ge=1,
        description="Most records in one batch of a feed that sends readings: a telemetry "
        "batch is bounded, so one never holds the database or the CPU for long.",
    )
    report_batch_max: int = Field(
        500,
        ge=1,
        description="Most records in one batch of an alarm or call feed.",
    )
    db_bulk_connections: int = Field(
        2,
        ge=1,
        description="Connections of the worker's pool that bulk writes (telemetry readings) "
        "may hold at once; the others stay free for the report path, which also goes "
        "first when both wait (`streams.db`).",
    )
    maintenance_quiet: float = Field(
        0.2,
        ge=0,
        description="Seconds without report-path database work that a maintenance step "
        "waits for before it runs (at most 10 s a step): housekeeping yields to reports.",
    )
    telemetry_batch_wait: float = Field(
        0.5,
        description="The same for feeds that send readings (the busy telemetry path): "
        "longer waits, larger batches, several times the throughput.",
    )
    persist_concurrency: int = Field(
        1,
        ge=1,
        description="Actors of the persist stage's agent (Faust `concurrency`): batches "
        "written side by side. Acks then come out of offset order; commits stay behind the "
        "oldest batch not yet written (see `streams.transport`).",
    )
    kafka_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a new consumer group starts on a topic: its beginning (nothing "
        "missed) or its end (benchmarks that must not replay history).",
    )
    kafka_linger_ms: int = Field(
        5,
        description="Milliseconds the worker's producer waits to fill a request: 0 sends at "
        "once (lowest latency: the incidents worker), a few ms sends fewer, larger requests "
        "(the telemetry worker).",
    )
    stall_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds a worker may wait without progress in a rebalance or for the "
        "records it has in flight (or with its event loop blocked) before it logs what it "
        "waits for and exits with status 75, to be restarted (0: wait forever).",
    )
    kafka_session_timeout: float = Field(
        30.0,
        description="Seconds before a silent (killed) worker leaves the group and its "
        "partitions move to another worker.",
    )
    kafka_heartbeat_interval: float | None = Field(
        None,
        gt=0,
        description="Seconds between a worker's heartbeats to its group: how soon it hears "
        "that a worker joined or left and takes part in the rebalance (default: a third of "
        "the session timeout, at most 3 s). Shorter than the session timeout.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="Structured logs as JSON lines or human-readable console lines."
    )

    # --- fault injection (tests and `citybrain chaos` only; off by default) ----------
    fault_slow_event_id: str | None = Field(
        None,
        description="Fault injection, never in production: the persist stage sleeps "
        "`CITYBRAIN_FAULT_SLOW_SECONDS` before writing the batch that holds this event id.",
    )
    fault_slow_seconds: float = Field(
        0.0, description="Fault injection: how long the slow event's batch sleeps."
    )

    @model_validator(mode="after")
    def _apply_role(self) -> Settings:
        """Fill in the worker role's settings (`citybrain.roles`) not set explicitly."""
        from citybrain.roles import role_overrides

        for name, value in role_overrides(
            self.worker_role, self.app_id, set(self.model_fields_set)
        ).items():
            object.__setattr__(self, name, value)
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        """A lease shorter than a send would let a second worker send what the first still
        sends (`CITYBRAIN_DELIVERY_LEASE`)."""
        slowest = 3 * self.webhook_timeout + 5
        if self.delivery_lease < slowest:
            raise ValueError(
                f"CITYBRAIN_DELIVERY_LEASE ({self.delivery_lease:g} s) must outlast the slowest"
                f" send: at least 3 x CITYBRAIN_WEBHOOK_TIMEOUT + 5 = {slowest:g} s"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Settings:
        """Kafka refuses a heartbeat interval not shorter than the session timeout."""
        if self.kafka_heartbeat_s >= self.kafka_session_timeout:
            raise ValueError(
                f"CITYBRAIN_KAFKA_HEARTBEAT_INTERVAL ({self.kafka_heartbeat_s:g} s) must be"
                " shorter than CITYBRAIN_KAFKA_SESSION_TIMEOUT"
                f" ({self.kafka_session_timeout:g} s)"
            )
        return self

    @property
    def kafka_heartbeat_s(self) -> float:
        """The heartbeat interval: the setting, else a third of the session, at most 3 s."""
        if self.kafka_heartbeat_interval is not None:
            return self.kafka_heartbeat_interval
        return min(3.0, self.kafka_session_timeout / 3)

    @property
    def resolved_log_dir(self) -> Path:
        """Where the local stack writes service logs."""
        return (self.log_dir or self.data_dir / "log").resolve()

    @property
    def kafka_broker_url(self) -> str:
        """Bootstrap servers in Faust's URL form (`kafka://h1:p1;h2:p2`)."""
        hosts = [h.strip() for h in self.kafka_bootstrap_servers.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)

    @property
    def kafka_bootstrap_list(self) -> list[str]:
        """Bootstrap servers as a list of `host:port`."""
        return [h.strip() for h in self.kafka_bootstrap_servers.split(",") if h.strip()]

    def conninfo(self) -> str:
        """libpq connection string for the writer role (contains the secret)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        password = quote(self.db_password.get_secret_value(), safe="")
        tls = f"?sslmode={self.db_sslmode}"
        if self.db_sslrootcert is not None:
            tls += "&sslrootcert=" + quote(str(self.db_sslrootcert), safe="/")
        return (
            f"postgresql://{quote(self.db_user, safe='')}:{password}"
            f"@{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}{tls}"
        )

    def safe_conninfo(self) -> str:
        """The connection target without the password, for messages and logs."""
        if self.database_url is not None:
            from psycopg.conninfo import conninfo_to_dict

            parts = conninfo_to_dict(self.database_url.get_secret_value())
            return (
                f"postgresql://{parts.get('user', '')}@{parts.get('host', '')}:"
                f"{parts.get('port', 5432)}/{parts.get('dbname', '')}"
            )
        return f"postgresql://{self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def environment(env_file: str | Path | None = ".env") -> dict[str, str]:
    """The variables settings are read from: the `.env` file's, then the process
    environment's over them (as pydantic-settings reads them). For values read by name at
    run time, such as webhook secrets (`secret_env` in departments.yaml)."""
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    return {**values, **os.environ}
