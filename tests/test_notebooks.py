"""Every notebook runs top to bottom on CPU without an error, under the small budget."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# Notebooks read this variable: "small" keeps each one to seconds on a CPU; unset or "full"
# gives their nicer figures.
BUDGET_VARIABLE = "LEAKAGE_NOTEBOOK_BUDGET"


def _execute(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Run ``notebook`` in a fresh kernel, which inherits this process's environment."""
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path)}}).execute()


def test_there_are_notebooks_to_run() -> None:
    assert NOTEBOOKS


def test_the_kernel_inherits_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUDGET_VARIABLE, "small")
    notebook = new_notebook(cells=[new_code_cell(f"import os\nprint(os.environ.get({BUDGET_VARIABLE!r}))")])

    _execute(notebook, tmp_path)

    assert notebook.cells[0].outputs[0]["text"].strip() == "small"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit notebooks with outputs stripped"
    )
    monkeypatch.setenv(BUDGET_VARIABLE, "small")

    _execute(notebook, tmp_path)

    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
