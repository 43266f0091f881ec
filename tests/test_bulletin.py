"""The monthly bulletin 月通报 on the demo history: written by the command, opened from a file:// URL in the
system Chromium with the network off and every request outside the file refused; the map draws the grids,
the charts and ranking tables are there and their numbers are the KPI function's; the PDF is printed; an
empty month still gives a bulletin that says so; a bad month is refused with a clear message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import create_engine, pool, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.evaluation.bulletin import RANKINGS, ranking_columns
from gridmap.evaluation.service import kpi

MONTH = "2026-10"
EMPTY_MONTH = "2026-03"  # before the demo history starts
runner = CliRunner()


def gridmap(url: str, *args: str):
    return runner.invoke(app, list(args), env={"GRIDMAP_DATABASE_URL": url, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def history_session(history_url: str) -> Iterator[Session]:
    engine = create_engine(history_url, poolclass=pool.NullPool)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture(scope="module")
def bulletin(history_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The October bulletin of the demo history, written by ``gridmap bulletin`` with its PDF."""
    out = tmp_path_factory.mktemp("bulletin")
    result = gridmap(history_url, "bulletin", "--month", MONTH, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "bulletin written to" in result.stdout and "PDF written to" in result.stdout, result.output
    return out / f"bulletin-{MONTH}.html"


def open_offline(chromium: Browser, path: Path) -> tuple[Page, list[str], list[str]]:
    """Open ``path`` from a file:// URL, offline, refusing any request but the file itself; return the page,
    the requests made beyond the file and the browser's errors."""
    url = path.resolve().as_uri()
    context = chromium.new_context(offline=True, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    requests, errors = [], []
    context.on("request", lambda request: request.url != url and requests.append(request.url))
    context.on("weberror", lambda error: errors.append(str(error.error)))
    context.on("console", lambda message: message.type == "error" and errors.append(message.text))
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.goto(url, wait_until="load")
    return page, requests, errors


def table(page: Page, selector: str) -> list[tuple[str, dict[str, str]]]:
    """Rows of a ranking table in order: (subject, {column: shown text}) (a list: a JS object would put
    numeric codes in numeric order)."""
    return page.evaluate("""selector => [...document.querySelectorAll(selector + ' tbody tr')]
        .map(tr => [tr.dataset.subject, Object.fromEntries([...tr.querySelectorAll('td[data-column]')]
            .map(td => [td.dataset.column, td.textContent.trim()])
            .concat([['score', tr.querySelector('.score').textContent.trim()],
                     ['band', tr.querySelector('.band').textContent.trim()],
                     ['rank', tr.cells[0].textContent.trim()]]))])""", selector)


def shown(value, unit: str) -> str:
    """How the bulletin prints a KPI value (the test's own statement of the format)."""
    if value != value:  # NaN
        return "—"
    formats = {"rate": f"{value * 100:.1f}%", "hours": f"{value:.1f}", "score": f"{value:.1f}"}
    return formats.get(unit, f"{int(value):,}")


def test_the_bulletin_opens_offline_with_map_charts_and_the_kpi_numbers(bulletin, chromium, history_session):
    html = bulletin.read_text(encoding="utf-8")
    assert 100_000 < len(html.encode()) < 5 * 2**20  # Leaflet inlined, and small enough to e-mail
    assert not re.search(r"""<(script|link|img)\b[^>]*\b(src|href)=["'](?!data:)""", html)
    page, requests, errors = open_offline(chromium, bulletin)
    try:
        grids = history_session.execute(text(
            "SELECT count(DISTINCT unit_grid) FROM case_file WHERE status NOT IN ('rejected', 'voided', 'merged') "
            "AND reported_at >= "
            "'2026-10-01T00:00+08:00' AND reported_at < '2026-11-01T00:00+08:00'")).scalar_one()
        districts = history_session.execute(text("SELECT count(*) FROM district")).scalar_one()
        assert grids > 100
        # every grid with a case is a polygon on the map, besides the district boundaries
        assert page.locator("#grid-map .leaflet-overlay-pane path").count() == grids + districts
        assert page.locator("#grid-map .gm-legend").is_visible()
        for chart in ("#chart-sources", "#chart-rates", "#chart-classes"):
            assert page.locator(f"{chart} svg").is_visible() and page.locator(f"{chart} svg path").count() > 5
        assert page.locator("#headline .card").count() == 6
        # the city's figures are the KPI's district counts summed, then its formulas
        districts_kpi = kpi(session=history_session, period=MONTH, by="district")
        card = lambda key: page.locator(f'#headline .card[data-key="{key}"] .value').inner_text()  # noqa: E731
        assert card("filed") == f"{districts_kpi['filed'].sum():,}"
        assert card("closure_rate") == shown(districts_kpi["closed"].sum() / districts_kpi["due"].sum(), "rate")
        assert card("on_time_rate") == shown(districts_kpi["closed_on_time"].sum() / districts_kpi["due"].sum(), "rate")
        october = page.locator(f'#trend-table tr[data-month="{MONTH}"] td').all_inner_texts()
        assert october[-2:] == [card("closure_rate"), card("on_time_rate")]
        for by, _, _, limit in RANKINGS:
            expected = kpi(session=history_session, period=MONTH, by=by).sort_values("rank")
            expected = expected.head(limit) if limit else expected
            rows = table(page, f"#ranking-{by}")
            assert [subject for subject, _ in rows] == list(expected["subject"]), by
            for (_, row), record in zip(rows, expected.to_dict("records")):
                for column, _, _, unit in ranking_columns(by, expected):
                    assert row[column] == shown(record[column], unit), (by, record["subject"], column)
                assert (row["score"], row["band"], row["rank"]) == (
                    shown(record["score"], "score"), record["band"], str(record["rank"])), (by, record["subject"])
        assert page.locator("#overdue-table tbody tr").count() > 0
        assert page.locator("#definitions-table tbody tr").count() >= 20
        credits = page.locator("#credits").inner_text()
        assert "OpenStreetMap" in credits and "data.taipei" in credits
    finally:
        page.context.close()
    assert requests == [] and errors == []


def test_the_pdf_is_printed_on_a4_pages(bulletin):
    pdf = bulletin.with_suffix(".pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    sizes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(sizes) > 3 and {(round(float(w)), round(float(h))) for w, h in sizes} == {(595, 842)}  # A4


def test_a_month_without_cases_gives_a_bulletin_that_says_so(history_url, chromium, tmp_path):
    no_browser = tmp_path / "bin"
    no_browser.mkdir()
    result = runner.invoke(app, ["bulletin", "--month", EMPTY_MONTH, "--out", str(tmp_path)],
                           env={"GRIDMAP_DATABASE_URL": history_url, "COLUMNS": "200", "PATH": str(no_browser)})
    assert result.exit_code == 0, result.output
    assert "no PDF: no Chromium or Chrome found" in result.output  # said, not failed: the HTML is complete
    page, requests, errors = open_offline(chromium, tmp_path / f"bulletin-{EMPTY_MONTH}.html")
    assert not (tmp_path / f"bulletin-{EMPTY_MONTH}.pdf").exists()
    try:
        assert "本月无案件" in page.locator("#empty").inner_text()
        assert page.locator("table.ranking").count() == 0 and page.locator("#overdue-total").inner_text() == "0"
        assert page.locator("#grid-map .leaflet-overlay-pane path").count() > 0  # the districts, for orientation
        assert page.locator("#chart-sources svg").is_visible()
    finally:
        page.context.close()
    assert requests == [] and errors == []


@pytest.mark.parametrize(("month", "message"), [("2026-13", "2026-13"), ("October", "YYYY-MM"),
                                                ("2026-W41", "not a month"), ("2026-10-05", "not a month")])
def test_a_bad_month_is_refused_with_a_clear_message(history_url, tmp_path, month, message):
    result = gridmap(history_url, "bulletin", "--month", month, "--out", str(tmp_path))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_refused_with_a_clear_message(history_url, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = gridmap(history_url, "bulletin", "--month", EMPTY_MONTH, "--out", str(blocker / "out"), "--no-pdf")
    assert result.exit_code == 1 and "cannot write the bulletin there" in result.output
    assert "Traceback" not in result.output
