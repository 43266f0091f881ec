"""``gridmap bulletin``: the monthly bulletin 月通报 as one self-contained HTML file, and a PDF when Chromium
is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.cli.common import console, err, fail, shown, transaction


def bulletin_command(
    month: Annotated[str, typer.Option(help="the month, YYYY-MM (e.g. 2026-10)")],
    out: Annotated[Path, typer.Option(help="folder for bulletin-YYYY-MM.html (and .pdf)")] = Path("."),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="also print a PDF with headless Chromium")] = True,
    browser: Annotated[str | None, typer.Option(help="Chromium/Chrome executable for the PDF (default: "
                                                     "chromium, google-chrome … on PATH)")] = None,
) -> None:
    """Write the monthly bulletin 月通报: headline figures, rankings, trends, overdue cases, hot spots, a map."""
    from gridmap.evaluation.bulletin import BulletinError, write_bulletin
    from gridmap.evaluation.bulletin_charts import MissingAsset
    from gridmap.evaluation.definitions import EvaluationError

    try:
        with transaction() as session, console.status(f"making the bulletin of {month} …"):
            files = write_bulletin(session=session, month=month, out=out, pdf=pdf, browser=browser)
    except (BulletinError, EvaluationError, MissingAsset) as error:
        raise fail(str(error)) from None
    except ImportError as error:
        raise fail(f"{error}: the bulletin needs folium, jinja2 and matplotlib (`make setup` installs them)") from None
    console.print(f"bulletin written to {shown(str(files.html))} ({files.html_bytes / 2**20:.1f} MB, "
                  f"{files.seconds:.1f} s)", highlight=False)
    if files.pdf:
        console.print(f"PDF written to {shown(str(files.pdf))}", highlight=False)
    elif pdf:
        err.print(f"[yellow]warning:[/] {files.pdf_note}", highlight=False)
