"""The contracts: canonical event JSON Schemas, SQL migrations, config-file schemas.

Files are read with `importlib.resources`, so they work from a checkout and from a wheel.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def migrations_dir() -> Traversable:
    """The folder of ordered SQL migrations (`NNNN_name.sql`)."""
    return files(__name__) / "migrations"
