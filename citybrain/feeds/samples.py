"""Reading sample files for `citybrain feeds test`: one payload per line (pure).

A line holding a JSON object is that JSON payload; a line holding a JSON string is the
raw text of the payload (CSV lines, deliberately broken JSON). Payloads are encoded in
the feed's declared text encoding, as the vendor would send them.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from citybrain.config_errors import ConfigError
from citybrain.feeds.definition import Feed
from citybrain.feeds.pipeline import RawRecord


def read_samples(feed: Feed, path: Path) -> list[RawRecord]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{number}: each line is a JSON object or string: {exc}"
            ) from exc
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        try:
            raw = text.encode(feed.definition.source.encoding)
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"{path}:{number}: not encodable as {feed.definition.source.encoding}: {exc}"
            ) from exc
        records.append(RawRecord(raw, f"file:{path.name}", 0, number))
    return records
