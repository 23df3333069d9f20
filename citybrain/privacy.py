"""Masking of personal data (callers' phone numbers) before it reaches logs, dead letters,
stored free text or a screen.

Pure functions: all but the last four digits of a phone number become `*`. What counts as
a phone number (table-driven tests in tests/citybrain/test_privacy.py):

- Chinese mobiles: 1[3-9] and 9 more digits, with or without +86 / 0086 / 86, with spaces
  or hyphens in the usual places;
- landlines with an area code (0xx-xxxxxxxx), with or without a country prefix or
  brackets, and local 7-8 digit numbers when a word says it is a phone (电话, 座机, tel...);
- other international numbers: + and 8 to 15 digits.

Never: public service numbers (400-xxx-xxxx, 800-xxx-xxxx, 95xxx, 12345), dates, ticket
numbers, device serials and other ids; a number is only a phone when no digit or Latin
letter touches it on either side (so a long id is never partly masked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SEP = r"[-\s]?"
_COUNTRY = r"(?:(?:\+|00)?86[-\s]?)"
_PHONE = re.compile(
    r"(?<![0-9A-Za-z*+])(?:"
    rf"{_COUNTRY}?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}"  # mobile
    rf"|{_COUNTRY}?(?:\(0\d{{2,3}}\)|0\d{{2,3}}){_SEP}[2-9]\d{{6,7}}"  # landline with area code
    rf"|(?:\+|00)86{_SEP}[1-9]\d{{1,2}}{_SEP}[2-9]\d{{6,7}}"  # the same from abroad (no 0)
    r"|\+(?!86)[1-9][\d\s-]{7,16}\d"  # other international
    r")(?![0-9A-Za-z])"
)
#: a local number without an area code is a phone only when a word says so
_CUED_LOCAL = re.compile(
    r"(?P<cue>(?:电话|座机|手机|联系方式|联系电话|号码|tel|phone)[\s:：号是为]{0,3})"
    r"(?P<number>[2-9]\d{6,7})(?![0-9A-Za-z])",
    re.IGNORECASE,
)


def mask_phone(number: str) -> str:
    """Mask one phone number, keeping separators and its last four digits."""
    total = sum(ch.isdigit() for ch in number)
    keep_from = total - 4
    out: list[str] = []
    seen = 0
    for ch in number:
        if ch.isdigit():
            out.append(ch if seen >= keep_from else "*")
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def mask_phones_in_text(text: str) -> str:
    """Mask every phone number found in free text (hotline notes, error messages)."""
    text = _PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return _CUED_LOCAL.sub(lambda m: m.group("cue") + mask_phone(m.group("number")), text)


def mask_value(value: Any) -> Any:
    """Mask phone numbers inside strings, lists and mappings, recursively."""
    if isinstance(value, str):
        return mask_phones_in_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value
