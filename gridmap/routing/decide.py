"""The decision, vectorised over many fixes: grid, road, component, department, time limit, ambiguity.

How a fix is decided (the evidence records each step):

1. **Unit grid**: the grid that contains the fix; a fix on a shared edge or corner (within 1 mm, the
   noise of reprojection) goes to the grid with the lowest code. No grid contains it: the fix is outside the city's territory (rejected).
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
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import shapely

from gridmap.departments.service import applicable_rules
from gridmap.routing.layers import Layers, Reference
from gridmap.routing.policy import (
    MAX_ACCURACY_M,
    ON_EDGE_M,
    MAX_ROAD_TOLERANCE_M,
    NEAR_TIE_M,
    NEAR_TIE_SHARE,
    PICKED_COMPONENT_FAR_M,
    SNAP_RADIUS_M,
    road_tolerance,
)

OUTPUT = ["unit_grid", "duty_grid", "community", "street", "district", "area_class", "road_id", "road_name",
          "road_grade", "road_distance_m", "component_id", "component_version", "component_distance_m",
          "department", "rule", "time_limit", "time_limit_unit", "ambiguous", "ambiguity_reason", "evidence"]


def pairs(points: np.ndarray, geoms: np.ndarray, radius: np.ndarray | float) -> pd.DataFrame:
    """(point, feature, distance) for every feature within ``radius`` (per point) of each point."""
    if len(geoms) == 0 or len(points) == 0:
        return pd.DataFrame({"point": [], "feature": [], "distance": []}).astype({"point": int, "feature": int})
    radius = np.broadcast_to(np.asarray(radius, dtype=float), (len(points),))
    point, feature = shapely.STRtree(geoms).query(points, predicate="dwithin", distance=float(radius.max()))
    distance = shapely.distance(points[point], geoms[feature])
    keep = distance <= radius[point]
    return pd.DataFrame({"point": point[keep], "feature": feature[keep], "distance": distance[keep]})


def ranked(found: pd.DataFrame, codes: pd.Series) -> pd.DataFrame:
    """Candidates sorted per point by distance, then code; ``rank`` 0 is the choice."""
    found = found.assign(code=codes.to_numpy()[found["feature"].to_numpy()]).sort_values(["point", "distance", "code"])
    return found.assign(rank=found.groupby("point").cumcount())


def first_two(found: pd.DataFrame, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    first = found[found["rank"] == 0].set_index("point").reindex(range(n))
    second = found[found["rank"] == 1].set_index("point").reindex(range(n))
    return first, second


def near_tie(first: pd.DataFrame, second: pd.DataFrame) -> np.ndarray:
    gap = second["distance"] - first["distance"]
    return (gap <= np.maximum(NEAR_TIE_M, NEAR_TIE_SHARE * first["distance"])).fillna(False).to_numpy()


def decide(points: pd.DataFrame, layers: Layers, ref: Reference) -> pd.DataFrame:
    """Decide every row of ``points`` (columns ``geom`` in the metric CRS, ``accuracy``, ``case_type``,
    ``class_code``, ``component_id``); return the :data:`OUTPUT` columns plus ``error`` for rejected rows."""
    n = len(points)
    # plain object arrays: pyarrow-backed strings cost a conversion on every access
    points = _objects(points)
    layers = Layers(_objects(layers.grids), _objects(layers.roads), _objects(layers.components))
    geom = points["geom"].to_numpy()
    accuracy = points["accuracy"].fillna(0.0).to_numpy(dtype=float)
    out = pd.DataFrame(index=range(n))
    reasons: list[list[str]] = [[] for _ in range(n)]
    crs_name = ref.metric.to_string()
    xs, ys = np.round(shapely.get_x(geom), 2).tolist(), np.round(shapely.get_y(geom), 2).tolist()
    given = points["accuracy"].astype(object).where(points["accuracy"].notna(), None).tolist()
    evidence: list[dict] = [{"fix": {"x_m": x, "y_m": y, "crs": crs_name, "accuracy_m": a}}
                            for x, y, a in zip(xs, ys, given)]

    # 1. unit grid: containing grid, lowest code on an edge; others within the accuracy circle
    grids = layers.grids
    near_grids = ranked(pairs(geom, grids["geom"].to_numpy(), np.maximum(accuracy, ON_EDGE_M)), grids["code"])
    containing = near_grids[near_grids["distance"] <= ON_EDGE_M]
    chosen = containing.groupby("point")["feature"].first().reindex(range(n))
    shared = containing["point"].duplicated(keep=False).to_numpy()
    for p, code in containing.loc[~shared, ["point", "code"]].itertuples(index=False):
        evidence[p]["unit_grid"] = {"code": code, "how": "contains the fix"}
    for p, codes in containing[shared].groupby("point")["code"].agg(list).items():
        evidence[p]["unit_grid"] = {"code": codes[0], "how": f"the fix lies on the shared edge of {codes}: "
                                                             "the lowest code wins"}
    out["error"] = np.where(chosen.isna(), "outside the city's territory (no unit grid contains the fix)", None)
    g = grids.reindex(chosen.to_numpy()).reset_index(drop=True)
    for column, source in (("unit_grid", "code"), ("duty_grid", "duty_grid"), ("community", "community"),
                           ("street", "street"), ("district", "district"), ("area_class", "area_class")):
        out[column] = g[source].to_numpy()
    own = g["grid_department"].to_numpy()
    others = near_grids.assign(department=grids["grid_department"].to_numpy()[near_grids["feature"].to_numpy()])
    others = others[(others["distance"] > ON_EDGE_M) &
                    (others["code"].to_numpy() != out["unit_grid"].to_numpy()[others["point"].to_numpy()])]
    for p, code, dist, dep in others[["point", "code", "distance", "department"]].itertuples(index=False):
        evidence[p].setdefault("other_grids_in_accuracy", []).append({"code": code, "distance_m": round(dist, 1),
                                                                       "responsible": dep})
        if dep != own[p]:
            reasons[p].append(f"the accuracy circle ({accuracy[p]:.0f} m) reaches unit grid {code} "
                              f"({dist:.1f} m away), whose responsible body is {dep}, not {own[p]}")

    # 2. road: nearest within its grade's tolerance
    roads = layers.roads
    near_roads = pairs(geom, roads["geom"].to_numpy(), MAX_ROAD_TOLERANCE_M)
    tolerance = roads["grade"].map(road_tolerance).to_numpy()
    near_roads = near_roads[near_roads["distance"].to_numpy() <= tolerance[near_roads["feature"].to_numpy()]]
    near_roads = ranked(near_roads, roads["code"])
    road, road2 = first_two(near_roads, n)
    r = roads.reindex(road["feature"].to_numpy()).reset_index(drop=True)
    r2 = roads.reindex(road2["feature"].to_numpy()).reset_index(drop=True)
    out["road_id"], out["road_name"], out["road_grade"] = r["code"].to_numpy(), r["name"].to_numpy(), r["grade"].to_numpy()
    out["road_distance_m"] = road["distance"].round(2).to_numpy()
    differs = (r[["grade", "maintenance", "cleaning"]].fillna("").to_numpy() !=
               r2[["grade", "maintenance", "cleaning"]].fillna("").to_numpy()).any(axis=1)
    for p in np.flatnonzero(near_tie(road, road2) & differs):
        reasons[p].append(f"two roads are nearly equally close: {r['code'][p]} ({r['grade'][p]}, "
                          f"{road['distance'][p]:.1f} m) and {r2['code'][p]} ({r2['grade'][p]}, {road2['distance'][p]:.1f} m)")
    for p, code, dist in near_roads[near_roads["rank"] < 3][["point", "code", "distance"]].itertuples(index=False):
        evidence[p].setdefault("roads", []).append({"code": code, "distance_m": round(dist, 1)})

    # 3. component: picked, else nearest of the class
    comp = choose_components(points, layers.components, geom, accuracy, out, reasons, evidence)

    # 4. department, 5. time limit, 6. accuracy
    department, rule = departments(points, out, g, r, comp, ref, evidence)
    out["department"], out["rule"] = department, rule
    limit = time_limits(points, out, ref)
    out["time_limit"], out["time_limit_unit"] = limit["amount"].to_numpy(), limit["unit"].to_numpy()
    kind = np.where(points["case_type"] == "component", "component",
                    np.where(limit["road_bound"].fillna(False).to_numpy(dtype=bool), "road_event", "event"))
    limit_m = np.array([MAX_ACCURACY_M[k] for k in kind])
    for p in np.flatnonzero(accuracy > limit_m):
        reasons[p].append(f"accuracy {accuracy[p]:.0f} m is too poor for a {kind[p].replace('_', '-')} case "
                          f"(at most {limit_m[p]:.0f} m)")
    out["ambiguous"] = [bool(x) for x in reasons]
    out["ambiguity_reason"] = ["; ".join(x) if x else None for x in reasons]
    blank(out, out["error"].notna().to_numpy())
    out["evidence"] = [orjson.dumps(e, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode() for e in evidence]
    return out


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c]) and frame[c].dtype != object]
    return frame.astype({c: object for c in text}) if text else frame


def blank(out: pd.DataFrame, rejected: np.ndarray) -> None:
    """Clear the decision of rejected rows (their reason is in ``error``)."""
    if rejected.any():
        columns = [c for c in OUTPUT[:-1] if c in out]
        out[columns] = out[columns].astype(object)
        out.loc[rejected, columns] = None


def choose_components(points, components, geom, accuracy, out, reasons, evidence) -> pd.DataFrame:
    n = len(points)
    wanted = (points["case_type"] == "component").to_numpy()
    radius = np.maximum(SNAP_RADIUS_M, accuracy)
    # one search per class, among the components of that class only
    found = []
    for cls, rows in pd.Series(np.flatnonzero(wanted)).groupby(points["class_code"].to_numpy()[wanted]):
        members = np.flatnonzero(components["class_code"].to_numpy() == cls)
        near = pairs(geom[rows.to_numpy()], components["geom"].to_numpy()[members], radius[rows.to_numpy()])
        found.append(pd.DataFrame({"point": rows.to_numpy()[near["point"].to_numpy()],
                                   "feature": members[near["feature"].to_numpy()], "distance": near["distance"]}))
    near = pd.concat(found, ignore_index=True) if found else pairs(geom[:0], components["geom"].to_numpy()[:0], 0.0)
    near = ranked(near, components["code"])
    first, second = first_two(near, n)
    picked_id = points["component_id"].to_numpy()
    index = pd.Series(range(len(components)), index=components["code"])
    picked = pd.Series(picked_id).map(index)
    feature = np.where(picked.notna(), picked, first["feature"])
    c = components.reindex(feature).reset_index(drop=True)
    picked_geom = components["geom"].reindex(picked.to_numpy()).to_numpy().astype(object)
    picked_geom[picked.isna().to_numpy()] = None
    distance = np.where(picked.notna(), shapely.distance(geom, picked_geom), first["distance"])
    out["component_id"], out["component_version"] = c["code"].to_numpy(), c["version"].to_numpy()
    out["component_distance_m"] = np.round(distance.astype(float), 2)
    for p in np.flatnonzero(picked.isna().to_numpy() & pd.notna(picked_id)):
        out.loc[p, "error"] = f"component {picked_id[p]} does not exist (or was removed)"
    mismatch = picked.notna().to_numpy() & (c["class_code"].to_numpy() != points["class_code"].to_numpy())
    for p in np.flatnonzero(mismatch):
        out.loc[p, "error"] = f"component {picked_id[p]} is of class {c['class_code'][p]}, not {points['class_code'][p]}"
    for p in np.flatnonzero(picked.notna().to_numpy() & (distance > PICKED_COMPONENT_FAR_M)):
        reasons[p].append(f"the picked component {picked_id[p]} is {distance[p]:.0f} m from the fix")
    tie = near_tie(first, second) & picked.isna().to_numpy()
    codes = components["code"].to_numpy()
    for p in np.flatnonzero(tie):
        reasons[p].append(f"two components are nearly equally close: {codes[int(first['feature'][p])]} "
                          f"({first['distance'][p]:.1f} m) and {codes[int(second['feature'][p])]} ({second['distance'][p]:.1f} m)")
    for p, code, dist in near[near["rank"] < 3][["point", "code", "distance"]].itertuples(index=False):
        evidence[p].setdefault("components", []).append({"code": code, "distance_m": round(dist, 1)})
    return c


def departments(points, out, grid, road, comp, ref: Reference, evidence) -> tuple[np.ndarray, np.ndarray]:
    """Resolve each fix's department: 先属主 for components, then the most specific resolvable rule."""
    n = len(points)
    roles = {
        "component_maintainer": comp["maintainer"].to_numpy(), "component_owner": comp["owner"].to_numpy(),
        "road_maintenance": road["maintenance"].to_numpy(), "road_cleaning": road["cleaning"].to_numpy(),
        "street_office": np.where(pd.notna(grid["grid_department"]), grid["grid_department"],
                                  grid["district_id"].map(ref.street_offices)),
    }
    department = np.full(n, None, dtype=object)
    rule = np.full(n, None, dtype=object)
    is_component = (points["case_type"] == "component").to_numpy()
    for via in ("component_maintainer", "component_owner"):
        take = is_component & pd.isna(department) & pd.notna(roles[via])
        department[take], rule[take] = roles[via][take], f"先属主: {via}"
    keys = pd.DataFrame({
        "case_type": points["case_type"].to_numpy(), "class_code": points["class_code"].to_numpy(),
        "district_id": grid["district_id"].to_numpy(), "street_id": grid["street_id"].to_numpy(),
        "road_grade": road["grade"].to_numpy(), "area_class": grid["area_class"].to_numpy(),
        **{f"has_{k}": pd.notna(v) for k, v in roles.items()},
    })
    open_rows = np.flatnonzero(pd.isna(department) & out["error"].isna().to_numpy())
    for key, rows in keys.iloc[open_rows].groupby(list(keys.columns), dropna=False).groups.items():
        values = dict(zip(keys.columns, key))
        values["place"] = tuple(values[c] for c in ("case_type", "class_code", "district_id", "street_id",
                                                    "road_grade", "area_class"))
        chain = rule_chain(values, ref)
        rows = np.asarray(rows)
        winner = next((step for step in chain if step["resolvable"]), None)
        for p in rows:
            evidence[p]["rules"] = chain
        if winner is None:
            department[rows], rule[rows] = roles["street_office"][rows], "属地兜底: no rule applies"
            continue
        target = winner["target"]
        department[rows] = winner["department"] if target == "department" else roles[target][rows]
        rule[rows] = winner["rule"]
    for p in range(n):
        evidence[p]["department"] = {"code": department[p], "by": rule[p]}
    return department, rule


def rule_chain(key: dict, ref: Reference) -> list[dict]:
    """The rules that apply to ``key``, most specific first, each with whether it can be resolved."""
    cached = ref.chains.get(key["place"])
    if cached is None:
        matches = applicable_rules(ref.rules, case_type=key["case_type"], class_code=key["class_code"],
                                   district_id=key["district_id"], street_id=key["street_id"],
                                   road_grade=key["road_grade"], area_class=key["area_class"])
        cached = ref.chains[key["place"]] = [
            {"rule": m.code, "target": m.target, "department": m.department_code, "specificity": m.specificity}
            for m in matches]
    return [{**step, "resolvable": step["target"] == "department" or bool(key.get(f"has_{step['target']}", False))}
            for step in cached]


def time_limits(points: pd.DataFrame, out: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    classes = ref.classes.set_index(["case_type", "code"])
    found = classes.reindex(pd.MultiIndex.from_arrays([points["case_type"], points["class_code"]]))
    area = out["area_class"].fillna("B").to_numpy()
    amount = np.select([area == "A", area == "C"], [found["limit_a"], found["limit_c"]], found["limit_b"])
    return pd.DataFrame({"amount": pd.to_numeric(amount, errors="coerce"), "unit": found["limit_unit"].to_numpy(),
                         "road_bound": found["road_bound"].to_numpy()})
