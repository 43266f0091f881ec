"""Derive the Taipei demo city in this folder from the raw layers in ``../shared/data/taipei/``.

Run ``python data/taipei/build.py [RAW_DIR]``. The output is committed; ``gridmap demo load`` imports it
through the ordinary importers (see ``demo.yaml``). What is derived, and why, is in README.md here:
national-scheme codes, road grades and units from the OSM class, 16-digit component IDs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

HERE = Path(__file__).resolve().parent
RAW = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "taipei"
SURVEY_DATE = {"osm": "2024-11-11", "open-data": "2023-06-01"}

DISTRICT_EN = {
    "松山區": "Songshan", "信義區": "Xinyi", "大安區": "Da'an", "中山區": "Zhongshan", "中正區": "Zhongzheng",
    "大同區": "Datong", "萬華區": "Wanhua", "文山區": "Wenshan", "南港區": "Nangang", "內湖區": "Neihu",
    "士林區": "Shilin", "北投區": "Beitou",
}

# OSM highway class -> (management grade, maintenance department); see README.md.
ROAD_GRADES = {
    "motorway": ("special", "XG"), "motorway_link": ("special", "XG"),
    "trunk": ("special", "XG"), "trunk_link": ("special", "XG"),
    "primary": ("grade1", "SZ"), "primary_link": ("grade1", "SZ"),
    "secondary": ("grade2", "SZ"), "secondary_link": ("grade2", "SZ"),
    "tertiary": ("grade3", "SZ"), "tertiary_link": ("grade3", "SZ"),
    "unclassified": ("grade4", "SZ"), "residential": ("grade4", "SZ"),
    "living_street": ("lane", "SZ"), "service": ("lane", "SZ"), "pedestrian": ("lane", "SZ"),
}
# Special and grade-1 roads are swept by the city's mechanised team, the rest by the district squads.
CITY_SWEPT = {"special", "grade1"}


def county_code(cptid: pd.Series) -> pd.Series:
    """6-digit county code of a Taipei district: the 7-digit town code (CPTID) without its trailing 0."""
    return cptid.astype(str).str[:6]


def write(frame: gpd.GeoDataFrame, name: str) -> None:
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options={"COORDINATE_PRECISION": 7})
    print(f"{name}: {len(frame)} features")


def build_territory() -> gpd.GeoDataFrame:
    towns = gpd.read_file(RAW / "taipei_town.geojson")
    districts = gpd.GeoDataFrame(
        {
            "code": county_code(towns["CPTID"]),
            "name": towns["TNAME"],
            "name_en": towns["TNAME"].map(DISTRICT_EN) + " District",
            "source_code": towns["CPTID"],
            "official_area_m2": towns["AREA"],  # not imported; kept to check our areas against
        },
        geometry=towns.geometry, crs=towns.crs,
    ).sort_values("code")
    write(districts, "districts.geojson")
    villages = gpd.read_file(RAW / "taipei_village.geojson")
    communities = gpd.GeoDataFrame(
        {
            # 12 digits: county 6 + street 000 (Taipei has no street level) + village 3
            "code": county_code(villages["CPTID"]) + "000" + villages["CPTVID"].str[-3:],
            "name": villages["VNAME"],
            "source_code": villages["CPTVID"],
        },
        geometry=villages.geometry, crs=villages.crs,
    ).sort_values("code")
    write(communities, "villages.geojson")
    return districts


def _tag(tags: str | None, key: str) -> str | None:
    match = re.search(rf'"{re.escape(key)}"=>"([^"]*)"', tags if isinstance(tags, str) else "")
    return match.group(1) if match else None


def in_district(frame: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> pd.Series:
    """County code of the district each feature's representative point lies in (None outside)."""
    points = gpd.GeoDataFrame(geometry=frame.geometry.representative_point(), crs=frame.crs)
    joined = gpd.sjoin(points, districts[["code", "geometry"]], predicate="within", how="left")
    return joined[~joined.index.duplicated()]["code"]


def build_roads(districts: gpd.GeoDataFrame) -> None:
    raw = gpd.read_file(RAW / "taipei_main_roads_osm.geojson")
    grade = raw["highway"].map(lambda h: ROAD_GRADES.get(h, ("lane", "SZ"))[0])
    county = in_district(raw, districts)
    lanes = raw["other_tags"].map(lambda t: _tag(t, "lanes"))
    roads = gpd.GeoDataFrame(
        {
            "code": "osm-w" + raw["osm_id"].astype(str),
            "name": raw["name"],
            "name_en": raw["other_tags"].map(lambda t: _tag(t, "name:en")),
            "source_class": raw["highway"],
            "grade_code": grade,
            "maintenance_department_code": raw["highway"].map(lambda h: ROAD_GRADES.get(h, ("lane", "SZ"))[1]),
            "cleaning_department_code": ["HW" if g in CITY_SWEPT or c is None or pd.isna(c) else f"HW-{c}"
                                         for g, c in zip(grade, county)],
            "lanes": lanes.where(lanes.fillna("").str.fullmatch(r"\d+"), None),
        },
        geometry=raw.geometry, crs=raw.crs,
    )
    write(roads, "roads.geojson")


def components(raw: gpd.GeoDataFrame, districts, *, class_code, name, source_id, departments, source) -> gpd.GeoDataFrame:
    """Give each point a 16-digit ID: county of its district + class + sequence in (county, class).

    Points outside every district get no ID: the importer reports them as outside the territory.
    """
    county = in_district(raw, districts) if len(raw) else pd.Series(dtype=object)
    empty = raw.geometry.isna() | raw.geometry.is_empty
    county = county.where(~empty, None)
    frame = pd.DataFrame({"county": county, "source_id": source_id.astype(str), "order": range(len(raw))})
    frame["sequence"] = frame.sort_values(["county", "order"]).groupby("county", dropna=False).cumcount() + 1
    code = [None if pd.isna(c) else f"{c}{class_code}{s:06d}" for c, s in zip(frame["county"], frame["sequence"])]
    competent, owner, maintainer = departments
    return gpd.GeoDataFrame(
        {
            "code": code,
            "class_code": class_code,
            "name": name,
            "competent_department_code": competent,
            "owner_department_code": owner if isinstance(owner, str) else owner.values,
            "maintainer_department_code": maintainer if isinstance(maintainer, str) else maintainer.values,
            "status": "完好",
            "survey_date": SURVEY_DATE[source],
            "source_id": frame["source_id"].values,
        },
        geometry=raw.geometry.values, crs=raw.crs,
    )


def build_components(districts: gpd.GeoDataFrame) -> None:
    bus = gpd.read_file(RAW / "traffic_bus_station_view.geojson")
    write(components(bus, districts, class_code="0203", name=bus["stationname"], source_id=bus["stationid"],
                     departments=("JT", "GJ", "GJ"), source="open-data"), "components/bus_stops.geojson")
    cctv = gpd.read_file(RAW / "cctv.geojson")
    write(components(cctv, districts, class_code="0136", name=cctv["攝影機編號"], source_id=cctv["流水號"],
                     departments=("JT", "JC", "JC"), source="open-data"), "components/cctv.geojson")
    sewer = gpd.read_file(RAW / "patrol_rain_sewer.geojson")
    write(components(sewer, districts, class_code="0150", name=sewer["station_name"], source_id=sewer["station_no"],
                     departments=("SW", "SW", "SW"), source="open-data"), "components/rain_sewer_stations.geojson")
    points = gpd.read_file(RAW / "taipei_road_points_osm.geojson")
    signals = points[points["highway"].fillna("").str.split(";").map(lambda h: "traffic_signals" in h)]
    signals = signals.reset_index(drop=True)
    write(components(signals, districts, class_code="0210", name=signals["name"], source_id=signals["osm_id"],
                     departments=("JT", "JT", "JT"), source="osm"), "components/traffic_signals.geojson")
    garbage = gpd.read_file(RAW / "garbage_truck.geojson")
    squad = "HW-" + in_district(garbage, districts).fillna("").astype(str)
    squad = squad.where(squad != "HW-", "HW")
    stop_id = garbage["局編"].astype(str) + "/" + garbage["車次"].astype(str) + "/" + garbage["抵達時間"].astype(str)
    write(components(garbage, districts, class_code="0320", name=garbage["地點"], source_id=stop_id,
                     departments=("HW", squad, squad), source="open-data"), "components/garbage_collection_points.geojson")


if __name__ == "__main__":
    if not RAW.exists():
        raise SystemExit(f"raw Taipei data not found at {RAW}; pass its folder as the first argument")
    built = build_territory()
    build_roads(built)
    build_components(built)
