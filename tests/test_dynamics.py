"""The rule-level front end (linfa.dynamics): what solve and sgd say when an instance or an observable goes wrong."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import linfa
from linfa import observables as obs
from linfa.dynamics import FailedInstancesWarning, sgd, solve
from linfa.integrate import Status


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 2, batch=(4,))
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3, batch=(4,))
    return rng, task, w0


def _run(route, task, w0, observe):
    if route == "solve":
        return solve(linfa.BP(), task, w0, 1.0, saveat=[0.0, 0.5, 1.0], observe=observe)
    return sgd(linfa.BP(), task, w0, lr=0.1, steps=4, batch_size=4, rng=np.random.default_rng(1),
               observe=observe, every=2)


@pytest.mark.parametrize("route", ["solve", "sgd"])
@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (lambda rule, task, state: 1.0, ValueError, r"leading axes \(4, 3\).*got shape \(\)"),  # one number for all
        (lambda rule, task, state: None, TypeError, "got None"),
        (lambda rule, task, state: np.zeros(7), ValueError, r"leading axes \(4, 3\).*got shape \(7,\)"),
    ],
)
def test_a_wrongly_shaped_observable_is_named_with_the_shape_expected(problem, route, bad, exc, match):
    _, task, w0 = problem
    with pytest.raises(exc, match=rf"^observe\['mine'\]: expected.*{match}"):
        _run(route, task, w0, {"loss": obs.loss, "mine": bad})


@pytest.mark.parametrize("route", ["solve", "sgd"])
def test_observables_follow_the_documented_convention(problem, route):
    """(K, S) leading axes in, (K, S, ...) out; observed[name] is (*batch, S, ...)."""
    _, task, w0 = problem
    seen = {}

    def product(rule, task, state):
        seen["shape"] = state[0].shape
        return state[1] @ state[0]

    sol = _run(route, task, w0, {"product": product, "loss": obs.loss})
    assert seen["shape"] == (4, 3, 4, 3)
    assert sol.observed["product"].shape == (4, 3, 2, 3)
    np.testing.assert_allclose(sol.observed["product"], sol.states[1] @ sol.states[0], rtol=1e-14)


@pytest.mark.parametrize("route", ["solve", "sgd"])
def test_complex_input_is_a_type_error_naming_the_argument(problem, route):
    _, task, w0 = problem
    bad = (w0[0] + 1j, w0[1])
    with pytest.raises(TypeError, match=r"^state0\[0\]: expected real"):
        _run(route, task, bad, {})
    ctask = linfa.Task.tree_unflatten((task.sxx + 0j, task.syx, task.syy))
    with pytest.raises(TypeError, match=r"^task: expected real"):
        _run(route, ctask, w0, {})


def test_a_layer_of_width_zero_is_refused_up_front():
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w0 = (np.zeros((0, 3)), np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"^state0\[0\]: expected a matrix with at least one entry"):
        solve(linfa.BP(), task, w0, 1.0)
    with pytest.raises(ValueError, match=r"^state0\[0\]: expected a matrix with at least one entry"):
        sgd(linfa.BP(), task, w0, lr=0.1, steps=3, batch_size=2, rng=rng)


def test_some_failed_instances_warn_once_with_how_many_and_which_status(problem):
    _, task, w0 = problem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = solve(linfa.BP(), task, w0, 5.0, max_steps=10)
        ok = solve(linfa.BP(), task, w0, 0.1)
    mine = [w for w in caught if issubclass(w.category, FailedInstancesWarning)]
    assert (sol.status == Status.max_steps).sum() == 4 and ok.ok.all()
    assert len(mine) == 1 and "4 of 4 instance(s) failed (4 max_steps)" in str(mine[0].message)
    assert mine[0].filename == __file__  # points at the caller's line

    big = tuple(np.concatenate([w[:2], 1e3 * w[2:]]) for w in w0)
    with pytest.warns(FailedInstancesWarning, match=r"2 of 4 instance\(s\) failed \(2 diverged\)") as rec:
        sol = sgd(linfa.BP(), task, big, lr=0.5, steps=20, batch_size=4, rng=np.random.default_rng(2), max_norm=1e6)
    assert len([w for w in rec if issubclass(w.category, FailedInstancesWarning)]) == 1
    assert sol.status.tolist() == [Status.success] * 2 + [Status.diverged] * 2


def test_the_observable_type_is_defined_once():
    """``obs(rule, task, state)`` has one type alias (teacher_student's observables take other arguments)."""
    root = Path(linfa.__file__).parent
    homes = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
             if "\nObservable = Callable[[AbstractRule" in p.read_text(encoding="utf-8")]
    assert homes == ["observables.py"]
    from linfa.dynamics import until

    assert until.Observable is obs.Observable


def test_sgd_builds_its_solution_like_solve(problem):
    """Same Solution fields and stats keys (sgd adds its `max_norm`, an explicit solve the `kernel` that ran it);
    at steps = 0 both are the initial state."""
    _, task, w0 = problem
    a = sgd(linfa.BP(), task, w0, lr=0.1, steps=0, batch_size=4, rng=np.random.default_rng(0),
            observe={"loss": obs.loss})
    b = solve(linfa.BP(), task, w0, 0.0, observe={"loss": obs.loss})
    assert set(a.stats) | {"kernel"} == set(b.stats) | {"max_norm"}
    np.testing.assert_array_equal(a.observed["loss"], b.observed["loss"])
    for x, y in zip(a.states, b.states, strict=True):
        np.testing.assert_array_equal(x, y)
