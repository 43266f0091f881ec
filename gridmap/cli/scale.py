"""``gridmap scale``: batch assignment and KPIs over partitioned GeoParquet on dask (``gridmap[scale]``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gridmap.cli.common import console, fail, transaction
from gridmap.cli.evaluation import ByOption, OutOption, PeriodOption, ScoringOption

scale_app = typer.Typer(help="The distributed path on dask: batch assignment and KPIs over partitioned GeoParquet "
                             "(pip install 'gridmap\\[scale]').", no_args_is_help=True)

Scheduler = Annotated[str | None, typer.Option(help="address of a running dask scheduler (tcp://host:8786); "
                                                    "default: a local cluster of 2 worker processes")]


@contextmanager
def dask_client(scheduler: str | None) -> Iterator:
    """The cluster for one command, with a message instead of a traceback when dask is missing or unreachable."""
    from gridmap.scale.cluster import connect

    try:
        with connect(scheduler) as client:
            yield client
    except (ImportError, ConnectionError) as error:
        raise fail(escape(str(error))) from None


@scale_app.command("assign")
def assign_command(
    source: Annotated[Path, typer.Argument(help="folder of GeoParquet files of points: class[, case_type, accuracy, "
                                                "component_id]")],
    target: Annotated[Path, typer.Argument(help="new folder for the decisions, one GeoParquet file per partition")],
    crs: Annotated[str | None, typer.Option(help="coordinates' system if not the files' own: wgs84, gcj02, bd09, "
                                                 "cgcs2000 or EPSG:nnnn")] = None,
    scheduler: Scheduler = None,
) -> None:
    """Assign reports in bulk on a dask cluster: the columns of `gridmap assign`, partition by partition."""
    from gridmap.routing.exceptions import BadReport
    from gridmap.scale.assign import assign_partitioned
    from gridmap.scale.parquet import NotPartitioned

    try:
        with dask_client(scheduler) as client, transaction() as session, \
                console.status(f"assigning {source} on {len(client.scheduler_info()['workers'])} workers …"):
            summary = assign_partitioned(session=session, client=client, source=source, target=target, crs=crs)
    except (BadReport, NotPartitioned, OSError) as error:
        raise fail(escape(str(error))) from None
    console.print(f"{summary.reports:,} reports in {summary.partitions} partitions → {target}: "
                  f"{summary.ambiguous:,} ambiguous, {summary.rejected:,} rejected (reason in the error column)")


@scale_app.command("export-facts")
def export_facts_command(
    directory: Annotated[Path, typer.Argument(help="folder to write: cases/month=YYYY-MM/…, events/month=…, "
                                                   "facts.json")],
    period: Annotated[str | None, typer.Option(help="only the months this period touches (2026-10, 2026-Q4, "
                                                    "2026 …); default: every month with cases")] = None,
) -> None:
    """Write the KPI facts (cases by cohort, actions) as GeoParquet partitioned by month, for `gridmap scale kpi`."""
    from gridmap.calendar.service import CalendarError
    from gridmap.evaluation.definitions import EvaluationError
    from gridmap.scale.kpi import export_facts

    try:
        with transaction() as session, console.status(f"exporting KPI facts to {directory} …"):
            export = export_facts(session=session, directory=directory, period=period)
    except (EvaluationError, CalendarError, OSError, ImportError) as error:
        raise fail(escape(str(error))) from None
    span = f"{export.months[0]} to {export.months[-1]}" if export.months else "no months (no cases yet)"
    console.print(f"{export.rows['cases']:,} case rows and {export.rows['events']:,} actions, {span} "
                  f"→ {directory}", highlight=False)


@scale_app.command("kpi")
def kpi_command(
    directory: Annotated[Path, typer.Argument(help="an export of `gridmap scale export-facts`")],
    period: PeriodOption,
    by: ByOption = "department",
    scoring: ScoringOption = None,
    out: OutOption = None,
    as_of: Annotated[str | None, typer.Option(help="cut-off of a running period, ISO 8601 with offset "
                                                   "(default: the export's moment)")] = None,
    scheduler: Scheduler = None,
) -> None:
    """KPIs counted on dask from exported facts: the table of `gridmap kpi`, the same numbers."""
    from gridmap.calendar.service import CalendarError
    from gridmap.cli.evaluation import OUT_FORMATS, as_of_moment, print_kpi_table, write_table
    from gridmap.evaluation.definitions import EvaluationError
    from gridmap.scale.kpi import kpi_partitioned, read_manifest

    if out is not None and out.suffix.lower() not in OUT_FORMATS:
        raise fail(f"--out {out}: write a .csv or .xlsx file")
    now = as_of_moment(as_of)
    try:
        read_manifest(directory)  # before starting a cluster for nothing
        with dask_client(scheduler), transaction() as session, console.status("counting on dask …"):
            frame = kpi_partitioned(session=session, directory=directory, period=period, by=by, now=now,
                                    scoring=scoring)
    except (EvaluationError, CalendarError, OSError) as error:
        raise fail(escape(str(error))) from None
    print_kpi_table(frame)
    if out is not None:
        write_table(frame, out)
        console.print(f"written to {out}", highlight=False)
