"""The local stack's SASL_SSL material: a CA and a broker certificate made with the JDK's
`keytool` (Java is already needed for Kafka), and the SCRAM-SHA-512 login of the platform.

Everything lives under `<data_dir>/kafka-tls/` (the data folder, never the repository):
`ca.pem` (what clients trust: `CITYBRAIN_KAFKA_SSL_CAFILE`), `broker.p12` (the brokers'
keystore) and `client.env` (the settings a client connects with, the password included,
readable by the owner only). The password is the settings' `CITYBRAIN_KAFKA_SASL_PASSWORD`
when set, else generated once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from citybrain.settings import Settings
from citybrain.stack.kafka_config import Tls
from citybrain.stack.passwords import generate_password
from citybrain.stack.process import StackError

DEFAULT_USER = "citybrain"
#: the environment variable keytool reads the keystores' password from
PASSWORD_ENV = "CITYBRAIN_KEYSTORE_PASSWORD"  # noqa: S105 (a variable name)


def tls_dir(settings: Settings) -> Path:
    return (settings.data_dir / "kafka-tls").resolve()


def _secret_file(path: Path, value: str) -> None:
    path.write_text(value, encoding="utf-8")
    path.chmod(0o600)


def ensure_tls(settings: Settings, keytool: str, hosts: tuple[str, ...]) -> Tls:
    """The CA and the brokers' keystore, made once (`hosts` go into the certificate's
    subject alternative names)."""
    folder = tls_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    password_file = folder / "keystore.password"
    if not password_file.exists():
        _secret_file(password_file, generate_password())
    password = password_file.read_text(encoding="utf-8").strip()
    keystore = folder / "broker.p12"
    if keystore.exists() and (folder / "ca.pem").exists():
        return Tls(keystore, password)
    for stale in ("ca.p12", "broker.p12", "broker.csr", "broker.pem", "ca.pem"):
        (folder / stale).unlink(missing_ok=True)
    names = ",".join(f"ip:{h}" if h[0].isdigit() else f"dns:{h}" for h in (*hosts, "localhost"))
    # the password by environment, never on the command line (where `ps` shows it, and where
    # one beginning with -J is a JVM option to the Java launcher)
    store = ["-storetype", "PKCS12", "-storepass:env", PASSWORD_ENV, "-keypass:env", PASSWORD_ENV]
    steps = [
        ["-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650",
         "-dname", "CN=citybrain local CA", "-ext", "bc:c", "-ext", "KU=keyCertSign,cRLSign",
         "-keystore", "ca.p12", *store],
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", "-file", "ca.pem", *store],
        ["-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "3650", "-dname", "CN=localhost", "-keystore", "broker.p12", *store],
        ["-certreq", "-alias", "broker", "-keystore", "broker.p12", "-file", "broker.csr",
         *store],
        ["-gencert", "-alias", "ca", "-keystore", "ca.p12", "-infile", "broker.csr",
         "-outfile", "broker.pem", "-rfc", "-validity", "3650", "-ext", f"SAN={names}",
         "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth", *store],
        ["-importcert", "-alias", "ca", "-file", "ca.pem", "-keystore", "broker.p12",
         "-noprompt", *store],
        ["-importcert", "-alias", "broker", "-file", "broker.pem", "-keystore", "broker.p12",
         "-noprompt", *store],
    ]  # fmt: skip
    for args in steps:
        proc = subprocess.run(
            [keytool, *args],
            cwd=folder,
            env={**os.environ, PASSWORD_ENV: password},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"kafka TLS: keytool {args[0]} failed: {proc.stdout}{proc.stderr}")
    return Tls(keystore, password)


def sasl_login(settings: Settings) -> tuple[str, str]:
    """The platform's SCRAM user and password: the settings', else `citybrain` and a
    password generated once for this data folder."""
    user = settings.kafka_sasl_username or DEFAULT_USER
    if settings.kafka_sasl_password is not None:
        return user, settings.kafka_sasl_password.get_secret_value()
    folder = tls_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "sasl.password"
    if not stored.exists():
        _secret_file(stored, generate_password())
    return user, stored.read_text(encoding="utf-8").strip()


def add_scram_user(settings: Settings, bootstrap: list[str], user: str, password: str) -> None:
    """Create (or reset) the SCRAM-SHA-512 credential over the PLAINTEXT listener."""
    from kafka import KafkaAdminClient
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="citybrain-stack")
    try:
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)]
        )
    finally:
        admin.close()
    if errors.get(user):
        raise StackError(f"kafka: creating the SCRAM user {user!r} failed: {errors[user]}")


def write_client_env(settings: Settings, sasl_bootstrap: str, user: str, password: str) -> Path:
    """The settings a client connects with over SASL_SSL, as an env file."""
    path = tls_dir(settings) / "client.env"
    _secret_file(
        path,
        "\n".join(
            [
                f"CITYBRAIN_KAFKA_BOOTSTRAP_SERVERS={sasl_bootstrap}",
                "CITYBRAIN_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                "CITYBRAIN_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
                f"CITYBRAIN_KAFKA_SASL_USERNAME={user}",
                f"CITYBRAIN_KAFKA_SASL_PASSWORD={password}",
                f"CITYBRAIN_KAFKA_SSL_CAFILE={tls_dir(settings) / 'ca.pem'}",
            ]
        )
        + "\n",
    )
    return path


def client_settings(settings: Settings, sasl_bootstrap: str) -> Settings:
    """`settings` connecting over SASL_SSL as the platform's user (tests, tools)."""
    user, password = sasl_login(settings)
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": sasl_bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": _secret(password),
            "kafka_ssl_cafile": tls_dir(settings) / "ca.pem",
        }
    )


def _secret(value: str) -> object:
    from pydantic import SecretStr

    return SecretStr(value)
