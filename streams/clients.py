"""The options every Kafka client takes from the settings: how it connects (TLS, SASL) for
each client library the platform uses (aiokafka under Faust and the API, kafka-python for
admin and tools, librdkafka for the bench's load generator), and a refused login or TLS
handshake turned into an error that names the setting to fix."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from citybrain.settings import Settings


class KafkaLoginError(RuntimeError):
    """The brokers refused this client's credentials or its TLS handshake."""


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _password(settings: Settings) -> str:
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        raise KafkaLoginError(
            f"CITYBRAIN_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "CITYBRAIN_KAFKA_SASL_USERNAME and CITYBRAIN_KAFKA_SASL_PASSWORD"
        )
    return settings.kafka_sasl_password.get_secret_value()


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the brokers' connections (None without TLS): the CA file of the
    settings, or the system's trust store."""
    if not uses_tls(settings):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (admin, producer, consumer), which
    aiokafka's take too."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_sasl(settings):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": _password(settings),
        }
    if uses_tls(settings):
        options["ssl_context"] = ssl_context(settings)
    return options


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's clients (the API's producer): the same names as
    kafka-python's."""
    return kafka_python_options(settings)


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials` (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=_password(settings),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context(settings),  # with one: SASL_SSL, else SASL_PLAINTEXT
    )


def librdkafka_options(settings: Settings) -> dict[str, str]:
    """Configuration of a librdkafka client (confluent-kafka)."""
    options = {"security.protocol": settings.kafka_security_protocol.lower()}
    if uses_sasl(settings):
        options |= {
            "sasl.mechanisms": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username or "",
            "sasl.password": _password(settings),
        }
    if uses_tls(settings):
        if settings.kafka_ssl_cafile is not None:
            options["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
        if not settings.kafka_ssl_check_hostname:
            options["ssl.endpoint.identification.algorithm"] = "none"
    return options


def login_error(exc: BaseException | str, settings: Settings) -> KafkaLoginError | None:
    """A refused login or TLS handshake (an exception, or what the client logged) as an
    error naming the setting; None for any other failure (the broker down, a timeout)."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    target = ", ".join(settings.kafka_bootstrap_list)
    if "authentication" in lowered or "sasl" in lowered:
        return KafkaLoginError(
            f"Kafka at {target} refused the login of CITYBRAIN_KAFKA_SASL_USERNAME="
            f"{settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): check "
            f"CITYBRAIN_KAFKA_SASL_PASSWORD. The broker said: {text}"
        )
    if (
        "socket disconnected" in lowered
        and settings.kafka_security_protocol.startswith("SASL")
        and "handshake" not in lowered
    ):
        # the broker answers a refused SCRAM login and closes the connection at once;
        # kafka-python over TLS sometimes sees only the close (the broker's log says
        # "invalid credentials")
        return KafkaLoginError(
            f"Kafka at {target} closed the connection during the login of "
            f"CITYBRAIN_KAFKA_SASL_USERNAME={settings.kafka_sasl_username!r} "
            f"({settings.kafka_sasl_mechanism}), as it does for wrong credentials: check "
            f"CITYBRAIN_KAFKA_SASL_PASSWORD. The client said: {text}"
        )
    if "certificate" in lowered or ("ssl" in lowered and "handshake" in lowered):
        return KafkaLoginError(
            f"TLS with Kafka at {target} failed: check CITYBRAIN_KAFKA_SSL_CAFILE="
            f"{settings.kafka_ssl_cafile} (the CA that signed the brokers' certificates) and "
            f"CITYBRAIN_KAFKA_SSL_CHECK_HOSTNAME. {text}"
        )
    return None


class _Refusals(logging.Handler):
    """Collects what the client library logs about refused logins and TLS handshakes (it
    retries them and then raises only a bootstrap timeout)."""

    WORDS = ("authentication", "sasl", "certificate", "handshake", "socket disconnected")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(word in text.lower() for word in self.WORDS):
            self.seen.append(text)


@contextmanager
def refused_logins(settings: Settings) -> Iterator[None]:
    """Within it, a client failure that came with a refused login or TLS handshake (raised,
    or only logged by the library before it gave up) is raised as `KafkaLoginError`."""
    refusals = _Refusals()
    loggers = [logging.getLogger(name) for name in ("kafka", "aiokafka")]
    for logger in loggers:
        logger.addHandler(refusals)
    try:
        yield
    except KafkaLoginError:
        raise
    except Exception as exc:
        refused = login_error(exc, settings)
        # what named the cause (a refused login, a certificate) before a bare disconnect
        for text in sorted(refusals.seen, key=lambda t: "socket disconnected" in t.lower()):
            refused = refused or login_error(text, settings)
        if refused is not None:
            raise refused from exc
        raise
    finally:
        for logger in loggers:
            logger.removeHandler(refusals)


def check_login(settings: Settings, timeout_s: float = 10.0) -> dict[str, Any]:
    """Connect as the settings say and ask for the cluster's metadata; the cluster's
    description, or `KafkaLoginError` naming the setting when the login or TLS is refused
    (any other failure is raised as it is)."""
    from kafka import KafkaAdminClient

    options = kafka_python_options(settings)
    with refused_logins(settings):
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_list,
            client_id="citybrain-login-check",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            **options,
        )
        try:
            cluster: dict[str, Any] = admin.describe_cluster()
        finally:
            admin.close()
    return cluster
