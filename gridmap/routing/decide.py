"""The decision, vectorised over many fixes: grid, road, component, department, time limit, ambiguity.

How a fix is decided (the evidence records each step):

1. **Unit grid**: the grid that contains the fix; a fix on a shared edge or corner (within 1 mm, the
   noise of reprojection) goes to the grid with the lowest code. No grid contains it: the fix is
   outside the city's territory (rejected).
2. **Road**: the nearest road within its grade's tolerance (:mod:`gridmap.routing.policy`); equal
   distances go to the lower road code.
3. **Component** (component cases): the one the inspector picked, else the nearest of the case's class
   within 50 m or the accuracy radius, whichever is larger.
4. **Department**: component cases go to the component's maintainer 养护单位, else its owner 权属单位
   (先属主), else by the rules; event cases go by the rules (先属地: the catch-all rule names the street
   office). Rules are tried most specific first (see :mod:`gridmap.departments.service`); a rule whose
   target cannot be resolved here — a road's unit with no road near, a component's with none found —
   is passed over, and that fallback is recorded. Nothing resolvable: the grid's responsible body (属地兜底).
5. **Time limit**: the class's disposal limit for the grid's area class (A/B/C).
6. **Ambiguity** (the best guess is still given): the accuracy circle reaches a grid with another
   responsible body; two roads of different grade or units, or two components, are nearly equally
   close; the accuracy is too poor for the class; the picked component is far from the fix.

Everything is computed column-wise (:mod:`gridmap.routing.spatial`, :mod:`gridmap.routing.evidence`):
one fix or a million take the same steps, which is why the single and the batch path agree. A single
decision must take a millisecond or two, so the steps keep their fixed cost low: no pandas inside
(:func:`decide_columns`), a few features tested pair by pair rather than hashed, small columns encoded in
Python, empty steps skipped, Arrow kernels called directly.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gridmap.routing import evidence as ev
from gridmap.routing import messages
from gridmap.routing.layers import Layers, Reference
from gridmap.routing.pieces import Batch, as_frame, piece_starts
from gridmap.routing.policy import (
    MAX_ACCURACY_M,
    ON_EDGE_M,
    NEAR_TIE_M,
    NEAR_TIE_SHARE,
    PICKED_COMPONENT_FAR_M,
    SNAP_RADIUS_M,
    accuracy_kind,
)
from gridmap.routing.indexes import component_index, grid_bodies, grid_index, layer_work, road_index
from gridmap.routing.ranking import first_two, lex_order, ranked
from gridmap.routing.spatial import distances, point_boxes, segment_distance, starts
from gridmap.routing.responsible import departments, role, street_office, time_limits
from gridmap.routing.table import Table, Vocabulary, distinct_rows

OUTPUT = ["unit_grid", "duty_grid", "community", "street", "district", "area_class", "road_id", "road_name",
          "road_grade", "road_distance_m", "component_id", "component_version", "component_distance_m",
          "department", "rule", "time_limit", "time_limit_unit", "ambiguous", "ambiguity_reason", "evidence"]

#: a big batch is decided in pieces of this many fixes, on every core (numpy, Arrow and GEOS release
#: the interpreter lock); the layer-wide work (segments, indexes) is done once before
PIECE = 125_000


def _objects(values) -> np.ndarray:
    """Plain Python objects (None for missing): comparisons on Arrow-backed text cost a conversion each."""
    values = np.asarray(values, dtype=object)
    return np.where(pd.isna(values), None, values) if len(values) else values


class Reasons:
    """Ambiguity reasons per fix, in the order the steps add them."""

    def __init__(self, n: int):
        self.n, self.found = n, defaultdict(list)

    def add(self, rows, texts) -> None:
        for row, reason in zip(rows, texts):
            self.found[int(row)].append(reason)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        flagged = np.zeros(self.n, dtype=bool)
        joined = np.full(self.n, None, dtype=object)
        for row, texts in self.found.items():
            flagged[row], joined[row] = True, "; ".join(texts)
        return flagged, joined


def decide(points: pd.DataFrame | dict[str, np.ndarray], layers: Layers, ref: Reference) -> pd.DataFrame:
    """Decide every row of ``points`` (columns ``x``/``y`` in the metric CRS, ``accuracy``, ``case_type``,
    ``class_code``, ``component_id``, optional ``input_error`` for rows not to decide); return the
    :data:`OUTPUT` columns plus ``error`` for rejected rows (whose decision columns are empty)."""
    tables = layers.tables
    n = len(points["x"])
    if n <= PIECE:
        return as_frame(_decide(points, tables, ref))
    # cut before the columns become arrays: turning text into Python objects is work for the pool
    starts = piece_starts(n, PIECE)
    pieces = [points.iloc[a:b] if isinstance(points, pd.DataFrame) else
              {name: np.asarray(values)[a:b] for name, values in points.items()}
              for a, b in zip(starts, [*starts[1:], n])]
    batch = Batch(n, len(pieces))
    with ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 2)) as pool:
        # the layer-wide work first, in parts; the first piece starts as soon as a thread is free and
        # waits only for what it needs that is not ready yet (Table.cached)
        for work in layer_work(tables):
            pool.submit(work)
        for done in [pool.submit(lambda k: batch.put(k, starts[k], _decide(pieces[k], tables, ref)), k)
                     for k in range(len(pieces))]:
            done.result()
    return batch.frame()


def decide_columns(points: dict[str, np.ndarray], layers: Layers, ref: Reference) -> dict[str, np.ndarray | pa.Array]:
    """:func:`decide`, the same steps, with the columns given and returned as arrays (the text ones Arrow's):
    for one fix, building DataFrames in and out would cost several times the decision itself."""
    return _decide(points, layers.tables, ref)


def _decide(points, tables: tuple[Table, Table, Table], ref: Reference) -> dict:
    x, y, given_accuracy, case_type, class_code, kinds, todo = _inputs(points)
    n, accuracy = len(x), np.nan_to_num(given_accuracy, nan=0.0)
    error = np.full(n, None, dtype=object)
    reasons = Reasons(n)
    grids, roads, comps = tables
    depts, rules = Vocabulary(), Vocabulary()

    grid, grid_ev = choose_grids(x, y, accuracy, grids, reasons)
    error[todo & (grid < 0)] = messages.OUTSIDE
    road, road_distance, roads_ev = choose_roads(x, y, roads, reasons)
    comp, comp_distance, comps_ev = choose_components(
        x, y, accuracy, class_code, kinds, _objects(points["component_id"]), (case_type == "component") & todo,
        comps, error, reasons)
    ok = todo & (error == None)  # noqa: E711

    roles = np.vstack([role(comps, "maintainer", comp, depts), role(comps, "owner", comp, depts),
                       role(roads, "maintenance", road, depts), role(roads, "cleaning", road, depts),
                       street_office(grids, grid, ref, depts)])
    department, rule, rules_ev = departments(case_type, class_code, kinds[1], grid, road, grids, roads, roles, ok, ref,
                                             depts, rules)
    amount, unit = limits_and_accuracy(case_type, class_code, kinds, grid, grids, ok, accuracy, ref, reasons)
    ambiguous, reason = reasons.columns()

    record = ev.record(
        {"fix": ev.obj({"x_m": ev.number(x, 2), "y_m": ev.number(y, 2), "crs": orjson.dumps(ref.metric_name).decode(),
                        "accuracy_m": ev.number(given_accuracy, 1)})},
        {"unit_grid": grid_ev["unit_grid"], "other_grids_in_accuracy": grid_ev["others"],
         "roads": roads_ev, "components": comps_ev["near"], "picked_component": comps_ev["picked"],
         "rules": rules_ev,
         "department": ev.where(ok, ev.obj({"code": depts.quoted(department), "by": rules.quoted(rule)}))})

    # rejected rows keep their evidence (what was found) but no decision
    def decided(values, empty):
        return values if everything else np.where(ok, values, empty)

    everything = ok.all()
    grid, road, comp = (decided(index, -1) for index in (grid, road, comp))
    version = np.full(n, None, dtype=object)
    if len(comps):
        version[comp >= 0] = comps.objects("version")[comp[comp >= 0]]
    places = dict(zip(["unit_grid", "duty_grid", "community", "street", "district", "area_class"], grids.take_columns(
        ["code", "duty_grid", "community", "street", "district", "area_class"], grid)))
    road_id, road_name, road_grade = roads.take_columns(["code", "name", "grade"], road)
    return {**places, "road_id": road_id, "road_name": road_name, "road_grade": road_grade,
            "road_distance_m": decided(np.round(road_distance, 2), np.nan),
            "component_id": comps.take("code", comp), "component_version": version,
            "component_distance_m": decided(np.round(comp_distance, 2), np.nan),
            "department": depts.objects(decided(department, -1)), "rule": rules.objects(decided(rule, -1)),
            "time_limit": decided(amount, np.nan), "time_limit_unit": decided(unit, None),
            "ambiguous": decided(ambiguous.astype(object), None),
            "ambiguity_reason": decided(reason, None), "evidence": record, "error": error}


def limits_and_accuracy(case_type, class_code, kinds, grid, grids: Table, ok, accuracy, ref: Reference,
                        reasons: Reasons):
    """The disposal time limit (amount, unit) of each fix; fixes too inaccurate for their kind of case are flagged.
    ``kinds``: the fixes grouped by case type and class (:func:`distinct_rows`)."""
    area = grids.codes_at("area_class", grid), grids.encoded("area_class")[1]
    amount, unit, road_bound = time_limits(case_type, class_code, area, ref, kinds)
    first, inverse = kinds
    kind = [accuracy_kind(case_type[p], road_bound[p]) for p in first]
    limit = np.array([MAX_ACCURACY_M[k] for k in kind], dtype=float)[inverse]
    poor = np.flatnonzero(ok & (accuracy > limit))
    reasons.add(poor, [messages.poor_accuracy(accuracy[p], kind[inverse[p]], limit[p]) for p in poor])
    return amount, unit


def _inputs(points):
    """x, y (NaN for rows not to decide), accuracy (NaN when not given), case type, class, the rows grouped
    by case type and class (:func:`distinct_rows`: what depends on the class alone is worked out once per
    class), rows to decide; ``points`` is a DataFrame or a dict of arrays."""
    x, y = np.asarray(points["x"], dtype=float), np.asarray(points["y"], dtype=float)
    accuracy = np.asarray(points["accuracy"])
    if accuracy.dtype.kind != "f":
        accuracy = pd.to_numeric(accuracy, errors="coerce")
    accuracy = np.asarray(accuracy, dtype=float)
    todo = np.isfinite(x) & np.isfinite(y)
    if "input_error" in points:
        todo &= pd.isna(np.asarray(points["input_error"]))
    x, y = np.where(todo, x, np.nan), np.where(todo, y, np.nan)
    if len(x) <= ev.FEW:
        case_type, class_code = _objects(points["case_type"]), _objects(points["class_code"])
        return x, y, accuracy, case_type, class_code, distinct_rows(case_type, class_code), todo
    # many rows, few distinct words: each word becomes a Python object once
    (case_type, type_codes), (class_code, class_codes) = _words(points["case_type"]), _words(points["class_code"])
    return x, y, accuracy, case_type, class_code, distinct_rows(type_codes, class_codes), todo


def _words(values) -> tuple[np.ndarray, np.ndarray]:
    """Text as Python objects (None for missing) and per row a code of its word (-1 for missing)."""
    codes, words = pd.factorize(values)
    return np.array(list(words) + [None], dtype=object)[codes], codes


def choose_grids(x, y, accuracy, grids: Table, reasons: Reasons) -> tuple[np.ndarray, dict]:
    """The containing grid of each fix (-1 outside), and the grids of other bodies its accuracy circle reaches."""
    n = len(x)
    segments, index = grid_index(grids)
    point, feature = index.query(point_boxes(x, y))
    edge, inside = distances(x, y, point, feature, segments)
    holds = inside | (edge <= ON_EDGE_M)
    point, feature, edge = point[holds], feature[holds], edge[holds]
    order = np.argsort(point, kind="stable")
    point, feature, edge = point[order], feature[order], edge[order]
    chosen, to_edge = np.full(n, -1), np.full(n, np.nan)
    chosen[point], to_edge[point] = feature, edge  # the last of several; shared edges are settled below
    how = np.zeros(n, dtype=np.int64)  # 0: contains the fix; k: the k-th shared-edge message
    how_texts = [messages.CONTAINS]
    sharing = np.flatnonzero(np.bincount(point, minlength=n) > 1)
    for p, a, b in zip(sharing, np.searchsorted(point, sharing, "left"), np.searchsorted(point, sharing, "right")):
        held = feature[a:b]
        codes = grids.values("code", held)
        lowest = min(codes)
        chosen[p] = held[codes.index(lowest)]
        how[p] = len(how_texts)
        how_texts.append(messages.shared_edge(codes))
    unit_grid = ev.where(chosen >= 0, ev.obj({"code": grids.take_quoted("code", chosen),
                                              "how": ev.lookup(ev.text(how_texts), how)}))
    return chosen, {"unit_grid": unit_grid, "others": other_bodies(x, y, accuracy, chosen, to_edge, grids, reasons)}


def other_bodies(x, y, accuracy, chosen, to_edge, grids: Table, reasons: Reasons) -> pa.Array:
    """The grids of other responsible bodies that the accuracy circle of each fix reaches, where it
    crosses its grid's edge (evidence, and an ambiguity)."""
    n = len(x)
    circle = np.flatnonzero((chosen >= 0) & (accuracy > ON_EDGE_M) & (to_edge <= accuracy))
    segments, index = grid_index(grids)
    body = grids.encoded("grid_department")[0]
    bodies = grid_bodies(grids) if len(x) > ev.FEW else None  # for a few fixes the summary costs more than it spares
    if len(circle) and bodies is not None:
        query, cell = index.cells(point_boxes(x[circle], y[circle], accuracy[circle]))
        own, (least, greatest) = body[chosen[circle[query]]], bodies
        other = (greatest[cell] >= least[cell]) & ((least[cell] != own) | (greatest[cell] != own))
        circle = circle[np.bincount(query[other], minlength=len(circle)) > 0]
    if len(circle) == 0:  # most circles stay inside their body's area: spare the work below
        return pa.nulls(n, pa.string())
    near, other = index.query(point_boxes(x[circle], y[circle], accuracy[circle]), both_have_extent=True)
    near = circle[near]
    differs = (body[other] != body[chosen[near]]) & (other != chosen[near])
    near, other = near[differs], other[differs]
    distance, within = distances(x, y, near, other, segments)
    distance[within] = 0.0
    keep = distance <= accuracy[near]
    near, other, distance, _ = ranked(near[keep], distance[keep], other[keep], grids)
    items = ev.obj({"code": grids.take_quoted("code", other), "distance_m": ev.number(distance, 1),
                    "responsible": grids.take_quoted("grid_department", other)})
    firsts = np.flatnonzero(starts(near))
    counts = np.diff(np.concatenate((firsts, [len(near)])))
    p, o = near[firsts], other[firsts]
    reasons.add(p, [
        messages.other_body(*reason) for reason in zip(accuracy[p], grids.values("code", o), distance[firsts],
                                                       grids.values("grid_department", o),
                                                       grids.values("grid_department", chosen[p]), counts)])
    return ev.lists(near, items, n)


def choose_roads(x, y, roads: Table, reasons: Reasons) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """The nearest road within its grade's tolerance; near ties between roads that differ are flagged."""
    n = len(x)
    grade = roads.encoded("grade")[0]
    segments, tolerance, index = road_index(roads)
    point, segment = index.query(point_boxes(x, y))
    feature = segments.feature[segment]
    distance = segment_distance(x[point], y[point], segments.ax[segment], segments.ay[segment],
                                segments.bx[segment], segments.by[segment])
    keep = distance <= tolerance[feature]
    point, feature, distance = point[keep], feature[keep], distance[keep]
    # one row per (fix, road): its nearest segment
    order = lex_order(point, feature, distance)
    point, feature, distance = point[order], feature[order], distance[order]
    first = starts(point, feature)
    point, feature, distance, rank = ranked(point[first], distance[first], feature[first], roads)
    road, runner, d1, d2 = first_two(point, feature, distance, rank, n)
    units = np.column_stack([grade, roads.encoded("maintenance")[0], roads.encoded("cleaning")[0]]) \
        if len(roads) else np.empty((0, 3), dtype=np.int64)
    both = np.flatnonzero((road >= 0) & (runner >= 0))
    differs = both[(units[road[both]] != units[runner[both]]).any(axis=1)]
    tie = differs[_near_tie(d1[differs], d2[differs])]
    reasons.add(tie, [messages.road_tie(*reason) for reason in zip(
        roads.values("code", road[tie]), roads.values("grade", road[tie]), d1[tie], roads.values("code", runner[tie]),
        roads.values("grade", runner[tie]), d2[tie])])
    top = rank < 3
    items = ev.obj({"code": roads.take_quoted("code", feature[top]), "grade": roads.take_quoted("grade", feature[top]),
                    "distance_m": ev.number(distance[top], 1), "tolerance_m": ev.number(tolerance[feature[top]], 1)})
    return road, d1, ev.lists(point[top], items, n)


def _near_tie(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (d2 - d1) <= np.maximum(NEAR_TIE_M, NEAR_TIE_SHARE * d1)


def choose_components(x, y, accuracy, class_code, kinds, picked_id, wanted, comps: Table, error: np.ndarray,
                      reasons: Reasons) -> tuple[np.ndarray, np.ndarray, dict]:
    """The picked component, else the nearest of the case's class within the snap radius (``kinds``: the
    fixes grouped by case type and class)."""
    n = len(x)
    xy, index = component_index(comps)
    group, classes = comps.encoded("class_code")
    radius = np.maximum(SNAP_RADIUS_M, accuracy)
    rows = np.flatnonzero(wanted)
    # components of the case's class whose position lies in the fix's radius box
    of_class = {c: k for k, c in enumerate(classes)}
    first, inverse = kinds
    wanted_group = np.array([of_class.get(class_code[p], -1) for p in first], dtype=np.int64)[inverse[rows]]
    rows = rows[wanted_group >= 0]
    fix, member = index.query(point_boxes(x[rows], y[rows], radius[rows]), wanted_group[wanted_group >= 0])
    fix = rows[fix]
    distance = np.hypot(xy[member, 0] - x[fix], xy[member, 1] - y[fix])
    keep = distance <= radius[fix]
    point, feature, distance, rank = ranked(fix[keep], distance[keep], member[keep], comps)
    nearest, runner, d1, d2 = first_two(point, feature, distance, rank, n)

    chosen, chosen_distance = nearest.copy(), d1.copy()
    picked_rows = np.flatnonzero(wanted & pd.notna(picked_id))
    picked_ev = pa.nulls(n, pa.string())
    if len(picked_rows):
        at = pc.fill_null(pc.index_in(pa.array(picked_id[picked_rows].astype(str)), value_set=comps.arrow("code")),
                          -1).to_numpy(zero_copy_only=False).astype(np.int64)
        missing = picked_rows[at < 0]
        error[missing] = [messages.picked_missing(picked_id[p]) for p in missing]
        picked_rows, at = picked_rows[at >= 0], at[at >= 0]
        picked_class = np.array(classes + [None], dtype=object)[group[at]]
        wrong = picked_class != class_code[picked_rows]
        error[picked_rows[wrong]] = [messages.picked_of_other_class(picked_id[p], cls, class_code[p])
                                     for p, cls in zip(picked_rows[wrong], picked_class[wrong])]
        chosen[picked_rows] = at
        chosen_distance[picked_rows] = np.hypot(xy[at, 0] - x[picked_rows], xy[at, 1] - y[picked_rows])
        far = picked_rows[chosen_distance[picked_rows] > PICKED_COMPONENT_FAR_M]
        reasons.add(far, [messages.picked_far(picked_id[p], chosen_distance[p]) for p in far])
        is_picked = np.zeros(n, dtype=bool)
        is_picked[picked_rows] = True
        picked_ev = ev.where(is_picked, ev.obj({"code": comps.take_quoted("code", np.where(is_picked, chosen, -1)),
                                                "distance_m": ev.number(chosen_distance, 1)}))
    tie = np.flatnonzero(pd.isna(picked_id) & (runner >= 0))
    tie = tie[_near_tie(d1[tie], d2[tie])]
    reasons.add(tie, [messages.component_tie(*reason) for reason in zip(comps.values("code", nearest[tie]), d1[tie],
                                                                        comps.values("code", runner[tie]), d2[tie])])
    top = rank < 3
    items = ev.obj({"code": comps.take_quoted("code", feature[top]), "distance_m": ev.number(distance[top], 1)})
    return chosen, chosen_distance, {"near": ev.lists(point[top], items, n), "picked": picked_ev}
