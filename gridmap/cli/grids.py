"""``gridmap grids``: generate, check and group the unit grids."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.common import console, fail, print_report, transaction
from gridmap.io.exceptions import ImportRejected

grids_app = typer.Typer(help="Unit grids 单元网格 and duty grids 责任网格.", no_args_is_help=True)
duty_app = typer.Typer(help="Duty grids 责任网格: groups of unit grids patrolled by inspectors.", no_args_is_help=True)
grids_app.add_typer(duty_app, name="duty")

District = Annotated[str | None, typer.Option(help="6-digit district code (default: the whole city)")]
Community = Annotated[str | None, typer.Option(help="12-digit community code")]


@grids_app.command("generate")
def generate(
    district: District = None,
    community: Community = None,
    target: Annotated[float, typer.Option(help="target cell area in m²")] = 10_000,
    barriers: Annotated[Path | None, typer.Option(help="file of extra lines cells must follow (rivers, rail, walls)")] = None,
    as_of: Annotated[str | None, typer.Option(help="date the new version starts, YYYY-MM-DD (default today)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the cells to this file (.gpkg, .geojson …)")] = None,
) -> None:
    """Generate unit grids that follow the streets, keeping the codes of unchanged cells."""
    import geopandas as gpd

    from gridmap.crs import metric_crs
    from gridmap.territory.generate import GridOptions
    from gridmap.territory.grids import ScopeNotFound, generate_unit_grids

    try:
        lines = gpd.read_file(barriers).geometry if barriers else None
        start = date.fromisoformat(as_of) if as_of else None
    except (OSError, ValueError) as error:
        raise fail(f"{barriers or as_of}: {error}") from None
    try:
        with transaction() as session, console.status("generating unit grids …"):
            result = generate_unit_grids(session=session, district=district, community=community,
                                         options=GridOptions(target_area=target), barriers=lines, as_of=start)
            distribution = result.area_distribution(metric_crs(session=session))
    except ScopeNotFound as error:
        raise fail(str(error)) from None
    console.print(f"unit grids: {result.kept:,} kept, {result.created:,} new, {result.retired:,} retired")
    table = Table("cells", "min m²", "p5", "median", "mean", "p95", "max", title="cell areas")
    table.add_row(*(f"{value:,.0f}" for value in distribution.values()))
    console.print(table)
    if result.enlarged:
        console.print(f"{len(result.enlarged)} communities too large for 999 cells of {target:,.0f} m² got "
                      f"larger cells: " + ", ".join(f"{c} {t:,.0f} m²" for c, t in list(result.enlarged.items())[:5]))
    if out:
        result.cells.to_file(out)
        console.print(f"cells written to {out}")


@grids_app.command("check")
def check(
    district: District = None,
    community: Community = None,
    report: Annotated[Path | None, typer.Option("--json", help="write the full report as JSON")] = None,
) -> None:
    """Check the unit grids: gaps, overlaps, boundary crossings, validity, codes, areas, roads on edges."""
    from gridmap.territory.checks import check_unit_grids
    from gridmap.territory.grids import ScopeNotFound

    try:
        with transaction() as session, console.status("checking unit grids …"):
            result = check_unit_grids(session=session, district=district, community=community)
    except ScopeNotFound as error:
        raise fail(str(error)) from None
    table = Table(show_header=False, title="unit grid check", title_justify="left")
    for label, value in result.totals().items():
        table.add_row(label, f"{value:,.1f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
    if result.areas:
        console.print("cell area m²: " + ", ".join(f"{k} {v:,.0f}" for k, v in result.areas.items() if k != "count"))
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    violations = result.hard_violations
    for where, problems in list(violations.items())[:50]:
        for problem in problems:
            console.print(f"[red]✗[/] {where}: {problem}", highlight=False, soft_wrap=True)
    if violations:
        raise fail(f"{len(violations)} communities break a hard rule")
    console.print("[green]✓[/] no hard rule broken")


@duty_app.command("generate")
def duty_generate(
    district: District = None,
    community: Community = None,
    size: Annotated[float, typer.Option(help="unit grids per duty grid, on average")] = 15,
    balance: Annotated[str, typer.Option(help="road_length, components or cells")] = "road_length",
) -> None:
    """Group the unit grids into duty grids (balanced, adjacent); duty grid codes are kept."""
    from gridmap.territory.duty import generate_duty_grids

    try:
        with transaction() as session:
            membership = generate_duty_grids(session=session, district=district, community=community,
                                             size=size, balance=balance)
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(f"{membership['duty_grid_code'].nunique():,} duty grids over {len(membership):,} unit grids")


@duty_app.command("import")
def duty_import(
    file: Annotated[Path, typer.Argument(help="table with unit_grid_code, duty_grid_code[, duty_grid_name, inspectors]")],
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
) -> None:
    """Import or edit duty grids: which unit grids each holds and which inspectors patrol it."""
    from gridmap.io.exceptions import ImportFailed
    from gridmap.territory.duty import import_duty_grids

    try:
        with transaction() as session:
            result = import_duty_grids(session=session, path=file, strict=strict)
    except ImportRejected as error:
        print_report(error.report)
        raise fail(str(error)) from None
    except (ImportFailed, ValueError) as error:
        raise fail(str(error)) from None
    print_report(result)
