"""What each importable layer holds: its fields, how they are checked, and the table they go to.

Parent references that a national code already contains are derived from it, not read: a community's
district is the first 6 digits of its 12-digit code, its street the first 9 (unless those are ``000``:
a city without a street level), a unit grid's community the first 12 of its 15, a component's class
digits 7–10 of its 16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from gridmap.components.models import STATUS_ALIASES, STATUSES
from gridmap.departments.models import DEPARTMENT_KINDS, RULE_TARGETS

SQL_TYPES = {"text": "text", "int": "integer", "number": "numeric", "bool": "boolean", "date": "date"}


@dataclass(frozen=True)
class Field:
    """One importable column. ``ref`` names the table whose ``code`` the value must be."""

    name: str
    kind: str = "text"
    required: bool = False
    pattern: str | None = None
    hint: str = ""
    choices: tuple[str, ...] | None = None
    ref: str | None = None
    derived: bool = False  # filled from other fields, not read from the file
    fallback: bool = False  # read when the file has it, else derived from other fields
    default_sql: str | None = None  # value when empty

    @property
    def column(self) -> str:
        """Table column: a reference resolves ``x_code`` to ``x_id`` unless the table keeps the code."""
        if self.ref and self.name.endswith("_code") and self.ref not in KEEPS_CODE:
            return self.name.removesuffix("_code") + "_id"
        return self.name

    def sql(self) -> str:
        """SQL expression giving the table column's value from the staged row ``s``."""
        if self.ref and self.column != self.name:
            return f"(SELECT id FROM {self.ref} WHERE code = s.{self.name})"
        value = f"s.{self.name}::{SQL_TYPES[self.kind]}" if self.kind != "text" else f"s.{self.name}"
        return f"COALESCE({value}, {self.default_sql})" if self.default_sql else value


# References that the table stores as the code itself (the FK points at a ``code`` primary key).
KEEPS_CODE = {"road_grade", "component_class"}


@dataclass(frozen=True)
class LayerSpec:
    name: str
    table: str
    fields: tuple[Field, ...]
    geometry: str | None = None  # 'MultiPolygon', 'MultiLineString' or 'Point'
    in_territory: bool = False  # reject features outside the city's districts
    conflict: str = "(code)"
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    check: Callable[[pd.DataFrame], list[tuple[int, str, str]]] | None = None

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def read_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.derived)


def digits(n: int) -> tuple[str, str]:
    return rf"[0-9]{{{n}}}", f"{n} digits"


def _code(n: int) -> Field:
    pattern, hint = digits(n)
    return Field("code", required=True, pattern=pattern, hint=hint)


def _department(name: str) -> Field:
    return Field(name, ref="department")


CODE_TEXT = Field("code", required=True, pattern=r"[A-Za-z0-9_.:\-]{1,64}", hint="1–64 letters, digits or _.:-")
NAMES = (Field("name", required=True), Field("name_en"))
SOURCE = Field("source")
SOURCE_CODE = Field("source_code")
CLASS_CODE_PATTERN = r"[0-9]{2}([0-9]{2})?"


def _derive_community(rows: pd.DataFrame) -> pd.DataFrame:
    code = rows["code"].fillna("")
    rows["district_code"] = code.str[:6].where(code != "", None)
    street = code.str[:9]
    rows["street_code"] = street.where((code.str[6:9] != "000") & (code != ""), None)
    return rows


def _derive_street(rows: pd.DataFrame) -> pd.DataFrame:
    code = rows["code"].fillna("")
    rows["district_code"] = code.str[:6].where(code != "", None)
    return rows


def _derive_unit_grid(rows: pd.DataFrame) -> pd.DataFrame:
    code = rows["code"].fillna("")
    rows["community_code"] = code.str[:12].where(code != "", None)
    rows["area_class"] = rows.get("area_class", pd.Series(None, index=rows.index)).fillna("B").str.upper()
    return rows


def _derive_component(rows: pd.DataFrame) -> pd.DataFrame:
    code = rows["code"].fillna("")
    given = rows.get("class_code", pd.Series(None, index=rows.index))
    rows["class_code"] = given.where(given.notna(), code.str[6:10].where(code != "", None))
    status = rows.get("status", pd.Series(None, index=rows.index))
    rows["status"] = status.map(lambda s: STATUS_ALIASES.get(str(s).lower(), s) if s is not None else "完好")
    return rows


def _check_component(rows: pd.DataFrame) -> list[tuple[int, str, str]]:
    code, cls = rows["code"].fillna(""), rows["class_code"].fillna("")
    bad = (code.str.len() == 16) & (cls != "") & (code.str[6:10] != cls)
    return [(i, "class_code", f"class {cls[i]} does not match digits 7–10 of code {code[i]}") for i in rows.index[bad]]


def _derive_class(rows: pd.DataFrame) -> pd.DataFrame:
    code = rows["code"].fillna("")
    given = rows.get("major_code", pd.Series(None, index=rows.index))
    rows["major_code"] = given.where(given.notna(), code.str[:2].where(code.str.len() == 4, None))
    return rows


def _check_class(rows: pd.DataFrame) -> list[tuple[int, str, str]]:
    problems = []
    minor = rows["code"].fillna("").str.len() == 4
    for name in ("limit_a", "limit_b", "limit_c", "limit_unit"):
        missing = minor & rows[name].isna()
        problems += [(i, name, "a minor class needs its time limits for area classes A, B, C and their unit")
                     for i in rows.index[missing]]
    return problems


def _check_rule(rows: pd.DataFrame) -> list[tuple[int, str, str]]:
    wants = rows["target"] == "department"
    has = rows["department_code"].notna()
    return [
        (i, "department_code", "required when target is 'department', and only then")
        for i in rows.index[(wants != has) & rows["target"].notna()]
    ]


_CLASS_FIELDS = (
    Field("code", required=True, pattern=CLASS_CODE_PATTERN, hint="2 (major) or 4 (minor) digits"),
    Field("major_code", pattern=r"[0-9]{2}", hint="2 digits", fallback=True),
    *NAMES[:1],
    Field("name_en", required=True),
    Field("is_local", kind="bool", default_sql="false"),
    Field("filing_condition"),
    Field("limit_a", kind="number"),
    Field("limit_b", kind="number"),
    Field("limit_c", kind="number"),
    Field("limit_unit", choices=("hour", "day")),
)

LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("district", "district", (_code(6), *NAMES, SOURCE_CODE, SOURCE), geometry="MultiPolygon"),
        LayerSpec(
            "street", "street",
            (_code(9), *NAMES, Field("district_code", required=True, ref="district", derived=True),
             SOURCE_CODE, SOURCE),
            geometry="MultiPolygon", derive=_derive_street,
        ),
        LayerSpec(
            "community", "community",
            (_code(12), *NAMES, Field("district_code", required=True, ref="district", derived=True),
             Field("street_code", ref="street", derived=True), SOURCE_CODE, SOURCE),
            geometry="MultiPolygon", derive=_derive_community,
        ),
        LayerSpec(
            "unit_grid", "unit_grid",
            (_code(15), Field("community_code", required=True, ref="community", derived=True),
             Field("area_class", choices=("A", "B", "C")),
             Field("responsible_department_code", ref="department"), Field("valid_from", kind="date", default_sql="CURRENT_DATE"), SOURCE),
            geometry="MultiPolygon", in_territory=True, conflict="(code) WHERE valid_to IS NULL",
            derive=_derive_unit_grid,
        ),
        LayerSpec(
            "road", "road",
            (CODE_TEXT, Field("name"), Field("name_en"), Field("source_class"),
             Field("grade_code", required=True, ref="road_grade"),
             _department("maintenance_department_code"), _department("cleaning_department_code"),
             Field("lanes", kind="int"), SOURCE),
            geometry="MultiLineString", in_territory=True,
        ),
        LayerSpec(
            "component", "component",
            (_code(16), Field("class_code", required=True, ref="component_class", fallback=True), Field("name"),
             _department("competent_department_code"), _department("owner_department_code"),
             _department("maintainer_department_code"), Field("status", choices=STATUSES),
             Field("survey_date", kind="date"), Field("change_date", kind="date"), SOURCE, Field("source_id"),
             Field("note")),
            geometry="Point", in_territory=True, derive=_derive_component, check=_check_component,
        ),
        LayerSpec(
            "department", "department",
            (CODE_TEXT, *NAMES, Field("kind", required=True, choices=DEPARTMENT_KINDS),
             Field("district_code", ref="district"), Field("street_code", ref="street"), Field("phone"),
             Field("note")),
        ),
        LayerSpec(
            "responsibility_rule", "responsibility_rule",
            (CODE_TEXT, Field("case_type", required=True, choices=("component", "event")),
             Field("class_code", pattern=CLASS_CODE_PATTERN, hint="2 or 4 digits"),
             Field("district_code", ref="district"), Field("street_code", ref="street"),
             Field("road_grade_code", ref="road_grade"), Field("area_class", choices=("A", "B", "C")),
             Field("target", required=True, choices=RULE_TARGETS), Field("department_code", ref="department"),
             Field("priority", kind="int", default_sql="0"), Field("note")),
            check=_check_rule,
        ),
        LayerSpec("component_class", "component_class", _CLASS_FIELDS, derive=_derive_class, check=_check_class),
        LayerSpec(
            "event_class", "event_class", (*_CLASS_FIELDS, Field("road_bound", kind="bool", default_sql="false")),
            derive=_derive_class, check=_check_class,
        ),
        LayerSpec(
            "road_grade", "road_grade",
            (Field("code", required=True, pattern=r"[a-z0-9_]{1,16}", hint="1–16 lower-case letters or digits"),
             Field("name", required=True), Field("name_en", required=True),
             Field("rank", kind="int", required=True), Field("description")),
        ),
    )
}
