"""The Faust application: broker, consumer group, stores, all taken from `Settings`.

Agents import `app` from here; `citybrain worker` imports `agents` (which registers
them) and runs a Faust worker around this app.
"""

from __future__ import annotations

import faust

from citybrain.settings import Settings, get_settings
from streams.transport import Transport


class App(faust.App):
    """Faust's App on citybrain's transport (`streams.transport`: an eager drain loop and
    batch delivery for `streams.batches.BatchTopic`s)."""

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured for citybrain."""
    datadir = settings.data_dir / "faust" / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    return App(
        settings.app_id,
        broker=settings.kafka_broker_url,
        autodiscover=False,
        datadir=str(datadir),  # under the data folder, not the working directory
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        consumer_auto_offset_reset=settings.kafka_offset_reset,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout / 3),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        producer_acks=-1,
        producer_linger_ms=settings.kafka_linger_ms,
        key_serializer="raw",
        value_serializer="raw",
    )


app = create_app(get_settings())
