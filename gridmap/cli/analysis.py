"""Analysis commands: hot spots 热点网格 per unit grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gridmap.cli.common import console, fail, transaction
from gridmap.io.exceptions import ExportFailed

analysis_app = typer.Typer()


@analysis_app.command("hotspots")
def hotspots_command(
    period: Annotated[str, typer.Option(help="2026-10-05, 2026-W41, 2026-10, 2026-Q4, 2026 or 2026-10-01..2026-10-15")],
    class_code: Annotated[str | None, typer.Option("--class", help="only these classes (20102, 10118 …), "
                                                                   "comma-separated")] = None,
    case_type: Annotated[str | None, typer.Option(help="event or component")] = None,
    district: Annotated[str | None, typer.Option(help="district code or name (the study area; default the city)")] = None,
    every: Annotated[str | None, typer.Option(help="sub-periods of recurrence: hour, day, week or month")] = None,
    k: Annotated[int, typer.Option(help="cases a grid needs in a sub-period for it to count as active")] = 1,
    share: Annotated[float, typer.Option(help="share of active sub-periods that makes a grid recurring")] = 0.5,
    value: Annotated[str, typer.Option(help="Gi* on 'count' or 'density' (cases per km²)")] = "count",
    top: Annotated[int, typer.Option(help="grids to print")] = 10,
    out: Annotated[Path | None, typer.Option(help="write every grid to this file (.gpkg, .geojson, .shp, .fgb, "
                                                  ".parquet, .csv)")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of --out (default EPSG:4326)")] = None,
) -> None:
    """Hot spots per unit grid: cases, density, recurring problem grids and Getis-Ord Gi*."""
    from gridmap.evaluation.hotspots import hotspots
    from gridmap.io.files import check_format, write_frame
    from gridmap.territory.service import attributions

    try:
        if out:
            check_format(out)
        with transaction() as session, console.status("hot spots …"):
            grids = hotspots(session=session, period=period, class_code=class_code, case_type=case_type,
                             district=district, every=every, k=k, recurring_share=share, value=value, crs=crs)
            credit = " | ".join(attributions(session=session))
        written = write_frame(grids, out, layer="hotspots", credit=credit) if out else None
    except ExportFailed as error:
        raise fail(str(error)) from None
    info = grids.attrs
    significant = ", ".join(f"{label} {n:,}" for label, n in _bins(grids)) or "no significant hot or cold spots"
    console.print(f"{info['period']}: {info['cases']:,} cases in {len(grids):,} unit grids; "
                  f"{len(info['subperiods'])} sub-periods; {int(grids['recurring'].sum()):,} recurring problem grids; "
                  + (significant if info["cases"] else "no cases, so no Gi*"), highlight=False, soft_wrap=True)
    if info["cases_outside"]:
        console.print(f"[yellow]note:[/] {info['cases_outside']:,} cases are in no current unit grid (retired grids)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"top {min(top, len(grids))} grids by Gi*")
    table.add_column("unit grid", no_wrap=True)
    for heading in ("cases", "per km²", "active", "recurs", "Gi* z", "p"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("spot", no_wrap=True)
    for row in grids.head(top).itertuples():
        table.add_row(row.code, f"{row.cases:,}", f"{row.density_km2:,.0f}",
                      f"{row.active_periods}/{len(info['subperiods'])}", "yes" if row.recurring else "",
                      f"{row.gi_z:.2f}", f"{row.gi_p:.1g}", row.hotspot.replace(" spot", "").replace("not significant", "-"))
    console.print(table)
    if written:
        console.print(f"{written.rows:,} grids → {out} ({written.crs})", highlight=False)
        for note in written.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


def _bins(grids) -> list[tuple[str, int]]:
    counts = grids["hotspot"].value_counts()
    order = grids.drop_duplicates("gi_bin").sort_values("gi_bin", ascending=False)["hotspot"]
    return [(label, int(counts[label])) for label in order if label != "not significant"]
