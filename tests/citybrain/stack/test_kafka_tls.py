"""The local stack's TLS material is made by the real keytool whatever the password looks
like (one beginning with -J is a JVM option on a command line), and never shows it to `ps`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from citybrain.settings import Settings
from citybrain.stack.kafka_tls import ensure_tls, tls_dir
from citybrain.stack.passwords import ALPHABET, generate_password

KEYTOOL = shutil.which("keytool")


@pytest.mark.parametrize("password", ["-J_kuNMOYGxp6Xgc4TX4I9Rc", "-storepass", "plain123"])
def test_a_keystore_is_made_whatever_the_password_begins_with(
    tmp_path: Path, password: str
) -> None:
    settings = Settings(data_dir=tmp_path)
    folder = tls_dir(settings)
    folder.mkdir(parents=True)
    (folder / "keystore.password").write_text(password)
    assert KEYTOOL is not None, "no keytool: the stack's Java is missing (bootstrap installs it)"
    tls = ensure_tls(settings, KEYTOOL, ("127.0.0.1",))
    assert tls.password == password
    listed = subprocess.run(
        [KEYTOOL, "-list", "-keystore", str(tls.keystore), "-storetype", "PKCS12",
         "-storepass:env", "P"],
        env={"P": password},
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    assert "broker" in listed.stdout and "ca" in listed.stdout


def test_generated_passwords_are_letters_and_digits_and_differ() -> None:
    made = {generate_password() for _ in range(200)}
    assert len(made) == 200
    assert all(len(p) == 24 and set(p) <= set(ALPHABET) for p in made)
