"""Sinks: where records leave the stream (TimescaleDB writer, webhook sender)."""
