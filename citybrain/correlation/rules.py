"""Correlation rules as data (`rules.yaml`), validated with pydantic (pure)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError

from citybrain.config_errors import explain, load_yaml
from citybrain.schemas.fields import Duration, Strict, parse_duration

RULES_FILE = Path(__file__).with_name("rules.yaml")


class Family(Strict):
    name: str = "default"
    categories: list[str] = Field(default_factory=list)
    radius_m: float = Field(gt=0)
    window: Duration
    sources: list[str] = Field(default_factory=lambda: ["iot", "hotline", "open311"])

    _window: timedelta = PrivateAttr(default=timedelta(0))
    _window_us: int = PrivateAttr(default=0)

    def model_post_init(self, context: object, /) -> None:
        self._window = timedelta(seconds=parse_duration(self.window))
        self._window_us = self._window // timedelta(microseconds=1)

    @property
    def window_s(self) -> float:
        return self._window.total_seconds()

    @property
    def window_td(self) -> timedelta:
        return self._window

    @property
    def window_us(self) -> int:
        return self._window_us


class Rules(Strict):
    default: Family
    families: list[Family]
    #: merge suggestions kept for a report placed only by its district (most likely first)
    suggestions: int = Field(3, ge=0, le=20)

    def family_of(self, category: str) -> Family:
        for family in self.families:
            if category in family.categories:
                return family
        return self.default

    @property
    def max_radius_m(self) -> float:
        return max([self.default.radius_m] + [f.radius_m for f in self.families])


def load_rules(path: Path = RULES_FILE) -> Rules:
    raw, text = load_yaml(path)
    try:
        return Rules.model_validate(raw)
    except ValidationError as exc:
        raise explain(path, text, exc) from exc


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    return load_rules()
