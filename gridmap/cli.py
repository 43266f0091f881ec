"""The ``gridmap`` command: thin commands over the library's services.

Each command opens one transaction: it commits when the command succeeds and rolls back when it fails,
so a failed import leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from gridmap.config import Settings, load_settings
from gridmap.db.cluster import Cluster, ClusterError, ensure_database
from gridmap.db.engine import database_url, make_engine, make_session_factory
from gridmap.io.exceptions import ExportFailed, ImportFailed, ImportRejected
from gridmap.io.report import ImportReport

app = typer.Typer(help="gridmap: grid management and field inspection (数字城管).", no_args_is_help=True)
db_app = typer.Typer(help="The database: the embedded PostGIS cluster or GRIDMAP_DATABASE_URL.", no_args_is_help=True)
demo_app = typer.Typer(help="The Taipei demo city.", no_args_is_help=True)
catalogue_app = typer.Typer(help="The national catalogue of component and event classes.", no_args_is_help=True)
calendar_app = typer.Typer(help="Working calendars.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(calendar_app, name="calendar")

console = Console()
err = Console(stderr=True)
REJECTS_SHOWN = 30


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _cluster(settings: Settings) -> Cluster:
    return Cluster(settings.database.home, settings.database.cluster_account)


@contextmanager
def transaction() -> Iterator[Session]:
    """One session and transaction for a command: commit on success, roll back on any failure."""
    settings = load_settings()
    try:
        engine = make_engine(database_url(settings.database))
    except ClusterError as error:
        raise fail(str(error)) from None
    session = make_session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


# -- db ---------------------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Create (once) and start the embedded PostGIS cluster under .gridmap/."""
    settings = load_settings()
    try:
        if settings.database.database_url:
            ensure_database(settings.database.database_url)
            console.print("GRIDMAP_DATABASE_URL is set: using that PostGIS, no embedded cluster started.")
            return
        cluster = _cluster(settings)
        with console.status("starting the embedded PostGIS cluster …"):
            cluster.up()
        console.print(f"embedded PostGIS running on 127.0.0.1:{cluster.state()['port']} ({cluster.home})")
    except ClusterError as error:
        raise fail(str(error)) from None


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (its data stays in .gridmap/)."""
    settings = load_settings()
    if settings.database.database_url:
        console.print("GRIDMAP_DATABASE_URL is set: there is no embedded cluster to stop.")
        return
    try:
        _cluster(settings).stop()
    except ClusterError as error:
        raise fail(str(error)) from None
    console.print("embedded PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs, its schema revision and what it holds."""
    from gridmap.db.migrate import current
    from gridmap.territory.service import layer_counts

    settings = load_settings()
    if not settings.database.database_url:
        try:
            state = _cluster(settings).status()
        except ClusterError as error:
            raise fail(str(error)) from None
        console.print(f"embedded cluster at {settings.database.home}: {state}")
        if state != "running":
            raise typer.Exit(1)
    url = database_url(settings.database)
    console.print(f"schema revision: {current(url) or 'none (run gridmap db migrate)'}")
    if current(url):
        with transaction() as session:
            for layer, count in layer_counts(session=session).items():
                console.print(f"  {layer:<12} {count:>8,}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema up to date (Alembic)."""
    from gridmap.db.migrate import upgrade

    try:
        url = database_url(load_settings().database)
    except ClusterError as error:
        raise fail(str(error)) from None
    upgrade(url)
    console.print("schema up to date")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use."""
    try:
        typer.echo(database_url(load_settings().database))
    except ClusterError as error:
        raise fail(str(error)) from None


# -- import / export -------------------------------------------------------------------------------
def shown(path: str) -> str:
    """Return ``path`` relative to the working directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def print_report(report: ImportReport, *, file: Path | None = None) -> None:
    console.print(f"[bold]import {report.layer}[/] ← {shown(report.file)}", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in report.summary().items():
        table.add_row(label, f"{value:,}")
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    lines = report.lines()
    for line in lines[:REJECTS_SHOWN]:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if len(lines) > REJECTS_SHOWN:
        console.print(f"  … and {len(lines) - REJECTS_SHOWN} more (--rejects FILE lists them all)")
    if file:
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def print_summary(reports: list[ImportReport]) -> None:
    """One line per import: what went in and what did not."""
    table = Table("layer", "file", *(label for label in reports[0].summary()), title="imports")
    for report in reports:
        table.add_row(report.layer, Path(report.file).name, *(f"{v:,}" for v in report.summary().values()))
    console.print(table)


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


@app.command("import")
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


@app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help="district, street, community, unit_grid, duty_grid, road, component, department")],
    file: Annotated[Path, typer.Argument(help=".gpkg, .geojson, .shp, .fgb, .parquet or .csv")],
    crs: Annotated[str | None, typer.Option(help="output CRS (default EPSG:4326)")] = None,
) -> None:
    """Export LAYER to FILE."""
    from gridmap.io.export import export_layer

    try:
        with transaction() as session:
            count = export_layer(session=session, name=layer, path=file, crs=crs)
    except ExportFailed as error:
        raise fail(str(error)) from None
    console.print(f"{count:,} {layer} rows → {file}")


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
    from gridmap.demo.service import demo_steps, load_demo

    total = len(demo_steps()) + 2
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
    console.print("rows not imported are listed by `gridmap import LAYER FILE` on the file concerned; "
                  "see data/taipei/README.md for why some are outside the territory", soft_wrap=True)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
) -> None:
    """Serve the API (OpenAPI page at /docs)."""
    import uvicorn

    settings = load_settings()
    host, port = host or settings.api.host, port or settings.api.port
    console.print(f"gridmap at http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    # The app lives in api/, outside the library: uvicorn imports it by name.
    uvicorn.run("api.main:app_from_environment", factory=True, host=host, port=port)


if __name__ == "__main__":
    app()
