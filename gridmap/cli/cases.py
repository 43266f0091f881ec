"""Case commands: ``gridmap cases import FILE`` loads historical cases from another system."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridmap.cli.common import console, fail, print_notes_and_rejects, shown, transaction

cases_app = typer.Typer(help="Cases: historical imports from another system.", no_args_is_help=True)


@cases_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="cases: CSV (x/y columns), GeoParquet, GeoPackage, GeoJSON …")],
    origin: Annotated[str | None, typer.Option(help="the system they come from (recognises them on re-import)")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML: columns:, classes:, departments:, statuses: "
                                                      "(see data/examples/)")] = None,
    map_: Annotated[list[str], typer.Option("--map", help="FIELD=COLUMN, repeatable (number, class, opened, "
                                                          "due, closed, department, x, y …)")] = [],  # noqa: B006
    crs: Annotated[str | None, typer.Option(help="the coordinates' system, overriding the file's: EPSG:nnnn, "
                                                 "wgs84, cgcs2000, gcj02, bd09")] = None,
    timezone: Annotated[str | None, typer.Option(help="zone of timestamps without offset (default: the "
                                                      "city's calendar)")] = None,
    time_format: Annotated[str | None, typer.Option(help="strftime format of the timestamps (default ISO 8601)")]
    = None,
    layer: Annotated[str | None, typer.Option(help="layer inside a multi-layer file")] = None,
    keep_local: Annotated[bool, typer.Option(help="keep unmapped categories as local classes instead of "
                                                  "rejecting their rows")] = False,
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    rejects: Annotated[Path | None, typer.Option(help="write every rejected row here (.csv: a table)")] = None,
    rebuild_indexes: Annotated[bool | None, typer.Option(
        "--rebuild-indexes/--keep-indexes", help="rebuild case_file's indexes after writing (locks the table "
        "until the import commits); default: when the import is large for the table", show_default=False)] = None,
) -> None:
    """Import historical cases: mapped, checked row by row, routed, written in one transaction."""
    from gridmap.calendar.service import CalendarError
    from gridmap.cases.imports import CaseImportRejected, import_cases
    from gridmap.cases.imports_mapping import CaseMapping, load_mapping
    from gridmap.cli.data import parse_mapping
    from gridmap.io.exceptions import ImportFailed

    started = time.perf_counter()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    try:
        rules = (load_mapping(mapping) if mapping else CaseMapping()).overridden(
            columns=parse_mapping(map_, None), origin=origin, crs=crs, timezone=timezone, time_format=time_format)
        with progress, transaction() as session:
            task = progress.add_task("reading", total=1.0)
            report = import_cases(session=session, data=file, mapping=rules, keep_local=keep_local, strict=strict,
                                  layer=layer, rebuild_indexes=rebuild_indexes,
                                  progress=lambda phase, done: progress.update(task, description=phase,
                                                                               completed=done))
    except CaseImportRejected as error:
        _print(error.report, rejects, time.perf_counter() - started)
        raise fail(str(error)) from None
    except (ImportFailed, CalendarError) as error:
        raise fail(str(error)) from None
    _print(report, rejects, time.perf_counter() - started)


def _print(report, rejects: Path | None, seconds: float) -> None:
    console.print(f"[bold]cases import[/] ← {shown(report.file)} (origin {report.origin})", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in report.summary().items():
        table.add_row(label, f"{value:,}")
    console.print(table)
    if report.rejected:
        reasons = Table("rejected", "field", "reason", box=None, padding=(0, 2), show_edge=False)
        for field, reason, count in report.by_reason():
            reasons.add_row(f"{count:,}", field, reason)
        console.print(reasons)
    filled = ", ".join(f"{name} {count:,}" for name, count in report.filled.items())
    if filled:
        console.print(f"filled by the routing engine: {filled}", highlight=False)
    print_notes_and_rejects(report.notes, report.lines())
    if rejects:
        try:
            _write_rejects(report, rejects)
        except OSError as error:
            raise fail(f"--rejects {rejects}: cannot write it ({error})") from None
    rate = report.rows_read / seconds if seconds > 0 else 0.0
    console.print(f"{report.rows_read:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s)"
                  + (", indexes rebuilt" if report.indexes_rebuilt else ""), highlight=False)
    phases = " · ".join(f"{phase} {value:.1f} s" for phase, value in report.seconds.items() if phase != "write")
    console.print(f"[dim]{phases}[/]", highlight=False, soft_wrap=True)


def _write_rejects(report, path: Path) -> None:
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["file", "row", "field", "reason", "value"])
            writer.writerows([report.file, i.row, i.field, i.reason, i.value] for i in report.rejected)
    else:
        path.write_text("".join(line + "\n" for line in report.lines()), encoding="utf-8")
