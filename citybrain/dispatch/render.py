"""Task messages as people read them (pure): the task message (`citybrain.task/1`)
rendered for a group robot or an e-mail from the templates in `config/messages.yaml`,
Chinese by default, English too.

A message says what (category, priority, reports), where (district and address, or that
the place is still being checked), the deadlines in the city's time, a link to the task in
the console, and how to acknowledge. Every free text is passed through the phone masking
(PIPL). Each platform gets its own form and length: WeCom's Markdown (4,096 bytes),
DingTalk's Markdown with a title (kept under 18,000 bytes of its 20,000), Feishu's `post`
rich text (kept under 18,000 bytes), and a plain text and Markdown pair for e-mail. A
message too long is cut at a line and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml

from citybrain.privacy import mask_phones_in_text

Language = Literal["zh", "en"]
Form = Literal["wecom", "dingtalk", "feishu", "email"]
TEMPLATES = Path(__file__).parent / "config" / "messages.yaml"

#: bytes of the rendered text each form takes (the platforms' limits, with room for the
#: JSON around it)
LIMIT_BYTES: dict[Form, int] = {
    "wecom": 4096,
    "dingtalk": 18_000,
    "feishu": 18_000,
    "email": 100_000,
}
CUT = {"zh": "…（内容过长，已截断，请打开工单查看）", "en": "… (cut: open the task for the rest)"}


@dataclass(frozen=True)
class Rendered:
    """One message: a title, its lines (plain text), and the link to the task."""

    title: str
    lines: tuple[str, ...]
    link: str | None  # the task in the console (acknowledge, start, resolve there)
    link_text: str
    map_link: str | None = None  # the incident's page in the console: its map and timeline
    map_text: str = ""

    def markdown(self, form: Form) -> str:
        """The message as the form's Markdown, within its length."""
        bold = f"**{self.title}**"
        body = [bold, *(_escape(line, form) for line in self.lines)]
        if self.link:
            links = [f"[{self.link_text}]({self.link})"]
            if self.map_link:
                links.append(f"[{self.map_text}]({self.map_link})")
            body.append(" · ".join(links))
        return fit("\n\n".join(body) if form == "dingtalk" else "\n".join(body), form)

    def text(self) -> str:
        """The message as plain text (an e-mail's text part)."""
        parts = [self.title, "", *self.lines]
        if self.link:
            parts += ["", f"{self.link_text}: {self.link}"]
        if self.map_link:
            parts += [f"{self.map_text}: {self.map_link}"]
        return fit("\n".join(parts), "email")


@functools.cache
def templates() -> dict[str, Any]:
    loaded = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def render(
    payload: Mapping[str, Any],
    *,
    language: Language = "zh",
    console_url: str | None = None,
    district_names: Mapping[str, str] | None = None,
    timezone: str = "Asia/Shanghai",
) -> Rendered:
    """Render one task message (its JSON payload) in `language`."""
    t = templates()[language]
    tz = ZoneInfo(timezone)
    details = payload.get("details") or {}
    kind = str(payload["kind"])
    category = t["categories"].get(payload["category"], payload["category"])
    district = details.get("district")
    where_parts = [(district_names or {}).get(district, district) if district else None]
    address = details.get("address")
    if address:
        where_parts.append(str(address))
    located = details.get("location_status") not in (None, "needs_location")
    if not located and not address:
        where_parts.append(t["unknown_place"])
    where = " ".join(p for p in where_parts if p)
    values = {
        "category": category,
        "priority": payload.get("priority", ""),
        "district": district or "",
        "address": address or "",
        "ack_deadline": _when(payload.get("ack_deadline"), tz),
        "resolve_deadline": _when(payload.get("resolve_deadline"), tz),
        "deadline": _when(payload.get("deadline"), tz),
        "reports": payload.get("report_count", ""),
        "dispatch_id": payload.get("dispatch_id", ""),
        "incident_id": payload.get("incident_id", ""),
        "urged_by": payload.get("urged_by", ""),
        "reason": payload.get("reason", ""),
        "supervisor": payload.get("supervisor", ""),
        "role": t["roles"].get(payload.get("role"), payload.get("role", "")),
    }
    values = {k: mask_phones_in_text(str(v)) for k, v in values.items()}
    f = t["fields"]
    lines = (
        t["lines"][kind].format(**values),
        f"{f['priority']}: P{values['priority']}  {f['role']}: {values['role']}",
        f"{f['where']}: {mask_phones_in_text(where)}",
        f"{f['deadlines']}: " + t["deadlines"].format(**values),
        f"{f['reports']}: {values['reports']}  {f['task']}: {values['dispatch_id']}",
        t["how_to_ack"].format(**values),
    )
    link = map_link = None
    if console_url:
        root = f"{console_url.rstrip('/')}/console/#"
        link = f"{root}/task/{values['dispatch_id']}"
        map_link = f"{root}/incident/{quote(str(payload.get('incident_id', '')), safe='')}"
    title = t["titles"][kind].format(**values)
    if str(payload.get("message_id", "")).endswith(":test"):  # `citybrain departments test`
        title = t["test"] + title
    return Rendered(title, lines, link, t["open"], map_link, t["map"])


def robot_message(platform: Literal["wecom", "dingtalk", "feishu"], message: Rendered) -> dict:
    """The platform's message JSON."""
    if platform == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": message.markdown("wecom")}}
    if platform == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": message.markdown("dingtalk")},
        }
    text = fit("\n".join(message.lines), "feishu")
    rows: list[list[dict[str, str]]] = [
        [{"tag": "text", "text": line}] for line in text.split("\n")
    ]
    if message.link:
        links = [{"tag": "a", "text": message.link_text, "href": message.link}]
        if message.map_link:
            links.append({"tag": "a", "text": message.map_text, "href": message.map_link})
        rows.append(links)
    return {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {"title": message.title, "content": rows}}},
    }


def fit(text: str, form: Form) -> str:
    """`text` cut at a line so that it fits the form's byte limit, saying it was cut."""
    limit = LIMIT_BYTES[form]
    if len(text.encode()) <= limit:
        return text
    note = CUT["zh"] if any("\u4e00" <= ch <= "\u9fff" for ch in text[:200]) else CUT["en"]
    room = limit - len(note.encode()) - 1
    lines, out, size = text.split("\n"), [], 0
    for line in lines:
        size += len(line.encode()) + 1
        if size > room:
            break
        out.append(line)
    if not out:  # one line longer than the limit: cut inside it, on a character
        out = [text.encode()[:room].decode(errors="ignore")]
    return "\n".join([*out, note])


def _when(value: Any, tz: ZoneInfo) -> str:
    if not value:
        return ""
    at = datetime.fromisoformat(str(value))
    return at.astimezone(tz).strftime("%m-%d %H:%M")


def _escape(line: str, form: Form) -> str:
    """Markdown that a caller's words could start (a heading, a list, a link) made plain."""
    if form == "email":
        return line
    return line.replace("[", "【").replace("]", "】").lstrip("#>-* ")
