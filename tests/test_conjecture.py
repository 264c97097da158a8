"""The conjecture helper finds, shrinks, saves and replays counterexamples."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from linfa.testing import Instance, conjecture, instances, replay
from linfa.testing.conjectures import zero_init_alignment, zero_init_instances


@pytest.fixture(scope="module")
def false_conjecture(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("cex")
    return conjecture(zero_init_alignment, strategy=zero_init_instances(), t1=2.0, seed=0, max_examples=200,
                      outdir=out)


def test_general_feedback_counterexample_is_found_and_shrunk(false_conjecture) -> None:  # type: ignore[no-untyped-def]
    res = false_conjecture
    assert not res.holds and res.counterexample is not None
    inst = res.counterexample
    n0, nh, nout = inst.widths
    # shrunk to the smallest dimensions: a single output always aligns (W^T ∝ B), so n_out = 2 is minimal
    assert nout == 2 and n0 == 1 and nh == 1
    # simplest values: small integers, mostly zero
    for key in ("syx", "B2"):
        a = inst.arrays[key]
        np.testing.assert_array_equal(a, np.round(a))
        assert np.abs(a).max() <= 1
    # independently confirm: integrate, then exhibit an explicit e with e^T W B e < 0
    from linfa.dynamics import solve

    rule, task, state = inst.problem()
    sol = solve(rule, task, state, 2.0, saveat=np.linspace(0, 2.0, 9), rtol=1e-10, atol=1e-12)
    b = inst.arrays["B2"]
    worst = np.inf
    for w in sol.states[1]:
        _lam, vec = np.linalg.eigh(0.5 * (w @ b + (w @ b).T))
        e = vec[:, 0]
        worst = min(worst, float(e @ w @ b @ e))
    assert worst < -1e-3
    # B is not a multiple of an orthogonal matrix, as the theorem requires
    g = b.T @ b
    assert not np.allclose(g, g[0, 0] * np.eye(g.shape[0]))


def test_counterexample_replays_from_file(false_conjecture) -> None:  # type: ignore[no-untyped-def]
    res = false_conjecture
    assert res.path is not None and res.path.endswith(".npz")
    ref = "linfa.testing.conjectures:zero_init_alignment"
    assert res.command == f"linfa replay {res.path} --predicate {ref}"
    loaded = Instance.load(res.path)
    assert loaded.params["predicate"] == ref
    again = replay(res.path, predicate=ref)
    assert not again.holds and again.margin == pytest.approx(res.outcome.margin, rel=1e-9)
    proc = subprocess.run([sys.executable, "-m", "linfa", "replay", res.path, "--predicate", ref],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "FAILS" in proc.stdout
    assert "zero_init_alignment" in str(res) and res.path in str(res)


def test_orthogonal_feedback_conjecture_holds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = conjecture(zero_init_alignment, strategy=zero_init_instances(orthogonal=True), t1=2.0, max_examples=25,
                     outdir=tmp_path)
    assert res.holds and res.counterexample is None and res.examples >= 25
    assert not list(tmp_path.iterdir())


def test_state_predicate_and_local_function(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a false claim about states alone: "the first-layer feedback entry is non-negative"
    def positive_feedback(inst: Instance) -> float:
        return float(inst.arrays["B2"].min())

    res = conjecture(positive_feedback, strategy=instances(rule="FA", widths=(1, 1, 1), feedback_kind="integers"),
                     outdir=tmp_path, max_examples=50)
    assert not res.holds and res.counterexample is not None
    assert res.counterexample.arrays["B2"].item() == -1.0  # shrunk to the simplest negative integer
    assert res.command is not None and "--predicate" in res.command  # not importable: says so
    # same seed, same search, same counterexample
    again = conjecture(positive_feedback, strategy=instances(rule="FA", widths=(1, 1, 1), feedback_kind="integers"),
                       outdir=tmp_path, max_examples=50)
    assert again.examples == res.examples
    for k, a in res.counterexample.arrays.items():
        np.testing.assert_array_equal(again.counterexample.arrays[k], a)  # type: ignore[union-attr]


def test_conjecture_validates_arguments() -> None:
    with pytest.raises(TypeError, match="strategy"):
        conjecture(zero_init_alignment, strategy=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t1"):
        conjecture(zero_init_alignment, strategy=zero_init_instances(), t1=-1.0)
    with pytest.raises(TypeError, match="bool or a float"):
        conjecture(lambda inst: "yes", strategy=instances(rule="BP", widths=(1, 1)), max_examples=2)
