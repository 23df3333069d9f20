"""A generated address register of any size in a city pack's districts, and caller texts
about it: for the matcher's throughput and memory only (`citybrain bench address
--register N`). Its accuracy figures come from the hand-written labelled sample, never
from these texts, which are made from the register itself."""

from __future__ import annotations

import random
from dataclasses import dataclass

from shapely.geometry import Point

from citybrain.geo.address import GazetteerEntry
from citybrain.geo.pack import CityPack

#: syllables of generated road and estate names (none is a real name on purpose)
SYLLABLES = tuple(
    "安宝北滨昌长诚春大德东福富广桂海和河红华怀汇佳嘉建江金锦景康兰乐丽利林龙隆绿茂美民明南宁"
    "鹏平祁启青庆瑞山尚盛诗顺泰天通万文西祥向新鑫星兴秀阳怡益永友裕园悦云泽振正中洲竹紫"
)
ROAD_KINDS = ("路", "街", "大道", "巷")
ESTATE_KINDS = ("小区", "花园", "家园", "苑", "新村")


@dataclass(frozen=True)
class GeneratedRegister:
    entries: list[GazetteerEntry]
    texts: list[str]


def generate_register(
    pack: CityPack, size: int, texts: int = 20_000, seed: int = 1
) -> GeneratedRegister:
    """About `size` entries: house numbers on roads (60%), buildings of estates (30%),
    estates, roads and landmarks; and `texts` caller texts naming them."""
    rng = random.Random(seed)
    districts = pack.regions["district"]
    names: set[str] = set()

    def name(suffixes: tuple[str, ...]) -> str:
        while True:
            made = "".join(rng.sample(SYLLABLES, rng.choice((2, 2, 3)))) + rng.choice(suffixes)
            if made not in names:
                names.add(made)
                return made

    def point_in(region_index: int) -> tuple[float, float]:
        geometry = districts[region_index].geometry
        minx, miny, maxx, maxy = geometry.bounds
        while True:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if geometry.contains(Point(x, y)):
                return x, y

    entries: list[GazetteerEntry] = []
    places: list[tuple[str, str, str]] = []  # district name, road, estate
    while len(entries) < size:
        d = rng.randrange(len(districts))
        code, district_name = districts[d].code, districts[d].name
        x, y = point_in(d)
        road = name(ROAD_KINDS)
        line = ((x - 0.004, y), (x + 0.004, y + 0.001))
        entries.append(GazetteerEntry("road", road, code, x, y, (), line))
        for number in rng.sample(range(1, 1500), 30):
            entries.append(
                GazetteerEntry("address", f"{road}{number}号", code, x + number * 1e-6, y)
            )
        estate = name(ESTATE_KINDS)
        entries.append(GazetteerEntry("community", estate, code, x, y + 0.001))
        for building in range(1, 16):
            entries.append(GazetteerEntry("building", f"{estate}{building}栋", code, x, y))
        entries.append(GazetteerEntry("poi", name(("广场", "医院", "中学", "菜市场")), code, x, y))
        places.append((district_name, road, estate))
    made_texts = []
    for _ in range(texts):
        district_name, road, estate = rng.choice(places)
        made_texts.append(
            rng.choice(
                (
                    f"{district_name}{road}{rng.randrange(1, 1500)}号门口有积水",
                    f"{estate}{rng.randrange(1, 16)}号楼二单元楼道有烟",
                    f"就在{road}上靠近{estate}那边路灯坏了",
                )
            )
        )
    return GeneratedRegister(entries[:size], made_texts)
