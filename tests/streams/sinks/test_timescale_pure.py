from citybrain.schemas.tables import EVENTS, PIPELINE_PINGS, TableSpec
from citybrain.streams.sinks.timescale import conflict_clause, last_per_key


def test_last_row_of_a_key_wins_in_first_seen_order() -> None:
    spec = TableSpec("t", (("k", "text"), ("v", "int4")), key=("k",), update=("v",))
    rows = [("a", 1), ("b", 2), ("a", 3)]
    assert last_per_key(spec, rows) == [("a", 3), ("b", 2)]


def test_conflict_clause_follows_the_spec() -> None:
    nothing = conflict_clause(PIPELINE_PINGS).as_string(None)
    assert nothing == 'ON CONFLICT ("ping_id") DO NOTHING'
    spec = TableSpec("t", (("k", "text"), ("v", "int4")), key=("k",), update=("v",))
    assert conflict_clause(spec).as_string(None) == (
        'ON CONFLICT ("k") DO UPDATE SET "v" = EXCLUDED."v"'
    )


def test_event_key_includes_the_partitioning_column() -> None:
    assert "observed_at" in EVENTS.key
