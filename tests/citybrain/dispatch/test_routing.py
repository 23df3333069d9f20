"""Routing, table by table: the shipped Shanghai routes, inheritance, continue, polygons,
the fallback, rejections, and configuration errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from citybrain.config_errors import ConfigError
from citybrain.dispatch.routing import (
    DEPARTMENTS_FILE,
    ROUTES_FILE,
    RouteFacts,
    Routing,
    default_routing,
    explain,
    load_routing,
)

PACK = Path(__file__).parents[3] / "citybrain" / "geo" / "packs" / "shanghai" / "pack.yaml"
GAS = "jurisdiction:gas"
DRAIN = "jurisdiction:drainage"
PUDONG = {GAS: "gas-pudong", DRAIN: "drain-pudong"}
HUANGPU = {GAS: "gas-dazhong", DRAIN: "drain-puxi-central"}
MINHANG = {GAS: "gas-baisite", DRAIN: "drain-suburban-south"}

DEPARTMENTS = """\
departments:
  - code: ops
    name: 城运中心
    operations_center: true
    channels: [{kafka: true}]
    supervisor: {name: 值班长}
  - code: a
    name: A
    channels: [{kafka: true}]
    supervisor: {name: 班长, escalate_to: ops}
  - code: b
    name: B
    channels: [{kafka: true}]
    supervisor: {name: 班长}
  - code: c
    name: C
    channels:
      - kafka: true
      - webhook: {name: c-hook, url: "https://c.example/hook", secret_env: C_SECRET}
    supervisor: {name: 班长}
"""


def routing(tmp_path: Path, routes: str, departments: str = DEPARTMENTS) -> Routing:
    return load_routing(*write(tmp_path, routes, departments))


def write(tmp_path: Path, routes: str, departments: str = DEPARTMENTS) -> tuple[Path, Path]:
    d, r = tmp_path / "departments.yaml", tmp_path / "routes.yaml"
    d.write_text(departments, encoding="utf-8")
    r.write_text(routes, encoding="utf-8")
    return d, r


def config_error(tmp_path: Path, routes: str, departments: str = DEPARTMENTS) -> str:
    with pytest.raises(ConfigError) as info:
        routing(tmp_path, routes, departments)
    return str(info.value)


# --- the shipped configuration ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("category", "priority", "district", "zones", "lead", "helpers"),
    [
        ("fire_smoke", 2, "310115", PUDONG, "fire", ()),
        ("fire_smoke", 1, "310115", PUDONG, "fire", ("police",)),
        ("fire_smoke", 1, None, {}, "fire", ("police",)),
        ("gas_leak", 2, "310115", PUDONG, "gas-pudong", ()),
        ("gas_leak", 3, "310101", HUANGPU, "gas-dazhong", ()),
        ("gas_leak", 1, "310112", MINHANG, "gas-baisite", ("fire", "police")),
        ("gas_leak", 1, "310113", {GAS: "gas-shibei"}, "gas-shibei", ("fire", "police")),
        ("gas_leak", 2, None, {}, "ops-center", ()),  # unlocated: the center assigns
        ("gas_leak", 1, None, {}, "ops-center", ("fire", "police")),
        ("flooding", 2, "310115", PUDONG, "drain-pudong", ()),
        ("water_level", 3, "310101", HUANGPU, "drain-puxi-central", ()),
        ("flooding", 3, "310112", MINHANG, "drain-suburban-south", ()),
        ("flooding", 3, "310113", {DRAIN: "drain-suburban-north"}, "drain-suburban-north", ()),
        ("flooding", 3, None, {}, "ops-center", ()),
        ("manhole", 2, "310115", PUDONG, "municipal", ()),
        ("road_damage", 3, "310101", HUANGPU, "municipal", ()),
        ("streetlight_out", 4, "310115", PUDONG, "streetlight", ()),
        ("cable_theft", 2, "310115", PUDONG, "streetlight", ("police",)),
        ("noise", 4, "310101", HUANGPU, "environment", ()),
        ("air_quality", 3, "310115", PUDONG, "environment", ()),
        ("garbage", 3, "310115", PUDONG, "sanitation", ()),
        ("device_fault", 3, "310115", PUDONG, "iot-ops", ()),
        ("device_offline", 4, None, {}, "iot-ops", ()),
        ("other", 3, "310115", PUDONG, "ops-center", ()),
    ],
)
def test_shipped_routes(
    category: str,
    priority: int,
    district: str | None,
    zones: dict[str, str],
    lead: str,
    helpers: tuple[str, ...],
) -> None:
    decision = default_routing().route(RouteFacts(category, priority, district, zones))
    assert (decision.lead, decision.helpers) == (lead, helpers)
    assert decision.fallback == (category == "other")
    assert decision.path[0] == "root"


def test_shipped_zone_mapping_covers_the_pack() -> None:
    pack = yaml.safe_load(PACK.read_text(encoding="utf-8"))
    zones = {g["layer"]: {z["code"] for z in g["zones"]} for g in pack["jurisdictions"]}
    mapping = default_routing().routes.zone_departments
    assert {layer: set(m) for layer, m in mapping.items()} == zones


def test_shipped_departments() -> None:
    r = default_routing()
    assert r.operations_center == "ops-center"
    assert r.by_code["ops-center"].name == "城运中心"
    webhooks = [c.webhook for d in r.departments.departments for c in d.channels if c.webhook]
    assert len(webhooks) >= 2
    assert all(w.secret_env.isupper() for w in webhooks)
    assert all(any(c.kafka for c in d.channels) for d in r.departments.departments)
    assert DEPARTMENTS_FILE.is_file() and ROUTES_FILE.is_file()


# --- rejection: the next route, then the operations center ----------------------------------
@pytest.mark.parametrize(
    ("category", "priority", "zones", "exclude", "lead", "helpers", "fallback"),
    [
        # the gas company rejects: the center assigns, fire and police still help at p1
        ("gas_leak", 1, PUDONG, {"gas-pudong"}, "ops-center", ("fire", "police"), False),
        ("gas_leak", 2, PUDONG, {"gas-pudong"}, "ops-center", (), False),
        # a helper that rejected is dropped
        ("fire_smoke", 1, PUDONG, {"police"}, "fire", (), False),
        # nothing left: the operations center, by hand
        ("fire_smoke", 2, PUDONG, {"fire"}, "ops-center", (), True),
        ("manhole", 2, PUDONG, {"municipal", "ops-center"}, "ops-center", (), True),
    ],
)
def test_shipped_rejections(
    category: str,
    priority: int,
    zones: dict[str, str],
    exclude: set[str],
    lead: str,
    helpers: tuple[str, ...],
    fallback: bool,
) -> None:
    facts = RouteFacts(category, priority, "310115", zones)
    decision = default_routing().route(facts, exclude=frozenset(exclude))
    assert (decision.lead, decision.helpers, decision.fallback) == (lead, helpers, fallback)


TREE = """\
route:
  lead: ops
  routes:
    - name: first
      categories: [x]
      lead: a
      helpers: [c]
      routes:
        - name: urgent
          priority_at_most: 1
          helpers: [b]
        - name: north
          district: ["310113"]
        - name: cleared
          district: ["310112"]
          helpers: []
    - name: second
      categories: [x, y*]
      lead: b
"""


@pytest.mark.parametrize(
    ("category", "priority", "district", "exclude", "path", "lead", "helpers", "fallback"),
    [
        ("x", 1, None, (), ("root", "first", "urgent"), "a", ("b",), False),  # lead inherited
        ("x", 2, "310113", (), ("root", "first", "north"), "a", ("c",), False),  # both inherited
        ("x", 2, "310112", (), ("root", "first", "cleared"), "a", (), False),  # helpers cleared
        ("x", 2, None, (), ("root", "first"), "a", ("c",), False),  # no child: the route itself
        ("y_any", 2, None, (), ("root", "second"), "b", (), False),  # prefix pattern
        ("x", 1, None, ("a",), ("root", "second"), "b", (), False),  # next route
        ("x", 1, None, ("a", "b"), ("root",), "ops", (), True),  # the default
        ("x", 1, None, ("a", "b", "ops"), ("root",), "ops", (), True),  # never nowhere
        ("z", 1, None, (), ("root",), "ops", (), True),
    ],
)
def test_tree_inheritance_and_exclusion(
    tmp_path: Path,
    category: str,
    priority: int,
    district: str | None,
    exclude: tuple[str, ...],
    path: tuple[str, ...],
    lead: str,
    helpers: tuple[str, ...],
    fallback: bool,
) -> None:
    r = routing(tmp_path, TREE)
    d = r.route(RouteFacts(category, priority, district), exclude=frozenset(exclude))
    assert (d.path, d.lead, d.helpers, d.fallback) == (path, lead, helpers, fallback)


CONTINUE = """\
route:
  lead: ops
  routes:
    - name: one
      categories: [x]
      lead: a
      continue: true
    - name: two
      categories: [y]
      lead: c
    - name: three
      priority_at_most: 2
      lead: b
      helpers: [c]
    - name: four
      lead: c
"""


@pytest.mark.parametrize(
    ("category", "priority", "exclude", "lead", "helpers", "continued"),
    [
        ("x", 1, (), "a", ("b", "c"), (("root", "three"),)),  # a leads, three's people help
        ("x", 3, (), "a", ("c",), (("root", "four"),)),
        ("y", 1, (), "c", (), ()),  # two has no continue: stops there
        ("x", 1, ("a",), "b", ("c",), ()),  # one rejected: three decides
    ],
)
def test_continue(
    tmp_path: Path,
    category: str,
    priority: int,
    exclude: tuple[str, ...],
    lead: str,
    helpers: tuple[str, ...],
    continued: tuple[tuple[str, ...], ...],
) -> None:
    d = routing(tmp_path, CONTINUE).route(RouteFacts(category, priority), frozenset(exclude))
    assert (d.lead, d.helpers, d.continued) == (lead, helpers, continued)


POLYGON = """\
route:
  lead: ops
  routes:
    - name: lujiazui
      polygon:
        type: Polygon
        coordinates: [[[121.49, 31.23], [121.52, 31.23], [121.52, 31.25], [121.49, 31.25],
                       [121.49, 31.23]]]
      lead: a
"""


@pytest.mark.parametrize(
    ("lon", "lat", "lead"),
    [
        (121.50, 31.24, "a"),
        (121.49, 31.24, "a"),  # on the edge counts as inside
        (121.47, 31.24, "ops"),
        (None, None, "ops"),  # no coordinates: the polygon cannot match
    ],
)
def test_polygon(tmp_path: Path, lon: float | None, lat: float | None, lead: str) -> None:
    d = routing(tmp_path, POLYGON).route(RouteFacts("x", 3, lon=lon, lat=lat))
    assert d.lead == lead


ZONES = """\
zone_departments:
  "jurisdiction:gas": {z1: a}
route:
  lead: ops
  routes:
    - name: gas
      jurisdiction: {layer: "jurisdiction:gas", zones: [z1, b]}
      lead_from_zone: true
      routes:
        - name: gas-b
          district: ["310115"]
          lead: c
"""


@pytest.mark.parametrize(
    ("zones", "district", "lead", "path"),
    [
        ({GAS: "z1"}, None, "a", ("root", "gas")),  # mapped
        ({GAS: "b"}, None, "b", ("root", "gas")),  # a zone with a department's own code
        ({GAS: "b"}, "310115", "c", ("root", "gas", "gas-b")),  # a child's lead wins
        ({GAS: "z9"}, None, "ops", ("root",)),  # zone not in the list
        ({}, None, "ops", ("root",)),
    ],
)
def test_lead_from_zone(
    tmp_path: Path,
    zones: dict[str, str],
    district: str | None,
    lead: str,
    path: tuple[str, ...],
) -> None:
    d = routing(tmp_path, ZONES).route(RouteFacts("x", 3, district, zones))
    assert (d.lead, d.path) == (lead, path)


# --- facts from events and incidents ---------------------------------------------------------
def test_facts_from_event_json() -> None:
    event = {
        "schema": "citybrain.event/1",
        "category": "gas_leak",
        "severity": 1,
        "location": {
            "status": "located",
            "lon": 121.5,
            "lat": 31.22,
            "district": "310115",
            "jurisdiction": PUDONG,
        },
    }
    facts = RouteFacts.from_event_json(json.loads(json.dumps(event)))
    assert facts == RouteFacts("gas_leak", 1, "310115", PUDONG, 121.5, 31.22)
    incident = {"category": "manhole", "priority": 2, "district": "310101"}
    assert RouteFacts.from_event_json(incident) == RouteFacts("manhole", 2, "310101")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"severity": 1}, "no category"),
        ({"category": "x"}, "neither priority nor severity"),
        ({"category": "x", "severity": 7}, "between 1 and 4"),
        ({"category": "x", "severity": 1, "location": {"lon": "east"}}, "not a number"),
    ],
)
def test_facts_from_bad_event_json(event: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteFacts.from_event_json(event)


def test_facts_from_incident() -> None:
    incident = SimpleNamespace(
        category="flooding", priority=2, district="310115", lon=121.5, lat=31.2
    )
    facts = RouteFacts.from_incident(incident, jurisdiction=PUDONG)
    assert default_routing().route(facts).lead == "drain-pudong"


# --- explain -----------------------------------------------------------------------------------
def test_explain_names_the_route_and_why() -> None:
    facts = RouteFacts("gas_leak", 1, "310115", PUDONG)
    text = explain(default_routing().route(facts))
    assert "root > gas > gas-zone > gas-zone-urgent" in text
    assert "gas-pudong (浦东燃气)" in text
    assert "fire (消防救援支队)" in text
    assert "category gas_leak is not in [fire_smoke]" in text
    assert "priority 1 <= 1" in text
    assert "zone gas-pudong of jurisdiction:gas" in text


def test_explain_fallback_and_rejection() -> None:
    r = default_routing()
    text = r.explain(r.route(RouteFacts("fire_smoke", 2), frozenset({"fire"})))
    assert "[fallback]" in text
    assert "rejected: fire" in text
    assert "fire already rejected the task" in text
    assert "no other route matched: default department ops-center" in text
    text = r.explain(r.route(RouteFacts("fire_smoke", 2), frozenset({"fire", "ops-center"})))
    assert "ops-center (operations center) assigns it by hand" in text


# --- configuration errors point at the file and line -------------------------------------------
@pytest.mark.parametrize(
    ("routes", "departments", "where", "message"),
    [
        (  # unknown lead
            "route:\n  lead: ops\n  routes:\n    - categories: [x]\n      lead: nobody\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.0.lead",
            "unknown department 'nobody'",
        ),
        (  # unknown helper
            "route:\n  lead: ops\n  routes:\n    - name: r\n      helpers: [a, ghost]\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.0.helpers.1",
            "unknown department 'ghost'",
        ),
        (  # unknown key
            "route:\n  lead: ops\n  routes:\n    - name: r\n      categorie: [x]\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.0.categorie",
            "Extra inputs are not permitted",
        ),
        (  # no default
            "route:\n  routes:\n    - {name: r, lead: a}\n",
            DEPARTMENTS,
            "routes.yaml:1: route",
            "needs `lead`",
        ),
        (  # the root has a matcher
            "route:\n  lead: ops\n  categories: [x]\n",
            DEPARTMENTS,
            "routes.yaml:1: route",
            "matches every incident",
        ),
        (  # lead_from_zone without a layer
            "route:\n  lead: ops\n  routes:\n    - name: r\n      lead_from_zone: true\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.0.lead_from_zone",
            "needs a `jurisdiction` matcher",
        ),
        (  # a zone with no department
            "route:\n  lead: ops\n  routes:\n    - name: r\n      lead_from_zone: true\n"
            "      jurisdiction:\n        layer: 'jurisdiction:gas'\n        zones: [a, z]\n",
            DEPARTMENTS,
            "routes.yaml:8: route.routes.0.jurisdiction.zones.1",
            "zone 'z' has no department",
        ),
        (  # a zone mapped to an unknown department
            "zone_departments:\n  'jurisdiction:gas':\n    z: nobody\nroute: {lead: ops}\n",
            DEPARTMENTS,
            "routes.yaml:3: zone_departments.jurisdiction:gas.z",
            "unknown department 'nobody'",
        ),
        (  # duplicate route names
            "route:\n  lead: ops\n  routes:\n    - {name: r, lead: a}\n    - {name: r, lead: b}\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.1.name",
            "duplicate 'r'",
        ),
        (  # a bad polygon
            "route:\n  lead: ops\n  routes:\n    - name: r\n      polygon:\n"
            "        type: Polygon\n        coordinates: [[[3000, 1], [3001, 1], [3001, 2]]]\n",
            DEPARTMENTS,
            "routes.yaml:5: route.routes.0.polygon",
            "not WGS-84 [lon, lat] degrees",
        ),
        (  # both lead and lead_from_zone
            "route:\n  lead: ops\n  routes:\n    - {name: r, lead: a, lead_from_zone: true}\n",
            DEPARTMENTS,
            "routes.yaml:4: route.routes.0",
            "not both",
        ),
        (  # escalation to an unknown department
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("escalate_to: ops", "escalate_to: nowhere"),
            "departments.yaml:10: departments.1.supervisor.escalate_to",
            "unknown department 'nowhere'",
        ),
        (  # two operations centers
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("name: A\n", "name: A\n    operations_center: true\n"),
            "departments.yaml:9: departments.1.operations_center",
            "a second operations center",
        ),
        (  # no operations center
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("    operations_center: true\n", ""),
            "departments.yaml:1: departments",
            "no department has `operations_center: true`",
        ),
        (  # duplicate codes
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("code: b", "code: a"),
            "departments.yaml:11: departments.2.code",
            "duplicate 'a'",
        ),
        (  # a secret in the file
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("secret_env: C_SECRET", "secret: whsec_abc"),
            "departments.yaml:19: departments.3.channels.1.webhook.secret",
            "Extra inputs are not permitted",
        ),
        (  # a secret in the URL
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("c.example/hook", "c.example/hook?token=abc"),
            "departments.yaml:19: departments.3.channels.1.webhook.url",
            "looks like a secret",
        ),
        (  # an env var name that is not one
            "route: {lead: ops}\n",
            DEPARTMENTS.replace("C_SECRET", "whsec_abc"),
            "departments.yaml:19: departments.3.channels.1.webhook.secret_env",
            "should match pattern",
        ),
        (  # a channel that is neither
            "route: {lead: ops}\n",
            DEPARTMENTS.replace(
                "channels: [{kafka: true}]\n    supervisor: {name: 班长}\n",
                "channels: [{kafka: false}]\n    supervisor: {name: 班长}\n",
            ),
            "departments.yaml:13: departments.2.channels.0",
            "exactly one of `kafka: true`, `webhook`",
        ),
        (  # a WeCom robot has no signing: a secret there is a mistake
            "route: {lead: ops}\n",
            DEPARTMENTS.replace(
                "channels: [{kafka: true}]\n    supervisor: {name: 班长}\n",
                "channels: [{wecom: {name: w, token_env: W_KEY, secret_env: W_SECRET}}]\n"
                "    supervisor: {name: 班长}\n",
            ),
            "departments.yaml:13: departments.2.channels.0",
            "a WeCom robot is not signed",
        ),
        (  # a robot's token is never in the file
            "route: {lead: ops}\n",
            DEPARTMENTS.replace(
                "channels: [{kafka: true}]\n    supervisor: {name: 班长}\n",
                "channels: [{dingtalk: {name: d, token: abc}}]\n    supervisor: {name: 班长}\n",
            ),
            "departments.yaml:13: departments.2.channels.0.dingtalk",
            "token",
        ),
        (  # a base URL carrying a query (a token) is refused
            "route: {lead: ops}\n",
            DEPARTMENTS.replace(
                "channels: [{kafka: true}]\n    supervisor: {name: 班长}\n",
                "channels: [{feishu: {name: f, token_env: F_HOOK,"
                " base_url: 'https://open.feishu.cn/?token=x'}}]\n    supervisor: {name: 班长}\n",
            ),
            "departments.yaml:13: departments.2.channels.0.feishu.base_url",
            "no credentials and no query",
        ),
        (  # an e-mail channel names addresses
            "route: {lead: ops}\n",
            DEPARTMENTS.replace(
                "channels: [{kafka: true}]\n    supervisor: {name: 班长}\n",
                "channels: [{email: {name: m, to: [not-an-address]}}]\n"
                "    supervisor: {name: 班长}\n",
            ),
            "departments.yaml:13: departments.2.channels.0.email.to",
            "not an e-mail address",
        ),
    ],
)
def test_config_errors(
    tmp_path: Path, routes: str, departments: str, where: str, message: str
) -> None:
    text = config_error(tmp_path, routes, departments)
    assert f"{tmp_path / where.split(':', 1)[0]}:{where.split(':', 1)[1]}" in text
    assert message in text


def test_config_errors_from_both_files_at_once(tmp_path: Path) -> None:
    text = config_error(tmp_path, "route: {lead: ops, bogus: 1}\n", "departments: []\n")
    assert "departments.yaml:1: departments" in text
    assert "routes.yaml:1: route.bogus" in text


def test_not_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in config_error(tmp_path, "route: [\n")


def test_a_canonical_event_names_jurisdiction_layers_without_the_prefix() -> None:
    facts = RouteFacts.from_event_json(
        {
            "category": "gas_leak",
            "severity": 2,
            "location": {"district": "310115", "jurisdiction": {"gas": "gas-pudong"}},
        }
    )
    assert facts.jurisdiction == {"jurisdiction:gas": "gas-pudong"}
    assert default_routing().route(facts).lead == "gas-pudong"
