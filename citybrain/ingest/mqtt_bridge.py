"""`citybrain bridge mqtt`: the MQTT feeds' messages onto their raw Kafka topics.

One MQTT 5 client with a persistent session (a fixed client id, `clean_start` off, a
session that never expires): the broker keeps what comes while the bridge is away. It
subscribes to each MQTT feed's topic filter with the feed's QoS and acknowledges every
message by hand, only once Kafka has it (`kafka_writer`), in the order the messages came
(`acks`). A message not acknowledged when the bridge stops or dies is sent again by the
broker; written twice, it is absorbed downstream by its event id. paho reconnects with
backoff; a lost connection forgets the acknowledgements it owed (the broker sends those
messages again).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from citybrain.feeds.definition import Feed
from citybrain.ingest.acks import InOrderAcks
from citybrain.ingest.kafka_writer import Inbound, KafkaWriter
from citybrain.ingest.mqtt_records import Routes
from citybrain.logs import get_logger
from citybrain.metrics import BRIDGE_IN_FLIGHT, BRIDGE_MESSAGES
from citybrain.settings import Settings

log = get_logger("citybrain.bridge")

#: MQTT 5 session expiry interval meaning "never"
NEVER = 0xFFFFFFFF
KEEPALIVE = 30


def _password(settings: Settings) -> str:
    from citybrain.stack.mosquitto import bridge_password

    return bridge_password(settings)


def new_client(settings: Settings, client_id: str) -> Any:
    """The bridge's paho client (MQTT 5, manual acknowledgement), logged in."""
    from paho.mqtt.client import CallbackAPIVersion, Client
    from paho.mqtt.enums import MQTTProtocolVersion

    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=True,
    )
    client.username_pw_set(settings.mqtt_username, _password(settings))
    client.reconnect_delay_set(1, 30)
    return client


class MqttBridge:
    """The bridge of `feeds` (those declaring MQTT): start, run, stop."""

    def __init__(
        self,
        settings: Settings,
        feeds: list[Feed],
        *,
        client_id: str | None = None,
        session_expiry: int = NEVER,
        make_producer: Any = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id or settings.mqtt_client_id
        self.session_expiry = session_expiry
        self.routes = Routes(feeds)
        if not self.routes.feeds:
            raise ValueError("no feed declares transport: {mqtt: {topic: ...}}")
        self.acks: InOrderAcks[Inbound] = InOrderAcks()
        self._lock = threading.Lock()
        self.closing = False
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.received = 0
        self.acked = 0
        self.writer = KafkaWriter(
            settings, self.routes, self.client_id, self._written, make_producer
        )
        self.client = new_client(settings, self.client_id)
        self.client.on_connect = self._guarded(self._on_connect)
        self.client.on_disconnect = self._guarded(self._on_disconnect)
        self.client.on_message = self._guarded(self._on_message)
        self.client.on_subscribe = self._guarded(self._on_subscribe)

    def _guarded(self, callback: Any) -> Any:
        """A paho callback that logs its error instead of ending paho's network thread."""

        def call(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                log.exception("bridge_callback_failed", callback=callback.__name__)

        return call

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.writer.start()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        props.ReceiveMaximum = self.settings.mqtt_in_flight
        self.client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=KEEPALIVE,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()
        log.info(
            "bridge_started",
            broker=f"{self.settings.mqtt_host}:{self.settings.mqtt_port}",
            client_id=self.client_id,
            subscriptions=self.routes.subscriptions(),
        )

    def healthy(self) -> bool:
        return self.writer.alive()

    def stop(self, timeout: float = 15.0) -> int:
        """Stop taking messages, write those received (acknowledging each as Kafka has it),
        then disconnect, keeping the session; how many were left unacknowledged."""
        self.closing = True
        left = self.writer.stop(timeout)
        with self._lock:
            unacked = self.acks.waiting
        self.client.disconnect()
        self.client.loop_stop()
        log.info("bridge_stopped", unwritten=left, unacknowledged=unacked, acked=self.acked)
        return unacked

    # --- paho's callbacks (its network thread) ------------------------------------------
    def _on_connect(self, client: Any, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error(
                "bridge_mqtt_refused",
                broker=f"{self.settings.mqtt_host}:{self.settings.mqtt_port}",
                reason=str(reason),
                hint="check CITYBRAIN_MQTT_USERNAME and CITYBRAIN_MQTT_PASSWORD",
            )
            return
        from paho.mqtt.subscribeoptions import SubscribeOptions

        with self._lock:
            self.acks.reset()
            BRIDGE_IN_FLIGHT.set(0)
        subscriptions = [
            (
                topic,
                SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB),
            )
            for topic, qos in self.routes.subscriptions()
        ]
        client.subscribe(subscriptions)
        self.connected.set()
        log.info("bridge_mqtt_connected", session_present=bool(flags.session_present))

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        refused = False
        for (topic, _), reason in zip(self.routes.subscriptions(), reasons, strict=False):
            if reason.is_failure:
                refused = True
                log.error("bridge_subscribe_refused", topic=topic, reason=str(reason))
        if not refused:
            self.subscribed.set()
            log.info("bridge_subscribed", granted=[int(r.value) for r in reasons])

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        with self._lock:
            owed = self.acks.reset()
            BRIDGE_IN_FLIGHT.set(0)
        if not self.closing:
            log.warning("bridge_mqtt_disconnected", reason=str(reason), sent_again=owed)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        if self.closing:
            return  # not acknowledged: the broker sends it again to the next session
        item = Inbound(message.mid, message.qos, message.topic, message.payload)
        with self._lock:
            if message.qos > 0:
                item.ticket = self.acks.arrived(item)
            self.received += 1
            BRIDGE_IN_FLIGHT.set(self.acks.waiting)
        feed = self.routes.feed_for(item.topic)
        BRIDGE_MESSAGES.labels(feed.name if feed else "", "received").inc()
        self.writer.put(item)

    # --- the Kafka side's report (the producer's thread) ----------------------------------
    def _written(self, item: Inbound) -> None:
        if item.ticket is None:
            return
        with self._lock:
            for done in self.acks.written(item.ticket):
                self.client.ack(done.mid, done.qos)
                self.acked += 1
                BRIDGE_MESSAGES.labels(done.feed, "acked").inc()
            BRIDGE_IN_FLIGHT.set(self.acks.waiting)


def forget_session(settings: Settings, client_id: str, timeout: float = 10.0) -> None:
    """End a bridge's persistent session on the broker (tests and chaos runs, whose client
    ids are their own): connect with a clean start and a session that expires at once."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = new_client(settings, client_id)
    done = threading.Event()
    client.on_connect = lambda *_: done.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=True, properties=props)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    time.sleep(0.1)
