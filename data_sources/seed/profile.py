"""The Kunming demo city: real district outlines, real Panlong figures, the rest in proportion.

Panlong (盘龙区) uses the figures of `shared/data/seed_facts.md`: 12 real streets, 103 communities,
620 grids, 520 grid workers, 4,000 cameras. The other 13 districts and counties share the rest of the
city's 25,246 grids, ~7,000 grid workers and ~50,000 cameras in proportion to their population (2020
census, 万人). Their township-level counts are the real ones (≈140 in all); their names are generated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

CITY_CODE = "530100"
CITY_NAME = ("昆明市", "Kunming")
CITY_GRIDS = 25_246
CITY_WORKERS = 7_000
CITY_CAMERAS = 50_000
PANLONG = "530103"


@dataclass(frozen=True, slots=True)
class DistrictProfile:
    adcode: str
    streets: int
    population: float  # 万人, 2020 census
    urban: bool
    communities: int = 0
    grids: int = 0
    workers: int = 0
    cameras: int = 0


#: adcode, township-level divisions, population (万), urban district?
_BASE: tuple[tuple[str, int, float, bool], ...] = (
    ("530102", 10, 114.3, True),  # 五华区
    ("530103", 12, 98.8, True),  # 盘龙区 (real figures below)
    ("530111", 11, 160.3, True),  # 官渡区
    ("530112", 10, 95.4, True),  # 西山区
    ("530113", 8, 26.1, False),  # 东川区
    ("530114", 10, 65.7, True),  # 呈贡区
    ("530115", 9, 35.1, False),  # 晋宁区
    ("530124", 7, 14.6, False),  # 富民县
    ("530125", 9, 42.0, False),  # 宜良县
    ("530126", 5, 25.0, False),  # 石林县
    ("530127", 7, 42.9, False),  # 嵩明县
    ("530128", 16, 40.6, False),  # 禄劝县
    ("530129", 16, 46.6, False),  # 寻甸县
    ("530181", 9, 48.3, False),  # 安宁市
)

PANLONG_STREETS: tuple[tuple[str, str], ...] = (
    ("拓东", "Tuodong"),
    ("鼓楼", "Gulou"),
    ("东华", "Donghua"),
    ("联盟", "Lianmeng"),
    ("金辰", "Jinchen"),
    ("青云", "Qingyun"),
    ("龙泉", "Longquan"),
    ("茨坝", "Ciba"),
    ("双龙", "Shuanglong"),
    ("松华", "Songhua"),
    ("滇源", "Dianyuan"),
    ("阿子营", "Aziying"),
)

#: Syllables for generated place names (zh, pinyin).
SYLLABLES: tuple[tuple[str, str], ...] = tuple(
    (zh, en)
    for zh, en in (
        pair.split(":")
        for pair in (
            "金:jin 华:hua 龙:long 泉:quan 星:xing 明:ming 安:an 宁:ning 新:xin 河:he 山:shan "
            "云:yun 东:dong 西:xi 南:nan 北:bei 兴:xing 和:he 平:ping 福:fu 海:hai 湖:hu "
            "桥:qiao 阳:yang 光:guang 昌:chang 盛:sheng 丰:feng 青:qing 松:song 柏:bai 翠:cui "
            "江:jiang 源:yuan 碧:bi 鸡:ji 马:ma 石:shi 林:lin 花:hua 园:yuan 春:chun 秀:xiu "
            "德:de 兰:lan 桂:gui 莲:lian 瑞:rui 祥:xiang 嘉:jia 宝:bao 玉:yu 凤:feng 鹤:he "
            "清:qing 溪:xi 岭:ling 川:chuan 湾:wan 田:tian 庄:zhuang 滇:dian 盘:pan 官:guan"
        ).split()
    )
)


def district_profiles() -> dict[str, DistrictProfile]:
    """The 14 districts with their counts of communities, grids, workers and cameras."""
    rest_population = sum(pop for code, _, pop, _ in _BASE if code != PANLONG)
    profiles: dict[str, DistrictProfile] = {}
    for code, streets, pop, urban in _BASE:
        if code == PANLONG:
            profiles[code] = DistrictProfile(code, streets, pop, urban, 103, 620, 520, 4_000)
            continue
        share = pop / rest_population
        grids = round((CITY_GRIDS - 620) * share)
        profiles[code] = DistrictProfile(
            adcode=code,
            streets=streets,
            population=pop,
            urban=urban,
            communities=max(streets * 3, round(grids / (8 if urban else 14))),
            grids=grids,
            workers=round((CITY_WORKERS - 520) * share),
            cameras=round((CITY_CAMERAS - 4_000) * share),
        )
    return profiles


def district_features() -> list[dict[str, Any]]:
    """The GeoJSON features of the 14 real district outlines (GCJ-02), in adcode order."""
    text = resources.files("data_sources.seed").joinpath("data/kunming_districts.geojson")
    features: list[dict[str, Any]] = json.loads(text.read_text(encoding="utf-8"))["features"]
    return sorted(features, key=lambda f: str(f["properties"]["adcode"]))
