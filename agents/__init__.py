"""The stages, one module each. An agent is a thin loop: take a batch, call pure
functions, emit. Importing this package registers every agent on `streams.app.app`."""

from agents import correlate, dispatch, maintenance, monitor, normalize, persist, ping, status

__all__ = [
    "correlate",
    "dispatch",
    "maintenance",
    "monitor",
    "normalize",
    "persist",
    "ping",
    "status",
]
