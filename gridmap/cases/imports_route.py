"""Routing the checked rows of a historical import, a chunk at a time, with the routing engine's own batch
step (:func:`gridmap.routing.service.decide_rows`): grid, duty grid, community, street, district, area
class, road, component, proposed department, time limit — as :func:`gridmap.routing.service.assign`
decides them. The layers and the grids' places are read once, before the first chunk: while the chunks
are decided the session's connection is busy with the COPY of the previous ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.cases.imports_checks import Issues, pairs
from gridmap.routing.layers import Reference, load_layers
from gridmap.routing.responsible import time_limits
from gridmap.routing.service import decide_rows

#: what the routing engine decides and the case keeps: passed on as they come, and worked with
PLACES = ("unit_grid", "duty_grid", "community", "street", "district", "area_class")
PASSED = (*PLACES, "road_id", "component_id", "rule", "ambiguity_reason")
USED = ("time_limit_unit", "ambiguous")
#: every current unit grid's places and responsible body (属地), for grids named in the file and local classes
GRID_SQL = text("""
SELECT g.code AS unit_grid, dg.code AS duty_grid, c.code AS community, s.code AS street, d.code AS district,
       g.area_class, coalesce(dep.code, (SELECT o.code FROM department o WHERE o.kind = 'street_office'
                                         AND o.street_id IS NULL AND o.district_id = c.district_id
                                         ORDER BY o.code LIMIT 1)) AS locality
FROM unit_grid g JOIN community c ON c.id = g.community_id JOIN district d ON d.id = c.district_id
LEFT JOIN street s ON s.id = c.street_id LEFT JOIN department dep ON dep.id = g.responsible_department_id
LEFT JOIN duty_grid_member m ON m.unit_grid_code = g.code LEFT JOIN duty_grid dg ON dg.id = m.duty_grid_id
WHERE g.valid_to IS NULL""")


class Router:
    """Decides chunks of the rows that passed the checks (``rows`` of ``checked``, the file's columns)
    against the layers loaded here, once; rows the engine cannot place are rejected."""

    def __init__(self, session: Session, checked: dict[str, np.ndarray], rows: np.ndarray, ref: Reference):
        self.checked, self.ref = checked, ref
        local = pd.notna(checked["local_class"][rows])
        component = (checked["case_type"][rows] == "component") & ~local
        classes = sorted(pd.unique(checked["class_code"][rows][component]))
        self.layers = load_layers(session=session, metric=ref.metric, class_codes=classes)
        needed = local.any() or pd.notna(checked["file_grid"][rows]).any()
        self.grids = (pd.DataFrame(session.execute(GRID_SQL).mappings().all(), columns=[*PLACES, "locality"])
                      .drop_duplicates("unit_grid").set_index("unit_grid") if needed else None)

    def route(self, rows: np.ndarray, issues: Issues) -> dict[str, np.ndarray | pa.Array]:
        """The decision's columns for ``rows`` (positions in the file); rows it rejects go to ``issues``.
        A local class is routed as an event for its place only, and goes to the grid's responsible body."""
        checked, n = self.checked, len(issues.ok)
        local = pd.notna(checked["local_class"][rows])
        stand_in = min(self.ref.known["event"])
        classes = np.where(local, "2" + stand_in, np.where(checked["case_type"][rows] == "component", "1", "2")
                           + checked["class_code"][rows].astype(str))
        frame = pd.DataFrame({"lon": checked["lon"][rows], "lat": checked["lat"][rows], "class": classes,
                              "accuracy": checked["accuracy_m"][rows]})
        decided = decide_rows(frame, session=None, ref=self.ref, layers=self.layers)
        out = {name: _kept(decided[name]) for name in PASSED}
        out |= {name: decided[name].to_numpy(dtype=object, na_value=None, copy=True) for name in USED}
        out["proposed_department"] = decided["department"].to_numpy(dtype=object, na_value=None, copy=True)
        out["component_version"] = decided["component_version"].to_numpy(dtype=float, na_value=np.nan, copy=True)
        out["time_limit"] = decided["time_limit"].to_numpy(dtype=float, na_value=np.nan, copy=True)
        error = decided["error"].to_numpy(dtype=object, na_value=None)
        outside = pd.Series(error, dtype=object).str.contains("territory", regex=False).fillna(False).to_numpy(bool)
        where = pairs(checked["lon"][rows], checked["lat"][rows], outside)
        issues.reject(rows[outside], "location", "outside the city's territory", _spread(where, rows, outside, n))
        issues.reject(rows, "location", _spread(error, rows, np.ones(len(rows), dtype=bool), n))
        self._grids_given(rows, out, issues)
        self._localities(out, np.flatnonzero(local))
        return out

    def _grids_given(self, rows: np.ndarray, out: dict, issues: Issues) -> None:
        """Where the file names the unit grid, it stands: the places follow from it, and the time limit from
        its area class."""
        given = np.flatnonzero(pd.notna(self.checked["file_grid"][rows]) & issues.ok[rows])
        if len(given) == 0:
            return
        codes = self.checked["file_grid"][rows[given]]
        known = pd.Series(codes, dtype=object).isin(self.grids.index).to_numpy()
        issues.reject(rows[given[~known]], "unit_grid", "not a current unit grid",
                      _spread(codes, rows[given], ~known, len(issues.ok)))
        given, codes = given[known], codes[known]
        for name in PLACES:
            out[name] = _objects(out[name])
            out[name][given] = codes if name == "unit_grid" else self.grids.loc[codes, name].to_numpy(dtype=object)
        amount, unit, _ = time_limits(self.checked["case_type"][rows[given]], self.checked["class_code"][rows[given]],
                                      out["area_class"][given], self.ref)
        out["time_limit"][given], out["time_limit_unit"][given] = amount, unit

    def _localities(self, out: dict, local: np.ndarray) -> None:
        """Local classes (``local``: positions in the chunk) go to the grid's responsible body (属地), without a
        time limit."""
        if len(local) == 0:
            return
        grids = _pick(out["unit_grid"], local)
        placed = pd.notna(grids)
        out["proposed_department"][local[placed]] = self.grids["locality"].reindex(grids[placed]).to_numpy(
            dtype=object, na_value=None)
        out["rule"] = _objects(out["rule"])
        out["rule"][local], out["time_limit_unit"][local] = "属地兜底: local class", None
        out["time_limit"][local] = out["component_version"][local] = np.nan
        out["component_id"] = _blank(out["component_id"], local)


def _kept(series: pd.Series) -> np.ndarray | pa.Array:
    """A column of the decision that is only passed on, as it is held: Arrow text stays Arrow (no Python
    object per row: the COPY encodes it as it is), anything else becomes an object array."""
    if isinstance(series.array, pd.arrays.ArrowStringArray):
        values = pa.array(series.array)  # a batch decided in pieces holds its columns in pieces
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return series.to_numpy(dtype=object, na_value=None, copy=True)


def _pick(values: np.ndarray | pa.Array, positions: np.ndarray) -> np.ndarray:
    """The values at ``positions``, as objects."""
    if isinstance(values, pa.Array):
        return np.asarray(values.take(pa.array(positions)).to_numpy(zero_copy_only=False), dtype=object)
    return values[positions]


def _blank(values: np.ndarray | pa.Array, positions: np.ndarray) -> np.ndarray | pa.Array:
    """The column with nothing at ``positions``."""
    if isinstance(values, pa.Array):
        mask = np.zeros(len(values), dtype=bool)
        mask[positions] = True
        return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)
    values[positions] = None
    return values


def _objects(values: np.ndarray | pa.Array) -> np.ndarray:
    """A column as a writable object array (None for missing)."""
    return np.array(values.to_numpy(zero_copy_only=False), dtype=object) if isinstance(values, pa.Array) else values


def _spread(values: np.ndarray, rows: np.ndarray, take: np.ndarray, n: int) -> np.ndarray:
    """``values`` (one per row of ``rows``) where ``take`` holds, at their rows of a file of ``n`` rows."""
    full = np.full(n, None, dtype=object)
    full[rows[take]] = values[take]
    return full
