"""Routing: which department leads an incident and which help, from the routing tree in
`config/routes.yaml` and the departments in `config/departments.yaml` (pure).

The tree is walked like Prometheus Alertmanager's: the root matches everything; a child is
tried only when its parent matched; the first matching child wins unless it has
`continue: true`, in which case later siblings are tried too and the departments of those
further matches join as helpers. A route whose lead is excluded (the department rejected the
task) counts as not matching, so the walk moves on to the next route. When only the root
matches, the incident goes to the default department (`fallback`); when even that is
excluded, the operations center assigns it by hand. An incident never goes nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from citybrain.config_errors import ConfigError, line_of, load_yaml
from citybrain.config_errors import explain as explain_validation
from citybrain.schemas.dispatch_config import (
    DepartmentsFile,
    Route,
    RoutesFile,
    cross_check,
    zone_department,
)

if TYPE_CHECKING:
    from citybrain.settings import Settings

CONFIG_DIR = Path(__file__).with_name("config")
DEPARTMENTS_FILE = CONFIG_DIR / "departments.yaml"
ROUTES_FILE = CONFIG_DIR / "routes.yaml"

__all__ = [
    "DEPARTMENTS_FILE",
    "ROUTES_FILE",
    "RouteDecision",
    "RouteFacts",
    "Routing",
    "default_routing",
    "dispatch_files",
    "explain",
    "load_routing",
]


@dataclass(frozen=True)
class RouteFacts:
    """What routing looks at: category, priority (1 most urgent .. 4) and where."""

    category: str
    priority: int
    district: str | None = None
    jurisdiction: Mapping[str, str] = field(default_factory=dict)
    lon: float | None = None
    lat: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 4:
            raise ValueError(f"priority {self.priority} is not between 1 and 4")

    @classmethod
    def from_event_json(cls, data: Mapping[str, Any]) -> RouteFacts:
        """From a canonical event (`severity` is the priority) or an incident-like dict
        (`priority`; location fields at the top level or under `location`)."""
        category = data.get("category")
        if not isinstance(category, str) or not category:
            raise ValueError("the event has no category")
        raw_priority = data.get("priority", data.get("severity"))
        if raw_priority is None:
            raise ValueError("the event has neither priority nor severity")
        try:
            priority = int(raw_priority)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"priority {raw_priority!r} is not a number") from exc
        loc = data.get("location")
        where: Mapping[str, Any] = loc if isinstance(loc, Mapping) else data
        jurisdiction = where.get("jurisdiction") or {}
        if not isinstance(jurisdiction, Mapping):
            raise ValueError("location.jurisdiction is not a mapping of layer to zone")
        return cls(
            category=category,
            priority=priority,
            district=_str_or_none(where.get("district")),
            # canonical events name layers without the prefix ({"gas": "gas-pudong"})
            jurisdiction={
                (str(k) if str(k).startswith("jurisdiction:") else f"jurisdiction:{k}"): str(v)
                for k, v in jurisdiction.items()
            },
            lon=_float_or_none(where.get("lon")),
            lat=_float_or_none(where.get("lat")),
        )

    @classmethod
    def from_incident(
        cls, incident: object, jurisdiction: Mapping[str, str] | None = None
    ) -> RouteFacts:
        """From an object with category, priority, district, lon, lat (and maybe
        jurisdiction) attributes, such as `citybrain.correlation.core.Incident`."""
        zones = (
            jurisdiction if jurisdiction is not None else getattr(incident, "jurisdiction", None)
        )
        return cls(
            category=str(getattr(incident, "category")),  # noqa: B009
            priority=int(getattr(incident, "priority")),  # noqa: B009
            district=getattr(incident, "district", None),
            jurisdiction=dict(zones or {}),
            lon=getattr(incident, "lon", None),
            lat=getattr(incident, "lat", None),
        )


@dataclass(frozen=True)
class RouteDecision:
    """Who handles the incident, through which route, and why.

    `path` names the routes from the root to the one that decided; `continued` holds the
    paths of further routes matched through `continue: true` (their departments are among
    the helpers); `fallback` is true when no specific route took the incident (the default
    department, or the operations center when every candidate rejected it).
    """

    lead: str
    helpers: tuple[str, ...]
    path: tuple[str, ...]
    reasons: tuple[str, ...]
    fallback: bool
    facts: RouteFacts
    excluded: frozenset[str] = frozenset()
    continued: tuple[tuple[str, ...], ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def departments(self) -> tuple[str, ...]:
        """The lead, then the helpers."""
        return (self.lead, *self.helpers)


@dataclass(frozen=True)
class _Match:
    path: tuple[str, ...]
    lead: str
    helpers: tuple[str, ...]


@dataclass(frozen=True)
class _Inherited:
    lead: str | None = None
    lead_from_zone: bool = False
    layer: str | None = None
    helpers: tuple[str, ...] = ()
    lead_set_by: str = "root"


class Routing:
    """The loaded departments and routing tree; `route` is the one operation."""

    def __init__(self, departments: DepartmentsFile, routes: RoutesFile) -> None:
        self.departments = departments
        self.routes = routes
        self.by_code = departments.by_code()
        self.operations_center = departments.operations_center.code

    @property
    def default_lead(self) -> str:
        return self.routes.route.lead or self.operations_center

    def route(self, facts: RouteFacts, exclude: frozenset[str] = frozenset()) -> RouteDecision:
        """The decision for `facts`, skipping routes led by a department in `exclude`."""
        reasons: list[str] = []
        root = self.routes.route
        root_name = root.name or "root"
        reasons.append(f"{root_name}: the root route matches every incident")
        inherited = _Inherited(
            lead=root.lead, helpers=tuple(root.helpers or ()), lead_set_by=root_name
        )
        matches = self._children(root, (root_name,), inherited, facts, exclude, reasons, 1)
        fallback = False
        if not matches:
            if root.lead is not None and root.lead not in exclude:
                which = "other" if exclude else "specific"
                reasons.append(f"=> no {which} route matched: default department {root.lead}")
                matches = [_Match((root_name,), root.lead, tuple(root.helpers or ()))]
            else:
                center = self.operations_center
                reasons.append(
                    "=> every candidate rejected the task: "
                    f"{center} (operations center) assigns it by hand"
                )
                matches = [_Match((root_name,), center, ())]
            fallback = True
        first, *more = matches
        helpers: list[str] = []
        for code in (*first.helpers, *(c for m in more for c in (m.lead, *m.helpers))):
            if code != first.lead and code not in exclude and code not in helpers:
                helpers.append(code)
        if not fallback:
            reasons.append(f"=> {' > '.join(first.path)}: lead {first.lead}")
        for m in more:
            reasons.append(f"=> also {' > '.join(m.path)} (continue): {m.lead} helps")
        involved = (first.lead, *helpers)
        return RouteDecision(
            lead=first.lead,
            helpers=tuple(helpers),
            path=first.path,
            reasons=tuple(reasons),
            fallback=fallback,
            facts=facts,
            excluded=exclude,
            continued=tuple(m.path for m in more),
            names={c: self.by_code[c].name for c in involved if c in self.by_code},
        )

    def explain(self, decision: RouteDecision) -> str:
        return explain(decision)

    # --- the walk --------------------------------------------------------------------------
    def _children(
        self,
        route: Route,
        path: tuple[str, ...],
        inherited: _Inherited,
        facts: RouteFacts,
        exclude: frozenset[str],
        reasons: list[str],
        depth: int,
    ) -> list[_Match]:
        found: list[_Match] = []
        for i, child in enumerate(route.routes):
            child_path = (*path, child.name or f"{path[-1]}.routes[{i}]")
            matched = self._visit(child, child_path, inherited, facts, exclude, reasons, depth)
            if matched:
                found.extend(matched)
                if not child.continue_:
                    break
        return found

    def _visit(
        self,
        route: Route,
        path: tuple[str, ...],
        parent: _Inherited,
        facts: RouteFacts,
        exclude: frozenset[str],
        reasons: list[str],
        depth: int,
    ) -> list[_Match]:
        pad = "  " * depth
        name = path[-1]
        why, ok = _matchers(route, facts)
        verdict = "matches" if ok else "does not match"
        reasons.append(f"{pad}{name}: {verdict}: {'; '.join(why) or 'no matchers'}")
        if not ok:
            return []
        here = _inherit(parent, route, name)
        found = self._children(route, path, here, facts, exclude, reasons, depth + 1)
        if found:
            return found
        lead, why_lead = self._lead(here, facts)
        if lead is None:
            reasons.append(f"{pad}  {name}: no lead: {why_lead}; trying the next route")
            return []
        if lead in exclude:
            reasons.append(
                f"{pad}  {name}: lead {lead} already rejected the task; trying the next route"
            )
            return []
        reasons.append(f"{pad}  {name}: lead {lead} ({why_lead})")
        return [_Match(path, lead, here.helpers)]

    def _lead(self, here: _Inherited, facts: RouteFacts) -> tuple[str | None, str]:
        if not here.lead_from_zone:
            return here.lead, f"lead of route {here.lead_set_by}"
        layer = here.layer
        zone = facts.jurisdiction.get(layer) if layer is not None else None
        if layer is None or zone is None:
            return None, f"the incident has no {layer} zone"
        code = zone_department(self.routes, layer, zone)
        if code not in self.by_code:
            return None, f"zone {zone} of {layer} has no department"
        return code, f"zone {zone} of {layer}, lead_from_zone of route {here.lead_set_by}"


def _inherit(parent: _Inherited, route: Route, name: str) -> _Inherited:
    lead, from_zone, set_by = parent.lead, parent.lead_from_zone, parent.lead_set_by
    if route.lead is not None:
        lead, from_zone, set_by = route.lead, False, name
    elif route.lead_from_zone:
        from_zone, set_by = True, name
    layer = route.jurisdiction.layer if route.jurisdiction is not None else parent.layer
    helpers = tuple(route.helpers) if route.helpers is not None else parent.helpers
    return _Inherited(
        lead=lead, lead_from_zone=from_zone, layer=layer, helpers=helpers, lead_set_by=set_by
    )


def _matchers(route: Route, facts: RouteFacts) -> tuple[list[str], bool]:
    """Each matcher's verdict in words, and whether all matched."""
    why: list[str] = []
    ok = True
    if route.categories is not None:
        hit = any(_category_matches(c, facts.category) for c in route.categories)
        why.append(
            f"category {facts.category} {'is' if hit else 'is not'} in "
            f"[{', '.join(route.categories)}]"
        )
        ok &= hit
    if route.priority_at_most is not None:
        hit = facts.priority <= route.priority_at_most
        why.append(f"priority {facts.priority} {'<=' if hit else '>'} {route.priority_at_most}")
        ok &= hit
    if route.district is not None:
        hit = facts.district is not None and facts.district in route.district
        why.append(
            f"district {facts.district or '(unknown)'} {'is' if hit else 'is not'} in "
            f"[{', '.join(route.district)}]"
        )
        ok &= hit
    if route.jurisdiction is not None:
        layer = route.jurisdiction.layer
        zone = facts.jurisdiction.get(layer)
        zones = route.jurisdiction.zones
        if zone is None:
            why.append(f"no {layer} zone known")
            ok = False
        elif zones is None:
            why.append(f"{layer} zone {zone} (any zone)")
        else:
            hit = zone in zones
            why.append(f"{layer} zone {zone} {'is' if hit else 'is not'} in [{', '.join(zones)}]")
            ok &= hit
    if route.polygon is not None:
        if facts.lon is None or facts.lat is None:
            why.append("no coordinates for the polygon")
            ok = False
        else:
            hit = route.polygon.covers(facts.lon, facts.lat)
            why.append(
                f"point ({facts.lon:.6f}, {facts.lat:.6f}) "
                f"{'is inside' if hit else 'is outside'} the polygon"
            )
            ok &= hit
    return why, ok


def _category_matches(pattern: str, category: str) -> bool:
    if pattern.endswith("*"):
        return category.startswith(pattern[:-1])
    return category == pattern


def explain(decision: RouteDecision) -> str:
    """Several lines for `citybrain routes explain`: the facts, the decision, the walk."""
    f = decision.facts
    names = decision.names

    def label(code: str) -> str:
        return f"{code} ({names[code]})" if code in names else code

    where = [f"district {f.district}" if f.district else "district unknown"]
    where += [f"{layer} {zone}" for layer, zone in sorted(f.jurisdiction.items())]
    if f.lon is not None and f.lat is not None:
        where.append(f"at {f.lon:.6f}, {f.lat:.6f}")
    lines = [
        f"incident: {f.category}, priority {f.priority}, {', '.join(where)}",
        f"route:    {' > '.join(decision.path)}" + ("  [fallback]" if decision.fallback else ""),
        f"lead:     {label(decision.lead)}",
        f"helpers:  {', '.join(label(h) for h in decision.helpers) or '-'}",
    ]
    if decision.excluded:
        lines.append(f"rejected: {', '.join(sorted(decision.excluded))}")
    lines.append("why:")
    lines += [f"  {r}" for r in decision.reasons]
    return "\n".join(lines)


# --- loading -------------------------------------------------------------------------------
def dispatch_files(settings: Settings) -> tuple[Path, Path]:
    """The departments and routes files: each the settings' when set, else the city pack's
    (`dispatch:` in its pack.yaml), else the shipped ones (Shanghai's)."""
    from citybrain.geo.pack import read_manifest

    departments, routes = DEPARTMENTS_FILE, ROUTES_FILE
    folder, spec, _ = read_manifest(settings.city_pack)
    if spec.dispatch is not None:
        departments = folder / spec.dispatch.departments
        routes = folder / spec.dispatch.routes
    return settings.departments_file or departments, settings.routes_file or routes


def load_routing(
    departments_path: Path = DEPARTMENTS_FILE, routes_path: Path = ROUTES_FILE
) -> Routing:
    """Load and check both files; a ConfigError names `file:line: field: message`."""
    dept_raw, dept_text = load_yaml(departments_path)
    routes_raw, routes_text = load_yaml(routes_path)
    errors: list[str] = []
    departments: DepartmentsFile | None = None
    routes: RoutesFile | None = None
    try:
        departments = DepartmentsFile.model_validate(dept_raw)
    except ValidationError as exc:
        errors.append(str(explain_validation(departments_path, dept_text, exc)))
    try:
        routes = RoutesFile.model_validate(routes_raw)
    except ValidationError as exc:
        errors.append(str(explain_validation(routes_path, routes_text, exc)))
    if departments is None or routes is None:
        raise ConfigError("\n".join(errors))
    problems = cross_check(departments, routes)
    if problems:
        where = {
            "departments": (departments_path, dept_text),
            "routes": (routes_path, routes_text),
        }
        lines = []
        for p in problems:
            path, text = where[p.file]
            field_name = ".".join(str(part) for part in p.loc) or "(document)"
            lines.append(f"{path}:{line_of(text, p.loc) or 1}: {field_name}: {p.message}")
        raise ConfigError("\n".join(lines))
    return Routing(departments, routes)


@lru_cache(maxsize=1)
def default_routing() -> Routing:
    """The shipped configuration, loaded once."""
    return load_routing()


def _str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _float_or_none(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"coordinate {value!r} is not a number") from exc
