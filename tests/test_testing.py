"""linfa.testing strategies and Instance: shapes, invariants, validation, .npz round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa.testing import Instance, feedback, initial_states, instances, tasks, widths


@given(widths(min_depth=2, max_depth=4, min_width=2, max_width=3, n_in=5))
def test_widths_respect_bounds(ws: tuple[int, ...]) -> None:
    assert 3 <= len(ws) <= 5 and ws[0] == 5
    assert all(2 <= n <= 3 for n in ws[1:])


@given(st.data())
def test_tasks_are_valid_moments(data: st.DataObject) -> None:
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    rank = data.draw(st.integers(0, min(n_in, n_out)))
    task = data.draw(tasks(n_in=n_in, n_out=n_out, whitened=False, rank=rank, max_condition=5.0))
    assert task.syx.shape == (n_out, n_in)
    lam = np.linalg.eigvalsh(task.sxx)
    assert lam.min() > 0 and lam.max() / lam.min() <= 5.0 * (1 + 1e-9)
    # a noiseless teacher of rank r: Σyx = W* Σxx has rank r
    assert np.linalg.matrix_rank(task.syx, tol=1e-9) == rank


@given(tasks(n_in=4, n_out=3, structure="factorization", rank=2))
def test_factorization_tasks(task: linfa.Task) -> None:
    np.testing.assert_array_equal(task.sxx, np.eye(4))
    np.testing.assert_allclose(task.syy, task.syx @ task.syx.T, atol=1e-12)
    assert np.linalg.matrix_rank(task.syx, tol=1e-9) == 2


@given(tasks(n_in=3, n_out=4, structure="output_correlated", max_condition=50.0))
def test_output_correlated_tasks(task: linfa.Task) -> None:
    lam = np.linalg.eigvalsh(task.syy)
    assert lam.min() > 0 and lam.max() / lam.min() <= 50.0 * (1 + 1e-9)


@given(feedback(widths=(2, 5, 3, 2), kind="orthogonal"))
def test_orthogonal_feedback(bs: tuple[np.ndarray, ...]) -> None:
    assert [b.shape for b in bs] == [(5, 3), (3, 2)]
    for b in bs:
        np.testing.assert_allclose(b.T @ b, np.eye(b.shape[1]), atol=1e-12)


@given(feedback(widths=(2, 5, 3, 2), rule="DFA", kind="integers"))
def test_dfa_integer_feedback(bs: tuple[np.ndarray, ...]) -> None:
    assert [b.shape for b in bs] == [(5, 2), (3, 2)]
    for b in bs:
        np.testing.assert_array_equal(b, np.round(b))
        assert np.abs(b).max() <= 2


@given(initial_states(widths=(3, 4, 2), init="balanced", scale=0.7))
def test_balanced_states(ws: tuple[np.ndarray, ...]) -> None:
    w1, w2 = ws
    np.testing.assert_allclose(w1 @ w1.T, w2.T @ w2, atol=1e-12)


@settings(max_examples=10)
@given(instances(rule="KolenPollack", widths=widths(min_depth=2, max_depth=3), init="gaussian", whitened=False))
def test_instances_build_valid_problems(inst: Instance) -> None:
    rule, task, state = inst.problem()
    depth = inst.depth
    assert isinstance(rule, linfa.KolenPollack) and len(state) == 2 * depth - 1
    assert inst.widths == tuple(inst.params["widths"])  # type: ignore[arg-type]
    assert isinstance(inst.seed, dict) and isinstance(inst.seed["seed"], int)
    flow = rule.dstate(task, state)
    assert [f.shape for f in flow] == [s.shape for s in state]


@settings(max_examples=10)
@given(instances(rule="DFA", widths=widths(min_depth=2, max_depth=3), init="small"))
def test_instance_npz_round_trip(tmp_path_factory: pytest.TempPathFactory, inst: Instance) -> None:
    path = inst.save(tmp_path_factory.mktemp("inst") / "x.npz")
    back = Instance.load(path)
    assert back.params == inst.params and back.seed == inst.seed and back.name == inst.name
    assert back.arrays.keys() == inst.arrays.keys()
    for k in inst.arrays:
        np.testing.assert_array_equal(back.arrays[k], inst.arrays[k])
    with np.load(path, allow_pickle=False) as data:  # no object arrays anywhere
        assert all(data[k].dtype != object for k in data.files)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: widths(min_depth=3, max_depth=2), ValueError, "max_depth"),
        (lambda: widths(max_width=1.5), TypeError, "max_width"),
        (lambda: tasks(n_in=2, n_out=2, rank=3), ValueError, "rank"),
        (lambda: tasks(n_in=2, n_out=2, structure="cubic"), ValueError, "structure"),
        (lambda: tasks(n_in=2, n_out=2, structure="factorization", whitened=False), ValueError, "whitened"),
        (lambda: feedback(widths=(2,), kind="gaussian"), ValueError, "widths"),
        (lambda: feedback(widths=(2, 3, 1), kind="sparse"), ValueError, "kind"),
        (lambda: initial_states(widths=(2, 3, 1), init="aligned"), TypeError, "task"),
        (lambda: instances(rule="Hebb"), ValueError, "rule"),
        (lambda: instances(rule="KolenPollack", decay=-1.0), ValueError, "decay"),
        (lambda: instances(input_condition=0.5), ValueError, "input_condition"),
        (lambda: instances(input_condition=10.0, structure="factorization"), ValueError, "input_condition"),
        (lambda: instances(input_condition=37.0, widths=(1, 3, 2)), ValueError, "input_condition.*2 inputs"),
    ],
)
def test_options_validated_up_front(call, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=15, deadline=None)
@given(instances(rule="FA", widths=widths(min_depth=2, max_depth=3), input_condition=100.0,
                 feedback_kind="uniform", feedback_scale=0.5))
def test_instances_fix_the_input_condition_number_and_feedback(inst: Instance) -> None:
    sxx = inst.arrays["sxx"]
    ev = np.linalg.eigvalsh(sxx)
    assert ev[-1] / ev[0] == pytest.approx(100.0, rel=1e-9)  # exactly, not "at most"
    assert inst.params["input_condition"] == 100.0
    for key, b in inst.arrays.items():
        if key.startswith("B"):
            assert np.all(np.abs(b) <= 0.5)  # U[-0.5, 0.5]


@settings(max_examples=25, deadline=None)
@given(instances(rule="FA", input_condition=37.0))
def test_instances_honour_the_input_condition_with_the_default_widths(inst: Instance) -> None:
    # the default widths draw n0 = 1 too; a single input cannot have κ = 37, so it must not be drawn
    ev = np.linalg.eigvalsh(inst.arrays["sxx"])
    assert ev[-1] / ev[0] == pytest.approx(inst.params["input_condition"], rel=1e-9)
    assert inst.params["input_condition"] == 37.0


def _fa_instance() -> Instance:
    return Instance({"sxx": np.eye(2), "syx": np.ones((1, 2)), "syy": np.full((1, 1), 2.0),
                     "W1": np.zeros((3, 2)), "W2": np.zeros((1, 3)), "B2": np.ones((3, 1))}, {"rule": "FA"})


def test_corrupted_instances_give_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = _fa_instance()
    nan = dict(good.arrays)
    nan["syx"] = np.array([[np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"arrays\['syx'\]: expected finite entries, got 1 NaN"):
        Instance(nan, good.params)
    # a NaN written to disk is caught on load
    np.savez(tmp_path / "bad.npz", **{"__linfa_instance__": np.array('{"format": 1, "params": {"rule": "FA"}}')},
             **nan)
    with pytest.raises(ValueError, match=r"syx.*finite"):
        Instance.load(tmp_path / "bad.npz")
    wrong = dict(good.arrays)
    wrong["W2"] = np.zeros((1, 4))
    with pytest.raises(ValueError, match=r"W_2.*expected shape \(\*batch, 1, 3\), got \(1, 4\)"):
        Instance(wrong, good.params).problem()
    missing = dict(good.arrays)
    del missing["B2"]
    with pytest.raises(ValueError, match=r"missing.*B2"):
        Instance(missing, good.params).problem()
    with pytest.raises(ValueError, match="not a linfa instance"):
        np.savez(tmp_path / "plain.npz", a=np.ones(2))
        Instance.load(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="leading batch axis of length 2"):
        Instance(good.arrays, good.params, size=2)


def test_take_selects_and_records_index() -> None:
    good = _fa_instance()
    batch = Instance({k: np.stack([a, 2 * a]) for k, a in good.arrays.items()}, good.params,
                     seed={"entropy": 1, "spawn_key": [3]}, size=2)
    one = batch.take(1)
    np.testing.assert_array_equal(one.arrays["syx"], 2 * good.arrays["syx"])
    assert one.seed == {"entropy": 1, "spawn_key": [3], "index": 1} and one.size is None
    with pytest.raises(IndexError):
        batch.take(2)


def test_import_linfa_does_not_import_hypothesis() -> None:
    import subprocess
    import sys

    code = ("import sys, linfa, linfa.theorems, linfa.cli; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis imported'; "
            "assert 'sympy' not in sys.modules, 'sympy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
