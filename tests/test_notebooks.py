"""The analysts' notebooks run from top to bottom against the demo history, so they never rot; they are
stored without outputs."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SECONDS_EACH = 60  # a cell that hangs fails the test; each notebook takes well under this in full


def test_the_three_notebooks_are_there_without_outputs():
    assert [path.name for path in NOTEBOOKS] == ["01_city_overview.ipynb", "02_hot_spots.ipynb",
                                                 "03_department_performance.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        assert sum(cell.cell_type == "markdown" for cell in notebook.cells) >= 4, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_runs_against_the_demo_history(path, history_url, monkeypatch):
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", history_url)  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=SECONDS_EACH,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name}: {error}")
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type in ("execute_result", "display_data") for o in outputs)
    assert time.perf_counter() - started < SECONDS_EACH
