"""One fix decided step by step in plain Python: the report API's decision, equal to the column path's.

:func:`gridmap.routing.decide.decide_columns` decides any number of fixes column-wise; for one fix its
~2,000 calls into numpy and Arrow cost 1.5 ms, a quarter of what the server spends on a report. Here
the same steps (see :mod:`gridmap.routing.decide`) run on the few features near one fix as Python values,
in about 0.2 ms. The distances still come from the column path's own numpy formulas
(:func:`~gridmap.routing.spatial.point_distances` shares the steps of
:func:`~gridmap.routing.spatial.distances`; :func:`~gridmap.routing.spatial.segment_distance`), so they are
the same to the last bit, and the ambiguity reasons from the same messages
(:mod:`gridmap.routing.messages`). The rare fixes that need more — one on a shared grid edge, a component
the inspector picked — are left to the column path (``None``, or not asked: see ``assign_one``).
Tests decide thousands of fixes both ways and compare every field and the evidence.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from gridmap.routing import messages
from gridmap.routing.layers import Columns, Layers, Reference
from gridmap.routing.policy import (
    MAX_ACCURACY_M,
    ON_EDGE_M,
    SNAP_RADIUS_M,
    accuracy_kind,
    nearly_equal,
    road_tolerance,
)
from gridmap.routing.responsible import ROLES, limit_column, rule_chain
from gridmap.routing.spatial import Segments, point_distances, segment_distance

PLACES = ("unit_grid", "duty_grid", "community", "street", "district", "area_class")
GRID_COLUMNS = ("code", "duty_grid", "community", "street", "district", "area_class")


def decide_one(x: float, y: float, accuracy: float, case_type: str, class_code: str, layers: Layers,
               ref: Reference) -> dict | None:
    """The decision for one fix (metric ``x``/``y``, ``accuracy`` in m or NaN, a known case type and class,
    no picked component) as :func:`gridmap.routing.decide.decide_columns` gives it for one row, with Python
    values (None for missing) and the evidence as a dict; ``error`` holds why a fix outside every grid
    cannot be decided. None where the column path must decide (a fix on a shared grid edge)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    grids, roads, comps = layers.grids, layers.roads, layers.components
    given = accuracy
    accuracy = 0.0 if math.isnan(accuracy) else accuracy
    reasons: list[str] = []
    grid_segments, road_segments = layers.segments or (None, None)
    found = _grid(x, y, accuracy, grids, reasons, grid_segments)
    if found is None:
        return None
    if found[0] < 0:
        return {"error": messages.OUTSIDE}
    grid, others = found
    road, road_distance, roads_ev = _road(x, y, roads, reasons, road_segments)
    comp, comp_distance, comps_ev = (_component(x, y, accuracy, class_code, comps, reasons)
                                     if case_type == "component" else (-1, math.nan, None))
    own = _at(grids, "grid_department", grid)
    roles = {"component_maintainer": _at(comps, "maintainer", comp), "component_owner": _at(comps, "owner", comp),
             "road_maintenance": _at(roads, "maintenance", road), "road_cleaning": _at(roads, "cleaning", road),
             "street_office": own if own is not None else ref.street_offices.get(_at(grids, "district_id", grid))}
    place = {"case_type": case_type, "class_code": class_code, "district_id": _at(grids, "district_id", grid),
             "street_id": _at(grids, "street_id", grid), "road_grade": _at(roads, "grade", road),
             "area_class": _at(grids, "area_class", grid)}
    department, rule, chain = _department(place, roles, ref)
    amount, unit = _limit(case_type, class_code, accuracy, place["area_class"], ref, reasons)
    evidence = {"fix": {"x_m": _number(x, 2), "y_m": _number(y, 2), "crs": ref.metric_name,
                        "accuracy_m": _number(given, 1)},
                "unit_grid": {"code": grids["code"][grid], "how": messages.CONTAINS},
                "other_grids_in_accuracy": others, "roads": roads_ev, "components": comps_ev,
                "rules": chain, "department": {"code": department, "by": rule}}
    return {**dict(zip(PLACES, (_at(grids, name, grid) for name in GRID_COLUMNS))),
            "road_id": _at(roads, "code", road), "road_name": _at(roads, "name", road),
            "road_grade": place["road_grade"], "road_distance_m": _number(road_distance, 2, exact=True),
            "component_id": _at(comps, "code", comp), "component_version": _at(comps, "version", comp),
            "component_distance_m": _number(comp_distance, 2, exact=True), "department": department, "rule": rule,
            "time_limit": amount, "time_limit_unit": unit, "ambiguous": bool(reasons),
            "ambiguity_reason": "; ".join(reasons) or None,
            "evidence": {key: value for key, value in evidence.items() if value is not None}, "error": None}


def _at(layer: Columns, name: str, row: int):
    return None if row < 0 else layer[name][row]


def rounded(value: float, decimals: int) -> float:
    """``np.round(value, decimals)`` for one number (``decimals`` > 0), at a tenth of its cost: numpy
    multiplies by 10**decimals, rounds half to even and divides, as this does."""
    scale = 10.0 ** decimals
    return round(value * scale) / scale if math.isfinite(value) else value


def _number(value: float, decimals: int, exact: bool = False):
    """``value`` rounded as the column path rounds it (None for NaN or infinity); in evidence an integral
    value is written as Arrow writes it (``3``, not ``3.0``), ``exact`` keeps the float (a decision field)."""
    value = rounded(value, decimals)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and not exact else value


def _ranked(candidates: list[tuple[float, str, int]]) -> list[tuple[float, str, int]]:
    """(distance, code, row) nearest first, equal distances by code: the order of :func:`ranking.ranked`."""
    return sorted(candidates, key=lambda c: (c[0], c[1]))


def _grid(x, y, accuracy, grids: Columns, reasons: list[str], segments: Segments | None = None):
    """(the grid holding the fix, the other bodies' grids its accuracy circle reaches), (-1, None) outside
    every grid, None on a shared edge; ``segments``: the grids' segments, if they come with them."""
    count = len(grids["code"])
    if count == 0:
        return -1, None
    edge, inside = point_distances(x, y, Segments.of(np.asarray(grids["geom"], dtype=object)) if segments is None
                                  else segments)
    holding = np.flatnonzero(inside | (edge <= ON_EDGE_M))
    if len(holding) != 1:
        return (-1, None) if len(holding) == 0 else None
    grid = int(holding[0])
    if not (accuracy > ON_EDGE_M and edge[grid] <= accuracy):
        return grid, None
    body, codes = grids["grid_department"], grids["code"]
    distance = np.where(inside, 0.0, edge)
    found = _ranked([(float(distance[j]), codes[j], j) for j in range(count)
                     if j != grid and body[j] != body[grid] and distance[j] <= accuracy])
    if not found:
        return grid, None
    d, code, first = found[0]
    reasons.append(messages.other_body(accuracy, code, d, body[first], body[grid], len(found)))
    return grid, [{"code": c, "distance_m": _number(d, 1), "responsible": body[j]} for d, c, j in found]


def _road(x, y, roads: Columns, reasons: list[str], segments: Segments | None = None) -> tuple[int, float, list | None]:
    """The nearest road within its grade's tolerance, its distance and the evidence's three nearest."""
    if segments is None:
        segments = Segments.of(np.asarray(roads["geom"], dtype=object))
    if len(segments.feature) == 0:
        return -1, math.nan, None
    distance = segment_distance(x, y, segments.ax, segments.ay, segments.bx, segments.by)
    having = np.flatnonzero(segments.count)
    nearest = np.minimum.reduceat(distance, segments.start[having])  # each road's nearest segment
    codes, grades = roads["code"], roads["grade"]
    found = _ranked([(float(d), codes[j], int(j)) for d, j in zip(nearest, having) if d <= road_tolerance(grades[j])])
    if not found:
        return -1, math.nan, None
    (d1, a, road), runner = found[0], found[1] if len(found) > 1 else None
    if runner is not None:
        d2, b, other = runner
        units = [(grades[j], roads["maintenance"][j], roads["cleaning"][j]) for j in (road, other)]
        if units[0] != units[1] and nearly_equal(d1, d2):
            reasons.append(messages.road_tie(a, grades[road], d1, b, grades[other], d2))
    return road, d1, [{"code": c, "grade": grades[j], "distance_m": _number(d, 1),
                       "tolerance_m": _number(road_tolerance(grades[j]), 1)} for d, c, j in found[:3]]


def _component(x, y, accuracy, class_code, comps: Columns, reasons: list[str]) -> tuple[int, float, list | None]:
    """The nearest component of the case's class within the snap radius (or the accuracy, if larger)."""
    rows = [j for j, cls in enumerate(comps["class_code"]) if cls == class_code]
    if not rows:
        return -1, math.nan, None
    xy = shapely.get_coordinates(np.asarray(comps["geom"], dtype=object)[rows])
    distance = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
    radius, codes = max(SNAP_RADIUS_M, accuracy), comps["code"]
    found = _ranked([(float(d), codes[j], j) for d, j in zip(distance, rows) if d <= radius])
    if not found:
        return -1, math.nan, None
    (d1, a, comp) = found[0]
    if len(found) > 1 and nearly_equal(d1, found[1][0]):
        reasons.append(messages.component_tie(a, d1, found[1][1], found[1][0]))
    return comp, d1, [{"code": c, "distance_m": _number(d, 1)} for d, c, _ in found[:3]]


def _department(place: dict, roles: dict, ref: Reference) -> tuple[str | None, str, list | None]:
    """(department, rule, the rules tried for the evidence): 先属主 for a component case, then the most
    specific resolvable rule, else the grid's responsible body (属地兜底)."""
    if place["case_type"] == "component":
        for via in ROLES[:2]:
            if roles[via] is not None:
                return roles[via], messages.owner_first(via), None
    chain = rule_chain(place, {name: roles[name] is not None for name in ROLES}, ref)
    winner = next((step for step in chain if step["resolvable"]), None)
    if winner is None:
        return roles["street_office"], messages.LOCALITY_FALLBACK, chain
    tried = chain[: chain.index(winner) + 1]
    return (winner["department"] if winner["target"] == "department" else roles[winner["target"]]), winner["rule"], tried


def _limit(case_type, class_code, accuracy, area_class, ref: Reference, reasons: list[str]):
    """The class's disposal limit (amount, unit) for the grid's area class; a fix too inaccurate for its kind
    of case is flagged."""
    found = ref.limits.get((case_type, class_code))
    amount = float(np.array(found[:3] if found else [np.nan] * 3, dtype=float)[limit_column(area_class)])
    kind = accuracy_kind(case_type, bool(found and found[4]))
    if accuracy > MAX_ACCURACY_M[kind]:
        reasons.append(messages.poor_accuracy(accuracy, kind, MAX_ACCURACY_M[kind]))
    return (None if math.isnan(amount) else amount), (found[3] if found else None)
