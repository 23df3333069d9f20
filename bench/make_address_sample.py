"""Generate the labelled hotline-address sample (tests/data/addresses_shanghai.tsv).

Each gazetteer entry is written the ways callers and operators write it (with or without
the city and district, full-width digits, an alias, spaces, the complaint around it), and
vague descriptions with no placeable name are added with an empty label: those must end
as needs_location. Deterministic (seeded); rerun only when the gazetteer changes.

    python bench/make_address_sample.py
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GAZETTEER = ROOT / "citybrain/geo/packs/shanghai/gazetteer.yaml"
DISTRICTS = {
    "310101": "黄浦区",
    "310104": "徐汇区",
    "310105": "长宁区",
    "310106": "静安区",
    "310107": "普陀区",
    "310109": "虹口区",
    "310110": "杨浦区",
    "310112": "闵行区",
    "310113": "宝山区",
    "310114": "嘉定区",
    "310115": "浦东新区",
    "310116": "金山区",
    "310117": "松江区",
    "310118": "青浦区",
    "310120": "奉贤区",
    "310151": "崇明区",
}
COMPLAINTS = [
    "附近井盖缺失",
    "门口积水严重",
    "旁边有烟雾",
    "路灯不亮",
    "噪音扰民",
    "有燃气味",
    "垃圾堆放",
    "",
    "东侧下水道堵塞",
    "对面路面塌陷",
]
LEADS = ["", "市民反映：", "来电人称", "热线工单：", "", ""]
VAGUE = [
    "我家楼下",
    "小区门口",
    "地铁站旁边",
    "学校对面",
    "菜市场里面",
    "公交车站",
    "马路中间",
    "家附近的公园",
    "单位后门",
    "楼道里",
    "隔壁工地",
    "河边步道",
    "小区停车场",
    "商场门口",
    "十字路口",
    "桥下面",
    "村口",
    "厂区里",
    "老小区",
    "新开的饭店旁边",
    "快递站",
    "路边",
    "广场上",
    "江边",
    "医院急诊门口",
    "幼儿园门口",
    "加油站对面",
    "高架下面",
    "隧道口",
    "河道里",
]


# Hand-written hard cases: (text, expected entry or "" for needs_location, district).
HARD = [
    ("浦东新区张江碧波路690号路面塌陷", "", ""),  # a real place the gazetteer lacks
    ("徐汇区南京西路100号有烟雾", "", ""),  # road and district disagree
    ("浦东新区四平路口井盖松动", "", ""),  # same
    ("闵行区某小区门口积水", "", ""),  # district only
    ("宝山区一条河边有异味", "", ""),
    ("静安寺地铁站出口路灯坏了", "静安寺", "310106"),
    ("东方明珠塔下游客拥挤", "东方明珠", "310115"),
    ("外滩观景平台护栏松动", "外滩", "310101"),
    ("八万人体育场门口有人摆摊", "上海体育场", "310104"),
    ("虹桥站出租车候客区排队混乱", "上海虹桥站", "310112"),
    ("上海南站北广场积水", "上海南站", "310104"),
    ("新客站南广场有人晕倒", "上海火车站", "310106"),
    ("城隍庙九曲桥栏杆断裂", "豫园", "310101"),
    ("浦东机场T2停车场有燃气味", "浦东国际机场", "310115"),
    ("迪士尼门口交通拥堵", "上海迪士尼乐园", "310115"),
    ("朱家角放生桥附近河道漂浮物", "朱家角古镇", "310118"),
    ("世纪大道２００１号东门井盖缺失", "世纪大道2001号", "310115"),
    ("上海市浦东新区世纪大道2001号楼下积水", "世纪大道2001号", "310115"),
    ("杨浦区五角场万达门口路灯不亮", "五角场", "310110"),
    ("复旦大学邯郸校区南门下水道堵塞", "复旦大学", "310110"),
]


def full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


def variants(entry: dict, rng: random.Random) -> list[str]:
    district = DISTRICTS[str(entry["district"])]
    names = [entry["name"], *entry.get("aliases", [])]
    out = []
    for k in range(4):
        name = names[k % len(names)]
        if k == 1 and any(c.isdigit() for c in name):
            name = full_width(name)
        prefix = ["", "上海市", "上海市" + district, district][k]
        if entry["kind"] == "road" and k % 2 == 0:
            name = f"{name}{rng.randint(1, 999)}号"  # a number we have no point for
        text = rng.choice(LEADS) + prefix + name + rng.choice(COMPLAINTS)
        if k == 2:
            text = " ".join([text[: len(text) // 2], text[len(text) // 2 :]])
        out.append(text)
    return out


def main() -> None:
    rng = random.Random(20261124)
    doc = yaml.safe_load(GAZETTEER.read_text(encoding="utf-8"))
    rows = []
    for entry in doc["entries"]:
        for text in variants(entry, rng):
            rows.append((text, entry["name"], str(entry["district"])))
    for text in VAGUE:
        rows.append((rng.choice(LEADS) + text + rng.choice(COMPLAINTS), "", ""))
    rows.extend(HARD)
    out = ROOT / "tests/data/addresses_shanghai.tsv"
    lines = ["text\texpected_entry\texpected_district"] + ["\t".join(r) for r in rows]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} labelled addresses to {out}")


if __name__ == "__main__":
    main()
