"""Generate, version and save the unit grids of a scope (one community, one district, or the city).

Regenerating keeps the code of every cell whose shape did not change; a changed cell is closed
(``valid_to`` = the day of the change) and its replacement gets a code never used before in its
community, so history is never rewritten. A version that began the same day is replaced outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.crs import metric_crs
from gridmap.db.base import STORAGE_SRID
from gridmap.io.importer import import_layer
from gridmap.territory.generate import GridOptions, community_target, generate_cells, sequence_order

#: grades whose roads make a cell area class A (core) when they bound or cross it
CORE_GRADES = ("special", "grade1")
#: grades of the main roads: slivers are merged across them only when nothing else is possible
MAIN_GRADES = ("special", "grade1", "grade2")
SAME_SHAPE_M2 = 1.0  # two cells whose symmetric difference is below this are the same cell


class ScopeNotFound(LookupError):
    """No community matches the requested district or community code."""


@dataclass
class GridGeneration:
    cells: gpd.GeoDataFrame  # the current cells of the scope, EPSG:4326
    kept: int = 0
    created: int = 0
    retired: int = 0
    enlarged: dict[str, float] = field(default_factory=dict)  # community → target used, where enlarged

    def area_distribution(self, crs) -> dict[str, float]:
        areas = self.cells.to_crs(crs).area
        quantiles = areas.quantile([0.05, 0.5, 0.95]) if len(areas) else pd.Series([0.0] * 3, [0.05, 0.5, 0.95])
        return {"cells": len(areas), "min": areas.min(), "p5": quantiles[0.05], "median": quantiles[0.5],
                "mean": areas.mean(), "p95": quantiles[0.95], "max": areas.max()}


def scope_communities(*, session: Session, district: str | None = None, community: str | None = None,
                      crs=None) -> gpd.GeoDataFrame:
    """Communities in scope (``code``, ``name``, ``district_code`` and geometry), in ``crs`` (default 4326)."""
    sql = """SELECT c.code, c.name, d.code AS district_code, c.geom FROM community c
             JOIN district d ON d.id = c.district_id
             WHERE (CAST(:district AS text) IS NULL OR d.code = :district)
               AND (CAST(:community AS text) IS NULL OR c.code = :community)
             ORDER BY c.code"""
    frame = gpd.read_postgis(text(sql), session.connection(), geom_col="geom", crs=STORAGE_SRID,
                             params={"district": district, "community": community})
    if frame.empty:
        raise ScopeNotFound(f"no community in scope (district={district!r}, community={community!r})")
    return frame.to_crs(crs) if crs is not None else frame


def read_roads(*, session: Session, crs, grades: tuple[str, ...] | None = None) -> gpd.GeoDataFrame:
    sql = ("SELECT code, grade_code, source_class, geom FROM road "
           "WHERE CAST(:all AS boolean) OR grade_code = ANY(CAST(:grades AS text[]))")
    frame = gpd.read_postgis(text(sql), session.connection(), geom_col="geom", crs=STORAGE_SRID,
                             params={"all": grades is None, "grades": list(grades or ())})
    return frame.to_crs(crs)


def generate_unit_grids(
    *,
    session: Session,
    district: str | None = None,
    community: str | None = None,
    options: GridOptions = GridOptions(),
    barriers: gpd.GeoSeries | None = None,
    as_of: date | None = None,
) -> GridGeneration:
    """Generate the unit grids of the scope, save them as a new version, and return what happened.

    Parameters
    ----------
    district, community : the scope (a 6-digit district or 12-digit community code; neither = the city).
    options : target area and the other knobs of :mod:`gridmap.territory.generate`.
    barriers : extra lines cells must not cross (rivers, rail, walls), any CRS.
    as_of : the date the new version starts (default today).
    """
    as_of = as_of or date.today()
    crs = metric_crs(session=session)
    communities = scope_communities(session=session, district=district, community=community, crs=crs)
    roads = read_roads(session=session, crs=crs)
    lines, main = roads.geometry, roads["grade_code"].isin(MAIN_GRADES).to_numpy()
    if barriers is not None and len(barriers):
        lines = pd.concat([lines, barriers.to_crs(crs)], ignore_index=True)
        main = np.concatenate([main, np.ones(len(barriers), dtype=bool)])  # like main roads: merged across last
    lines = gpd.GeoSeries(lines.values, crs=crs)
    cells = generate_cells(communities[["code", "geom"]].rename_geometry("geometry"), lines, options, main=main)
    cells["area_class"] = area_classes(cells, roads, options)
    result = save_unit_grids(session=session, cells=cells, communities=communities, as_of=as_of, options=options)
    result.enlarged = {
        code: target for code, area in zip(communities["code"], communities.area)
        if (target := community_target(area, options)) > options.target_area
    }
    return result


def area_classes(cells: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, options: GridOptions) -> np.ndarray:
    """A (核心区) where a special or grade-1 road bounds or crosses the cell, C for open land, else B."""
    core = roads[roads["grade_code"].isin(CORE_GRADES)].geometry.values
    near_core = np.zeros(len(cells), dtype=bool)
    if len(core):
        hits = shapely.STRtree(core).query(cells.geometry.values, predicate="dwithin", distance=1.0)[0]
        near_core[np.unique(hits)] = True
    near_any = np.zeros(len(cells), dtype=bool)
    if len(roads):
        hits = shapely.STRtree(roads.geometry.values).query(cells.geometry.values, predicate="dwithin", distance=1.0)[0]
        near_any[np.unique(hits)] = True
    open_land = ~near_any & (cells.area.to_numpy() > 2 * options.target_area)
    return np.where(near_core, "A", np.where(open_land, "C", "B"))


def current_cells(*, session: Session, community_codes: list[str], crs) -> gpd.GeoDataFrame:
    sql = """SELECT g.code, c.code AS community_code, g.valid_from, ST_IsValidReason(g.geom) AS validity, g.geom
             FROM unit_grid g
             JOIN community c ON c.id = g.community_id
             WHERE g.valid_to IS NULL AND c.code = ANY(:codes) ORDER BY g.code"""
    frame = gpd.read_postgis(text(sql), session.connection(), geom_col="geom", crs=STORAGE_SRID,
                             params={"codes": community_codes})
    return frame.to_crs(crs)


def match_unchanged(new: gpd.GeoDataFrame, old: gpd.GeoDataFrame) -> np.ndarray:
    """For each new cell, the index of the old cell of the same shape and community, or -1."""
    matched = np.full(len(new), -1)
    if old.empty or new.empty:
        return matched
    new_i, old_i = shapely.STRtree(old.geometry.values).query(
        shapely.point_on_surface(new.geometry.values), predicate="intersects")
    same_community = new["community_code"].to_numpy()[new_i] == old["community_code"].to_numpy()[old_i]
    new_i, old_i = new_i[same_community], old_i[same_community]
    difference = shapely.area(shapely.symmetric_difference(new.geometry.values[new_i], old.geometry.values[old_i]))
    same = difference < SAME_SHAPE_M2
    matched[new_i[same]] = old_i[same]
    return matched


def save_unit_grids(
    *, session: Session, cells: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, as_of: date, options: GridOptions
) -> GridGeneration:
    """Store ``cells`` (metric CRS, from :func:`generate_cells`) as the current unit grids of ``communities``."""
    codes = list(communities["code"])
    old = current_cells(session=session, community_codes=codes, crs=cells.crs)
    matched = match_unchanged(cells, old)
    kept_codes = set(old["code"].to_numpy()[matched[matched >= 0]])
    retired = sorted(set(old["code"]) - kept_codes)
    cells = cells.copy()
    cells.loc[matched >= 0, "code"] = old["code"].to_numpy()[matched[matched >= 0]]
    fresh = np.flatnonzero(matched < 0)
    if len(fresh):
        cells = renumber_fresh(session=session, cells=cells, fresh=fresh, options=options)
    new = cells.iloc[fresh]
    if len(new):
        data = gpd.GeoDataFrame({"code": new["code"], "area_class": new["area_class"], "valid_from": as_of.isoformat(),
                                 "source": "generated"}, geometry=new.geometry.values, crs=cells.crs)
        report = import_layer(session=session, layer="unit_grid", data=data, strict=True)
        if report.inserted != len(new):
            raise RuntimeError(f"unit grid save inserted {report.inserted} of {len(new)} cells: {report.summary()}")
    inherit_duty_grids(session=session, retired=retired, created=list(new["code"]))
    retire(session=session, codes=retired, as_of=as_of)
    assign_street_offices(session=session, community_codes=codes)
    current = current_cells(session=session, community_codes=codes, crs=STORAGE_SRID)
    return GridGeneration(cells=current, kept=len(kept_codes), created=len(new), retired=len(retired))


def renumber_fresh(*, session: Session, cells: gpd.GeoDataFrame, fresh: np.ndarray, options: GridOptions) -> gpd.GeoDataFrame:
    """Give new cells sequence numbers west→east, north→south: first numbers never used in their community,
    then, if those run out, numbers of cells retired in an earlier change, longest ago first (their history
    stays: (code, valid_from) tells the versions apart). A community without any history keeps the numbers :func:`generate_cells` gave.
    """
    history = session.execute(text("""
        SELECT left(code, 12) AS community, right(code, 3)::int AS number,
               bool_or(valid_to IS NULL) AS current, max(valid_to) AS retired
        FROM unit_grid WHERE left(code, 12) = ANY(:c) GROUP BY 1, 2"""),
        {"c": list(cells["community_code"].iloc[fresh].unique())}).mappings().all()
    by_community: dict[str, list] = {}
    for row in history:
        by_community.setdefault(row["community"], []).append(row)
    for community, rows in cells.iloc[fresh].groupby("community_code"):
        if community not in by_community:
            continue
        seen = {row["number"] for row in by_community[community]}
        never = [n for n in range(1, options.max_cells + 1) if n not in seen]
        retired = sorted((row["retired"], row["number"]) for row in by_community[community] if not row["current"])
        free = never + [number for _day, number in retired]
        if len(free) < len(rows):
            raise ValueError(f"community {community}: {len(rows)} new cells but only {len(free)} free codes")
        order = sequence_order(rows.geometry.values, band=np.sqrt(options.target_area))
        for position, index in enumerate(rows.index[order]):
            cells.loc[index, "code"] = f"{community}{free[position]:03d}"
    return cells


def retire(*, session: Session, codes: list[str], as_of: date) -> None:
    """Close the current version of ``codes`` on ``as_of``; a version begun that day is dropped instead."""
    if not codes:
        return
    params = {"codes": codes, "as_of": as_of}
    session.execute(text("DELETE FROM unit_grid WHERE code = ANY(:codes) AND valid_to IS NULL AND valid_from >= :as_of"),
                    params)
    session.execute(text("UPDATE unit_grid SET valid_to = :as_of WHERE code = ANY(:codes) AND valid_to IS NULL"), params)


def assign_street_offices(*, session: Session, community_codes: list[str]) -> None:
    """属地: a unit grid without a responsible department gets the street office of its street or district."""
    session.execute(text("""
        UPDATE unit_grid g SET responsible_department_id = (
            SELECT d.id FROM department d
            WHERE d.kind = 'street_office'
              AND (d.street_id = c.street_id OR (d.street_id IS NULL AND d.district_id = c.district_id))
            ORDER BY d.street_id NULLS LAST, d.code LIMIT 1)
        FROM community c
        WHERE c.id = g.community_id AND g.valid_to IS NULL AND g.responsible_department_id IS NULL
          AND c.code = ANY(:codes)"""), {"codes": community_codes})


def inherit_duty_grids(*, session: Session, retired: list[str], created: list[str]) -> None:
    """A new cell joins the duty grid of the retiring cell it overlaps most; retiring cells leave theirs.

    Runs before :func:`retire`, while the retiring cells are still current.
    """
    if not retired:
        return
    session.execute(text("""
        INSERT INTO duty_grid_member (unit_grid_code, duty_grid_id)
        SELECT DISTINCT ON (n.code) n.code, m.duty_grid_id
        FROM unit_grid n
        JOIN unit_grid o ON o.code = ANY(:retired) AND o.valid_to IS NULL AND ST_Intersects(o.geom, n.geom)
        JOIN duty_grid_member m ON m.unit_grid_code = o.code
        WHERE n.code = ANY(:created) AND n.valid_to IS NULL
        ORDER BY n.code, ST_Area(ST_Intersection(o.geom, n.geom)) DESC
        ON CONFLICT (unit_grid_code) DO NOTHING"""), {"retired": retired, "created": created})
    session.execute(text("DELETE FROM duty_grid_member WHERE unit_grid_code = ANY(:retired)"), {"retired": retired})
