"""Hotline text as a correlation signal: character bigrams with the desk's boilerplate
removed, compared by Jaccard similarity (pure; works for Chinese without a segmenter)."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from itertools import pairwise


def bigrams(text: str | None, boilerplate: Iterable[str] = ()) -> frozenset[str]:
    """Character bigrams of `text`, spaces, punctuation and boilerplate phrases dropped."""
    if not text:
        return frozenset()
    for phrase in boilerplate:
        text = text.replace(phrase, " ")
    chars = [c for c in text if c.isalnum()]
    return frozenset(a + b for a, b in pairwise(chars))


def similarity(a: frozenset[Hashable], b: Collection[Hashable]) -> float:
    """Jaccard similarity of a bigram set and distinct bigrams (a set or a tuple, as an
    incident keeps them; bigrams or their hashes); 0 when either is empty."""
    if not a or not b:
        return 0.0
    common = sum(1 for gram in b if gram in a)
    return common / (len(a) + len(b) - common)
