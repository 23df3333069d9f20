"""citybrain: the shell (CLI, settings, API) and the pure domain core of the platform.

Modules here import neither Kafka nor the database unless their name says so
(`citybrain.stack`, `citybrain.doctor`, `citybrain.db`).
"""

__version__ = "0.1.0"
