"""City packs: layered boundary sets for one city, read from a folder (pure).

A pack folder holds `pack.yaml` and GeoJSON files. Every geometry is converted from the
pack's declared coordinate system to WGS-84, checked and, when invalid, repaired at load
time (never at run time): empty or non-polygonal features are rejected naming the file
and feature. Jurisdiction layers may be declared as groups of districts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import shapely
from pydantic import Field, ValidationError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from citybrain.config_errors import ConfigError, explain, load_yaml
from citybrain.geo.crs import normalize_crs, to_wgs84
from citybrain.schemas.fields import Strict

PACKS_DIR = Path(__file__).parent / "packs"


class LayerFile(Strict):
    layer: str = Field(pattern=r"^(district|street|community|jurisdiction:[a-z0-9_-]+)$")
    file: str
    code_property: str = "code"
    name_property: str = "name"
    parent_property: str | None = None


class Zone(Strict):
    code: str
    name: str
    districts: list[str] = Field(min_length=1)


class JurisdictionGroups(Strict):
    layer: str = Field(pattern=r"^jurisdiction:[a-z0-9_-]+$")
    zones: list[Zone] = Field(min_length=1)


class Source(Strict):
    layer: str
    source: str
    licence: str


class GridSpec(Strict):
    cell_m: float = Field(500, gt=10, le=10_000)


class DispatchFiles(Strict):
    """The city's departments and routing tree, files in the pack folder."""

    departments: str
    routes: str


class DataFile(Strict):
    """A data file of the pack and its coordinate system: one feed's sensor registry (CSV
    as in the feed definitions), the address register (`citybrain.geo.register`)."""

    file: str
    crs: str = "WGS-84"


class PackSpec(Strict):
    """The schema of `pack.yaml`."""

    pack: str = Field(pattern=r"^[a-z0-9_-]+$")
    city: str
    #: the province the city belongs to (the same as `city` for 上海市, 北京市, 天津市, 重庆市)
    province: str | None = None
    #: other names callers use for the city or its province, two characters or more (a
    #: one-character short form such as 沪 or 筑 also begins road names: 沪闵路)
    names: list[Annotated[str, Field(min_length=2)]] = Field(default_factory=list)
    version: int = Field(ge=1)
    source_crs: str = "WGS-84"
    sources: list[Source] = Field(min_length=1)
    layers: list[LayerFile] = Field(min_length=1)
    grid: GridSpec = GridSpec()
    jurisdictions: list[JurisdictionGroups] = Field(default_factory=list)
    gazetteer: str | None = None
    #: the city's own departments and routes (else the settings' or the shipped ones)
    dispatch: DispatchFiles | None = None
    #: the city's sensor registries by feed name; they replace the feed definitions' own
    devices: dict[str, DataFile] = Field(default_factory=dict)
    #: the city's address register (road + number, estates and buildings, landmarks, roads)
    addresses: DataFile | None = None

    def admin_names(self) -> list[str]:
        """Every name of the city and its province a caller may put before a district,
        longest first: 贵州省, 贵阳市, 贵州, 贵阳."""
        names = {self.city, *self.names}
        for full in (self.city, self.province):
            if full:
                names.add(full)
                short = re.sub(r"(省|市|自治区|特别行政区|壮族|回族|维吾尔)+$", "", full)
                if len(short) >= 2:
                    names.add(short)
        return sorted((n for n in names if n), key=lambda n: (-len(n), n))


@dataclass(frozen=True)
class Region:
    """One boundary: a code, a name, its parent's code, a WGS-84 (multi)polygon."""

    layer: str
    code: str
    name: str
    parent: str | None
    geometry: BaseGeometry


@dataclass
class CityPack:
    """A loaded, validated pack."""

    spec: PackSpec
    folder: Path
    regions: dict[str, list[Region]]
    checksum: str
    repaired: list[str] = field(default_factory=list)

    @property
    def layer_names(self) -> list[str]:
        return list(self.regions)

    def neighbours(self) -> dict[str, set[str]]:
        """Each district's code -> the codes of the districts it borders (within 50 m:
        boundaries of different sources do not meet exactly)."""
        districts = self.regions["district"]
        grown = [r.geometry.buffer(0.0005) for r in districts]
        out: dict[str, set[str]] = {r.code: set() for r in districts}
        for i, a in enumerate(districts):
            for j in range(i + 1, len(districts)):
                if grown[i].intersects(districts[j].geometry):
                    out[a.code].add(districts[j].code)
                    out[districts[j].code].add(a.code)
        return out

    def area(self) -> BaseGeometry:
        """The city: the union of its districts."""
        return shapely.union_all([r.geometry for r in self.regions["district"]])


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (make_valid can return collections)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _to_wgs84(geom: BaseGeometry, source_crs: str) -> BaseGeometry:
    if normalize_crs(source_crs) == "WGS-84":
        return geom

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1], source_crs)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, convert)


def read_layer(folder: Path, spec: LayerFile, source_crs: str, repaired: list[str]) -> list[Region]:
    """Read, convert, check and repair one GeoJSON layer."""
    path = folder / spec.file
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read GeoJSON: {exc}") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ConfigError(f"{path}: expected a GeoJSON FeatureCollection")
    regions: list[Region] = []
    seen: set[str] = set()
    for number, feature in enumerate(features):
        where = f"{path}: feature {number}"
        props: dict[str, Any] = feature.get("properties") or {}
        code = props.get(spec.code_property)
        if code is None or str(code) == "":
            raise ConfigError(f"{where}: property {spec.code_property!r} (the code) is missing")
        code = str(code)
        where = f"{where} ({code})"
        if code in seen:
            raise ConfigError(f"{where}: duplicate code")
        seen.add(code)
        try:
            geom = shape(feature.get("geometry"))
        except Exception as exc:
            raise ConfigError(f"{where}: unreadable geometry: {exc}") from exc
        if geom.is_empty:
            raise ConfigError(f"{where}: empty geometry")
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise ConfigError(f"{where}: {geom.geom_type} is not a polygon")
        geom = _to_wgs84(geom, source_crs)
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            geom = _polygonal(shapely.make_valid(geom))
            if geom.is_empty:
                raise ConfigError(f"{where}: invalid geometry ({reason}) and no repair exists")
            repaired.append(f"{spec.layer}:{code} ({reason})")
        parent = props.get(spec.parent_property) if spec.parent_property else None
        name = str(props.get(spec.name_property) or code)
        regions.append(Region(spec.layer, code, name, str(parent) if parent else None, geom))
    if not regions:
        raise ConfigError(f"{path}: no features")
    return regions


def _groups(groups: JurisdictionGroups, districts: dict[str, Region], where: Path) -> list[Region]:
    regions = []
    for zone in groups.zones:
        missing = [d for d in zone.districts if d not in districts]
        if missing:
            raise ConfigError(
                f"{where}: {groups.layer} zone {zone.code}: unknown district codes {missing}"
            )
        geom = shapely.union_all([districts[d].geometry for d in zone.districts])
        regions.append(Region(groups.layer, zone.code, zone.name, None, geom))
    return regions


def pack_folder(folder: Path | str) -> Path:
    """A pack folder, or the folder of the pack shipped with citybrain by that name."""
    folder = Path(folder)
    if not folder.exists() and (PACKS_DIR / str(folder)).is_dir():
        folder = PACKS_DIR / str(folder)
    return folder


def read_manifest(folder: Path | str) -> tuple[Path, PackSpec, str]:
    """A pack's folder, its validated `pack.yaml` and that file's text (no geometry read)."""
    folder = pack_folder(folder)
    manifest = folder / "pack.yaml"
    if not manifest.is_file():
        raise ConfigError(f"{folder}: no pack.yaml (is this a city pack folder?)")
    raw, text = load_yaml(manifest)
    try:
        spec = PackSpec.model_validate(raw)
    except ValidationError as exc:
        raise explain(manifest, text, exc) from exc
    return folder, spec, text


def load_pack(folder: Path | str) -> CityPack:
    """Load and validate a pack folder (or the name of a pack shipped with citybrain)."""
    folder, spec, text = read_manifest(folder)
    manifest = folder / "pack.yaml"
    try:
        normalize_crs(spec.source_crs)
    except ValueError as exc:
        raise ConfigError(f"{manifest}: source_crs: {exc}") from exc
    digest = hashlib.sha256(text.encode())
    repaired: list[str] = []
    regions: dict[str, list[Region]] = {}
    for layer in spec.layers:
        regions[layer.layer] = read_layer(folder, layer, spec.source_crs, repaired)
        digest.update((folder / layer.file).read_bytes())
    if "district" not in regions:
        raise ConfigError(f"{manifest}: layers: a pack needs a 'district' layer")
    by_code = {r.code: r for r in regions["district"]}
    for groups in spec.jurisdictions:
        regions[groups.layer] = _groups(groups, by_code, manifest)
    return CityPack(spec, folder, regions, digest.hexdigest(), repaired)
