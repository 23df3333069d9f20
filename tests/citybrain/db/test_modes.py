import pytest

from citybrain.db.modes import ModeError, choose_mode, render
from citybrain.db.policies import timescale_policy_statements
from citybrain.settings import Settings

SQL = """CREATE TABLE a (x int);
-- citybrain:mode timescale
SELECT create_hypertable('a', by_range('x'));
-- citybrain:mode plain
CREATE TABLE b (x int) PARTITION BY RANGE (x);
-- citybrain:mode all
CREATE INDEX ON a (x);
"""


@pytest.mark.parametrize(
    ("mode", "present", "absent"),
    [
        ("timescale", ["CREATE TABLE a", "create_hypertable", "CREATE INDEX"], ["PARTITION BY"]),
        ("plain", ["CREATE TABLE a", "PARTITION BY", "CREATE INDEX"], ["create_hypertable"]),
    ],
)
def test_render_keeps_the_sections_of_one_mode(mode, present, absent) -> None:  # type: ignore[no-untyped-def]
    out = render(SQL, mode)
    for text in present:
        assert text in out
    for text in absent:
        assert text not in out
    assert len(out.splitlines()) == len(SQL.splitlines()), "line numbers are preserved"


def test_unknown_section_names_file_and_line() -> None:
    with pytest.raises(ModeError, match=r"0009_x\.sql:2: unknown mode 'postgis'"):
        render("SELECT 1;\n-- citybrain:mode postgis\n", "plain", "0009_x.sql")


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ("auto", True, "timescale"),
        ("auto", False, "plain"),
        ("plain", True, "plain"),
        ("timescale", True, "timescale"),
    ],
)
def test_choose_mode(requested: str, available: bool, expected: str) -> None:
    assert choose_mode(requested, available) == expected


def test_forcing_timescale_without_the_extension_is_an_error() -> None:
    with pytest.raises(ModeError, match="not available"):
        choose_mode("timescale", False)


def test_policies_follow_the_settings() -> None:
    stmts = timescale_policy_statements(
        Settings(retention_readings_days=30, compress_readings_after_days=0)
    )
    joined = "\n".join(stmts)
    assert "add_retention_policy('readings', drop_after => INTERVAL '30 days')" in joined
    assert "add_compression_policy('readings'" not in joined
    assert "add_compression_policy('events', compress_after => INTERVAL '14 days')" in joined
    assert joined.count("add_continuous_aggregate_policy") == 3
    # every add is preceded by its remove, so re-running is harmless
    assert stmts.index("SELECT remove_retention_policy('readings', if_exists => true)") < next(
        i for i, s in enumerate(stmts) if "add_retention_policy('readings'" in s
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("plain", "CREATE TABLE t (x int) PARTITION BY RANGE (x);"),
        ("timescale", "CREATE TABLE t (x int) ;"),
    ],
)
def test_partition_marker(mode: str, expected: str) -> None:
    assert render("CREATE TABLE t (x int) /* citybrain:partition-by x */;", mode) == expected
