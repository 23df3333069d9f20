"""README agrees with the configuration it describes."""

from __future__ import annotations

import re
from pathlib import Path

from citybrain.dispatch.sla import SLA_FILE, load_sla_policy

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_working_hours_in_the_readme_are_the_shipped_policy_s() -> None:
    policy = load_sla_policy(SLA_FILE)
    said = re.search(r"the shipped policy: Mon–Fri ([0-9:–, ]+)\s+Asia/Shanghai", README)
    assert said, "README no longer states the shipped working hours"
    hours = [h.replace("-", "–") for h in policy.working_hours.hours]
    assert said.group(1).strip() == ", ".join(hours)
    assert policy.working_hours.timezone == "Asia/Shanghai"
    assert list(policy.working_hours.days) == ["mon", "tue", "wed", "thu", "fri"]


#: a measured figure: a rate, a latency, a size, a recovery time, a score
MEASURED = re.compile(
    r"\b\d[\d,.]*\s?(?:msg/s|messages/s|records/s|rows/s|events/s|points/s|keys/s|/s\b"
    r"|ms\b|µs\b|MiB\b|GiB\b|MB\b|minutes\b|min\b|s\b)"
    r"|\b(?:F1|precision|recall|ratio|match rate)\s*(?:[≥=]\s*)?0\.\d+"
)
#: what makes a figure not a measurement: a target, a setting, a default, a limit, a rule
NOT_MEASURED = re.compile(
    r"target|default|setting|CITYBRAIN_|timeout|within|at most|at least|every \d|limit|after"
    r"|window|interval|deadline|retention|lease|backoff|up to|per request|cap\b|silent for",
    re.IGNORECASE,
)
#: commands that print figures, by the README's spelling
FIGURE_COMMANDS = re.compile(
    r"`citybrain (?:bench [a-z0-9]+|chaos|correlate accuracy|simulate)[^`]*`"
    r"|\bbench(?:/|\s)[a-z0-9]+|`citybrain bench"
)


def _paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each block between blank lines, outside code fences; a table or
    list belongs to the block above it when no blank line parts them."""
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    start, fenced = 0, False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.strip() and not line.startswith("#"):
            if not current:
                start = n
            current.append(line)
        elif current:
            blocks.append((start, "\n".join(current)))
            current = []
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def _sections(text: str) -> dict[int, str]:
    """The heading each line is under."""
    heading, under = "", {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            heading = line
        under[n] = heading
    return under


def orphan_figures(text: str) -> list[str]:
    """Sentences with a measured figure (a rate, a latency, a size, a score) whose paragraph,
    or heading for a table or list of results, names no `citybrain` command producing it; a
    target, a default or a setting is not a measurement."""
    heading_of = _sections(text)
    heading_has_command = {
        h: bool(FIGURE_COMMANDS.search(body)) for h, body in _by_heading(text).items()
    }
    orphans = []
    for start, block in _paragraphs(text):
        for sentence in re.split(r"(?<=[.;:])\s+|\n[-|*] ", block):
            if not MEASURED.search(sentence) or NOT_MEASURED.search(sentence):
                continue
            if FIGURE_COMMANDS.search(block):
                continue
            if heading_has_command.get(heading_of[start]) and _is_results(block):
                continue
            orphans.append(f"line {start}: {sentence.strip()[:120]}")
    return orphans


def test_every_measured_figure_names_the_command_that_prints_it() -> None:
    orphans = orphan_figures(README)
    assert not orphans, "figures without the command that prints them:\n" + "\n".join(orphans)


SAMPLE = """## Speed

The pipeline stores 12,000 msg/s with p99 40 ms.

`citybrain bench store` prints rows/s: about 65,000 rows/s here.

The target is 50,000 rows/s.

## Quality

| figure | value |
|---|---|
| F1 | precision 0.97 |
"""


def test_the_audit_finds_a_figure_without_its_command() -> None:
    assert orphan_figures(SAMPLE) == [
        "line 3: The pipeline stores 12,000 msg/s with p99 40 ms.",
        "line 11: F1 | precision 0.97 |",
    ]


def _by_heading(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line
        out.setdefault(heading, []).append(line)
    return {h: "\n".join(lines) for h, lines in out.items()}


def _is_results(block: str) -> bool:
    """A table or list of results under a heading whose text names the command."""
    return block.lstrip().startswith(("|", "- ", "* "))
