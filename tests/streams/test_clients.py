"""The Kafka clients' connection options from the settings (pure): nothing extra for
PLAINTEXT, SASL and TLS for each client library, a missing password named, and a refused
login turned into an error naming the settings to fix."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError

from citybrain.settings import Settings
from citybrain.streams.clients import (
    KafkaLoginError,
    aiokafka_options,
    faust_credentials,
    kafka_python_options,
    librdkafka_options,
    login_error,
)

SASL = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "citybrain",
    "kafka_sasl_password": "s3cret",
}


def test_plaintext_adds_nothing() -> None:
    settings = Settings()
    assert kafka_python_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    assert librdkafka_options(settings) == {"security.protocol": "plaintext"}


def test_sasl_ssl_for_every_client_library() -> None:
    settings = Settings(**SASL)  # type: ignore[arg-type]
    options = kafka_python_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "citybrain",
        "s3cret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert aiokafka_options(settings)["security_protocol"] == "SASL_SSL"
    credentials = faust_credentials(settings)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert librdkafka_options(settings)["sasl.mechanisms"] == "SCRAM-SHA-512"


def test_the_ca_file_and_the_host_check() -> None:
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not ca.exists():
        pytest.skip("no system CA bundle to load")
    settings = Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=ca, kafka_ssl_check_hostname=False
    )
    context = kafka_python_options(settings)["ssl_context"]
    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED
    assert librdkafka_options(settings)["ssl.ca.location"] == str(ca)


def test_sasl_without_a_password_names_the_settings() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="citybrain")
    with pytest.raises(KafkaLoginError, match="CITYBRAIN_KAFKA_SASL_PASSWORD"):
        kafka_python_options(settings)


def test_a_refused_login_names_the_setting_and_other_failures_are_not_logins() -> None:
    settings = Settings(**SASL)  # type: ignore[arg-type]
    refused = login_error(SaslAuthenticationFailedError("Authentication failed"), settings)
    assert refused is not None
    assert "CITYBRAIN_KAFKA_SASL_PASSWORD" in str(refused)
    assert "'citybrain'" in str(refused) and "s3cret" not in str(refused)
    assert login_error(KafkaConnectionError("connection refused"), settings) is None
    bad_ca = login_error(ssl.SSLCertVerificationError("certificate verify failed"), settings)
    assert bad_ca is not None and "CITYBRAIN_KAFKA_SSL_CAFILE" in str(bad_ca)


def test_a_sasl_listener_closing_the_connection_at_login_names_the_password() -> None:
    """The broker answers a wrong SCRAM password and closes at once; over TLS kafka-python
    can see only the close. On a SASL listener that is a login refused; elsewhere it is not."""
    settings = Settings(**SASL)  # type: ignore[arg-type]
    closed = "<KafkaSSLTransport [127.0.0.1:9094<-54442]>: socket disconnected"
    refused = login_error(closed, settings)
    assert refused is not None and "CITYBRAIN_KAFKA_SASL_PASSWORD" in str(refused)
    plain = settings.model_copy(update={"kafka_security_protocol": "SSL"})
    assert login_error(closed, plain) is None


def test_a_certificate_refusal_is_named_before_a_disconnect_logged_first() -> None:
    import logging

    from citybrain.streams.clients import refused_logins

    settings = Settings(**SASL)  # type: ignore[arg-type]
    with (
        pytest.raises(KafkaLoginError, match="CITYBRAIN_KAFKA_SSL_CAFILE"),
        refused_logins(settings),
    ):
        logging.getLogger("kafka").error("<KafkaSSLTransport>: socket disconnected")
        logging.getLogger("kafka").error("SSL handshake failed: certificate verify failed")
        raise KafkaConnectionError("Unable to bootstrap")
