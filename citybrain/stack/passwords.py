"""Passwords the local stack generates for itself (keystores, the SCRAM user, the MQTT
bridge): letters and digits only.

A URL-safe token may begin with `-`: `-J...` handed to keytool is taken by the Java launcher
as a JVM option (a fresh-clone CI run failed on one: "Could not find or load main class"),
and other command-line tools read a leading `-` as an option too."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 24) -> str:
    """A random password of `length` letters and digits (24: about 143 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
