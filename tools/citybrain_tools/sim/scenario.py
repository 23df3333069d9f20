"""Scenario generation (pure): a time-ordered list of raw vendor records with ground truth.

Background: telemetry of every registered sensor (water level, manhole covers, noise, air
quality) and occasional unrelated calls. Problems: one real-world problem reported by
several sensors and callers within a radius and a time window (a burst water main: the
nearest gauges rise and 3-7 calls about flooding within 40 minutes and 300 m; a fire: a
smoke alarm and calls about smoke; a gas leak; a tilted manhole cover; a dark street).
Near-misses: a different problem on the same street at the same time, which must not be
fused; half of them of the same family, one to three of its family's radii away (the rules'
radius is the scale of "apart", as the hotline issue defines a near-miss). Ground truth no
one could tell apart is not generated: a problem is never placed within two radii of a
problem of its family still open in the family's window (to anyone at the scene, and to
the rules, that is the same problem). A fraction of records can be malformed on request.
Simulated time runs in the past and ends now, so nothing is "in the future" for the
normaliser.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from citybrain.correlation.core import distance_m
from citybrain.correlation.rules import Rules, default_rules
from citybrain.geo.address import Gazetteer, GazetteerEntry
from citybrain.geo.crs import from_wgs84
from citybrain.geo.devices import Device, DeviceRegistry
from citybrain.geo.index import GeoIndex

SH = timedelta(hours=8)  # vendor clocks in Asia/Shanghai


@dataclass
class SimRecord:
    at: datetime  # simulated observation time (UTC)
    topic: str
    key: str
    value: bytes
    truth: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProblemType:
    name: str
    category: str
    hotline_category: str
    phrases: tuple[str, ...]
    sensor: str | None  # which sensor feed reports it


PROBLEMS = (
    ProblemType(
        "flooding",
        "flooding",
        "排水-道路积水",
        (
            "道路积水严重，车辆无法通行",
            "积水已经没过脚踝",
            "下水道冒水，路面大面积积水",
            "水管爆裂，路上全是水",
        ),
        "water-level",
    ),
    ProblemType(
        "fire",
        "fire_smoke",
        "消防-烟雾火情",
        ("楼里冒出很多烟", "闻到烧焦的味道，有烟", "窗户里有明火和浓烟"),
        "smoke-alarm",
    ),
    ProblemType(
        "gas",
        "gas_leak",
        "燃气-燃气异味",
        ("闻到很重的煤气味", "楼道里有燃气泄漏的味道"),
        "gas-leak",
    ),
    ProblemType(
        "manhole",
        "manhole",
        "市政-井盖缺失",
        ("井盖翘起来了，很危险", "井盖不见了，有人差点掉下去"),
        "manhole-cover",
    ),
    ProblemType(
        "dark-street",
        "streetlight_out",
        "市政-路灯不亮",
        ("一整排路灯都不亮", "路灯坏了，晚上很黑"),
        "streetlight",
    ),
)
#: the problem of another family a near-miss of a different family is about
NEAR_MISS = {
    "flooding": "dark-street",
    "fire": "manhole",
    "gas": "dark-street",
    "manhole": "flooding",
    "dark-street": "manhole",
}
VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")
_CN = "零一二三四五六七八九"
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def load_vocabulary(path: Path = VOCABULARY_FILE) -> dict[str, Any]:
    """How callers speak (`vocabulary.yaml`): kept apart from the correlator's rules."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def chinese(n: int) -> str:
    """1..99 in Chinese numerals: 3 -> 三, 12 -> 十二, 25 -> 二十五."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _CN[ones]
    return ("" if tens == 1 else _CN[tens]) + "十" + ("" if ones == 0 else _CN[ones])


@dataclass(frozen=True)
class Place:
    """What the callers of one problem name: an estate and a building, or a road and a
    house number (a name of the simulator's own making)."""

    name: str  # 锦瑞花园, 祥泰路
    number: int
    estate: bool


def _offset(lon: float, lat: float, metres: float, rng: random.Random) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * math.pi)
    dist = metres * math.sqrt(rng.random())
    dlat = dist * math.cos(angle) / 111_320
    dlon = dist * math.sin(angle) / (111_320 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def _vendor_time(t: datetime, fmt: str) -> str:
    return (t + SH).strftime(fmt)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"


class Scenario:
    """Builds the records; `build(events, span)` is deterministic for a seed."""

    def __init__(
        self,
        registries: dict[str, DeviceRegistry],
        gazetteer: Gazetteer,
        seed: int = 7,
        malformed: float = 0.0,
        problem_share: float = 0.02,
        index: GeoIndex | None = None,
        vocabulary: dict[str, Any] | None = None,
        registered_share: float = 0.7,
        rules: Rules | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.rules = rules or default_rules()
        #: where and when each problem of a family is: (lon, lat, start)
        self.placed: dict[str, list[tuple[float, float, datetime]]] = {}
        self.words = vocabulary or load_vocabulary()
        self.names: set[str] = set()
        #: the places of the run the city's address register knows (the others it does not)
        self.register: list[GazetteerEntry] = []
        self.registered_share = registered_share
        self.run = seed  # in every generated id, so runs with other seeds never collide
        self.index = index
        self.districts = {gazetteer.districts[name]: name for name in gazetteer.full_district_names}
        self.registries = registries
        self.gazetteer = gazetteer
        self.malformed = malformed
        self.problem_share = problem_share
        self.counter = 0
        self.busy: set[str] = set()  # devices that report a problem: no background for them

    # --- vendor payloads -----------------------------------------------------------------
    def water_level(
        self, d: Device, at: datetime, level_cm: float, truth: dict[str, Any]
    ) -> SimRecord:
        doc = {
            "devId": d.device_id,
            "ts": int(at.timestamp() * 1000),
            "data": {"level": f"{level_cm:.1f}", "unit": "cm", "bat": 3.6},
        }
        return SimRecord(at, "raw.iot.water-level", d.device_id, json.dumps(doc).encode(), truth)

    def manhole(self, d: Device, at: datetime, tilt: float, truth: dict[str, Any]) -> SimRecord:
        doc = {
            "imei": d.device_id,
            "time": (at + SH).strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "tilt_deg": round(tilt, 1),
            "water_immersion": 0,
        }
        return SimRecord(at, "raw.iot.manhole-cover", d.device_id, json.dumps(doc).encode(), truth)

    def noise(self, d: Device, at: datetime, truth: dict[str, Any]) -> SimRecord:
        doc = {
            "sensorId": d.device_id,
            "t": int(at.timestamp()),
            "laeq": round(self.rng.gauss(58, 5), 1),
        }
        return SimRecord(at, "raw.iot.noise", d.device_id, json.dumps(doc).encode(), truth)

    def smoke(self, lon: float, lat: float, at: datetime, truth: dict[str, Any]) -> SimRecord:
        self.counter += 1
        serial = f"SM-SIM{self.run}-{self.counter:07d}"
        glon, glat = from_wgs84([lon], [lat], "GCJ-02")
        doc = {
            "deviceSerial": serial,
            "alarmType": "1",
            "alarmTime": _vendor_time(at, "%Y-%m-%d %H:%M:%S"),
            "location": {"lng": round(float(glon[0]), 6), "lat": round(float(glat[0]), 6)},
            "battery": self.rng.randint(20, 100),
            "rssi": -self.rng.randint(70, 110),
        }
        truth = {**truth, "raw_id": f"smoke-alarm:{serial}:{doc['alarmTime']}:1"}
        return SimRecord(at, "raw.iot.smoke-alarm", serial, json.dumps(doc).encode(), truth)

    def gas(self, lon: float, lat: float, at: datetime, truth: dict[str, Any]) -> SimRecord:
        self.counter += 1
        serial = f"GAS-SIM{self.run}-{self.counter:07d}"
        blon, blat = from_wgs84([lon], [lat], "BD-09")
        when = _vendor_time(at, "%Y/%m/%d %H:%M:%S")
        doc = {
            "设备编号": serial,
            "报警时间": when,
            "报警类型": "燃气泄漏",
            "浓度": str(self.rng.randint(15, 60)),
            "单位": "%LEL",
            "经度": round(float(blon[0]), 6),
            "纬度": round(float(blat[0]), 6),
        }
        truth = {**truth, "raw_id": f"gas-leak:{serial}:{when}:燃气泄漏"}
        return SimRecord(
            at, "raw.iot.gas-leak", serial, json.dumps(doc, ensure_ascii=False).encode("gbk"), truth
        )

    def lamp(self, lon: float, lat: float, at: datetime, truth: dict[str, Any]) -> SimRecord:
        self.counter += 1
        lamp = f"SL-SIM{self.run}-{self.counter:07d}"
        when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {
            "lampId": lamp,
            "eventCode": "LAMP_OFF",
            "eventTime": when,
            "gps": {"lon": round(lon, 6), "lat": round(lat, 6)},
            "circuit": "SIM",
            "powerW": 0,
        }
        truth = {**truth, "raw_id": f"streetlight:{lamp}:{when}:LAMP_OFF"}
        return SimRecord(at, "raw.iot.streetlight", lamp, json.dumps(doc).encode(), truth)

    def call(
        self,
        problem: ProblemType,
        lon: float,
        lat: float,
        at: datetime,
        truth: dict[str, Any],
        place: Place | None = None,
    ) -> SimRecord:
        self.counter += 1
        ticket = f"SIM{self.run}-{at.strftime('%Y%m%d')}{self.counter:07d}"
        glon, glat = from_wgs84([lon], [lat], "GCJ-02")
        with_coords = self.rng.random() < 0.6  # the desk geocoded 60% of the calls
        doc = {
            "ticketNo": ticket,
            "acceptTime": _vendor_time(at, "%Y-%m-%d %H:%M:%S"),
            "callerPhone": _phone(self.rng),
            "channel": self.rng.choice(["电话", "微信", "APP"]),
            "category": problem.hotline_category,
            "urgency": self.rng.choice(["紧急", "一般", "特急"]),
            "content": "市民来电反映：" + self.rng.choice(problem.phrases),
            "address": self._caller_address(lon, lat, place),
            "lng": round(float(glon[0]), 6) if with_coords else None,
            "lat": round(float(glat[0]), 6) if with_coords else None,
        }
        truth = {**truth, "raw_id": f"hotline-12345:{ticket}"}
        return SimRecord(
            at, "raw.hotline", ticket, json.dumps(doc, ensure_ascii=False).encode(), truth
        )

    def broken(self, record: SimRecord) -> SimRecord:
        kind = self.rng.choice(["malformed_json", "missing_timestamp", "wrong_type"])
        doc = record.value
        if kind == "malformed_json":
            value = doc[: max(1, len(doc) // 2)]
        else:
            try:
                data = json.loads(doc.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return record
            for k in ("ts", "time", "t", "alarmTime", "acceptTime", "eventTime"):
                if k in data:
                    if kind == "missing_timestamp":
                        del data[k]
                    else:
                        data[k] = {"oops": True}
            value = json.dumps(data, ensure_ascii=False).encode()
        return SimRecord(
            record.at,
            record.topic,
            record.key,
            value,
            {**record.truth, "malformed": kind, "problem_id": None},
        )

    # --- problems ------------------------------------------------------------------------
    def problem(
        self, number: int, kind: ProblemType, start: datetime
    ) -> tuple[list[SimRecord], tuple[float, float]]:
        pid = f"P{number:05d}-{kind.name}"
        truth = {"problem_id": pid, "category": kind.category}
        records: list[SimRecord] = []
        if kind.sensor in ("water-level", "manhole-cover"):
            reg = self.registries[kind.sensor]
            device = self.rng.choice(
                [
                    d
                    for d in reg.devices.values()
                    if d.device_id not in self.busy and self._apart(kind, d.lon, d.lat, start)
                ]
            )
            self.busy.add(device.device_id)
            lon, lat = device.lon, device.lat
            for minute in range(0, 12):
                at = start + timedelta(minutes=minute)
                t = {**truth, "device_id": device.device_id}
                if kind.sensor == "water-level":
                    level = 30 + min(70, minute * 9) + self.rng.uniform(-2, 2)
                    records.append(self.water_level(device, at, level, t))
                elif minute in (1, 6):
                    records.append(self.manhole(device, at, 25 + self.rng.uniform(0, 10), t))
        else:
            lon, lat = self._random_point()
            for _ in range(100):
                if self._apart(kind, lon, lat, start):
                    break
                lon, lat = self._random_point()
            at = start + timedelta(minutes=self.rng.uniform(0, 3))
            if kind.sensor == "smoke-alarm":
                records.append(self.smoke(lon, lat, at, truth))
            elif kind.sensor == "gas-leak":
                records.append(self.gas(lon, lat, at, truth))
            elif kind.sensor == "streetlight":
                for _ in range(self.rng.randint(1, 3)):
                    plon, plat = _offset(lon, lat, 120, self.rng)
                    records.append(self.lamp(plon, plat, at, truth))
        self.placed.setdefault(kind.category, []).append((lon, lat, start))
        place = self.new_place(lon, lat)
        for _ in range(self.rng.randint(3, 7)):
            clon, clat = _offset(lon, lat, 300, self.rng)
            at = start + timedelta(minutes=self.rng.uniform(0, 40))
            records.append(self.call(kind, clon, clat, at, truth, place))
        return records, (lon, lat)

    def _apart(self, kind: ProblemType, lon: float, lat: float, start: datetime) -> bool:
        """Whether a problem of `kind` at (lon, lat) from `start` is apart from every
        problem of its family placed so far: two radii away, or out of its window (calls
        come up to 40 minutes after a problem starts)."""
        family = self.rules.family_of(kind.category)
        span = family.window_td + timedelta(minutes=40)
        return not any(
            abs(start - at) <= span and distance_m(lon, lat, plon, plat) < 2 * family.radius_m
            for category in family.categories
            for plon, plat, at in self.placed.get(category, ())
        )

    def new_place(self, lon: float, lat: float) -> Place:
        """A place at (lon, lat) of the simulator's own naming, never named twice in a run;
        most go into the run's address register (`register`), the others are names the
        city does not know."""
        w = self.words
        estate = self.rng.random() < 0.6
        while True:
            stem = "".join(self.rng.sample(w["syllables"], 2))
            name = stem + self.rng.choice(w["estates"] if estate else w["roads"])
            if name not in self.names:
                self.names.add(name)
                break
        place = Place(name, self.rng.randint(1, 40 if estate else 999), estate)
        district = self._district_of(lon, lat)
        if district is not None and self.rng.random() < self.registered_share:
            if estate:
                self.register.append(GazetteerEntry("community", name, district, lon, lat))
                numbered = GazetteerEntry("building", f"{name}{place.number}栋", district, lon, lat)
            else:
                line = ((lon - 0.003, lat - 0.001), (lon + 0.003, lat + 0.001))
                self.register.append(GazetteerEntry("road", name, district, lon, lat, (), line))
                numbered = GazetteerEntry("address", f"{name}{place.number}号", district, lon, lat)
            self.register.append(numbered)
        return place

    def say(self, place: Place) -> str:
        """How one caller names the place: the number in one of its spoken forms, or the
        name alone, with the words around it; now and then a slip in the name."""
        w, n = self.words, place.number
        name = place.name
        if self.rng.random() < w["typo_share"]:
            slips = [c for c in name if c in w["homophones"]]
            if slips:
                c = self.rng.choice(slips)
                name = name.replace(c, w["homophones"][c], 1)
        forms = w["buildings"] if place.estate else w["houses"]
        number = self.rng.choice(forms).format(
            n=n, cn=chinese(n) if n < 100 else str(n), fw=str(n).translate(_FULL_WIDTH)
        )
        said = name + number if self.rng.random() < 0.8 else name
        return self.rng.choice(w["before"]) + said + self.rng.choice(w["after"])

    def _caller_address(self, lon: float, lat: float, place: Place | None) -> str:
        """What a caller gives as the address: the district most of the time, and the place
        everyone around names (most callers) or something that names no place."""
        district = self.districts.get(self._district_of(lon, lat) or "", "")
        if self.rng.random() < 0.3:
            district = ""
        if place is not None and self.rng.random() < 0.75:
            return district + self.say(place)
        return district + self.rng.choice(self.words["vague"])

    def _district_of(self, lon: float, lat: float) -> str | None:
        if self.index is None:
            return None
        tags = self.index.tag([lon], [lat])
        return self.index.code_of(tags, "district", 0)

    def _random_point(self) -> tuple[float, float]:
        reg = self.registries["manhole-cover"]
        anchor = self.rng.choice(list(reg.devices.values()))  # urban, inside the city
        return _offset(anchor.lon, anchor.lat, 800, self.rng)

    def near_miss(
        self, number: int, kind: ProblemType, lon: float, lat: float, t0: datetime
    ) -> list[SimRecord]:
        """Callers about another problem nearby at the same time: half the time of the same
        family one to three of its radii away, else of another family on the street."""
        same = self.rng.random() < 0.5
        other = kind if same else next(p for p in PROBLEMS if p.name == NEAR_MISS[kind.name])
        radius = self.rules.family_of(kind.category).radius_m
        metres = self.rng.uniform(1, 3) * radius if same else 150.0
        angle = self.rng.uniform(0, 2 * math.pi)
        nlat = lat + metres * math.cos(angle) / 111_320
        nlon = lon + metres * math.sin(angle) / (111_320 * math.cos(math.radians(lat)))
        pid = f"P{number:05d}-near-{other.name}"
        truth = {"problem_id": pid, "category": other.category, "near_miss_of": number}
        self.placed.setdefault(other.category, []).append((nlon, nlat, t0))
        place = self.new_place(nlon, nlat)
        calls = []
        for _ in range(self.rng.randint(1, 3)):
            clon, clat = _offset(nlon, nlat, 100, self.rng)
            at = t0 + timedelta(minutes=self.rng.uniform(0, 20))
            calls.append(self.call(other, clon, clat, at, truth, place))
        return calls

    # --- the whole run -------------------------------------------------------------------
    def build(self, events: int, span: timedelta, end: datetime | None = None) -> list[SimRecord]:
        end = end or datetime.now(UTC)
        start = end - span
        out: list[SimRecord] = []
        n_problems = max(1, int(events * self.problem_share / 6))
        margin = timedelta(minutes=45)
        for number in range(n_problems):
            kind = self.rng.choice(PROBLEMS)
            t0 = start + (span - margin) * self.rng.random() if span > margin else start
            records, (lon, lat) = self.problem(number, kind, t0)
            out += records
            if self.rng.random() < 0.3:  # a near-miss: another problem, at the same time
                out += self.near_miss(number, kind, lon, lat, t0)
        background = max(0, events - len(out))
        devices = [
            (feed, d)
            for feed in ("water-level", "noise", "manhole-cover")
            for d in self.registries[feed].devices.values()
            if d.device_id not in self.busy
        ]
        for i in range(background):
            feed, device = devices[i % len(devices)]
            at = start + span * (i / max(1, background))
            if feed == "water-level":
                rec = self.water_level(device, at, self.rng.uniform(5, 40), {"problem_id": None})
            elif feed == "noise":
                rec = self.noise(device, at, {"problem_id": None})
            else:
                rec = self.manhole(device, at, self.rng.uniform(0, 3), {"problem_id": None})
            if self.malformed and self.rng.random() < self.malformed:
                rec = self.broken(rec)
            out.append(rec)
        out.sort(key=lambda r: r.at)
        return out
