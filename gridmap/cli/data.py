"""Data commands: import, export, the catalogue, calendars and the demo city."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gridmap.cli.common import console, fail, print_report, print_summary, transaction
from gridmap.io.exceptions import ExportFailed, ImportFailed, ImportRejected

data_app = typer.Typer()
demo_app = typer.Typer(help="The Taipei demo city.", no_args_is_help=True)
catalogue_app = typer.Typer(help="The national catalogue of component and event classes.", no_args_is_help=True)
calendar_app = typer.Typer(help="Working calendars.", no_args_is_help=True)


def parse_mapping(pairs: list[str], mapping_file: Path | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if mapping_file:
        loaded = yaml.safe_load(mapping_file.read_text(encoding="utf-8")) or {}
        loaded = loaded.get("columns", loaded) if isinstance(loaded, dict) else None
        if not isinstance(loaded, dict):
            raise fail(f"{mapping_file}: expected a mapping 'field: COLUMN' (optionally under 'columns:')")
        mapping.update({str(k): str(v) for k, v in loaded.items()})
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not target or not column:
            raise fail(f"--map {pair!r}: expected FIELD=COLUMN, e.g. --map code=CPTVID")
        mapping[target] = column
    return mapping


@data_app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help="district, street, community, unit_grid, road, component, "
                                              "department, responsibility_rule, component_class, event_class, road_grade")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, FlatGeobuf, GeoParquet or CSV")],
    map_: Annotated[list[str], typer.Option("--map", help="FIELD=COLUMN, repeatable")] = [],  # noqa: B006
    mapping: Annotated[Path | None, typer.Option(help="YAML file of FIELD: COLUMN")] = None,
    crs: Annotated[str | None, typer.Option(help="source CRS, overriding the file's (e.g. EPSG:3826)")] = None,
    source_layer: Annotated[str | None, typer.Option("--layer", help="layer inside a multi-layer file")] = None,
    source: Annotated[str | None, typer.Option(help="data-source code recorded on each row")] = None,
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    x: Annotated[str, typer.Option(help="CSV column of x / longitude")] = "x",
    y: Annotated[str, typer.Option(help="CSV column of y / latitude")] = "y",
    rejects: Annotated[Path | None, typer.Option(help="write every rejected/repaired row to this file")] = None,
) -> None:
    """Import FILE into LAYER: an upsert by code, with a report of every row that did not go in."""
    from gridmap.io.importer import import_layer

    columns = parse_mapping(map_, mapping)
    try:
        with transaction() as session, console.status(f"importing {file} …"):
            report = import_layer(session=session, layer=layer, data=file, mapping=columns, crs=crs,
                                  source_layer=source_layer, source=source, strict=strict, x=x, y=y)
    except ImportRejected as error:
        print_report(error.report, file=rejects)
        raise fail(str(error)) from None
    except ImportFailed as error:
        raise fail(str(error)) from None
    print_report(report, file=rejects)


@data_app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help="district, street, community, unit_grid, duty_grid, road, component, "
                                              "department, cases or case_events")],
    file: Annotated[Path, typer.Argument(help=".gpkg, .geojson, .shp, .fgb, .parquet or .csv")],
    crs: Annotated[str | None, typer.Option(help="output CRS: EPSG:3826, 3826, cgcs2000 … (default EPSG:4326)")] = None,
    district: Annotated[str | None, typer.Option(help="district code or name")] = None,
    bbox: Annotated[str | None, typer.Option(help="xmin,ymin,xmax,ymax in lon/lat (or in --bbox-crs)")] = None,
    bbox_crs: Annotated[str | None, typer.Option(help="CRS of --bbox (default lon/lat)")] = None,
    where: Annotated[str | None, typer.Option(help="SQL condition on the layer's columns, e.g. \"area_class = 'A'\"")] = None,
    period: Annotated[str | None, typer.Option(help="cases: 2026-10-05, 2026-W41, 2026-10, 2026-Q4, 2026 or "
                                                    "2026-10-01..2026-10-15")] = None,
    period_field: Annotated[str | None, typer.Option(help="cases: what falls in --period: reported_at (default), "
                                                          "filed_at, dispatched_at, handled_at, closed_at")] = None,
    status: Annotated[str | None, typer.Option(help="cases: statuses, comma-separated, or 'open'")] = None,
    department: Annotated[str | None, typer.Option(help="cases: department codes, comma-separated")] = None,
    class_code: Annotated[str | None, typer.Option("--class", help="cases: class codes (0102, 20102 …)")] = None,
    case_type: Annotated[str | None, typer.Option(help="cases: event or component")] = None,
    source: Annotated[str | None, typer.Option(help="cases: inspector, hotline, self_disposal, import")] = None,
    with_evidence: Annotated[bool, typer.Option("--with-evidence", help="cases: add the routing evidence JSON (large)")] = False,
) -> None:
    """Export LAYER to FILE (format from the suffix), with filters; the file opens cleanly in QGIS."""
    from gridmap.io.export import CASE_LAYERS, export_layer

    case_filters = dict(period=period, period_field=period_field, status=status, department=department,
                        class_code=class_code, case_type=case_type, source=source)
    case_filters = {k: v for k, v in case_filters.items() if v is not None}
    if layer in CASE_LAYERS:
        case_filters["with_evidence"] = with_evidence
    elif case_filters or with_evidence:
        named = ", ".join("--" + k.replace("_", "-") for k in [*case_filters, *(["with_evidence"] if with_evidence else [])])
        raise fail(f"{named}: only for cases and case_events")
    try:
        with transaction() as session:
            result = export_layer(session=session, name=layer, path=file, crs=crs, district=district, bbox=bbox,
                                  bbox_crs=bbox_crs, where=where, **case_filters)
    except ExportFailed as error:
        raise fail(str(error)) from None
    console.print(f"{result.rows:,} {layer} rows → {file}" + (f" ({result.crs})" if result.crs else ""),
                  highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


# -- catalogue, calendar, demo -----------------------------------------------------------------------
@catalogue_app.command("load")
def catalogue_load(
    folder: Annotated[Path, typer.Argument(help="folder with road_grades.csv, component_classes.csv, event_classes.csv")]
    = Path("data/catalogue"),
) -> None:
    """Load (or update) the catalogue from its CSV files."""
    from gridmap.catalogue.service import load_catalogue

    try:
        with transaction() as session:
            reports = load_catalogue(session=session, folder=folder)
    except ImportRejected as error:
        print_report(error.report)
        raise fail(str(error)) from None
    except ImportFailed as error:
        raise fail(str(error)) from None
    for report in reports:
        print_report(report)


@calendar_app.command("load")
def calendar_load(file: Annotated[Path, typer.Argument(help="calendar YAML (see data/taipei/calendar.yaml)")]) -> None:
    """Create or replace a working calendar."""
    from gridmap.calendar.service import CalendarError, load_calendar

    try:
        with transaction() as session:
            code = load_calendar(session=session, path=file)
    except (CalendarError, OSError) as error:
        raise fail(str(error)) from None
    console.print(f"calendar {code!r} loaded from {file}")


@demo_app.command("load")
def demo_load(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing when the city already has districts")] = False,
) -> None:
    """Load the Taipei demo city (re-running it changes nothing)."""
    from gridmap.demo.service import load_demo, step_count

    total = step_count()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
    with progress, transaction() as session:
        task = progress.add_task("demo city", total=total)

        def on_step(label: str) -> None:
            progress.update(task, advance=1, description=f"loading {label}")

        reports = load_demo(session=session, if_empty=if_empty, on_step=on_step)
    if if_empty and not reports:
        console.print("the demo city is already loaded")
        return
    print_summary(reports)
    from gridmap.territory.service import layer_counts

    with transaction() as session:
        counts = layer_counts(session=session)
    console.print(f"unit grids: {counts['unit_grid']:,} · duty grids: {counts['duty_grid']:,} "
                  "(gridmap grids check verifies them)")
    console.print("rows not imported are listed by `gridmap import LAYER FILE` on the file concerned; "
                  "see data/taipei/README.md for why some are outside the territory", soft_wrap=True)


@data_app.command("assign")
def assign_command(
    source: Annotated[Path, typer.Argument(help="reports: CSV with x, y, class[, case_type, accuracy, component_id], "
                                                "GeoJSON, GPKG or GeoParquet")],
    target: Annotated[Path, typer.Argument(help="where to write the decisions (same formats)")],
    crs: Annotated[str | None, typer.Option(help="coordinates' system: wgs84, gcj02, bd09, cgcs2000 or EPSG:nnnn")] = None,
) -> None:
    """Assign reports in bulk to grid, road, component and department, with evidence."""
    from gridmap.routing.exceptions import BadReport
    from gridmap.routing.service import assign_file

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
    try:
        with progress, transaction() as session:
            progress.add_task(f"assigning {source} …", total=None)
            result = assign_file(session=session, source=source, target=target, crs=crs)
    except (BadReport, OSError) as error:
        raise fail(str(error)) from None
    rejected = int(result["error"].notna().sum())
    console.print(f"{len(result):,} reports → {target}: {int(result['ambiguous'].fillna(False).sum()):,} ambiguous, "
                  f"{rejected:,} rejected (reason in the error column)")
