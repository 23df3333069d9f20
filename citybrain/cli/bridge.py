"""`citybrain bridge mqtt`: run the MQTT bridge (citybrain/ingest/mqtt_bridge.py) as a
process of its own until SIGTERM or Ctrl-C, then stop it cleanly."""

from __future__ import annotations

import typer

from citybrain.cli.common import cli_settings, fail

app = typer.Typer(
    help="Bridges from other transports onto the feeds' raw Kafka topics.", no_args_is_help=True
)


@app.command("mqtt")
def bridge_mqtt() -> None:
    """Subscribe to every feed declared `transport: {mqtt: {topic: ...}}` and write each
    message to the feed's raw topic, acknowledging it to the broker once Kafka has it
    (CITYBRAIN_MQTT_* settings; metrics on CITYBRAIN_BRIDGE_METRICS_PORT)."""
    import logging
    import signal
    import threading

    from citybrain.config_errors import ConfigError
    from citybrain.feeds.definition import feed_folders, load_feeds
    from citybrain.ingest.mqtt_bridge import MqttBridge
    from citybrain.logs import configure_logging, get_logger
    from citybrain.metrics import serve_metrics
    from citybrain.stack.process import StackError

    s = cli_settings()
    configure_logging(s.log_level, s.log_format)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        feeds = load_feeds(*feed_folders(s.feeds_dir))
    except ConfigError as exc:
        raise fail(str(exc), 2) from exc
    try:
        bridge = MqttBridge(s, feeds)
    except (ValueError, StackError) as exc:
        raise fail(f"bridge mqtt: {exc}", 2) from exc
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve_metrics(s.bridge_metrics_port, s.bridge_metrics_host)
    except OSError as exc:  # the port taken: bridge all the same, without metrics
        get_logger("citybrain.bridge").warning(
            "bridge_metrics_off", port=s.bridge_metrics_port, error=str(exc)
        )
    bridge.start()
    while not stop.wait(1.0):
        if not bridge.healthy():
            bridge.stop(5.0)
            raise fail(f"bridge mqtt: the Kafka writer failed: {bridge.writer.error!r}")
    bridge.stop()
