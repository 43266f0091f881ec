"""``gridmap kpi``: the KPIs 考核指标 of one kind of subject for a period, as a table and a CSV/XLSX file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.common import console, fail, shown, transaction

OUT_FORMATS = (".csv", ".xlsx")
#: the counts the terminal shows beside the rates (the files have them all)
SHOWN_COUNTS = {"region": ("filed", "due"), "department": ("due", "overdue_unhandled"),
                "inspector": ("reports", "duty_filed"), "dispatcher": ("dispatches",),
                "shift_lead": ("file_events", "close_events")}


#: the options `gridmap kpi` and `gridmap scale kpi` share
PeriodOption = Annotated[str, typer.Option(help="2026-10-05, 2026-W41, 2026-10, 2026-Q4, 2026 or "
                                                "2026-10-01..2026-10-15 (city time)")]
ByOption = Annotated[str, typer.Option(help="unit_grid, community, street, district, department, inspector, "
                                            "dispatcher or shift_lead")]
ScoringOption = Annotated[Path | None, typer.Option(help="YAML file overriding weights or bands of "
                                                         "data/evaluation/scoring.yaml")]
OutOption = Annotated[Path | None, typer.Option(help="also write the table to FILE.csv or FILE.xlsx")]


def kpi_command(
    period: PeriodOption,
    by: ByOption = "department",
    scoring: ScoringOption = None,
    out: OutOption = None,
    as_of: Annotated[str | None, typer.Option(help="compute as at this moment (ISO 8601 with offset) instead "
                                                   "of now")] = None,
) -> None:
    """KPIs per subject for a period: counts, rates, composite score, band and rank (definitions: docs/kpi.md)."""
    from gridmap.calendar.service import CalendarError
    from gridmap.evaluation.definitions import EvaluationError
    from gridmap.evaluation.service import kpi

    if out is not None and out.suffix.lower() not in OUT_FORMATS:
        raise fail(f"--out {out}: write a .csv or .xlsx file")
    now = as_of_moment(as_of)
    try:
        with transaction() as session:
            frame = kpi(session=session, period=period, by=by, now=now, scoring=scoring)
    except (EvaluationError, CalendarError) as error:
        raise fail(str(error)) from None
    print_kpi_table(frame)
    if out is not None:
        write_table(frame, out)
        console.print(f"written to {shown(str(out))}", highlight=False)


def as_of_moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise fail(f"--as-of {text!r}: give a moment with its offset, e.g. 2026-10-15T12:00:00+08:00")
    return moment


def print_kpi_table(frame) -> None:
    import pandas as pd

    a = frame.attrs
    kpis = _columns(a["by"])
    local = a["cutoff"].astimezone(a["start"].tzinfo)
    title = (f"KPI {a['period']} by {a['by']} — cut-off {local:%Y-%m-%d %H:%M} "
             f"({'complete' if a['complete'] else 'still running'})")
    columns = [c for c in frame.columns if c in SHOWN_COUNTS[a["kind"]] or kpis.get(c) and kpis[c].unit not in
               ("count", "minutes", "rank")]
    table = Table("排名", "编码", "名称", *(kpis[c].zh for c in columns), title=title)
    for row in frame.to_dict("records"):
        cells = [_cell(row[c], kpis[c].unit, pd.isna(row[c])) for c in columns]
        table.add_row(_cell(row["rank"], "rank", pd.isna(row["rank"])), str(row["subject"]), str(row["name"] or ""),
                      *cells)
    console.print(table)
    if frame.empty:
        console.print("no cases or actions of this kind of subject in the period")
    else:
        console.print("every count behind the rates: --out FILE.csv or FILE.xlsx; definitions: docs/kpi.md",
                      highlight=False)


def _columns(by: str) -> dict:
    from gridmap.evaluation.definitions import SCORE_COLUMNS, kpis_for

    return {k.column: k for k in (*kpis_for(by), *SCORE_COLUMNS)}


def _cell(value, unit: str, missing: bool) -> str:
    if missing:
        return "—"
    formats = {"rate": "{:.1%}", "hours": "{:.1f}", "minutes": "{:.0f}", "score": "{:.2f}"}
    return formats.get(unit, "{}").format(value)


def write_table(frame, path: Path) -> None:
    """CSV (UTF-8 with a BOM, so that Excel reads the names; the column names of docs/kpi.md), or XLSX with
    the Chinese names as headers, a sheet of definitions and one saying what the table is."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
        return
    a, kpis = frame.attrs, _columns(frame.attrs["by"])
    headers = {"subject": "编码", "name": "名称"} | {c: kpis[c].zh for c in frame.columns if c in kpis}
    definitions = pd.DataFrame({"列 column": list(kpis), "中文": [k.zh for k in kpis.values()],
                                "English": [k.en for k in kpis.values()],
                                "公式 formula": [k.formula for k in kpis.values()]})
    about = pd.DataFrame({"项 item": ["period", "by", "start", "end", "cut-off", "complete", "scoring"],
                          "值 value": [a["period"], a["by"], str(a["start"]), str(a["end"]), str(a["cutoff"]),
                                       str(a["complete"]), str(a["scoring"])]})
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.rename(columns=headers).to_excel(writer, sheet_name="KPI", index=False)
        definitions.to_excel(writer, sheet_name="定义 definitions", index=False)
        about.to_excel(writer, sheet_name="说明 about", index=False)
