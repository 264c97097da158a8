"""Every proof script runs, prints its steps and exits 0; a broken derivation exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from linfa.symbolic.derivations import ALL

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "proofs").glob("*.py"))


def test_one_script_per_derivation() -> None:
    assert {p.stem for p in SCRIPTS} == set(ALL)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_proof_script_verifies(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.rstrip().endswith("VERIFIED")
    d = ALL[script.stem]()
    for s in d.steps:  # every step is printed with its verdict
        assert f"[{s.name}]" in out.stdout and f"[ok  ] {s.name}:" in out.stdout


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
