from __future__ import annotations

from datetime import UTC, datetime

import pytest

from citybrain.feeds.definition import BUILTIN_DIR, Feed, load_feeds
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def feeds() -> dict[str, Feed]:
    return {f.name: f for f in load_feeds(BUILTIN_DIR)}


@pytest.fixture(scope="session")
def tagger() -> Geotagger:
    pack = load_pack("shanghai")
    return Geotagger(GeoIndex(pack), load_gazetteer(pack))
