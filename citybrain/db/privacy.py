"""Callers' personal data (PIPL) in the database: `personal_contacts` is kept only as long as
`CITYBRAIN_RETENTION_PERSONAL_DAYS` says (enforced by every maintenance pass, in both storage
modes), and one caller's data is erased on request, the erasure recorded in
`privacy_erasures` with who, when and why (the caller named by a hash, not the number)."""

from __future__ import annotations

import hashlib
import re

import psycopg

from citybrain.settings import Settings


def expire_contacts(conn: psycopg.Connection, settings: Settings) -> int:
    """Delete contacts older than the retention; how many (0 = keep forever)."""
    days = settings.retention_personal_days
    if days <= 0:
        return 0
    cur = conn.execute(
        "DELETE FROM personal_contacts WHERE stored_at < now() - make_interval(days => %s)",
        (days,),
    )
    return cur.rowcount


def number_forms(phone: str) -> list[str]:
    """The digit strings a caller's number may be stored as (with or without 86 / 0086)."""
    digits = re.sub(r"\D", "", phone)
    if not 5 <= len(digits) <= 20:
        raise ValueError(f"{phone!r} is not a phone number")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 7:
            digits = digits[len(prefix) :]
            break
    return sorted({digits, f"86{digits}", f"0086{digits}"})


def subject_hash(phone: str) -> str:
    """The caller's number as the audit names it (a hash of its national form)."""
    return hashlib.sha256(number_forms(phone)[0].encode()).hexdigest()[:16]


def erase_caller(conn: psycopg.Connection, phone: str, operator: str, reason: str) -> int:
    """Delete every contact row of this caller and record the erasure; how many rows."""
    if not operator.strip() or not reason.strip():
        raise ValueError("an erasure needs the operator and the reason")
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM personal_contacts"
            " WHERE regexp_replace(coalesce(caller_phone, ''), '[^0-9]', '', 'g') = ANY(%s)",
            (number_forms(phone),),
        )
        erased = cur.rowcount
        conn.execute(
            "INSERT INTO privacy_erasures (operator, reason, subject_hash, rows_erased)"
            " VALUES (%s, %s, %s, %s)",
            (operator.strip(), reason.strip(), subject_hash(phone), erased),
        )
    return erased
