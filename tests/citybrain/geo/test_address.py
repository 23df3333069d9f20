"""The address matcher: table-driven cases (the labelled sample's figures: tests/tools/bench)."""

from __future__ import annotations

import pytest

from citybrain.geo.address import Gazetteer, load_gazetteer, normalize
from citybrain.geo.pack import load_pack


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer(load_pack("shanghai"))


@pytest.mark.parametrize(
    ("text", "entry", "placed"),
    [
        ("上海市浦东新区世纪大道２００１号附近井盖缺失", "世纪大道2001号", True),
        ("浦东新区 世纪大道 2001 号", "世纪大道2001号", True),
        ("东方明珠电视塔旁边有烟雾", "东方明珠", True),
        ("静安区南京西路1266号", "南京西路1266号", True),  # an address point of the register
        ("静安区南京西路1999号", "南京西路", True),  # road level: placed, lower confidence
        ("徐汇区南京西路100号", "南京西路", False),  # district contradicts: not placed
        ("闵行区", "闵行区", False),  # district only: operator decides
        ("家门口路灯不亮", None, False),
    ],
)
def test_matches(gazetteer: Gazetteer, text: str, entry: str | None, placed: bool) -> None:
    m = gazetteer.match(text)
    assert (m.entry.name if m.entry else None) == entry
    assert m.placed() is placed


def test_normalize_folds_full_width_and_punctuation() -> None:
    assert normalize("世纪大道２００１号， 东门") == "世纪大道2001号东门"
