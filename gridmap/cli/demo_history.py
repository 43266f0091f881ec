"""``gridmap demo history``: the demo city's case history (the 1999 hotline replay and inspector cases)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridmap.cli.common import console, fail, transaction

PROBLEMS_SHOWN = 20


def demo_history_command(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing when the database has cases already")]
    = False,
    seed: Annotated[int | None, typer.Option(help="random seed: the same seed gives the same history "
                                                     "(default 20261121)")] = None,
    inspector_cases: Annotated[int | None, typer.Option(
        min=0, help="how many inspector reports to generate (1 Aug – 20 Nov 2026) besides the 2,817 hotline calls "
                    "(default 1,000)")] = None,
) -> None:
    """Load the demo case history: 1999 hotline calls replayed in October 2026 and inspector cases, Aug–Nov 2026."""
    from gridmap.calendar.service import CalendarError
    from gridmap.config import load_settings
    from gridmap.demo.history import DEFAULT_INSPECTOR_CASES, TODAY, HistoryError, load_history
    from gridmap.demo.history_plan import DEFAULT_SEED

    cases = load_settings().cases
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    try:
        with progress, transaction() as session:
            task = progress.add_task("playing the case history", total=None)
            report = load_history(
                session=session, photo_dir=cases.photo_dir, photo_max_bytes=cases.photo_max_bytes,
                seed=DEFAULT_SEED if seed is None else seed, if_empty=if_empty,
                inspector_cases=DEFAULT_INSPECTOR_CASES if inspector_cases is None else inspector_cases,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    except (HistoryError, CalendarError) as error:
        raise fail(str(error)) from None
    if report.skipped:
        console.print("the database has cases already: the demo history was not loaded")
        return
    table = Table("cases", "", title=f"demo history (seed {report.seed}; \"today\" is {TODAY})")
    for source, count in sorted(report.cases.items()):
        table.add_row(f"source {source}", f"{count:,}")
    for status, count in sorted(report.statuses.items(), key=lambda item: -item[1]):
        table.add_row(f"now {status}", f"{count:,}")
    table.add_row("events", f"{report.events:,}")
    console.print(table)
    console.print(f"loaded in {report.seconds:,.0f} s")
    for problem in report.problems[:PROBLEMS_SHOWN]:
        console.print(f"[yellow]skipped:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    if len(report.problems) > PROBLEMS_SHOWN:
        console.print(f"… and {len(report.problems) - PROBLEMS_SHOWN} more")
