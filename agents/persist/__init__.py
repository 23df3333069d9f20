"""Stage `persist`: events.v1 -> the events hypertable."""
