"""The schemas of `departments.yaml` and `routes.yaml` (who handles an incident), and the
checks across the two files. Validated with pydantic; `cross_check` returns problems with
the file and the path of the offending node, so callers can point at the line.

Routes form a tree, like Prometheus Alertmanager's: the root route matches every incident
and names the default department; a child route is only tried if its parent matched, and
the first matching child wins unless it says `continue: true`. Children inherit `lead`,
`lead_from_zone` and `helpers` from their parent when they do not set them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, PrivateAttr, field_validator, model_validator

from citybrain.schemas.fields import Strict

CODE = r"^[a-z0-9][a-z0-9-]*$"
ENV_NAME = r"^[A-Z][A-Z0-9_]*$"
LAYER = r"^jurisdiction:[a-z0-9_-]+$"
CATEGORY = r"^[a-z][a-z0-9_]*\*?$"  # a trailing `*` matches every category with that prefix
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SECRET_PARAM = re.compile(r"secret|token|key|sign|pass|auth", re.IGNORECASE)


# --- departments.yaml ----------------------------------------------------------------------
class Webhook(Strict):
    name: str = Field(pattern=CODE, description="Names the endpoint in logs and metrics.")
    url: str
    secret_env: str = Field(
        pattern=ENV_NAME,
        description="Name of the environment variable holding the signing secret (whsec_...).",
    )

    @field_validator("url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL: put the secret in secret_env")
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if _SECRET_PARAM.search(name):
                raise ValueError(
                    f"query parameter {name!r} looks like a secret: put it in secret_env"
                )
        return value


def _http_base(value: str | None) -> str | None:
    """A robot platform's host: an http(s) URL with no credentials and no query."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.username or parts.password or parts.query:
        raise ValueError("a base URL has no credentials and no query: the token is token_env")
    return value


class Robot(Strict):
    """A group robot (WeCom, DingTalk, Feishu), addressed and signed as its platform
    documents: the robot's token (WeCom's `key`, DingTalk's `access_token`, the id at the end
    of Feishu's hook URL) and its signing secret come from environment variables, never
    from this file."""

    name: str = Field(pattern=CODE, description="Names the robot in logs and metrics.")
    token_env: str = Field(
        pattern=ENV_NAME, description="Environment variable holding the robot's token."
    )
    secret_env: str | None = Field(
        None,
        pattern=ENV_NAME,
        description="Environment variable of the signing secret (DingTalk 加签, Feishu 签名校验).",
    )
    base_url: str | None = Field(
        None,
        description="The platform's host if not the public one (浙政钉, 粤政易, a test receiver).",
    )
    language: Literal["zh", "en"] = "zh"

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        return _http_base(value)


class Mailbox(Strict):
    """E-mail to the department's addresses through the SMTP server the settings name
    (`CITYBRAIN_SMTP_*`)."""

    name: str = Field(pattern=CODE, description="Names the mailbox in logs and metrics.")
    to: list[str] = Field(min_length=1)
    language: Literal["zh", "en"] = "zh"

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not EMAIL.fullmatch(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


ChannelKind = Literal["kafka", "webhook", "wecom", "dingtalk", "feishu", "email"]


class Channel(Strict):
    """One way a task reaches the department: `{kafka: true}`, `{webhook: {...}}`, a group
    robot `{wecom: {...}}` / `{dingtalk: {...}}` / `{feishu: {...}}`, or `{email: {...}}`."""

    kafka: bool = False
    webhook: Webhook | None = None
    wecom: Robot | None = None
    dingtalk: Robot | None = None
    feishu: Robot | None = None
    email: Mailbox | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Channel:
        given = [self.kafka, *(v is not None for v in self._others())]
        if sum(given) != 1:
            raise ValueError(
                "a channel is exactly one of `kafka: true`, `webhook`, `wecom`, `dingtalk`,"
                " `feishu` or `email`"
            )
        if self.wecom is not None and self.wecom.secret_env is not None:
            raise ValueError("a WeCom robot is not signed: its key (token_env) is the secret")
        return self

    def _others(self) -> tuple[object | None, ...]:
        return (self.webhook, self.wecom, self.dingtalk, self.feishu, self.email)

    @property
    def kind(self) -> ChannelKind:
        if self.kafka:
            return "kafka"
        for kind in ("webhook", "wecom", "dingtalk", "feishu", "email"):
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("validated: exactly one")

    @property
    def robot(self) -> Robot | None:
        return self.wecom or self.dingtalk or self.feishu


class Supervisor(Strict):
    name: str = Field(min_length=1, description="A person or role, e.g. 值班长.")
    escalate_to: str | None = Field(
        None, pattern=CODE, description="Department to escalate to when the task is overdue."
    )


class Department(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    supervisor: Supervisor
    operations_center: bool = Field(
        False, description="The city operations center: default, fallback and manual assignment."
    )


class DepartmentsFile(Strict):
    """The schema of `departments.yaml`."""

    departments: list[Department] = Field(min_length=1)

    def by_code(self) -> dict[str, Department]:
        return {d.code: d for d in self.departments}

    @property
    def operations_center(self) -> Department:
        return next(d for d in self.departments if d.operations_center)


# --- routes.yaml ---------------------------------------------------------------------------
class JurisdictionMatch(Strict):
    layer: str = Field(pattern=LAYER, description="e.g. jurisdiction:gas")
    zones: list[str] | None = Field(
        None, min_length=1, description="Zone codes; left out: any zone of the layer."
    )


class Polygon(Strict):
    """A GeoJSON Polygon or MultiPolygon in WGS-84 (lon, lat)."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]
    _geometry: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _valid(self) -> Polygon:
        import shapely
        from shapely.geometry import shape

        try:
            geom = shape({"type": self.type, "coordinates": self.coordinates})
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"not a GeoJSON {self.type}: {exc}") from exc
        if geom.is_empty:
            raise ValueError("the polygon is empty")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValueError("coordinates are not WGS-84 [lon, lat] degrees")
        if not geom.is_valid:
            raise ValueError(f"invalid polygon: {shapely.is_valid_reason(geom)}")
        shapely.prepare(geom)
        self._geometry = geom
        return self

    def covers(self, lon: float, lat: float) -> bool:
        import shapely

        return bool(self._geometry.covers(shapely.Point(lon, lat)))


class Route(Strict):
    """One node of the routing tree. Every matcher given must match (and the parent's)."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str | None = None
    # matchers
    categories: list[str] | None = Field(None, min_length=1)
    priority_at_most: int | None = Field(None, ge=1, le=4)
    district: list[str] | None = Field(None, min_length=1)
    jurisdiction: JurisdictionMatch | None = None
    polygon: Polygon | None = None
    # settings (inherited when unset)
    lead: str | None = Field(None, pattern=CODE)
    lead_from_zone: bool | None = None
    helpers: list[str] | None = None
    # tree
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str] | None) -> list[str] | None:
        for category in value or []:
            if not re.match(CATEGORY, category):
                raise ValueError(f"{category!r} is not a category like gas_leak or device_*")
        return value

    @field_validator("helpers")
    @classmethod
    def _helpers(cls, value: list[str] | None) -> list[str] | None:
        for code in value or []:
            if not re.match(CODE, code):
                raise ValueError(f"{code!r} is not a department code")
        return value

    @model_validator(mode="after")
    def _one_lead(self) -> Route:
        if self.lead is not None and self.lead_from_zone:
            raise ValueError("give `lead` or `lead_from_zone: true`, not both")
        return self

    @property
    def has_matchers(self) -> bool:
        return any(
            m is not None
            for m in (
                self.categories,
                self.priority_at_most,
                self.district,
                self.jurisdiction,
                self.polygon,
            )
        )


class RoutesFile(Strict):
    """The schema of `routes.yaml`."""

    zone_departments: dict[str, dict[str, str]] = Field(
        {},
        description="layer -> zone code -> department code, for `lead_from_zone`; a zone "
        "missing here is handled by the department with the zone's own code.",
    )
    route: Route

    @field_validator("zone_departments")
    @classmethod
    def _layers(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for layer in value:
            if not re.match(LAYER, layer):
                raise ValueError(f"{layer!r} is not a layer like jurisdiction:gas")
        return value


# --- checks across the files ---------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A problem found by `cross_check`: which file, the path of the node, what is wrong."""

    file: Literal["departments", "routes"]
    loc: tuple[str | int, ...]
    message: str


def zone_department(routes: RoutesFile, layer: str, zone: str) -> str:
    """The department handling `zone` of `layer` (the mapping, else the zone's own code)."""
    return routes.zone_departments.get(layer, {}).get(zone, zone)


def cross_check(departments: DepartmentsFile, routes: RoutesFile) -> list[Problem]:
    """Unique codes, exactly one operations center, a default route, known departments."""
    problems: list[Problem] = []
    codes: set[str] = set()
    for i, dept in enumerate(departments.departments):
        if dept.code in codes:
            problems.append(
                Problem("departments", ("departments", i, "code"), f"duplicate {dept.code!r}")
            )
        codes.add(dept.code)
    centers = [i for i, d in enumerate(departments.departments) if d.operations_center]
    if not centers:
        problems.append(
            Problem(
                "departments",
                ("departments",),
                "no department has `operations_center: true` (exactly one must)",
            )
        )
    for i in centers[1:]:
        problems.append(
            Problem(
                "departments",
                ("departments", i, "operations_center"),
                "a second operations center (exactly one department may have it)",
            )
        )
    for i, dept in enumerate(departments.departments):
        target = dept.supervisor.escalate_to
        if target is not None and target not in codes:
            problems.append(
                Problem(
                    "departments",
                    ("departments", i, "supervisor", "escalate_to"),
                    f"unknown department {target!r}",
                )
            )
        elif target == dept.code:
            problems.append(
                Problem(
                    "departments",
                    ("departments", i, "supervisor", "escalate_to"),
                    "a department cannot escalate to itself",
                )
            )

    for layer, zones in routes.zone_departments.items():
        for zone, code in zones.items():
            if code not in codes:
                problems.append(
                    Problem(
                        "routes",
                        ("zone_departments", layer, zone),
                        f"unknown department {code!r}",
                    )
                )

    root = routes.route
    if root.lead is None:
        problems.append(
            Problem("routes", ("route",), "the root route needs `lead` (the default department)")
        )
    if root.has_matchers or root.continue_ or root.lead_from_zone:
        problems.append(
            Problem(
                "routes",
                ("route",),
                "the root route matches every incident: no matchers, continue or lead_from_zone",
            )
        )
    names: set[str] = set()

    def visit(route: Route, loc: tuple[str | int, ...], layer: str | None) -> None:
        if route.name is not None:
            if route.name in names:
                problems.append(Problem("routes", (*loc, "name"), f"duplicate {route.name!r}"))
            names.add(route.name)
        if route.lead is not None and route.lead not in codes:
            problems.append(Problem("routes", (*loc, "lead"), f"unknown department {route.lead!r}"))
        for j, helper in enumerate(route.helpers or []):
            if helper not in codes:
                problems.append(
                    Problem("routes", (*loc, "helpers", j), f"unknown department {helper!r}")
                )
        if route.jurisdiction is not None:
            layer = route.jurisdiction.layer
        if route.lead_from_zone:
            if layer is None:
                problems.append(
                    Problem(
                        "routes",
                        (*loc, "lead_from_zone"),
                        "needs a `jurisdiction` matcher on this route or a parent",
                    )
                )
            elif route.jurisdiction is not None and route.jurisdiction.zones is not None:
                for j, zone in enumerate(route.jurisdiction.zones):
                    code = zone_department(routes, layer, zone)
                    if code not in codes:
                        problems.append(
                            Problem(
                                "routes",
                                (*loc, "jurisdiction", "zones", j),
                                f"zone {zone!r} has no department (add it to "
                                f"zone_departments or a department coded {zone!r})",
                            )
                        )
        for j, child in enumerate(route.routes):
            visit(child, (*loc, "routes", j), layer)

    visit(root, ("route",), None)
    return problems
