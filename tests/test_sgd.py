"""linfa.sgd: discrete sampled learning, converging to the flow as the learning rate shrinks."""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa import observables
from linfa.dynamics import FailedInstancesWarning, sgd, solve
from linfa.integrate import IntegrationError, Status
from linfa.integrate.solution import describe


def problem(batch=(6,), seed=0):
    rng = np.random.default_rng(seed)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3)
    w0 = tuple(np.broadcast_to(w, (*batch, *w.shape)).copy() for w in w0)
    return task, w0


def test_same_seed_same_result_and_batch_independence():
    task, w0 = problem()
    kw = dict(lr=0.05, steps=30, batch_size=8, observe={"loss": observables.loss}, every=10)
    a = sgd(linfa.BP(), task, w0, rng=np.random.default_rng(7), **kw)
    b = sgd(linfa.BP(), task, w0, rng=np.random.default_rng(7), **kw)
    for x, y in zip(a.states, b.states, strict=True):
        np.testing.assert_array_equal(x, y)
    # Instance 0 of the batch equals a batch of one with the same seed.
    one = sgd(linfa.BP(), task, tuple(w[:1] for w in w0), rng=np.random.default_rng(7), **kw)
    np.testing.assert_array_equal(a.states[0][:1], one.states[0])
    # Different instances saw different samples.
    assert not np.allclose(a.state_final[0][0], a.state_final[0][1])
    np.testing.assert_allclose(a.ts, [0.0, 0.5, 1.0, 1.5])
    assert a.observed["loss"].shape == (6, 4)


def test_converges_to_flow_as_learning_rate_shrinks():
    task, w0 = problem(batch=(8,))
    T = 2.0
    flow = solve(linfa.BP(), task, w0, T, rtol=1e-10, atol=1e-12)
    errs = []
    for lr in (0.04, 0.01, 0.0025):
        sol = sgd(linfa.BP(), task, w0, lr=lr, steps=round(T / lr), batch_size=64,
                  rng=np.random.default_rng(1))
        np.testing.assert_allclose(sol.t_final, T)
        errs.append(np.mean([np.linalg.norm(a - b, axis=(-2, -1)).mean()
                             for a, b in zip(sol.state_final, flow.state_final, strict=True)]))
    # Minibatch noise gives an error ~ sqrt(lr / b): it halves when lr is divided by four.
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.7 * errs[1] and errs[1] < 0.7 * errs[0]


def test_large_batch_sgd_approaches_full_batch_euler():
    task, w0 = problem(batch=(2,))
    lr, n = 0.05, 20
    euler = solve(linfa.BP(), task, w0, lr * n, method="euler", dt0=lr)
    sol = sgd(linfa.BP(), task, w0, lr=lr, steps=n, batch_size=20000, rng=np.random.default_rng(2))
    for a, b in zip(sol.state_final, euler.state_final, strict=True):
        np.testing.assert_allclose(a, b, atol=0.02)


def test_divergence_gets_a_status_not_nan():
    rng = np.random.default_rng(3)
    w_star = rng.standard_normal((2, 3))
    sxx = np.stack([np.eye(3), 100.0 * np.eye(3)])  # the second is unstable at lr = 0.05
    syx = w_star @ sxx
    task = linfa.Task(sxx, syx, syx @ w_star.T)
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3, batch=(2,))
    with pytest.warns(FailedInstancesWarning, match=r"^1 of 2 instance\(s\) failed \(1 diverged\)") as warned:
        sol = sgd(linfa.BP(), task, w0, lr=0.05, steps=200, batch_size=16, rng=rng,
                  observe={"loss": observables.loss}, every=20)
    assert len(warned) == 1
    assert sol.status.tolist() == [Status.success, Status.diverged]
    assert np.isnan(sol.observed["loss"][1, -1])
    assert np.isfinite(sol.observed["loss"][0]).all()
    assert np.isfinite(sol.state_final[0][1]).all()
    with pytest.raises(IntegrationError, match="diverged"):
        sgd(linfa.BP(), task, w0, lr=0.05, steps=200, batch_size=16, rng=rng, throw=True)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(lr=0.0), "lr"),
        (dict(steps=-1), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(every=0), "every"),
        (dict(noise=-1.0), "noise"),
        (dict(rng=0), "rng"),
    ],
)
def test_bad_arguments(kw, match):
    task, w0 = problem(batch=())
    call = dict(lr=0.1, steps=3, batch_size=4, rng=np.random.default_rng(0))
    call.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        sgd(linfa.BP(), task, w0, **call)


def test_empty_batch_gives_empty_arrays_like_solve():
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 2)
    obs = {"loss": observables.loss}
    for batch in ((0,), (3, 0)):
        w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.1, batch=batch)
        sol = sgd(linfa.BP(), task, w0, lr=0.05, steps=10, batch_size=4,
                  rng=np.random.default_rng(1), observe=obs, every=5)
        ref = solve(linfa.BP(), task, w0, 0.5, saveat=[0.0, 0.25, 0.5], observe=obs)
        np.testing.assert_allclose(sol.ts, ref.ts)
        assert [s.shape for s in sol.states] == [s.shape for s in ref.states]
        assert sol.observed["loss"].shape == ref.observed["loss"].shape == (*batch, 3)
        assert sol.status.shape == ref.status.shape == batch
        assert sol.stats["num_vf_calls"] == 0


def test_zero_steps_returns_the_initial_state_and_its_observations():
    task, w0 = problem(batch=(3,))
    sol = sgd(linfa.BP(), task, w0, lr=0.05, steps=0, batch_size=4, rng=np.random.default_rng(1),
              observe={"loss": observables.loss}, every=7)
    np.testing.assert_array_equal(sol.ts, [0.0])
    for s, w in zip(sol.states, w0, strict=True):
        np.testing.assert_array_equal(s[:, 0], w)
    # The loss at t = 0 from its definition, 1/2 tr(Σyy - 2 W Σxy + W Σxx W^T) with W = W2 W1.
    W = w0[1] @ w0[0]
    sxx, syx, syy = task.sxx, task.syx, task.syy
    loss = 0.5 * (np.trace(syy) - 2 * np.einsum("kij,ij->k", W, syx) + np.einsum("kij,jl,kil->k", W, sxx, W))
    np.testing.assert_allclose(sol.observed["loss"][:, 0], loss, rtol=1e-12)
    assert (sol.status == Status.success).all() and (sol.t_final == 0.0).all()
    assert (sol.stats["num_steps"] == 0).all()


def test_diverged_message_says_what_stopped_it():
    rng = np.random.default_rng(3)
    w_star = rng.standard_normal((2, 3))
    sxx = 100.0 * np.eye(3)  # unstable at lr = 0.05
    task = linfa.Task(sxx, w_star @ sxx, w_star @ sxx @ w_star.T)
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3, batch=(2,))
    kw = dict(lr=0.05, steps=200, batch_size=16)
    with pytest.warns(FailedInstancesWarning) as rec:
        sol = sgd(linfa.BP(), task, w0, rng=np.random.default_rng(0), max_norm=1e3, **kw)
    assert (sol.status == Status.diverged).all()
    for text in (sol.message, *sol.messages.ravel(), str(rec[0].message)):
        assert "max_norm" in text and "1000" in text and "until" not in text, text
    with pytest.raises(IntegrationError, match="max_norm") as err:
        sgd(linfa.BP(), task, w0, rng=np.random.default_rng(0), max_norm=1e3, throw=True, **kw)
    assert "until" not in str(err.value)
    # a run stopped by a divergence condition in `until` (solve's) still says so
    assert "until" in describe(Status.diverged) and "max_norm" not in describe(Status.diverged)
