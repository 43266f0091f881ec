"""Duty grids 责任网格: adjacent unit grids grouped for one inspector's patrol; generated or imported.

Default grouping, per community: each unit grid weighs 1 + its road length / 100 m (or 1 + its
components / 10, or 1: ``balance``); the community gets round(total weight / ``size``) duty grids
(at least one); its unit grids are ordered along a Hilbert curve and cut into runs of equal weight, so
each run is a compact, adjacent group. A run that still falls apart hands its detached pieces to the
neighbouring duty grid they share the longest edge with. Codes are ``<community code>-D<nn>``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.crs import metric_crs
from gridmap.io.report import ImportReport, RowIssue
from gridmap.io.sources import read_source
from gridmap.territory.grids import current_cells, read_roads, scope_communities

BALANCES = ("road_length", "components", "cells")


def cell_weights(*, session: Session, cells: gpd.GeoDataFrame, balance: str) -> np.ndarray:
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {', '.join(BALANCES)}")
    if balance == "cells":
        return np.ones(len(cells))
    if balance == "road_length":
        roads = read_roads(session=session, crs=cells.crs).geometry.values
        cell_i, road_i = shapely.STRtree(roads).query(cells.geometry.values, predicate="intersects")
        lengths = shapely.length(shapely.intersection(cells.geometry.values[cell_i], roads[road_i]))
        return 1 + np.bincount(cell_i, weights=lengths, minlength=len(cells)) / 100.0
    counts = session.execute(text("""
        SELECT g.code, count(p.id) FROM unit_grid g JOIN component p ON ST_Intersects(g.geom, p.geom)
        WHERE g.valid_to IS NULL AND g.code = ANY(:codes) GROUP BY g.code"""), {"codes": list(cells["code"])}).all()
    return 1 + cells["code"].map(dict(counts)).fillna(0).to_numpy() / 10.0


def group_cells(cells: gpd.GeoDataFrame, weights: np.ndarray, size: float) -> np.ndarray:
    """Group number (0…k−1) of each cell of one community, in Hilbert order, balanced by weight."""
    k = max(1, int(round(weights.sum() / (size * np.mean(weights)))))
    order = np.argsort(cells.geometry.representative_point().hilbert_distance().to_numpy(), kind="stable")
    cumulative = np.cumsum(weights[order]) - weights[order] / 2
    groups = np.empty(len(cells), dtype=int)
    groups[order] = np.minimum((cumulative / weights.sum() * k).astype(int), k - 1)
    return reattach_detached(cells.geometry.values, groups)


def reattach_detached(geoms: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Give each detached piece of a group to the adjacent group it shares the longest edge with."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")  # not "touches": edges carry noise
    left, right = left[left != right], right[left != right]
    joined = shapely.union(geoms[left], geoms[right])
    shared = (shapely.length(geoms[left]) + shapely.length(geoms[right]) - shapely.length(joined)) / 2
    edge = shared > 0.5
    left, right, shared = left[edge], right[edge], shared[edge]
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        component = _components(members, left, right)
        if len(set(component.values())) <= 1:
            continue
        sizes = pd.Series(component).value_counts()
        for cell, label in component.items():
            if label == sizes.index[0]:
                continue
            outward = (left == cell) & (groups[right] != group)
            if outward.any():
                groups[cell] = groups[right[outward][np.argmax(shared[outward])]]
    return groups


def _components(members: np.ndarray, left: np.ndarray, right: np.ndarray) -> dict[int, int]:
    """Connected components (label per cell) of ``members`` under edge adjacency."""
    inside = set(members.tolist())
    label = {int(m): int(m) for m in members}

    def find(i: int) -> int:
        while label[i] != i:
            i = label[i]
        return i

    for a, b in zip(left, right):
        if a in inside and b in inside:
            label[find(int(a))] = find(int(b))
    return {m: find(m) for m in label}


def generate_duty_grids(
    *, session: Session, district: str | None = None, community: str | None = None, size: float = 15,
    balance: str = "road_length",
) -> pd.DataFrame:
    """Regroup the unit grids of the scope into duty grids; return (unit_grid_code, duty_grid_code) rows.

    Duty grids keep their codes (and so their inspectors) when the grouping is regenerated.
    """
    crs = metric_crs(session=session)
    communities = scope_communities(session=session, district=district, community=community)
    cells = current_cells(session=session, community_codes=list(communities["code"]), crs=crs)
    weights = cell_weights(session=session, cells=cells, balance=balance)
    cells["group"] = 0
    for _code, index in cells.groupby("community_code").groups.items():
        position = cells.index.get_indexer(index)
        cells.loc[index, "group"] = group_cells(cells.loc[index], weights[position], size)
    names = dict(zip(communities["code"], communities["name"]))
    districts = dict(zip(communities["code"], communities["district_code"]))
    cells["duty_grid_code"] = [f"{c}-D{g + 1:02d}" for c, g in zip(cells["community_code"], cells["group"])]
    cells["duty_grid_name"] = [f"{names[c]}{g + 1}号责任网格" for c, g in zip(cells["community_code"], cells["group"])]
    cells["district_code"] = cells["community_code"].map(districts)
    membership = pd.DataFrame(cells[["code", "duty_grid_code", "duty_grid_name", "district_code"]])
    save_membership(session=session, membership=membership.rename(columns={"code": "unit_grid_code"}))
    return membership.rename(columns={"code": "unit_grid_code"})


def save_membership(*, session: Session, membership: pd.DataFrame) -> None:
    """Upsert the duty grids named in ``membership`` and set each listed unit grid's one duty grid."""
    grids = membership.drop_duplicates("duty_grid_code")
    session.execute(text("""
        INSERT INTO duty_grid (code, name, district_id)
        SELECT g.code, g.name, (SELECT id FROM district WHERE code = g.district)
        FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:districts AS text[])) AS g(code, name, district)
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, district_id = EXCLUDED.district_id"""),
        {"codes": list(grids["duty_grid_code"]), "names": list(grids["duty_grid_name"]),
         "districts": list(grids["district_code"])})
    session.execute(text("""
        INSERT INTO duty_grid_member (unit_grid_code, duty_grid_id)
        SELECT m.grid, d.id FROM unnest(CAST(:grids AS text[]), CAST(:duties AS text[])) AS m(grid, duty)
        JOIN duty_grid d ON d.code = m.duty
        ON CONFLICT (unit_grid_code) DO UPDATE SET duty_grid_id = EXCLUDED.duty_grid_id"""),
        {"grids": list(membership["unit_grid_code"]), "duties": list(membership["duty_grid_code"])})
    session.execute(text("""DELETE FROM duty_grid d WHERE NOT EXISTS
        (SELECT 1 FROM duty_grid_member m WHERE m.duty_grid_id = d.id)"""))


def import_duty_grids(*, session: Session, path: Path, strict: bool = False) -> ImportReport:
    """Import duty grids from a table: ``unit_grid_code``, ``duty_grid_code``, optional ``duty_grid_name``
    and ``inspectors`` (inspector codes separated by ``;``, created when unknown)."""
    rows = read_source(Path(path)).rows
    report = ImportReport(layer="duty_grid", file=str(path), rows_read=len(rows))
    for column in ("unit_grid_code", "duty_grid_code"):
        if column not in rows:
            raise ValueError(f"{path}: no column {column!r} (the file has {list(rows.columns)})")
    known = set(session.execute(text("SELECT code FROM unit_grid WHERE valid_to IS NULL")).scalars())
    first = rows.reset_index().groupby("unit_grid_code")["index"].first()
    for i, row in rows.iterrows():
        grid = row["unit_grid_code"]
        if grid is None or row["duty_grid_code"] is None:
            report.rejected.append(RowIssue(i + 1, "unit_grid_code" if grid is None else "duty_grid_code", "missing"))
        elif grid not in known:
            report.rejected.append(RowIssue(i + 1, "unit_grid_code", "no current unit grid has this code", grid))
        elif first[grid] != i:
            report.rejected.append(RowIssue(i + 1, "unit_grid_code", f"already in row {first[grid] + 1}: "
                                            "a unit grid belongs to exactly one duty grid", grid))
    if strict and report.rejected:
        from gridmap.io.exceptions import ImportRejected

        raise ImportRejected(report)
    good = rows.drop(index=[issue.row - 1 for issue in report.rejected])
    names = good.get("duty_grid_name", pd.Series(None, index=good.index)).fillna(good["duty_grid_code"])
    district = good["unit_grid_code"].str[:6]
    save_membership(session=session, membership=pd.DataFrame({
        "unit_grid_code": good["unit_grid_code"], "duty_grid_code": good["duty_grid_code"],
        "duty_grid_name": names, "district_code": district}))
    if "inspectors" in good:
        assign_inspectors(session=session, pairs=[(duty, code.strip()) for duty, codes in
                                                   zip(good["duty_grid_code"], good["inspectors"].fillna(""))
                                                   for code in codes.split(";") if code.strip()])
    report.inserted = len(good)
    return report


def assign_inspectors(*, session: Session, pairs: list[tuple[str, str]]) -> None:
    """Assign inspectors (by code, created when unknown) to duty grids (by code)."""
    if not pairs:
        return
    duties, inspectors = zip(*pairs)
    session.execute(text("""INSERT INTO inspector (code, name) SELECT DISTINCT i, i FROM unnest(CAST(:i AS text[])) i
                            ON CONFLICT (code) DO NOTHING"""), {"i": list(inspectors)})
    session.execute(text("""
        INSERT INTO duty_grid_inspector (duty_grid_id, inspector_id)
        SELECT d.id, i.id FROM unnest(CAST(:d AS text[]), CAST(:i AS text[])) AS p(duty, inspector)
        JOIN duty_grid d ON d.code = p.duty JOIN inspector i ON i.code = p.inspector
        ON CONFLICT DO NOTHING"""), {"d": list(duties), "i": list(inspectors)})
