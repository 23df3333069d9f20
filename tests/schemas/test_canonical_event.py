"""The record model agrees with the canonical event's JSON Schema."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.feeds.pipeline import normalize_batch
from citybrain.feeds.samples import read_samples
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.schemas.events import CanonicalEvent, Location, RawRef, schema_document
from tests.citybrain.feeds.conftest import NOW


@pytest.fixture(scope="module")
def events() -> list[CanonicalEvent]:
    pack = load_pack("shanghai")
    tagger = Geotagger(GeoIndex(pack), load_gazetteer(pack))
    out: list[CanonicalEvent] = []
    for feed in load_feeds(BUILTIN_DIR):
        path = feed.sample_path()
        assert path is not None
        out += normalize_batch(feed, read_samples(feed, path), tagger, {}, NOW).events
    return out


def test_every_sample_event_validates_against_the_schema(events: list[CanonicalEvent]) -> None:
    validator = jsonschema.Draft202012Validator(
        schema_document(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert len(events) >= 15
    kinds = {e.kind for e in events}
    assert {"alarm", "clear", "report"} <= kinds
    for event in events:
        errors = list(validator.iter_errors(event.to_dict()))
        assert errors == [], (event.event_id, [e.message for e in errors])
        assert CanonicalEvent.from_json(event.to_json()) == event  # round trip


def test_model_fields_and_schema_properties_agree() -> None:
    schema = schema_document()
    model = {f.name for f in dataclasses.fields(CanonicalEvent)} | {"schema"}
    assert model == set(schema["properties"])
    location = {f.name for f in dataclasses.fields(Location)}
    assert location == set(schema["properties"]["location"]["properties"])
    raw_ref = {f.name for f in dataclasses.fields(RawRef)}
    assert raw_ref == set(schema["properties"]["raw_ref"]["properties"])
    assert set(schema["required"]) <= model


def test_a_broken_event_fails_validation() -> None:
    validator = jsonschema.Draft202012Validator(schema_document())
    assert list(validator.iter_errors({"schema": "citybrain.event/1", "severity": 9}))
