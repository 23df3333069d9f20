"""An incident's jurisdictions (which gas company's zone, which drainage unit's...) for
routing: from its point when it has one, else from its district through the city pack's
zone definitions (zones are groups of districts), else none."""

from __future__ import annotations

from citybrain.dispatch.plan import IncidentView
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import CityPack


class Jurisdictions:
    def __init__(self, pack: CityPack, index: GeoIndex | None = None) -> None:
        self.index = index or GeoIndex(pack)
        self.layers = [layer for layer in self.index.layers if layer.startswith("jurisdiction:")]
        self.by_district: dict[str, dict[str, str]] = {}
        for groups in pack.spec.jurisdictions:
            for zone in groups.zones:
                for district in zone.districts:
                    self.by_district.setdefault(district, {})[groups.layer] = zone.code

    def __call__(self, incident: IncidentView) -> dict[str, str]:
        if incident.lon is not None and incident.lat is not None:
            tags = self.index.tag([incident.lon], [incident.lat])
            zones = {
                layer: code
                for layer in self.layers
                if (code := self.index.code_of(tags, layer, 0)) is not None
            }
            if zones:
                return zones
        if incident.district is not None:
            return dict(self.by_district.get(incident.district, {}))
        return {}
