"""`broker-loss`: on the local cluster of three brokers, under load, kill -9 one broker (the
active controller, or the leader of an events.v1 partition that is not the controller),
bring it back, then restart all three one after another (a rolling restart, each broker
stopped cleanly and started again once the one before has caught up).

Every fault is proven: the killed pid is gone and its port refuses connections, the quorum
or the partition has a new leader, each restarted broker is a new process. The figures:
lost and duplicates as every traffic scenario (`scenarios.Common`), the time until a new
leader, the longest stall of stored rows after the kill and during the roll, and the
partitions still short of replicas at the end (0: every replica caught up).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from citybrain.settings import Settings
from citybrain.stack.kafka import KafkaService
from citybrain.stack.kafka_config import BrokerPlace
from citybrain.stack.process import pid_alive, port_open
from citybrain.streams.clients import kafka_python_options
from citybrain_tools import kafka
from citybrain_tools.chaos.faults import FaultNotInjected, _refuses
from citybrain_tools.chaos.scenarios import (
    Common,
    Progress,
    _finish,
    _flowing,
    _quiet,
    events_topic_copies,
)
from citybrain_tools.chaos.traffic import wait_until

Victim = Literal["controller", "leader"]


@dataclass
class BrokerLoss(Common):
    victim: str = ""
    brokers: int = 0
    killed_node: int = 0
    killed_pid: int = 0
    killed_role: str = ""  # what the killed broker was: "controller" or "leader of <tp>"
    new_leader: int | None = None  # of the quorum or the partition, after the kill
    new_leader_s: float | None = None  # from the kill until the metadata named it
    broker_down_s: float = 0.0
    restarted: list[int] = field(default_factory=list)  # node ids, each a new process
    rolling_restart_s: float = 0.0
    under_replicated_partitions: int = -1  # at the end; -1: not read
    copies_on_events_topic: int = 0
    duplicates_absorbed: int = 0
    stall_after_kill_s: float = 0.0
    stall_during_roll_s: float = 0.0
    worker_restarts: int = 0
    #: waits that ran out of the scenario's one time budget, in order ("" each: none)
    waited_out: list[str] = field(default_factory=list)
    #: when it did not settle: stored rows, and the end of each worker's log
    diagnosis: str = ""

    MUST_BE_ZERO = (*Common.MUST_BE_ZERO, "under_replicated_partitions")
    MUST_HOLD = (*Common.MUST_HOLD, "leader_moved", "rolled")

    @property
    def leader_moved(self) -> bool:
        return self.new_leader is not None and self.new_leader != self.killed_node

    @property
    def rolled(self) -> bool:
        return len(self.restarted) == self.brokers == 3


def _admin(settings: Settings) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_list,
        client_id="citybrain-chaos",
        request_timeout_ms=5000,
        **kafka_python_options(settings),
    )


def quorum_leader(settings: Settings) -> int | None:
    """The active controller: the leader of the metadata quorum."""
    admin = _admin(settings)
    try:
        quorum = admin.describe_metadata_quorum()
    finally:
        admin.close()
    leader = quorum["topics"][0]["partitions"][0]["leader_id"]
    return int(leader) if leader is not None and leader >= 0 else None


def partitions(settings: Settings, topics: list[str] | None = None) -> list[dict[str, Any]]:
    """Every partition's topic, index, leader, replicas and in-sync replicas."""
    admin = _admin(settings)
    try:
        described = admin.describe_topics(topics)
    finally:
        admin.close()
    return [
        {
            "topic": t["name"],
            "partition": p["partition_index"],
            "leader": p["leader_id"],
            "replicas": list(p.get("replica_nodes") or []),
            "isr": list(p.get("isr_nodes") or []),
        }
        for t in described
        for p in t.get("partitions") or []
    ]


def under_replicated(settings: Settings) -> int:
    """Partitions with fewer in-sync replicas than replicas."""
    return sum(1 for p in partitions(settings) if len(p["isr"]) < len(p["replicas"]))


def choose_victim(
    victim: Victim, controller: int | None, parts: list[dict[str, Any]]
) -> tuple[int, str, tuple[str, int] | None]:
    """The broker to kill, what it is, and the partition it leads (for `leader`): the
    controller, or the leader of the first events.v1 partition led by another broker."""
    if victim == "controller":
        if controller is None:
            raise FaultNotInjected("the metadata quorum has no leader to kill")
        return controller, "controller", None
    for p in sorted(parts, key=lambda p: p["partition"]):
        if p["topic"] == "events.v1" and p["leader"] not in (None, -1, controller):
            return (
                int(p["leader"]),
                f"leader of events.v1[{p['partition']}]",
                (
                    p["topic"],
                    p["partition"],
                ),
            )
    raise FaultNotInjected("no events.v1 partition is led by a broker other than the controller")


def _kill(service: KafkaService, broker: BrokerPlace) -> int:
    pid = service.pid(broker)
    if pid is None:
        raise FaultNotInjected(f"broker {broker.node_id} has no pid file: not started here")
    service.kill(broker)
    if pid_alive(pid):
        raise FaultNotInjected(f"broker {broker.node_id} (pid {pid}) still runs after SIGKILL")
    if not _refuses(broker.host, broker.port):
        raise FaultNotInjected(f"{broker.address} still accepts connections after the kill")
    return pid


class Budget:
    """One time budget for the whole scenario: every wait takes at most what is left of it
    (waits in a row never add up past it), and the waits that ran out are named."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds
        self.ran_out: list[str] = []

    def left(self, at_most: float) -> float:
        return max(0.0, min(at_most, self.until - time.monotonic()))

    def wait(self, what: str, condition: Any, at_most: float, every: float) -> bool:
        done = bool(wait_until(condition, self.left(at_most), every))
        if not done:
            self.ran_out.append(what)
        return done


def _restart(
    service: KafkaService, broker: BrokerPlace, settings: Settings, clean: bool, budget: Budget
) -> None:
    """Start `broker` again (stopped cleanly first when `clean`) as a new process, and wait
    until it is registered and every partition is fully in sync again."""
    old = service.pid(broker)
    if clean:
        service.stop(broker)
    service.start(broker)
    new = service.pid(broker)
    if new is None or new == old:
        raise FaultNotInjected(f"broker {broker.node_id} did not start as a new process")
    if not wait_until(lambda: port_open(broker.host, broker.port), 120, 0.5):
        raise FaultNotInjected(f"broker {broker.node_id} did not listen again within 120 s")
    budget.wait(
        f"broker {broker.node_id} back in sync", lambda: under_replicated(settings) == 0, 180, 1.0
    )


def broker_loss(
    settings: Settings,
    victim: Victim = "controller",
    events: int = 20_000,
    rate: float = 500.0,
    kill_after: float = 15.0,
    down_for: float = 20.0,
    per_site: int = 100,
    timeout: float = 600.0,
    progress: Progress = _quiet,
) -> BrokerLoss:
    """kill -9 the `victim` broker `kill_after` s after the first row is stored, start it again
    `down_for` s later, then restart the three one by one; see the module doc. `timeout`
    bounds the whole scenario (the clean stop of the workers aside)."""
    budget = Budget(timeout)
    service = KafkaService(settings)
    result = BrokerLoss(victim=victim, brokers=len(service.brokers))
    if result.brokers != 3:
        raise FaultNotInjected(
            f"broker-loss needs the cluster of three (`citybrain stack up --brokers 3`); "
            f"the stack runs {result.brokers}"
        )
    cluster = settings.model_copy(update={"kafka_bootstrap_servers": service.address})
    ends = kafka.end_offsets(cluster, ["events.v1"])
    with _flowing(  # supervised: a worker that exits is started again, and counted
        cluster,
        events,
        rate,
        per_site,
        supervise=True,
        CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS=service.address,
    ) as f:
        sampler = f.sampler
        # under load: `kill_after` s after the pipeline stored its first row (a worker
        # still starting when its broker dies exits, and is started again: not this fault)
        if not wait_until(lambda: sampler.last > 0, 180, 0.5):
            raise FaultNotInjected("nothing was stored within 180 s: no load to kill under")
        time.sleep(kill_after)
        node, role, tp = choose_victim(victim, quorum_leader(cluster), partitions(cluster))
        broker = service.broker(node)
        progress(f"kill -9 broker {node}, the {role} (stored {sampler.last}/{events})")
        killed_at = time.monotonic()
        since = killed_at - sampler.t0
        result.killed_node, result.killed_role = node, role
        result.killed_pid = _kill(service, broker)

        def moved() -> bool:
            if tp is None:
                leader = quorum_leader(cluster)
            else:
                leader = next(
                    p["leader"] for p in partitions(cluster, [tp[0]]) if p["partition"] == tp[1]
                )
            if leader is not None and leader not in (-1, node):
                result.new_leader = int(leader)
                return True
            return False

        if budget.wait("a new leader", moved, 60, 0.2):
            result.new_leader_s = round(time.monotonic() - killed_at, 2)
        progress(f"new leader {result.new_leader} after {result.new_leader_s} s")
        time.sleep(max(0.0, down_for - (time.monotonic() - killed_at)))
        _restart(service, broker, cluster, clean=False, budget=budget)
        result.broker_down_s = round(time.monotonic() - killed_at, 1)
        progress(f"broker {node} back and in sync after {result.broker_down_s} s")
        roll_from = time.monotonic() - sampler.t0
        rolled_at = time.monotonic()
        for each in service.brokers:
            progress(f"rolling restart: broker {each.node_id}")
            _restart(service, each, cluster, clean=True, budget=budget)
            result.restarted.append(each.node_id)
        result.rolling_restart_s = round(time.monotonic() - rolled_at, 1)
        roll_until = time.monotonic() - sampler.t0
        budget.wait(
            "every event stored",
            lambda: f.paced.done.is_set() and sampler.last >= events,
            timeout,
            1.0,
        )
        result.worker_restarts = len(f.workers.exits)  # the supervisor started them again
        sampler.stop()
        _finish(result, cluster, f.run, events, per_site, f.started, max(5.0, budget.left(timeout)))
        result.waited_out = budget.ran_out
        if not result.settled:
            for worker in f.workers.started:  # each logs what every task waits for
                if worker.alive() and worker.pid is not None:
                    os.kill(worker.pid, signal.SIGUSR2)
            time.sleep(2.0)
            tails = "\n".join(
                f"--- {w.log_path.name}\n{w.log_tail(8000)}" for w in f.workers.started
            )
            result.diagnosis = f"stored {sampler.last}/{events}; workers' logs end:\n{tails}"
        result.stall_after_kill_s = sampler.longest_stall(since=since, until=roll_from)
        result.stall_during_roll_s = sampler.longest_stall(since=roll_from, until=roll_until)
        result.copies_on_events_topic = events_topic_copies(cluster, f.run, ends)
        result.duplicates_absorbed = max(0, result.copies_on_events_topic - events)
        result.under_replicated_partitions = under_replicated(cluster)
    return result


def broker_loss_controller(settings: Settings, **options: Any) -> BrokerLoss:
    return broker_loss(settings, victim="controller", **options)


def broker_loss_leader(settings: Settings, **options: Any) -> BrokerLoss:
    return broker_loss(settings, victim="leader", **options)
