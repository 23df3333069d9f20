"""The named places in a caller's address, as correlation evidence (pure).

A report placed only by its district may join an incident only when it names a place the
incident's reports name too. A named place is a name of the city's register or gazetteer
found in the text (the address matcher's automaton), or a numbered place recognised by its
form: a road and a house number (樱花路100号: the road 樱花路), an estate and a building
(锦绣苑3号楼: the estate 锦绣苑), unless the two characters before the generic word hold a
pronoun or a demonstrative (某小区3号楼, 我家小区5栋 name no place). Nothing here is a list
of phrases: a caller's vague words simply name no place.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from citybrain.geo.address import normalize

if TYPE_CHECKING:
    from citybrain.geo.address import Gazetteer

_NAME = r"([\u4e00-\u9fa5A-Z0-9]{2})"
#: a road and a house number: 樱花路100号
_ROAD_NUMBER = re.compile(_NAME + r"(大道|公路|路|街|巷|弄)(\d+)号")
#: an estate and a building (号楼/幢/座 are 栋 after normalising): 锦绣苑3栋
_ESTATE_BUILDING = re.compile(_NAME + r"(小区|花园|新村|家园|公寓|苑|大厦|园|里)(\d+)栋")
#: pronouns and demonstratives: with them the words point at a place, they do not name one
_POINTING = re.compile(r"[某这那哪我你您他她它咱俺此该本]")
#: kinds of register entries that name a place
_NAMING = frozenset({"address", "building", "community", "poi", "road"})


def alike_forms(word: str) -> set[str]:
    """The forms under which two names of a place are alike despite one slip in their
    first two characters (悦滨花园 and 悦宾花园 share 悦?花园)."""
    if len(word) < 3:
        return {word}
    return {word, "?" + word[1:], word[0] + "?" + word[2:]}


class PlaceWords:
    """`place_words(text)`: the named places a text contains, as normalised strings."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer

    def __call__(self, text: str | None) -> frozenset[str]:
        if not text:
            return frozenset()
        norm = normalize(text)
        words: set[str] = set()
        if self.gazetteer is not None:
            for _, _, key in self.gazetteer.hits(norm):
                if {e.kind for e in self.gazetteer.by_key[key]} & _NAMING:
                    words.add(key)
        for pattern in (_ROAD_NUMBER, _ESTATE_BUILDING):
            for m in pattern.finditer(norm):
                if not _POINTING.search(m.group(1)):
                    words.add(m.group(1) + m.group(2))
        return frozenset(words)
