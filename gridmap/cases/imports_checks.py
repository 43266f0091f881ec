"""Checking a historical case file row by row, column-wise: numbers, classes, moments, departments,
statuses and locations. Each row that cannot be used gets its first problem recorded (field, reason,
value) in :class:`Issues`; nothing is dropped silently."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from pyproj import CRS

from gridmap.cases.imports_clock import NAT
from gridmap.cases.imports_mapping import (IMPORT_STATUSES, LOCAL, TIMES, CaseMapping, Rows, distinct_text, same, text,
                                           translate)
from gridmap.cases.policy import FUTURE_SLACK
from gridmap.crs import PHONE_SYSTEMS, transformer
from gridmap.io.exceptions import ImportFailed
from gridmap.io.report import RowIssue
from gridmap.routing.layers import Reference
from gridmap.routing.service import case_type_of
from gridmap.routing.table import distinct_rows

WGS84 = CRS.from_epsg(4326)
TIME_HINT = "not a timestamp (ISO 8601 such as 2026-10-05 09:30 or 2026-10-05T09:30:00+08:00, or give --time-format)"
_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def check_rows(rows: Rows, values: dict[str, pd.Series], mapping: CaseMapping, issues: Issues, ref: Reference,
               departments: set[str], zone: str, keep_local: bool, now: datetime) -> dict[str, np.ndarray]:
    """Every row's number, class, moments, department, status and location, checked (problems → ``issues``)."""
    n = len(rows.frame)
    out: dict[str, np.ndarray] = {}
    number = text(values["number"])
    issues.reject(number.isna().to_numpy(), "number", "missing (required: it recognises the case on re-import)")
    _duplicates(number, issues)
    out["external_number"] = number.to_numpy(dtype=object, na_value=None)
    case_type, code, local, error = classify(values["class"], values.get("case_type"), mapping, ref.known, keep_local)
    issues.reject(np.ones(n, dtype=bool), "class", error, values["class"])
    out.update(case_type=case_type, class_code=code, local_class=local)
    _times(values, mapping, issues, zone, now, out)
    for name in ("description", "address"):
        out[name] = text(values[name]).to_numpy(dtype=object, na_value=None) if name in values else np.full(n, None)
    out["accuracy_m"] = (pd.to_numeric(text(values["accuracy"]), errors="coerce").to_numpy(dtype=float)
                         if "accuracy" in values else np.full(n, np.nan))
    out["file_department"] = _department(values, mapping, departments, issues)
    out["status"] = _status(values, mapping, issues, out)
    out["file_grid"] = (text(values["unit_grid"]).to_numpy(dtype=object, na_value=None) if "unit_grid" in values
                        else np.full(n, None, dtype=object))
    for rows_, field_, reason, shown in rows.problems:
        issues.reject(rows_, field_, reason, shown)
    lon, lat, system = locate(rows, mapping.crs)
    given = np.isfinite(rows.x) & np.isfinite(rows.y)
    issues.reject(~given, "location", "no location (no point geometry, or empty x/y)")
    impossible = given & ~(np.isfinite(lon) & np.isfinite(lat))
    issues.reject(impossible, "location", f"impossible coordinates in {system}", pairs(rows.x, rows.y, impossible))
    out.update(lon=lon, lat=lat, reported_x=rows.x, reported_y=rows.y, reported_crs=np.full(n, system, dtype=object))
    return out


def pairs(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``"x, y"`` where ``mask`` holds (to show in a rejection), None elsewhere."""
    shown = np.full(len(x), None, dtype=object)
    shown[mask] = [f"{a}, {b}" for a, b in zip(x[mask], y[mask])]
    return shown


def _duplicates(number: pd.Series, issues: Issues) -> None:
    repeated = (number.notna() & number.duplicated(keep="first")).to_numpy()
    if repeated.any():
        codes = pd.factorize(number)[0]
        first = pd.Series(np.arange(len(number))).groupby(codes).transform("min").to_numpy()
        reason = np.full(len(number), None, dtype=object)
        reason[repeated] = [f"duplicate number, first at row {k + 1}" for k in first[repeated]]
        issues.reject(repeated, "number", reason, number)


def _times(values, mapping: CaseMapping, issues: Issues, zone: str, now: datetime, out: dict) -> None:
    """The five moments (int64 µs UTC, NAT when absent), parsed and checked against each other."""
    n = len(issues.ok)
    for name in TIMES:
        if name not in values:
            out[name] = np.full(n, NAT, dtype=np.int64)
            continue
        out[name], bad = parse_times(values[name], zone=zone, time_format=mapping.time_format)
        hint = f"not a timestamp in the format {mapping.time_format!r}" if mapping.time_format else TIME_HINT
        issues.reject(bad, name, hint, values[name])
    opened = out["opened"]
    issues.reject(opened == NAT, "opened", "missing (required)")
    late = int((now + FUTURE_SLACK).timestamp() * 1e6)
    for name in ("opened", "dispatched", "handled", "closed"):  # a due date may lie ahead
        future = out[name] > late
        issues.reject(future, name, "in the future", _shown(out[name], future))
    for name in ("dispatched", "due", "handled", "closed"):
        early = (out[name] != NAT) & (opened != NAT) & (out[name] < opened)
        issues.reject(early, name, "before opened", _shown(out[name], early))
    after = (out["handled"] != NAT) & (out["closed"] != NAT) & (out["handled"] > out["closed"])
    issues.reject(after, "handled", "after closed", _shown(out["handled"], after))


def _shown(moments: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The moments where ``mask`` holds as ISO text in UTC (to show in a rejection), None elsewhere."""
    shown = np.full(len(moments), None, dtype=object)
    shown[mask] = [f"{m}Z" for m in moments[mask].astype("datetime64[us]").astype("datetime64[s]")]
    return shown


def _department(values, mapping: CaseMapping, departments: set[str], issues: Issues) -> np.ndarray:
    n = len(issues.ok)
    if "department" not in values:
        return np.full(n, None, dtype=object)
    mapped = translate(values["department"], mapping.departments)
    unknown = pd.notna(mapped) & ~pd.Series(mapped, dtype=object).isin(departments).to_numpy()
    issues.reject(unknown, "department", "unknown department: map it under departments: in the mapping file",
                  values["department"])
    return np.where(unknown, None, mapped)


def _status(values, mapping: CaseMapping, issues: Issues, out: dict) -> np.ndarray:
    """The file's status (mapped), else closed when there is a closed time (dispatched or filed is decided
    after routing: :func:`gridmap.cases.imports_cases.case_columns`)."""
    closed = out["closed"] != NAT
    if "status" not in values:
        return np.where(closed, "closed", None).astype(object)
    status = translate(values["status"], mapping.statuses)
    unknown = pd.notna(status) & ~pd.Series(status, dtype=object).isin(IMPORT_STATUSES).to_numpy()
    issues.reject(unknown, "status", f"unknown status: map it under statuses: (to {', '.join(IMPORT_STATUSES)})",
                  values["status"])
    issues.reject((status == "closed") & ~closed, "closed", "missing: the status is closed")
    handled = pd.Series(status, dtype=object).isin(["handled", "checked"]).to_numpy() & (out["handled"] == NAT)
    issues.reject(handled, "handled", "missing: the status says it was handled")
    still_open = pd.Series(status, dtype=object).isin(["filed", "dispatched", "handled", "checked"]).to_numpy() & closed
    issues.reject(still_open, "status", "says open, but the case has a closed time", values["status"])
    status = np.where(unknown, None, status)
    return np.where(pd.isna(status) & closed, "closed", status).astype(object)


def parse_times(raw: pd.Series, *, zone: str, time_format: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Moments as int64 µs since 1970 UTC (``NAT`` where missing or bad) and a mask of the bad ones.

    Text is ISO 8601 (``2026-10-05 09:30``, ``2026-10-05T09:30:00+08:00``) unless ``time_format`` (strftime)
    says otherwise; a moment without an offset is local time in ``zone``."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return micros(raw, zone), np.zeros(len(raw), dtype=bool)
    values = text(raw)
    present = values.notna().to_numpy()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    aware = values.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    for part, is_aware in ((present & aware, True), (present & ~aware, False)):
        if not part.any():
            continue
        kwargs = {"format": time_format} if time_format else {"format": "ISO8601"}
        parsed = pd.to_datetime(values[part], errors="coerce", utc=is_aware, **kwargs)
        if not is_aware:
            parsed = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        out[part] = parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    moments = micros(out, zone)
    return moments, present & (moments == NAT)


def micros(moments: pd.Series, zone: str) -> np.ndarray:
    """A datetime column as int64 µs since 1970 UTC (``NAT`` for NaT); naive moments are local in ``zone``."""
    if moments.dt.tz is None:
        moments = moments.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    utc = moments.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    return utc.to_numpy().view(np.int64)


def classify(raw: pd.Series, given_type: pd.Series | None, mapping: CaseMapping, known: dict[str, set[str]],
             keep_local: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: case type, 4-digit catalogue class, local class (kept as it is) and the reason a row's class
    cannot be used (None when it can) — worked out once per distinct (class, type)."""
    codes, values = distinct_text(raw)
    type_codes, types = (distinct_text(given_type) if given_type is not None
                         else (np.zeros(len(codes), dtype=np.int64), np.array([None], dtype=object)))
    values, types = np.append(values, None), np.array([t and t.lower() for t in types] + [None], dtype=object)
    first, inverse = distinct_rows(codes, type_codes)
    classes = {same(k): v for k, v in mapping.classes.items()}
    answers = [_classify_one(values[codes[p]], types[type_codes[p]], classes, known, keep_local) for p in first]
    return tuple(np.array([a[k] for a in answers] + [None], dtype=object)[:-1][inverse] for k in range(4))


def _classify_one(value, given, classes: dict[str, str], known, keep_local: bool):
    if value is None:
        return None, None, None, "missing (required)"
    target = classes.get(same(value))
    if target == LOCAL:
        return None, None, value, None
    case_type, code, error = case_type_of(target or value, given, False, known)
    if error is None:
        return case_type, code, None, None
    if target is None and keep_local:
        return None, None, value, None
    hint = "" if target else ": map it under classes: in the mapping file, or keep it with --keep-local"
    return None, None, None, f"{error}{hint}"


def mapping_errors(mapping: CaseMapping, known: dict[str, set[str]], departments: set[str]) -> list[str]:
    """What in the mapping names no catalogue class or department (checked before any row is read)."""
    errors = []
    for name, target in mapping.classes.items():
        if target != LOCAL:
            error = case_type_of(target, None, False, known)[2]
            if error:
                errors.append(f"classes: {name} → {target}: {error}")
    errors += [f"departments: {name} → {code}: no such department" for name, code in mapping.departments.items()
               if code not in departments]
    return errors


def locate(rows: Rows, system: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """WGS84 longitude/latitude of each row (NaN where not possible) and the system they were read in:
    ``system`` (``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000``, ``EPSG:nnnn``) overrides the file's label."""
    from gridmap.routing.service import normalise

    x, y = rows.x, rows.y
    if system is None:
        if rows.crs is None:
            located = np.isfinite(x) & np.isfinite(y)
            if (np.abs(x[located]) <= 180).all() and (np.abs(y[located]) <= 90).all():
                rows.notes.append("the file declares no CRS: x/y read as WGS84 longitude/latitude; give --crs "
                                  "if they are not")
                system = "wgs84"
            else:
                raise ImportFailed(f"{rows.path}: the file declares no CRS and its x/y are not longitude/latitude: "
                                   "give it with --crs (e.g. --crs EPSG:3826, or gcj02 / bd09)")
        else:
            system = rows.crs
    if isinstance(system, str) and system.strip().lower() in PHONE_SYSTEMS:
        lon, lat = normalise(x, y, system.strip().lower())
        return lon, lat, system.strip().lower()
    try:
        source = system if isinstance(system, CRS) else CRS.from_user_input(system)
    except Exception:
        raise ImportFailed(f"--crs {system!r}: unknown coordinate system; use wgs84, gcj02, bd09, cgcs2000 "
                           "or EPSG:nnnn") from None
    ok = np.isfinite(x) & np.isfinite(y)
    lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if source.equals(WGS84, ignore_axis_order=True):
        lon[ok], lat[ok] = x[ok], y[ok]
    elif ok.any():
        lon[ok], lat[ok] = transformer(source, 4326).transform(x[ok], y[ok])
    bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    lon[bad], lat[bad] = np.nan, np.nan
    epsg = 4326 if source.equals(WGS84, ignore_axis_order=True) else source.to_epsg()
    return lon, lat, f"EPSG:{epsg}" if epsg else source.to_string()


class Issues:
    """Why rows cannot be imported: the first problem found for each row (its field, reason and value)."""

    def __init__(self, n: int):
        self.ok = np.ones(n, dtype=bool)
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.value = np.full(n, None, dtype=object)

    def reject(self, rows, field_: str, reason: str | np.ndarray, values=None) -> None:
        """Record ``reason`` (one for all, or per row: None = no problem) for ``rows`` (a mask or positions)
        that have no problem yet; ``values`` (per row of the file) are shown with it."""
        mask = np.zeros(len(self.ok), dtype=bool)
        mask[rows] = True
        if isinstance(reason, np.ndarray):
            mask &= pd.notna(reason)
        mask &= self.ok
        picked = np.flatnonzero(mask)
        if len(picked) == 0:
            return
        self.ok[picked] = False
        self.field[picked] = field_
        self.reason[picked] = reason[picked] if isinstance(reason, np.ndarray) else reason
        if values is not None:
            taken = values.iloc[picked] if isinstance(values, pd.Series) else np.asarray(values, dtype=object)[picked]
            self.value[picked] = [None if pd.isna(v) else str(v) for v in taken]

    def rows(self) -> list[RowIssue]:
        """The rejected rows, numbered from 1 (a CSV's header is row 0)."""
        bad = np.flatnonzero(~self.ok)
        return [RowIssue(int(i) + 1, self.field[i], self.reason[i], self.value[i]) for i in bad]
