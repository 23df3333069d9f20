"""`streams.tables.TableManager`: Faust's table manager without its start-up sleep."""

from __future__ import annotations

import inspect
import textwrap

from faust.tables.manager import TableManager as FaustTableManager

from citybrain.settings import Settings
from citybrain.streams.app import create_app
from citybrain.streams.tables import TableManager


def _body(function: object) -> list[str]:
    """The statements of a function's body, without its signature, docstring or comments."""
    source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
    lines = [line.strip() for line in source.splitlines()[1:]]
    return [line for line in lines if line and not line.startswith("#")]


def test_faust_start_is_its_sleep_then_what_ours_does() -> None:
    """A Faust release whose `on_start` does more than sleep and then what ours does fails
    here, before a worker would start without it."""
    theirs, ours = _body(FaustTableManager.on_start), _body(TableManager.on_start)
    assert theirs[0] == '"""Call when table manager is starting."""', theirs
    assert theirs[1] == "await self.sleep(1.0)", theirs
    assert theirs[2:] == ours, (theirs, ours)


def test_the_app_uses_it(tmp_path: object) -> None:
    app = create_app(Settings(app_id="test-tables", data_dir=tmp_path))
    assert type(app.tables) is TableManager
