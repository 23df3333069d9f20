"""Pointing at the file and line of a configuration error (YAML files validated by pydantic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration file is invalid; the message names file, line and field."""


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """1-based line of the node at `path` (keys and list indexes) in a YAML document."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            key_line = next(k.start_mark.line + 1 for k, v in node.value if v is match)
            node, line = match, key_line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_yaml(path: Path) -> tuple[object, str]:
    """Parse a YAML file; a syntax error names the file and line."""
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def _untagged(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without the tags of tagged unions, which repeat the key they stand under
    (`transport.mqtt.mqtt.topic` is `transport.mqtt.topic` in the file)."""
    out: list[str | int] = []
    for part in loc:
        if not out or part != out[-1]:
            out.append(part)
    return tuple(out)


def explain(path: Path, text: str, error: ValidationError) -> ConfigError:
    """One line per problem: `file:line: field.path: message`."""
    lines = []
    for problem in error.errors():
        loc = _untagged(tuple(problem["loc"]))
        line = line_of(text, loc)
        field = ".".join(str(p) for p in loc) or "(document)"
        lines.append(f"{path}:{line or 1}: {field}: {problem['msg']}")
    return ConfigError("\n".join(lines))
