"""Hot spots 热点网格: which unit grids keep producing cases, and where cases cluster beyond chance.

Per unit grid and period: the number of cases, their density (cases per km² of the grid), recurrence
(in how many sub-periods — the weeks of a month, the months of a quarter … — the grid had at least
``k`` cases, and a *recurring problem grid* flag), and the Getis-Ord Gi* statistic on the grids' queen
adjacency (Getis & Ord 1992, Ord & Getis 1995; the form ArcGIS's Hot Spot Analysis uses)::

    Gi*_i = (Σ_j w_ij x_j − x̄ Σ_j w_ij) / (S √[(n Σ_j w_ij² − (Σ_j w_ij)²) / (n − 1)])
    x̄ = Σ_j x_j / n,   S = √(Σ_j x_j² / n − x̄²)

with binary weights, w_ij = 1 when grids i and j share a boundary point (queen contiguity) and
w_ii = 1 (Gi* counts the grid itself). Gi* is a z-score; the p-value is two-sided from the normal
distribution, and ``gi_bin`` follows ArcGIS's Gi_Bin: ±3 at p < 0.01 (99 %), ±2 at p < 0.05 (95 %),
±1 at p < 0.10 (90 %), 0 otherwise; no correction for multiple testing.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.stats import norm
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.cases.models import STATUSES
from gridmap.io.cases import resolve_period
from gridmap.io.exceptions import ExportFailed
from gridmap.io.export import layer_query, output_crs, read_layer

#: neighbouring cells meet up to float noise, so "sharing a boundary" means "within 1 cm" (in metres)
TOUCH_TOLERANCE_M = 0.01
#: cases that are not problems on the street: refused, voided, or duplicates merged into another case
NOT_COUNTED = ("rejected", "voided", "merged")
#: the sub-periods recurrence counts in, by the kind of period
EVERY = {"day": "hour", "week": "day", "month": "week", "quarter": "month", "year": "month"}
FREQUENCIES = {"hour": "h", "day": "D", "week": "W-MON", "month": "MS"}
BINS = ((0.01, 3), (0.05, 2), (0.10, 1))
LABELS = {3: ("hot spot 99%", "热点 99%"), 2: ("hot spot 95%", "热点 95%"), 1: ("hot spot 90%", "热点 90%"),
          0: ("not significant", "不显著"), -1: ("cold spot 90%", "冷点 90%"), -2: ("cold spot 95%", "冷点 95%"),
          -3: ("cold spot 99%", "冷点 99%")}


def hotspots(*, session: Session, period, class_code=None, case_type: str | None = None, district: str | None = None,
             every: str | None = None, k: int = 1, recurring_share: float = 0.5, value: str = "count",
             crs=None) -> gpd.GeoDataFrame:
    """Return the current unit grids with case counts, density, recurrence and Gi* for ``period``.

    Parameters
    ----------
    session : Session
    period : str or Period
        ``2026-10``, ``2026-W41``, ``2026-Q4`` … (:func:`gridmap.evaluation.periods.parse_period`); cases
        count by the time they were reported. Rejected, voided and merged cases do not count.
    class_code, case_type : optional
        Only cases of these classes (``20102``, ``0118`` …; see :func:`gridmap.io.cases.conditions`).
    district : str, optional
        District code or name: the study area is its grids (Gi* compares them with each other).
    every : {"hour", "day", "week", "month"}, optional
        The sub-periods of recurrence; by default the hours of a day, the days of a week, the weeks of a
        month (ISO weeks, cut at the month's ends), the months of a quarter or a year; for a range of
        days, weeks from 14 days on, else days.
    k : int
        A sub-period is *active* for a grid with at least ``k`` cases in it.
    recurring_share : float
        ``recurring`` is true for grids active in at least this share of the sub-periods (and in two).
    value : {"count", "density"}
        What Gi* is computed on: cases, or cases per km².
    crs : optional
        Output CRS (EPSG:4326 by default).

    Returns
    -------
    GeoDataFrame
        One row per grid — ``code``, ``community_code``, ``district_code``, ``area_class``, ``area_km2``,
        ``cases``, ``density_km2``, ``active_periods``, ``recurring``, ``neighbours``, ``gi_z``,
        ``gi_p``, ``gi_bin``, ``hotspot`` / ``hotspot_zh`` — hottest first; ``attrs`` holds the period,
        the sub-periods, the case count and the cases that fell in no current grid.
    """
    if value not in ("count", "density"):
        raise ExportFailed(f"value {value!r}: use count or density")
    if k < 1 or not 0 < recurring_share <= 1:
        raise ExportFailed("k must be at least 1 and recurring_share in (0, 1]")
    period = resolve_period(session=session, period=period)
    start, end = period.start, period.end
    edges = sub_periods(start, end, every or EVERY.get(period.kind) or ("week" if (end - start).days >= 14 else "day"))
    grids = read_layer(session=session, name="unit_grid", district=district, crs=_metric(session))
    cases = _case_times(session, period=period, class_code=class_code, case_type=case_type, district=district)
    index = pd.Index(grids["code"]).get_indexer(cases["unit_grid"])
    inside = index >= 0
    stamps = cases["reported_at"].dt.as_unit("us").array.asi8  # µs since the epoch (UTC)
    counts = _counts(index[inside], stamps[inside], edges, len(grids))
    out = _table(grids, counts, k=k, share=recurring_share)
    weights = queen_weights(grids.geometry.values, tolerance=TOUCH_TOLERANCE_M)
    out["neighbours"] = np.diff(weights.indptr)
    x = out["cases" if value == "count" else "density_km2"].to_numpy(dtype=float)
    out["gi_z"], out["gi_p"] = gi_star(x, weights + sparse.identity(len(out), format="csr"))
    out["gi_bin"] = gi_bin(out["gi_z"].to_numpy(), out["gi_p"].to_numpy())
    out["hotspot"] = out["gi_bin"].map(lambda b: LABELS[b][0])
    out["hotspot_zh"] = out["gi_bin"].map(lambda b: LABELS[b][1])
    out = out.sort_values(["gi_bin", "gi_z", "cases", "code"], ascending=[False, False, False, True],
                          na_position="last", ignore_index=True).to_crs(output_crs(crs))
    out.attrs.update(period=period.label, start=start.isoformat(), end=end.isoformat(),
                     subperiods=[e.isoformat() for e in edges[:-1]], cases=int(inside.sum()),
                     cases_outside=int((~inside).sum()), value=value, k=k)
    return out


def sub_periods(start, end, every: str) -> list[pd.Timestamp]:
    """The edges of the sub-periods of [start, end): calendar hours, days, ISO weeks (from Monday) or
    months in the period's time zone, the first and last cut at the period's ends."""
    if every not in FREQUENCIES:
        raise ExportFailed(f"every {every!r}: use one of {', '.join(FREQUENCIES)}")
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    inner = pd.date_range(start.normalize(), end, freq=FREQUENCIES[every], inclusive="left")
    return [start, *(t for t in inner if start < t < end), end]


def queen_weights(geometries, *, tolerance: float = 0.0) -> sparse.csr_matrix:
    """Binary queen contiguity of ``geometries`` (a shapely array) as a symmetric sparse matrix, without
    the diagonal: 1 where two polygons share a boundary point, within ``tolerance`` (in their CRS's unit).

    One STRtree query for all pairs; a tolerance, because generated cells meet along edges up to float
    noise — on the demo city exact ``touches`` finds only two thirds of the neighbours, 1 cm finds all.
    """
    geometries = np.asarray(geometries)
    tree = shapely.STRtree(geometries)
    if tolerance > 0:
        left, right = tree.query(geometries, predicate="dwithin", distance=tolerance)
    else:
        left, right = tree.query(geometries, predicate="intersects")
    pairs = left != right
    size = len(geometries)
    data = np.ones(int(pairs.sum()))
    return sparse.csr_matrix((data, (left[pairs], right[pairs])), shape=(size, size))


def gi_star(x: np.ndarray, weights: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Getis-Ord Gi* z-scores and two-sided p-values of ``x`` for ``weights`` (which include the diagonal).

    NaN where the statistic is undefined: no variation in ``x``, or a grid whose neighbourhood is the
    whole study area."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    mean = x.mean()
    spread = math.sqrt(max((x * x).mean() - mean * mean, 0.0))
    weight_sum = np.asarray(weights.sum(axis=1)).ravel()
    weight_squares = np.asarray(weights.multiply(weights).sum(axis=1)).ravel()
    numerator = weights @ x - mean * weight_sum
    denominator = spread * np.sqrt(np.maximum(n * weight_squares - weight_sum ** 2, 0.0) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(denominator > 0, numerator / denominator, np.nan)
    return z, 2 * norm.sf(np.abs(z))


def gi_bin(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ArcGIS's Gi_Bin: ±3, ±2, ±1 for significance at 99, 95, 90 % (sign of z), 0 otherwise or undefined."""
    bins = np.zeros(len(z), dtype=int)
    for level, value in reversed(BINS):  # the strictest level is written last
        bins = np.where(p < level, value * np.nan_to_num(np.sign(z)).astype(int), bins)
    return bins


def _metric(session: Session):
    srid = session.execute(text("SELECT metric_srid FROM city WHERE id = 1")).scalar()
    if srid is None:
        raise ExportFailed("no city record: load a city first (gridmap demo load)")
    return srid


def _case_times(session: Session, **filters) -> pd.DataFrame:
    """Unit grid and report time of the cases that count (one statement, no geometry)."""
    counted = [s for s in STATUSES if s not in NOT_COUNTED]
    sql, params = layer_query(session=session, name="cases", status=counted,
                              columns="layer.unit_grid, layer.reported_at", **filters)
    frame = pd.read_sql(text(sql), session.connection(), params=params)
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return frame


def _counts(grid: np.ndarray, times: np.ndarray, edges: list[pd.Timestamp], size: int) -> np.ndarray:
    """Cases per grid (rows) and sub-period (columns); ``times`` in µs since the epoch."""
    bounds = pd.DatetimeIndex(edges).as_unit("us").asi8
    slot = np.searchsorted(bounds, times, side="right") - 1
    slots = len(edges) - 1
    flat = np.bincount(grid * slots + slot, minlength=size * slots)
    return flat.reshape(size, slots)


def _table(grids: gpd.GeoDataFrame, counts: np.ndarray, *, k: int, share: float) -> gpd.GeoDataFrame:
    area_km2 = grids["area_m2"].to_numpy() / 1e6
    active = (counts >= k).sum(axis=1)
    columns = {
        "code": grids["code"], "community_code": grids["community_code"],
        "district_code": grids["community_code"].str[:6], "area_class": grids["area_class"],
        "area_km2": area_km2, "cases": counts.sum(axis=1), "density_km2": counts.sum(axis=1) / area_km2,
        "active_periods": active, "recurring": active >= max(2, math.ceil(share * counts.shape[1])),
    }
    return gpd.GeoDataFrame(columns, geometry=grids.geometry.values, crs=grids.crs).rename_geometry("geom")
