"""Every notebook in notebooks/ runs top to bottom without error (each one asserts its own claims).

The kernel is this interpreter (``sys.executable``): a temporary kernel spec named ``python3`` is put
first on ``JUPYTER_PATH``, so the notebooks' own kernel name resolves to it whatever else is installed.
Figures go to the Agg backend (``MPLBACKEND``), so nothing is rendered into outputs; the kernel runs in a
scratch directory, so nothing is written into the repository.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in)
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Per-cell time limit in seconds (generous: the suite may share the CPU).
CELL_TIMEOUT = 300


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Point the kernel name ``python3`` at this interpreter; return a scratch working directory."""
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (linfa tests)",
        "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(spec_dir.parent.parent))
    mp.setenv("MPLBACKEND", "Agg")
    mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    yield tmp_path_factory.mktemp("cwd")  # hypothesis and friends write caches into the working directory
    mp.undo()


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "00_tour.ipynb",
        "01_lillicrap2016_feedback_alignment.ipynb",
        "02_scellier_bengio_quadratic_energy.ipynb",
        "03_garg_vempala_matrix_factorization.ipynb",
        "04_refinetti_align_then_memorise.ipynb",
        "05_refinetti_shallow_align_then_memorise.ipynb",
        "06_everyday_questions.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: cell {cell.get('id')}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(kernel_env)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error (a failed assert included)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    # the kernel ran this interpreter
    assert Path(nb.cells[-1].outputs[0]["text"].strip()) == Path(sys.executable)
