"""Load a demo city from its manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from gridmap.calendar.service import load_calendar
from gridmap.catalogue.service import load_catalogue
from gridmap.io.importer import import_layer
from gridmap.io.report import ImportReport
from gridmap.territory.duty import generate_duty_grids
from gridmap.territory.generate import GridOptions
from gridmap.territory.grids import generate_unit_grids
from gridmap.territory.service import set_city, territory_is_empty, upsert_sources

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "data" / "taipei" / "demo.yaml"


def demo_steps(manifest: Path = DEFAULT_MANIFEST) -> list[dict]:
    """Return the import steps of the manifest (layer, file, source)."""
    return yaml.safe_load(Path(manifest).read_text(encoding="utf-8"))["steps"]


def step_count(manifest: Path = DEFAULT_MANIFEST) -> int:
    """Number of progress steps :func:`load_demo` reports (for a progress bar)."""
    spec = yaml.safe_load(Path(manifest).read_text(encoding="utf-8"))
    return len(spec["steps"]) + 2 + (2 if "grids" in spec else 0)


def load_demo(
    *,
    session: Session,
    manifest: Path = DEFAULT_MANIFEST,
    if_empty: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> list[ImportReport]:
    """Load the catalogue, calendar, city record and every import step of ``manifest``.

    Re-running it is an upsert: the second run changes nothing. With ``if_empty`` it does nothing when
    the territory already has districts. Returns one report per import.
    """
    if if_empty and not territory_is_empty(session=session):
        return []
    manifest = Path(manifest).resolve()
    spec = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    folder = manifest.parent
    step = on_step or (lambda _label: None)
    step("catalogue")
    reports = load_catalogue(session=session, folder=(folder / spec["catalogue"]).resolve())
    step("calendar")
    load_calendar(session=session, path=folder / spec["calendar"])
    set_city(session=session, **spec["city"])
    upsert_sources(session=session, sources=spec["sources"])
    for item in spec["steps"]:
        step(f"{item['layer']} ← {item['file']}")
        reports.append(
            import_layer(session=session, layer=item["layer"], data=folder / item["file"], source=item.get("source"))
        )
    if "grids" in spec:
        grids = spec["grids"]
        step("unit grids")
        generate_unit_grids(session=session, options=GridOptions(target_area=grids["target_area"]))
        step("duty grids")
        generate_duty_grids(session=session, size=grids["duty_size"], balance=grids["duty_balance"])
    return reports
