"""Masking of personal data (callers' phone numbers) before it reaches logs or dead letters.

Pure functions: all but the last four digits of a phone number become `*`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Chinese mobiles (1[3-9]x, 11 digits, optional +86/0086), landlines with area code
# (0xx-xxxxxxxx), and generic international numbers (+ and 8-15 digits).
_PHONE = re.compile(
    r"(?<![\d*])"
    r"(?:(?:\+|00)86[-\s]?)?1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}"
    r"|(?:(?:\+|00)86[-\s]?)?0\d{2,3}[-\s]?\d{7,8}"
    r"|\+\d[\d\s-]{7,16}\d"
    r"(?!\d)"
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
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def mask_value(value: Any) -> Any:
    """Mask phone numbers inside strings, lists and mappings, recursively."""
    if isinstance(value, str):
        return mask_phones_in_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value
