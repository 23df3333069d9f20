"""The private names `streams/` relies on exist in the installed faust-streaming and mode."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from citybrain.streams.private_names import PRIVATE_NAMES, PrivateName, missing

STREAMS = Path(__file__).resolve().parents[2] / "streams"


def test_every_private_name_streams_uses_exists_in_the_installed_release() -> None:
    absent = missing()
    assert not absent, (
        f"faust-streaming {version('faust-streaming')} / mode-streaming "
        f"{version('mode-streaming')} lack what streams/ relies on: "
        + "; ".join(f"{e.owner}.{e.name} (used in streams/{e.used_in}: {e.why})" for e in absent)
        + ". Check streams/ against this release before widening the pin in pyproject.toml."
    )


def test_the_check_fails_on_a_name_that_does_not_exist() -> None:
    made_up = PrivateName("faust.transport.consumer:Consumer", "_no_such_name", "-", "-")
    assert missing((made_up,)) == [made_up]


def test_every_private_attribute_used_on_a_faust_object_is_in_the_table() -> None:
    """Underscore names read on Faust's objects in streams/ (not the project's own)."""
    own = {
        "_first_read",
        "_seeks",
        "_open",
        "_release",
        "_checked",
        "_maybe_resume",
        "_expire",
        "_finish",
        "_beat",
        "_record",
        "_run",
        "_stop",
        "_thread",
        "_queue",
    }
    listed = {e.name for e in PRIVATE_NAMES}
    used: set[str] = set()
    pattern = re.compile(r"\b(?:consumer|collection|fetcher|s|super\(\))\.(_[a-z][a-z_]*)")
    for path in STREAMS.glob("*.py"):
        if path.name == "private_names.py":
            continue
        used.update(pattern.findall(path.read_text()))
    assert used - own - listed == set()
