"""Who is responsible: 先属主 for component cases, then the most specific rule that can be resolved,
and the disposal time limit — worked out once per distinct place and class, then spread over the fixes.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from gridmap.departments.service import applicable_rules
from gridmap.routing import messages
from gridmap.routing.layers import Reference
from gridmap.routing.table import Table, Vocabulary, distinct_rows, positions

ROLES = ("component_maintainer", "component_owner", "road_maintenance", "road_cleaning", "street_office")
FIXED = len(ROLES)  # the target of a rule that names its department itself


def role(table: Table, name: str, index: np.ndarray, depts: Vocabulary) -> np.ndarray:
    """Department codes (in ``depts``) of column ``name`` of the chosen features; -1 for none."""
    return depts.lookup(table.encoded(name)[1])[table.codes_at(name, index)]


def street_office(grids: Table, grid: np.ndarray, ref: Reference, depts: Vocabulary) -> np.ndarray:
    """The grid's responsible body, else its district's street office."""
    own = role(grids, "grid_department", grid, depts)
    districts = grids.encoded("district_id")[1]
    office = depts.lookup([ref.street_offices.get(d) for d in districts])[grids.codes_at("district_id", grid)]
    return np.where(own >= 0, own, office)


def departments(case_type, class_code, kind, grid, road, grids: Table, roads: Table, roles: np.ndarray,
                todo: np.ndarray, ref: Reference, depts: Vocabulary,
                rules: Vocabulary) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Resolve each fix's department: 先属主 for components, then the most specific resolvable rule.

    Fixes that share a place (class, district, street, road grade, area class and which role units are
    known) share a rule chain: it is worked out once per distinct place. ``kind``: per fix a code of its
    (case type, class)."""
    n = len(todo)
    department, rule = np.full(n, -1), np.full(n, -1)
    is_component = case_type == "component"
    for k, via in enumerate(ROLES[:2]):
        take = todo & is_component & (department < 0) & (roles[k] >= 0)
        department[take], rule[take] = roles[k][take], rules.code(messages.owner_first(via))
    open_rows = np.flatnonzero(todo & (department < 0))
    rules_ev = pa.nulls(n, pa.string())
    if len(open_rows) == 0:
        return department, rule, rules_ev
    known = ((roles[:, open_rows] >= 0) * (1 << np.arange(len(ROLES)))[:, None]).sum(axis=0)
    first, inverse = distinct_rows(kind[open_rows],
                                   grids.codes_at("district_id", grid[open_rows]),
                                   grids.codes_at("street_id", grid[open_rows]),
                                   grids.codes_at("area_class", grid[open_rows]),
                                   roads.codes_at("grade", road[open_rows]), known)
    target, fixed, names, chains = [], [], [], []
    for p in open_rows[first]:
        place = {"case_type": case_type[p], "class_code": class_code[p],
                 "district_id": grids.value("district_id", grid[p]), "street_id": grids.value("street_id", grid[p]),
                 "road_grade": roads.value("grade", road[p]), "area_class": grids.value("area_class", grid[p])}
        chain = rule_chain(place, {name: bool(roles[k, p] >= 0) for k, name in enumerate(ROLES)}, ref)
        winner = next((step for step in chain if step["resolvable"]), None)
        # the evidence lists the rules tried, down to the one that decided (those below it did not matter)
        chains.append(orjson.dumps(chain[: chain.index(winner) + 1] if winner else chain).decode())
        if winner is None:
            target.append(ROLES.index("street_office"))
            fixed.append(-1)
            names.append(rules.code(messages.LOCALITY_FALLBACK))
        else:
            target.append(FIXED if winner["target"] == "department" else ROLES.index(winner["target"]))
            fixed.append(depts.code(winner["department"]))
            names.append(rules.code(winner["rule"]))
    target, fixed = np.array(target)[inverse], np.array(fixed)[inverse]
    choice = np.vstack([roles[:, open_rows], fixed[None, :]])
    department[open_rows] = choice[target, np.arange(len(open_rows))]
    rule[open_rows] = np.array(names)[inverse]
    chain_of = np.full(n, -1)
    chain_of[open_rows] = inverse
    rules_ev = pa.array(chains, pa.string()).take(positions(chain_of))
    return department, rule, rules_ev


def rule_chain(place: dict, known: dict[str, bool], ref: Reference) -> list[dict]:
    """The rules that apply at ``place``, most specific first, each with whether it can be resolved
    (a rule naming its department always can; one naming a role only if that role's unit is ``known``)."""
    key = tuple(place[c] for c in ("case_type", "class_code", "district_id", "street_id", "road_grade", "area_class"))
    cached = ref.chains.get(key)
    if cached is None:
        matches = applicable_rules(ref.rule_records, **place)
        cached = ref.chains[key] = [
            {"rule": m.code, "target": m.target, "department": m.department_code, "specificity": m.specificity}
            for m in matches]
    return [{**step, "resolvable": step["target"] == "department" or known.get(step["target"], False)}
            for step in cached]


def time_limits(case_type, class_code, area_class, ref: Reference,
                kinds: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The disposal limit of each fix's class for its grid's area class (B where the grid is unknown),
    its unit, and whether the class is road-bound. ``area_class``: per fix its grid's area class, or already
    encoded as (per fix an index into the distinct values or -1, the distinct values). ``kinds``: the fixes
    grouped by case type and class (:func:`distinct_rows`), when known."""
    first, inverse = kinds or distinct_rows(case_type, class_code)
    found = [ref.limits.get((case_type[p], class_code[p])) for p in first]
    limits = np.array([f[:3] if f else [np.nan] * 3 for f in found], dtype=float).reshape(-1, 3)[inverse]
    unit = np.array([f[3] if f else None for f in found], dtype=object)[inverse]
    road_bound = np.array([bool(f[4]) if f else False for f in found], dtype=bool)[inverse]
    # a few area classes: compared once each, not once per fix
    codes, areas = area_class if isinstance(area_class, tuple) else pd.factorize(area_class)
    column = np.array([limit_column(area) for area in areas] + [1], dtype=np.int64)[codes]
    return limits[np.arange(len(column)), column], unit, road_bound


def limit_column(area_class: str | None) -> int:
    """Which of a class's three limits (A, B, C) applies in an area class; B where it is unknown."""
    return {"A": 0, "C": 2}.get(area_class, 1)
