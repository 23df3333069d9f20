"""A single-node Apache Kafka in KRaft mode, run from the jars Maven resolves.

Layout under `<data_dir>/kafka`: `server.properties` and `log4j2.properties` (rewritten on
every start from the settings), `data/` (the KRaft log dirs, formatted once with a fixed
cluster id), `kafka.pid`. Listeners bind to 127.0.0.1 only.
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
    port_open,
    read_pid,
    split_host_port,
    tail,
    terminate,
    wait_until,
)

#: Fixed cluster id (base64url of b"citybrain-local1"), so a re-format is recognisable.
CLUSTER_ID = "Y2l0eWJyYWluLWxvY2FsMQ"
NODE_ID = 1

SERVER_PROPERTIES = """\
# Written by `citybrain stack up`; edit the settings, not this file.
process.roles=broker,controller
node.id={node_id}
controller.quorum.bootstrap.servers={host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dirs}
num.partitions={partitions}
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=72
log.segment.bytes=268435456
message.max.bytes=2097152
num.network.threads=2
num.io.threads=4
"""

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
    """Start, stop and inspect the local KRaft broker."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.kafka_home.resolve()
        self.lib = self.home / "lib"
        self.root = (settings.data_dir / "kafka").resolve()
        self.log_file = settings.resolved_log_dir / "kafka.log"
        self.out_file = settings.resolved_log_dir / "kafka.out"
        self.pid_file = self.root / "kafka.pid"
        self.host, self.port = split_host_port(settings.kafka_bootstrap_list[0], 9092)
        self.last_error = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

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

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings.resolved_log_dir.mkdir(parents=True, exist_ok=True)
        props = self.root / "server.properties"
        props.write_text(
            SERVER_PROPERTIES.format(
                node_id=NODE_ID,
                host=self.host,
                port=self.port,
                controller_port=self.settings.kafka_controller_port,
                log_dirs=self.root / "data",
                partitions=self.settings.topic_partitions,
            )
        )
        (self.root / "log4j2.properties").write_text(
            LOG4J2_PROPERTIES.format(log_file=self.log_file)
        )
        return props

    def classpath(self) -> str:
        return f"{self.lib}/*"

    def format_storage(self, props: Path) -> None:
        """Format the KRaft log dirs once (a no-op when already formatted)."""
        if (self.root / "data" / "meta.properties").exists():
            return
        proc = subprocess.run(
            [
                self.java(),
                "-cp",
                self.classpath(),
                f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                CLUSTER_ID,
                "-c",
                str(props),
                "--standalone",  # a dynamic KRaft quorum of this one controller
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"kafka: formatting storage failed: {proc.stdout}{proc.stderr}")

    # --- lifecycle ---------------------------------------------------------------
    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def is_ready(self) -> bool:
        """The broker answers a metadata request (not merely an open port) and can
        coordinate consumer groups."""
        if not port_open(self.host, self.port):
            self.last_error = f"nothing listens on {self.address}"
            return False
        try:
            describe_cluster(self.settings.kafka_bootstrap_list, groups=True)
        except NoGroupCoordinator as exc:
            self.last_error = f"no group coordinator yet: {exc}"
            return False
        except Exception as exc:
            self.last_error = f"metadata request failed: {type(exc).__name__}: {exc}"
            return False
        return True

    def up(self) -> None:
        if self.pid() is not None and wait_until(self.is_ready, self.settings.stack_timeout):
            return
        if self.pid() is None and port_open(self.host, self.port):
            if self.is_ready():
                return  # a broker someone else runs: use it
            raise StackError(
                f"kafka: port {self.address} is taken by another program; "
                "free it or set CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS"
            )
        self.ensure_jars()
        props = self.write_config()
        self.format_storage(props)
        heap = self.settings.kafka_heap
        cmd = [
            self.java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.settings.resolved_log_dir}",
            "-cp",
            self.classpath(),
            "kafka.Kafka",
            str(props),
        ]
        with self.out_file.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
            )
        self.pid_file.write_text(f"{proc.pid}\n")

        def died() -> str | None:
            return None if proc.poll() is None else f"exit code {proc.returncode}"

        if not wait_until(self.is_ready, self.settings.stack_timeout, interval=0.5, abort=died):
            reason = died() or (
                f"not ready after {self.settings.stack_timeout:.0f}s: {self.last_error}"
            )
            if proc.poll() is None:
                terminate(proc.pid, 10)
            raise StackError(
                f"kafka did not come up at {self.address} ({reason}); "
                f"see {self.log_file} and {self.out_file}:\n"
                f"{tail(self.log_file)}\n{tail(self.out_file)}"
            )

    def down(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, self.settings.stack_timeout)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Hard-kill the broker (fault injection): no clean shutdown."""
        import signal

        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: self.pid() is None, 10)

    # --- inspection ----------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """Cluster metadata from the broker itself (broker ids, controller, cluster id)."""
        return describe_cluster(self.settings.kafka_bootstrap_list)

    def status(self) -> ServiceStatus:
        details: dict[str, str] = {"version": self.kafka_version() or "jars not resolved"}
        running = False
        try:
            cluster = self.describe()
            running = True
            brokers = cluster.get("brokers")
            brokers = brokers if isinstance(brokers, list) else []
            ids = [
                str(b.get("broker_id", b.get("node_id"))) for b in brokers if isinstance(b, dict)
            ]
            details["broker_id"] = ",".join(ids) or "?"
            details["cluster_id"] = str(cluster.get("cluster_id"))
        except Exception as exc:  # not reachable: report why
            details["error"] = f"{type(exc).__name__}: {exc}"
        pid = self.pid()
        if pid is not None:
            details["pid"] = str(pid)
        return ServiceStatus(self.name, running, self.address, details, self.log_file)
