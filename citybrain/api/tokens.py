"""API tokens: `cbt_<id>_<secret>`; only the secret's SHA-256 is stored (pure).

The secret is 32 random bytes, so a fast hash is enough (nothing to brute-force), and the
id lets the server find the row without comparing against every hash. Rotating a
department's token creates a new one and revokes the old ones.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

Role = Literal["department", "operations", "open311", "ingest"]
TOKEN_RE = re.compile(r"^cbt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewToken:
    plain: str  # shown once, never stored
    token_id: str
    token_hash: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: a department (sees its own tasks), the operations center (sees
    everything), an Open311 client application, or a vendor writing one feed (`ingest`:
    only `POST /ingest/v1/{feed}`)."""

    token_id: str
    role: Role
    department: str | None
    label: str = ""  # whose token it is, as it was created (a person, a desk, a system)
    feed: str | None = None  # the one feed an ingest token writes

    @property
    def actor(self) -> str:
        """How the caller is recorded on what they decide: the token's label and id."""
        label = self.label.strip()[:120]  # the contracts keep an actor under 200 characters
        return f"{label} (api:{self.token_id})" if label else f"api:{self.token_id}"

    def may_see(self, department: str) -> bool:
        return self.role == "operations" or (
            self.role == "department" and self.department == department
        )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(f"cbt_{token_id}_{secret}", token_id, hash_secret(secret))


def parse(plain: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None."""
    m = TOKEN_RE.match(plain.strip())
    return (m[1], m[2]) if m else None


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
