"""Check the current unit grids: topology per community, codes, areas, and how roads run along edges.

Hard rules (any breach makes ``gridmap grids check`` exit non-zero): no gap and no overlap above
``TOLERANCE_M2`` in a community, no cell crossing its community boundary, no invalid geometry, no
malformed, misplaced or duplicate code, every unit grid in exactly one duty grid (once duty grids exist).
Reported, not enforced: cell-area statistics and the share of main-road length inside cells.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.crs import metric_crs
from gridmap.territory.grids import current_cells, read_roads, scope_communities

TOLERANCE_M2 = 1.0  # floating-point noise of reprojection and noding stays far below this
MAIN_GRADES = ("grade1", "grade2")  # primary / secondary in the OSM mapping
EDGE_BUFFER_M = 1.0  # a road within this distance of a cell edge runs along the edge
CODE = re.compile(r"[0-9]{15}")


@dataclass
class CommunityCheck:
    community: str
    cells: int = 0
    gap_m2: float = 0.0
    overlap_m2: float = 0.0
    gap_locations: list[tuple[float, float]] = field(default_factory=list)  # lon, lat
    overlap_locations: list[tuple[float, float]] = field(default_factory=list)
    crossing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    bad_codes: list[str] = field(default_factory=list)
    main_road_m: float = 0.0
    main_road_inside_m: float = 0.0

    @property
    def hard_violations(self) -> list[str]:
        problems = []
        if self.cells == 0:
            problems.append("no unit grids")
        if self.gap_m2 > TOLERANCE_M2:
            problems.append(f"gaps of {self.gap_m2:,.1f} m² at {self.gap_locations[:3]}")
        if self.overlap_m2 > TOLERANCE_M2:
            problems.append(f"overlaps of {self.overlap_m2:,.1f} m² at {self.overlap_locations[:3]}")
        if self.crossing:
            problems.append(f"cells crossing the community boundary: {self.crossing[:5]}")
        if self.invalid:
            problems.append(f"invalid geometries: {self.invalid[:5]}")
        if self.bad_codes:
            problems.append(f"malformed or misplaced codes: {self.bad_codes[:5]}")
        return problems


@dataclass
class GridCheck:
    communities: list[CommunityCheck]
    duplicate_codes: list[str]
    outside_duty_grids: int | None  # None: no duty grids defined yet
    areas: dict[str, float]
    disconnected_duty_grids: int = 0  # reported: a community in separate parts makes some unavoidable

    @property
    def hard_violations(self) -> dict[str, list[str]]:
        found = {c.community: c.hard_violations for c in self.communities if c.hard_violations}
        if self.duplicate_codes:
            found["city"] = [f"duplicate current codes: {self.duplicate_codes[:5]}"]
        if self.outside_duty_grids:
            found.setdefault("city", []).append(f"{self.outside_duty_grids} unit grids in no duty grid")
        return found

    @property
    def main_road_inside_share(self) -> float:
        total = sum(c.main_road_m for c in self.communities)
        return sum(c.main_road_inside_m for c in self.communities) / total if total else 0.0

    def totals(self) -> dict[str, float]:
        return {
            "communities": len(self.communities),
            "cells": sum(c.cells for c in self.communities),
            "gap m²": sum(c.gap_m2 for c in self.communities),
            "overlap m²": sum(c.overlap_m2 for c in self.communities),
            "cells crossing a community boundary": sum(len(c.crossing) for c in self.communities),
            "invalid geometries": sum(len(c.invalid) for c in self.communities),
            "malformed or misplaced codes": sum(len(c.bad_codes) for c in self.communities),
            "duplicate codes": len(self.duplicate_codes),
            "main-road length inside cells (%)": 100 * self.main_road_inside_share,
            "unit grids in no duty grid": self.outside_duty_grids or 0,
            "duty grids in separate parts": self.disconnected_duty_grids,
        }

    def as_dict(self) -> dict:
        return {"totals": self.totals(), "areas": self.areas, "hard_violations": self.hard_violations,
                "communities": [asdict(c) for c in self.communities]}


def check_unit_grids(*, session: Session, district: str | None = None, community: str | None = None) -> GridCheck:
    """Check the current unit grids of the scope (default: the whole city)."""
    crs = metric_crs(session=session)
    communities = scope_communities(session=session, district=district, community=community, crs=crs)
    cells = current_cells(session=session, community_codes=list(communities["code"]), crs=crs)
    main_roads = read_roads(session=session, crs=crs, grades=MAIN_GRADES).geometry.values
    road_tree = shapely.STRtree(main_roads)
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    by_community = dict(tuple(cells.groupby("community_code")))
    checks = [
        check_community(code, shape, by_community.get(code), main_roads, road_tree, to_lonlat)
        for code, shape in zip(communities["code"], communities.geometry.values)
    ]
    areas = cells.area.describe(percentiles=[0.05, 0.5, 0.95]).to_dict() if len(cells) else {}
    return GridCheck(communities=checks, duplicate_codes=duplicate_codes(session=session),
                     outside_duty_grids=outside_duty_grids(session=session), areas=areas,
                     disconnected_duty_grids=disconnected_duty_grids(session=session))


def check_community(code, shape, cells: gpd.GeoDataFrame | None, main_roads, road_tree, to_lonlat) -> CommunityCheck:
    result = CommunityCheck(community=code)
    if cells is None or cells.empty:
        return result
    geoms = cells.geometry.values
    result.cells = len(geoms)
    # validity is that of the stored geometry (EPSG:4326), not of its reprojection
    valid = (cells["validity"] == "Valid Geometry").to_numpy()
    result.invalid = [f"{c}: {reason}" for c, reason in zip(cells["code"][~valid], cells["validity"][~valid])]
    geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    result.bad_codes = [c for c in cells["code"] if not CODE.fullmatch(c) or c[:12] != code]
    covered = shapely.union_all(geoms)
    gaps = shapely.get_parts(shapely.difference(shape, covered))
    result.gap_m2 = float(shapely.area(gaps).sum())
    result.gap_locations = _locations(gaps, to_lonlat)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    pairs = left < right
    overlaps = shapely.intersection(geoms[left[pairs]], geoms[right[pairs]])
    result.overlap_m2 = float(shapely.area(overlaps).sum())
    result.overlap_locations = _locations(overlaps, to_lonlat)
    outside = shapely.area(shapely.difference(geoms, shape))
    result.crossing = list(cells["code"][outside > TOLERANCE_M2])
    nearby = main_roads[road_tree.query(shape, predicate="intersects")]
    if len(nearby):
        inside = shapely.intersection(shapely.union_all(nearby), shape)
        edges = shapely.buffer(shapely.union_all(shapely.boundary(geoms)), EDGE_BUFFER_M)
        result.main_road_m = float(shapely.length(inside))
        result.main_road_inside_m = float(shapely.length(shapely.difference(inside, edges)))
    return result


def _locations(parts: np.ndarray, to_lonlat: Transformer) -> list[tuple[float, float]]:
    parts = parts[shapely.area(parts) > 0.01]
    parts = parts[np.argsort(-shapely.area(parts))][:10]
    points = shapely.point_on_surface(parts)
    lon, lat = to_lonlat.transform(shapely.get_x(points), shapely.get_y(points))
    return [(round(float(x), 6), round(float(y), 6)) for x, y in zip(np.atleast_1d(lon), np.atleast_1d(lat))]


def duplicate_codes(*, session: Session) -> list[str]:
    return list(session.execute(text(
        "SELECT code FROM unit_grid WHERE valid_to IS NULL GROUP BY code HAVING count(*) > 1 ORDER BY code")).scalars())


def outside_duty_grids(*, session: Session) -> int | None:
    if not session.execute(text("SELECT EXISTS (SELECT 1 FROM duty_grid)")).scalar_one():
        return None
    return session.execute(text("""SELECT count(*) FROM unit_grid g WHERE g.valid_to IS NULL
        AND NOT EXISTS (SELECT 1 FROM duty_grid_member m WHERE m.unit_grid_code = g.code)""")).scalar_one()


def disconnected_duty_grids(*, session: Session) -> int:
    return session.execute(text("""
        SELECT count(*) FROM (
            SELECT m.duty_grid_id FROM duty_grid_member m
            JOIN unit_grid g ON g.code = m.unit_grid_code AND g.valid_to IS NULL
            GROUP BY m.duty_grid_id HAVING ST_NumGeometries(ST_Multi(ST_Union(g.geom, 1e-7))) > 1) AS parts""")).scalar_one()
