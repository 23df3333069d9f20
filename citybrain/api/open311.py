"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): the documents and the rules.

Pure (pydantic, the standard library and `xml.etree` to build XML): the HTTP layer under
`/open311/v2` parses the form, checks the api_key, and calls these functions to

- list the services (`load_services`, `services_document`),
- check a POSTed request (`validate_request` -> `ServiceRequest` or `Open311Error`s,
  `errors_document`, `http_status`),
- give it an id (`new_request_id`) and turn it into the `raw.open311` record that the feed
  `citybrain/feeds/builtin/open311.yaml` maps into a canonical event (`raw_record`),
- answer the POST (`post_response`) and GET requests / requests/{id} (`request_document`
  from a `RequestView` it fills from the database, with `open311_status`),
- render any of these lists as the spec's XML (`to_xml`); the JSON format is the same
  lists given to a JSON encoder.

Decisions where the spec leaves room are documented on each function; in short:
one jurisdiction (jurisdiction_id is ignored), no service definitions (`metadata: false`,
attribute[...] fields are ignored), every service is `realtime` (the POST returns the id),
"optional" means empty and absent are the same, unknown service codes are 404s.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import xml.etree.ElementTree as ET  # building only; nothing here parses XML
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from citybrain.config_errors import ConfigError, explain, line_of, load_yaml
from citybrain.privacy import mask_phones_in_text
from citybrain.schemas.fields import Strict, require_aware

SERVICES_FILE = Path(__file__).parent / "config" / "open311_services.yaml"

#: The GET services item fields, in the spec's order.
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)

#: The GET requests / requests/{id} item fields, in the spec's order.
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)

#: Spec: description is "free form text limited to 4,000 characters".
MAX_DESCRIPTION = 4000
#: Our limits for the other free text fields (the spec gives none).
MAX_LENGTH = {
    "address_string": 500,
    "address_id": 100,
    "email": 254,
    "device_id": 200,
    "account_id": 200,
    "first_name": 100,
    "last_name": 100,
    "phone": 40,
    "media_url": 2048,
}

#: Request ids made by `new_request_id`: safe in URLs, XML, Kafka keys and event ids.
REQUEST_ID_RE = re.compile(r"^cb-[0-9a-f]{16}$")


# --- services -----------------------------------------------------------------------------------
class Service(Strict):
    """One request type of `config/open311_services.yaml`."""

    model_config = ConfigDict(frozen=True)
    service_code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    service_name: str = Field(min_length=1)
    service_name_zh: str | None = None
    description: str = Field(min_length=1)
    metadata: Literal[False] = Field(
        False, description="No service definitions are served: no attribute[...] fields."
    )
    type: Literal["realtime"] = Field(
        "realtime", description="The POST returns the service_request_id (no tokens)."
    )
    keywords: list[str] = Field(default_factory=list)
    group: str = Field(min_length=1)
    service_notice: str | None = Field(None, description="For the POST response.")


class _ServicesFile(Strict):
    services: list[Service] = Field(min_length=1)


def load_services(path: Path = SERVICES_FILE) -> list[Service]:
    """The service list; ConfigError lines are `file:line: field: message`."""
    raw, text = load_yaml(path)
    try:
        services = _ServicesFile.model_validate(raw).services
    except ValidationError as exc:
        raise explain(path, text, exc) from exc
    seen: set[str] = set()
    for i, service in enumerate(services):
        if service.service_code in seen:
            line = line_of(text, ("services", i, "service_code")) or 1
            raise ConfigError(
                f"{path}:{line}: services.{i}.service_code: "
                f"{service.service_code!r} is listed twice"
            )
        seen.add(service.service_code)
    return services


def services_document(services: Sequence[Service]) -> list[dict[str, Any]]:
    """GET services: the spec's seven fields per service, nothing else (the Chinese name
    and the service notice are ours). Keywords are "a comma separated list"."""
    return [
        {
            "service_code": s.service_code,
            "service_name": s.service_name,
            "description": s.description,
            "metadata": s.metadata,
            "type": s.type,
            "keywords": ", ".join(s.keywords),
            "group": s.group,
        }
        for s in services
    ]


# --- errors -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Open311Error:
    """One item of the spec's error response; `description` starts with the field name."""

    code: int
    description: str


def errors_document(errors: Sequence[Open311Error]) -> list[dict[str, Any]]:
    """The spec's error array: [{"code": 400, "description": "..."}]."""
    return [{"code": e.code, "description": e.description} for e in errors]


def http_status(errors: Sequence[Open311Error]) -> int:
    """The HTTP status for an error response: the errors' code when they agree (403 missing
    or invalid api_key, 404 unknown service_code), 400 when they differ (the spec: "basically
    400 for any other error where the request can not be fulfilled as expected")."""
    codes = {e.code for e in errors}
    return codes.pop() if len(codes) == 1 else 400


# --- POST requests ------------------------------------------------------------------------------
class ServiceRequest(BaseModel):
    """A checked POST: the spec's fields (empty ones are None), stamped when it arrived."""

    model_config = ConfigDict(frozen=True)
    service_code: str
    requested_datetime: datetime
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_url: str | None = None


# Characters XML 1.0 cannot carry, plus the other C0/C1 controls; line breaks and tabs are
# allowed in the description only ("This may contain line breaks").
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[0-9+() .\-]*$")
_TEXT_FIELDS = (
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "media_url",
)


def _coordinate(value: str, field: str, bound: float, errors: list[Open311Error]) -> float | None:
    if not _NUMBER.match(value):
        errors.append(Open311Error(400, f"{field}: not a number: {value[:40]!r}"))
        return None
    number = float(value)
    if not math.isfinite(number) or not -bound <= number <= bound:
        errors.append(
            Open311Error(400, f"{field}: {value[:40]} is out of range (-{bound:g} to {bound:g})")
        )
        return None
    return number


def validate_request(
    form: Mapping[str, str], services: Sequence[Service], now: datetime
) -> ServiceRequest | list[Open311Error]:
    """Check a POST Service Request form (already decoded as UTF-8; api_key and
    jurisdiction_id are the caller's), returning the request or every error found.

    - Spec, Optional Arguments: "the response should be the same whether a parameter is
      passed and is empty or is not passed at all": values are stripped, empty ones dropped.
    - service_code: required (400) and one of ours (404: "service_code or jurisdiction_id
      was not found").
    - location: "One of lat & long or address_string or address_id"; "lat & long both need
      to be sent": lat without long (or the reverse) is an error even with an address.
      Coordinates are WGS-84 decimal degrees, lat in [-90, 90], long in [-180, 180].
    - description: at most 4,000 characters, line breaks allowed; other fields one line.
    - email: loosely `x@y.z`; phone: digits and + ( ) . - spaces; media_url: an absolute
      http(s) URL without user:password (it is published by GET requests).
    - attribute[...]: ignored. Every service has `metadata: false` (no service definition),
      so no attribute is defined or required; unknown fields are ignored too.
    - requested_datetime is `now` (tz-aware), the moment the city received the request.
    """
    require_aware(now, "now")
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str) and v.strip()}
    errors: list[Open311Error] = []

    code = values.get("service_code")
    if code is None:
        errors.append(Open311Error(400, "service_code: required (see GET services)"))
    elif code not in {s.service_code for s in services}:
        errors.append(Open311Error(404, f"service_code: unknown service code {code[:64]!r}"))

    lat_text, long_text = values.get("lat"), values.get("long")
    lat = long = None
    if lat_text is not None and long_text is None:
        errors.append(Open311Error(400, "long: required with lat (send both or neither)"))
    elif long_text is not None and lat_text is None:
        errors.append(Open311Error(400, "lat: required with long (send both or neither)"))
    if lat_text is not None:
        lat = _coordinate(lat_text, "lat", 90, errors)
    if long_text is not None:
        long = _coordinate(long_text, "long", 180, errors)
    if (
        lat_text is None
        and long_text is None
        and "address_string" not in values
        and "address_id" not in values
    ):
        errors.append(
            Open311Error(400, "location: required: send lat & long, address_string or address_id")
        )

    description = values.get("description")
    if description is not None:
        if len(description) > MAX_DESCRIPTION:
            errors.append(
                Open311Error(
                    400,
                    f"description: {len(description)} characters, the limit is {MAX_DESCRIPTION}",
                )
            )
        if _CONTROL_MULTILINE.search(description):
            errors.append(Open311Error(400, "description: contains control characters"))

    for field in _TEXT_FIELDS:
        value = values.get(field)
        if value is None:
            continue
        if len(value) > MAX_LENGTH[field]:
            errors.append(Open311Error(400, f"{field}: longer than {MAX_LENGTH[field]} characters"))
        elif _CONTROL_ONE_LINE.search(value):
            errors.append(Open311Error(400, f"{field}: contains line breaks or control characters"))

    email = values.get("email")
    if email is not None and not _EMAIL.match(email):
        errors.append(Open311Error(400, "email: not an email address"))
    phone = values.get("phone")
    if phone is not None and (not _PHONE.match(phone) or sum(ch.isdigit() for ch in phone) < 3):
        errors.append(Open311Error(400, "phone: not a phone number"))
    media_url = values.get("media_url")
    if media_url is not None:
        problem = _url_problem(media_url)
        if problem:
            errors.append(Open311Error(400, f"media_url: {problem}"))

    if errors:
        return errors
    assert code is not None
    return ServiceRequest(
        service_code=code,
        requested_datetime=now,
        lat=lat,
        long=long,
        **{f: values.get(f) for f in ("description", *_TEXT_FIELDS)},
    )


def _url_problem(url: str) -> str | None:
    if any(ch.isspace() for ch in url):
        return "must not contain spaces"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    return None


def new_request_id(idempotency_key: str | None = None, *, client_id: str = "") -> str:
    """A new service_request_id: "cb-" and 16 lower-case hex digits (`REQUEST_ID_RE`).

    Without a key: 64 random bits from `secrets`, so ids are unguessable and do not reveal
    how many requests the city gets. With a key (e.g. the client's Idempotency-Key header;
    not part of GeoReport v2): the first 64 bits of SHA-256 over client and key, so a
    retried POST gets the same id, the same Kafka key and the same canonical event id
    (`open311:<id>`), and the pipeline sees a duplicate rather than a second report. The
    key is scoped by `client_id` (the api_key's owner) so two apps never share an id; the
    caller still looks the id up and answers a retry with the stored response.
    """
    if idempotency_key is None:
        return "cb-" + secrets.token_hex(8)
    if not 1 <= len(idempotency_key) <= 200 or _CONTROL_ONE_LINE.search(idempotency_key):
        raise ValueError("an idempotency key is 1-200 characters without control characters")
    digest = hashlib.sha256(f"open311\0{client_id}\0{idempotency_key}".encode()).hexdigest()
    return "cb-" + digest[:16]


def w3c_datetime(t: datetime) -> str:
    """ISO 8601 as in the W3C note, with the offset the spec requires (`+08:00`, `Z`)."""
    text = require_aware(t, "datetime").isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def raw_record(request: ServiceRequest, request_id: str, now: datetime) -> dict[str, Any]:
    """The `raw.open311` payload (Kafka key: `request_id`) for the feed
    `citybrain/feeds/builtin/open311.yaml`, which reads service_request_id,
    requested_datetime (ISO 8601), lat, long (WGS-84), address_string, service_code,
    description, phone and media_url.

    address_id is carried for the record (the feed does not map it: a request located only
    by address_id becomes an event that needs a location). published_at is `now`, when the
    record is handed to Kafka. The submitter's email, names, device_id and account_id are
    not put on the topic: nothing downstream reads them (data minimisation); the phone is,
    because the feed keeps it as the caller's contact (masked in the event).
    """
    if not REQUEST_ID_RE.match(request_id):
        raise ValueError(f"not a request id: {request_id[:40]!r}")
    return {
        "service_request_id": request_id,
        "service_code": request.service_code,
        "requested_datetime": w3c_datetime(request.requested_datetime),
        "lat": request.lat,
        "long": request.long,
        "address_string": request.address_string,
        "address_id": request.address_id,
        "description": request.description,
        "phone": request.phone,
        "media_url": request.media_url,
        "published_at": w3c_datetime(now),
    }


def post_response(
    request_id: str, service_notice: str | None = None, account_id: str | None = None
) -> list[dict[str, Any]]:
    """POST Service Request response: the id (never a token: every service is realtime),
    the service notice ("May not be returned"; e.g. `Service.service_notice`) and account_id
    (the spec's example returns it empty)."""
    return [
        {
            "service_request_id": request_id,
            "service_notice": service_notice,
            "account_id": account_id,
        }
    ]


# --- GET requests -------------------------------------------------------------------------------
def open311_status(incident_status: str) -> str:
    """The spec's status from ours. Spec: "open: it has been reported. closed: it has been
    resolved." So `resolved` and `closed` are closed; open, dispatched, acknowledged,
    reopened (and any status added later) are open: a request is only reported closed once
    a department has resolved it."""
    return "closed" if incident_status in ("resolved", "closed") else "open"


@dataclass(frozen=True)
class RequestView:
    """What GET requests needs of one request; the HTTP layer fills it from the database.

    incident_status: the incident's status (`open311_status` maps it); status_notes: the
    department's resolve note or reject reason, if any; agency_responsible: the lead
    department's display name; updated_datetime: the last change (for a closed request,
    when it was closed, as the spec says); expected_datetime: the resolve deadline, if
    any. Datetimes must be tz-aware.
    """

    service_request_id: str
    service_code: str
    service_name: str
    incident_status: str
    requested_datetime: datetime
    updated_datetime: datetime
    status_notes: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


def _public_text(text: str | None) -> str | None:
    # GET requests needs no api_key: phone numbers in free text are masked.
    return mask_phones_in_text(text) if text else None


def request_document(view: RequestView) -> dict[str, Any]:
    """One item of GET requests / requests/{id}: the spec's seventeen fields in its order;
    absent values are null (empty elements in XML), datetimes are W3C with offset, and
    phone numbers in description and status_notes are masked (the call is public)."""
    expected = view.expected_datetime
    return {
        "service_request_id": view.service_request_id,
        "status": open311_status(view.incident_status),
        "status_notes": _public_text(view.status_notes),
        "service_name": view.service_name,
        "service_code": view.service_code,
        "description": _public_text(view.description),
        "agency_responsible": view.agency_responsible,
        "service_notice": view.service_notice,
        "requested_datetime": w3c_datetime(view.requested_datetime),
        "updated_datetime": w3c_datetime(view.updated_datetime),
        "expected_datetime": w3c_datetime(expected) if expected is not None else None,
        "address": view.address,
        "address_id": view.address_id,
        "zipcode": view.zipcode,
        "lat": view.lat,
        "long": view.long,
        "media_url": view.media_url,
    }


# --- XML ----------------------------------------------------------------------------------------
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return w3c_datetime(value)
    if isinstance(value, int | float | str):
        return _NOT_XML.sub("", str(value))
    raise TypeError(f"no XML form for {type(value).__name__}")


def to_xml(root: str, item: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    """The spec's XML: `<root><item><field>value</field>...</item>...</root>`, schemaless
    and without namespace, UTF-8 with the declaration `encoding="UTF-8"`. None is an empty
    element, booleans are true/false, datetimes W3C. Roots and items of the spec:
    services/service, service_requests/request, errors/error."""
    for name in (root, item, *(key for it in items for key in it)):
        if not _XML_NAME.match(name):
            raise ValueError(f"not an XML element name: {name!r}")
    top = ET.Element(root)
    for it in items:
        node = ET.SubElement(top, item)
        for key, value in it.items():
            ET.SubElement(node, key).text = _xml_text(value)
    body = ET.tostring(top, encoding="unicode", short_empty_elements=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8")
