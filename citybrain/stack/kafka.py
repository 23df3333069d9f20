"""The local Apache Kafka in KRaft mode, run from the jars Maven resolves: one broker, or
a cluster of three (`citybrain stack up --brokers 3`), optionally with a SASL_SSL listener
(`--sasl`). Each broker's folder holds `server.properties` and `log4j2.properties`
(rewritten on every start from the settings), `data/` (the KRaft log dirs, formatted once
with a fixed cluster id) and `kafka.pid`; the shape and ports are in `kafka_config`, the
TLS material and the SCRAM login in `kafka_tls`. Listeners bind to the bootstrap host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from citybrain.settings import Settings
from citybrain.stack.kafka_config import (
    CLUSTER_ID,
    SINGLE_CLUSTER_ID,
    BrokerPlace,
    Shape,
    Tls,
    places,
    sasl_bootstrap,
    server_properties,
)
from citybrain.stack.process import (
    ServiceStatus,
    StackError,
    port_open,
    read_pid,
    split_host_port,
    tail,
    terminate,
    wait_until,
)

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class NoGroupCoordinator(Exception):
    """The broker answers metadata but cannot coordinate consumer groups yet."""


def describe_cluster(
    bootstrap: list[str], timeout_ms: int = 5000, *, groups: bool = False
) -> dict[str, object]:
    """Ask a broker for cluster metadata; raises when none answers within the timeout.

    With `groups`, also ask for a consumer group's coordinator (NoGroupCoordinator until
    there is one): a fresh broker answers metadata before its `__consumer_offsets` topic
    exists, and the first group request (a commit, an offset reset, a worker joining)
    then fails with CoordinatorNotAvailable.
    """
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="citybrain-stack",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        cluster: dict[str, object] = admin.describe_cluster()
        if groups:
            # kafka-python 3 names it describe_groups, 2 describe_consumer_groups
            describe = getattr(admin, "describe_groups", None) or admin.describe_consumer_groups
            try:
                describe(["citybrain-stack-probe"])
            except Exception as exc:
                raise NoGroupCoordinator(f"{type(exc).__name__}: {exc}") from exc
    finally:
        admin.close()
    return cluster


class KafkaService:
    """Start, stop and inspect the local Kafka: every broker of its shape."""

    name = "kafka"

    def __init__(self, settings: Settings, shape: Shape | None = None) -> None:
        self.settings = settings
        self.home = settings.kafka_home.resolve()
        self.lib = self.home / "lib"
        self.host, self.port = split_host_port(settings.kafka_bootstrap_list[0], 9092)
        self.shape = shape or Shape.read(settings.data_dir) or Shape(settings.kafka_brokers)
        self.brokers = places(
            self.host,
            self.port,
            settings.kafka_controller_port,
            settings.data_dir.resolve(),
            settings.resolved_log_dir,
            self.shape,
            settings.kafka_sasl_port,
        )
        first = self.brokers[0]
        self.root, self.log_file, self.out_file = first.root, first.log_file, first.out_file
        self.pid_file = first.root / "kafka.pid"
        self.last_error = ""

    @property
    def address(self) -> str:
        return ",".join(b.address for b in self.brokers)

    @property
    def bootstrap(self) -> list[str]:
        return [b.address for b in self.brokers]

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL_SSL listeners (empty without `--sasl`)."""
        return sasl_bootstrap(self.brokers)

    # --- set-up ------------------------------------------------------------------
    def jars(self) -> list[Path]:
        return sorted(self.lib.glob("*.jar"))

    def kafka_version(self) -> str | None:
        """The broker version, read from the resolved kafka_2.13 jar's name."""
        for jar in self.jars():
            if jar.name.startswith("kafka_2.13-"):
                return jar.stem.removeprefix("kafka_2.13-")
        return None

    def ensure_jars(self) -> None:
        """Resolve Kafka and its runtime dependencies from Maven Central when missing."""
        if self.kafka_version():
            return
        if shutil.which("mvn") is None:
            raise StackError("kafka: Maven (mvn) is needed to fetch the Kafka jars; install it")
        pom = self.home / "pom.xml"
        proc = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not self.kafka_version():
            raise StackError(
                f"kafka: resolving jars with {pom} failed:\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )

    def java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise StackError("kafka: no `java` on PATH; install Java 17 (openjdk-17-jre-headless)")
        return java

    def keytool(self) -> str:
        """The JDK's keytool next to the java that runs the brokers."""
        beside = Path(self.java()).resolve().parent / "keytool"
        found = str(beside) if beside.exists() else shutil.which("keytool")
        if found is None:
            raise StackError("kafka --sasl: no `keytool` next to java or on PATH")
        return found

    def tls(self) -> Tls | None:
        if not self.shape.sasl:
            return None
        from citybrain.stack.kafka_tls import ensure_tls

        return ensure_tls(self.settings, self.keytool(), (self.host,))

    def write_config(self, broker: BrokerPlace, tls: Tls | None) -> Path:
        broker.root.mkdir(parents=True, exist_ok=True)
        self.settings.resolved_log_dir.mkdir(parents=True, exist_ok=True)
        props = broker.root / "server.properties"
        props.write_text(
            server_properties(broker, self.brokers, self.settings.topic_partitions, tls)
        )
        (broker.root / "log4j2.properties").write_text(
            LOG4J2_PROPERTIES.format(log_file=broker.log_file)
        )
        return props

    def classpath(self) -> str:
        return f"{self.lib}/*"

    def format_storage(self, broker: BrokerPlace, props: Path) -> None:
        """Format the broker's KRaft log dirs once (a no-op when already formatted): one
        broker as a dynamic quorum of itself, a cluster's brokers with static voters."""
        if (broker.root / "data" / "meta.properties").exists():
            return
        single = len(self.brokers) == 1
        proc = subprocess.run(
            [
                self.java(),
                "-cp",
                self.classpath(),
                f"-Dlog4j2.configurationFile={broker.root / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                SINGLE_CLUSTER_ID if single else CLUSTER_ID,
                "-c",
                str(props),
                *(["--standalone"] if single else []),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"kafka: formatting storage failed: {proc.stdout}{proc.stderr}")

    # --- lifecycle ---------------------------------------------------------------
    def pid(self, broker: BrokerPlace | None = None) -> int | None:
        """The pid of `broker` (default: the first)."""
        return read_pid((broker or self.brokers[0]).root / "kafka.pid")

    def pids(self) -> dict[int, int | None]:
        """Each broker's pid by node id."""
        return {b.node_id: self.pid(b) for b in self.brokers}

    def is_ready(self) -> bool:
        """Every broker answers and is registered with the cluster (not merely an open
        port), and the cluster can coordinate consumer groups."""
        for broker in self.brokers:
            if not port_open(broker.host, broker.port):
                self.last_error = f"nothing listens on {broker.address}"
                return False
        try:
            cluster = describe_cluster(self.bootstrap, groups=True)
        except NoGroupCoordinator as exc:
            self.last_error = f"no group coordinator yet: {exc}"
            return False
        except Exception as exc:
            self.last_error = f"metadata request failed: {type(exc).__name__}: {exc}"
            return False
        registered = cluster.get("brokers")
        count = len(registered) if isinstance(registered, list) else 0
        if count < len(self.brokers):
            self.last_error = f"{count} of {len(self.brokers)} brokers registered"
            return False
        return True

    def up(self) -> None:
        """Start every broker that is not running, then wait until the cluster is ready;
        with SASL, make sure of the platform's SCRAM login."""
        current = Shape.read(self.settings.data_dir) or Shape()
        if current != self.shape and self._any_running(current):
            raise StackError(
                f"kafka: it runs as {current.brokers} broker(s) with sasl {current.sasl}, "
                f"not {self.shape.brokers} with sasl {self.shape.sasl}: "
                "`citybrain stack down` first"
            )
        running = [b for b in self.brokers if self.pid(b) is not None]
        if running and wait_until(self.is_ready, self.settings.stack_timeout):
            self._after_up()
            return
        first = self.brokers[0]
        if not running and port_open(first.host, first.port):
            if self.is_ready():
                return  # a broker someone else runs: use it
            raise StackError(
                f"kafka: port {first.address} is taken by another program; "
                "free it or set CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS"
            )
        self.ensure_jars()
        tls = self.tls()
        self.shape.write(self.settings.data_dir)
        procs = {b.node_id: self.start(b, tls) for b in self.brokers if self.pid(b) is None}

        def died() -> str | None:
            dead = [f"broker {n}: exit code {p.returncode}" for n, p in procs.items() if p.poll()]
            return "; ".join(dead) or None

        if not wait_until(self.is_ready, self.settings.stack_timeout, interval=0.5, abort=died):
            reason = died() or (
                f"not ready after {self.settings.stack_timeout:.0f}s: {self.last_error}"
            )
            for proc in procs.values():
                if proc.poll() is None:
                    terminate(proc.pid, 10)
            logs = "\n".join(f"{tail(b.log_file)}\n{tail(b.out_file)}" for b in self.brokers)
            raise StackError(
                f"kafka did not come up at {self.address} ({reason}); "
                f"see {', '.join(str(b.log_file) for b in self.brokers)}:\n{logs}"
            )
        self._after_up()

    def _any_running(self, shape: Shape) -> bool:
        other = KafkaService(self.settings, shape)
        return any(pid is not None for pid in other.pids().values())

    def _after_up(self) -> None:
        if not self.shape.sasl:
            return
        from citybrain.stack.kafka_tls import add_scram_user, sasl_login, write_client_env

        user, password = sasl_login(self.settings)
        add_scram_user(self.settings, self.bootstrap, user, password)
        write_client_env(self.settings, self.sasl_bootstrap, user, password)

    def start(self, broker: BrokerPlace, tls: Tls | None = None) -> subprocess.Popen[bytes]:
        """Start one broker's JVM (formatting its storage the first time)."""
        props = self.write_config(broker, tls if tls is not None else self.tls())
        self.format_storage(broker, props)
        heap = self.settings.kafka_heap
        cmd = [
            self.java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={broker.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.settings.resolved_log_dir}",
            "-cp",
            self.classpath(),
            "kafka.Kafka",
            str(props),
        ]
        with broker.out_file.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=broker.root,
            )
        (broker.root / "kafka.pid").write_text(f"{proc.pid}\n")
        return proc

    def down(self) -> None:
        """Stop every broker, all asked at once (stopped one by one, the last broker of a
        cluster waits for a quorum that is gone); a broker not gone in 30 s is killed."""
        import signal
        import time

        pids = [(b, self.pid(b)) for b in self.brokers]
        for _, pid in pids:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + min(30.0, self.settings.stack_timeout)
        for broker, pid in pids:
            if pid is not None:
                terminate(pid, max(1.0, deadline - time.monotonic()))
            (broker.root / "kafka.pid").unlink(missing_ok=True)

    def stop(self, broker: BrokerPlace) -> None:
        """Stop one broker cleanly."""
        pid = self.pid(broker)
        if pid is not None:
            terminate(pid, self.settings.stack_timeout)
        (broker.root / "kafka.pid").unlink(missing_ok=True)

    def kill(self, broker: BrokerPlace | None = None) -> None:
        """Hard-kill a broker (default: every one) for fault injection: no clean shutdown."""
        import signal

        for b in [broker] if broker is not None else self.brokers:
            pid = self.pid(b)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda b=b: self.pid(b) is None, 10)  # type: ignore[misc]

    def broker(self, node_id: int) -> BrokerPlace:
        return next(b for b in self.brokers if b.node_id == node_id)

    # --- inspection ----------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """Cluster metadata from the brokers themselves (broker ids, controller, id)."""
        return describe_cluster(self.bootstrap)

    def status(self) -> ServiceStatus:
        details: dict[str, str] = {"version": self.kafka_version() or "jars not resolved"}
        running = False
        try:
            cluster = self.describe()
            brokers = cluster.get("brokers")
            brokers = brokers if isinstance(brokers, list) else []
            ids = [
                str(b.get("broker_id", b.get("node_id"))) for b in brokers if isinstance(b, dict)
            ]
            details["broker_id"] = ",".join(sorted(ids)) or "?"
            details["controller_id"] = str(cluster.get("controller_id"))
            details["cluster_id"] = str(cluster.get("cluster_id"))
            running = len(ids) >= len(self.brokers)
            if not running:
                details["error"] = f"{len(ids)} of {len(self.brokers)} brokers registered"
        except Exception as exc:  # not reachable: report why
            details["error"] = f"{type(exc).__name__}: {exc}"
        pids = self.pids()
        if len(self.brokers) == 1:
            if pids[1] is not None:
                details["pid"] = str(pids[1])
        else:
            details["pids"] = ", ".join(f"{n}: {p or 'down'}" for n, p in pids.items())
        if self.shape.sasl:
            details["sasl_ssl"] = self.sasl_bootstrap
        return ServiceStatus(self.name, running, self.address, details, self.log_file)
