"""Every proof script runs, prints its steps and exits 0; a broken derivation exits non-zero.

Scripts are executed in-process with ``runpy`` (as ``__main__``, exactly as
``python proofs/<name>.py`` would run them, minus the interpreter start-up);
one script and one broken proof also run as real subprocesses.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from linfa.symbolic.derivations import ALL

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "proofs").glob("*.py"))


def _run(script: Path) -> int:
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0)
    raise AssertionError(f"{script.name} did not exit with a status")


def test_one_script_per_derivation() -> None:
    assert {p.stem for p in SCRIPTS} == set(ALL)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_proof_script_verifies(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(script)
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert out.rstrip().endswith("VERIFIED")
    d = ALL[script.stem]()
    for s in d.steps:  # every step is printed, with its reason and its verdict
        assert f"[{s.name}]" in out and f"[ok  ] {s.name}:" in out
    for c in d.counterexamples:
        assert f"without {c.hypothesis}" in out


def test_a_proof_script_runs_as_a_program() -> None:
    script = ROOT / "proofs" / "kolen_pollack_decay.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.rstrip().endswith("VERIFIED")


def test_a_failing_proof_exits_nonzero(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(
        "import sys, sympy as sp\n"
        "from linfa.symbolic.derivations import fa_conservation\n"
        "d = fa_conservation()\n"
        "s = d.step('conserved')\n"
        "d = d.replace('conserved', rhs=s.rhs + sp.MatrixSymbol('X', *s.rhs.shape))\n"
        "sys.exit(d.run())\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1
    assert "[FAIL] conserved" in out.stdout and out.stdout.rstrip().endswith("FAILED")
