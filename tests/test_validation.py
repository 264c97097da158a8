"""Bad scalar arguments across the public entry points: a TypeError/ValueError that names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa import observables as obs


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3)
    return rng, task, w


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rtol": "a"}, "rtol"), ({"stepsize": 1e-8}, "stepsize"), ({"atol": -1.0}, "atol"), ({"dt0": "a"}, "dt0"),
        ({"max_steps": None}, "max_steps"), ({"max_steps": 2.5}, "max_steps"), ({"saveat": "a"}, "saveat"),
        ({"observe": [obs.loss]}, "observe"),
    ],
)
def test_solve_names_the_bad_argument(problem, kwargs, name):
    _, task, w = problem
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected"):
        linfa.solve(linfa.BP(), task, w, 1.0, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"steps": None}, "steps"), ({"steps": "a"}, "steps"), ({"noise": None}, "noise"),
     ({"noise": -1.0}, "noise"), ({"max_norm": None}, "max_norm"), ({"lr": 0.0}, "lr")],
)
def test_sgd_names_the_bad_argument(problem, kwargs, name):
    rng, task, w = problem
    base = {"lr": 0.01, "steps": 5, "batch_size": 4, "rng": rng}
    base.update(kwargs)
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected"):
        linfa.sgd(linfa.BP(), task, w, **base)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda rng: linfa.KolenPollack("a"), "decay"),
        (lambda rng: linfa.DeepLinear((3, 2)).uniform(rng, "a"), "scale"),
        (lambda rng: linfa.DeepLinear((3, 2)).gaussian(rng, 1.0, batch=3), "batch"),
        (lambda rng: linfa.DeepLinear((3, 2)).zeros(batch=(2.5,)), r"batch\[0\]"),
        (lambda rng: linfa.Task.random_teacher(rng, 2.5, 2), "n_in"),
        (lambda rng: linfa.Task.random_teacher(rng, 0, 2), "n_in"),
        (lambda rng: linfa.Task.random_teacher(rng, 3, 2, batch=5), "batch"),
        (lambda rng: linfa.Task.teacher(np.ones((2, 3)), noise="x"), "noise"),
        (lambda rng: linfa.feedback.sample(rng, (2, 2), batch=4), "batch"),
        (lambda rng: linfa.spd_with_condition(rng, 3, 0.5), "condition"),
    ],
)
def test_constructors_name_the_bad_argument(call, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected"):
        call(np.random.default_rng(0))
