"""Two-phase learning as a parameter flow: EP training vs gradient flow on J."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.eqprop import (
    Params,
    QuadraticEnergy,
    centered_ep_flow,
    ep_flow,
    ep_gradient,
    gradient,
    gradient_flow,
    learning_args,
    loglog_slope,
    loss,
    loss_along,
    min_eigenvalue,
    models_along,
    population_samples,
    train,
)
from linfa.tasks import Task

FAST = {"rtol": 1e-9, "atol": 1e-11}


def regression(seed: int, n: int = 5, n_in: int = 3, n_out: int = 2, m: int = 10,
               layered: bool = False) -> tuple[QuadraticEnergy, np.ndarray, np.ndarray, np.ndarray]:
    """A realizable linear regression task d = T x and a small random initial model."""
    rng = np.random.default_rng(seed)
    if layered:
        model = QuadraticEnergy.layered([0.3 * rng.standard_normal((4, n_in)),
                                         0.15 * rng.standard_normal((n_out, 4))])
    else:
        model = QuadraticEnergy.random(rng, n, n_in, n_out, radius=0.3)
        model = model.replace(b=0.1 * model.b)
    T = 0.7 * rng.standard_normal((n_out, n_in))
    x = rng.standard_normal((m, n_in))
    return model, x, x @ T.T, T


def _params_distance(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> np.ndarray:
    """Frobenius distance over (b, U, W), per leading index; ``a``, ``b`` are (…, T, core)."""
    sq = sum(np.sum((u - v) ** 2, axis=tuple(range(u.ndim - c, u.ndim)))
             for u, v, c in zip(a, b, (1, 2, 2), strict=True))
    return np.sqrt(sq)


# ---------------------------------------------------------- vector fields
@pytest.mark.parametrize("layered", [False, True])
def test_flows_are_minus_the_masked_estimates(layered):
    model, x, d, _ = regression(1, layered=layered)
    beta = 0.2
    y0, args = learning_args(model, x, d, beta)
    wm = np.ones((model.n, model.n)) if model.w_mask is None else model.w_mask.astype(float)
    um = np.ones(model.U.shape) if model.u_mask is None else model.u_mask.astype(float)
    for vf, est in [(gradient_flow, gradient(model, x, d)),
                    (ep_flow, ep_gradient(model, x, d, beta)),
                    (centered_ep_flow, ep_gradient(model, x, d, beta, centered=True))]:
        db, dU, dW = vf(0.0, y0, args)
        np.testing.assert_allclose(db, -est.b, atol=1e-13)
        np.testing.assert_allclose(dU, -um * est.U, atol=1e-13)
        np.testing.assert_allclose(dW, -wm * est.W, atol=1e-13)
        np.testing.assert_array_equal(dW, dW.T)
    # freezing parameters
    y0, args = learning_args(model, x, d, beta, trainable=("W",))
    db, dU, dW = gradient_flow(0.0, y0, args)
    assert np.all(db == 0) and np.all(dU == 0) and np.any(dW != 0)


def test_population_samples_have_the_population_moments_and_loss():
    rng = np.random.default_rng(2)
    task = Task.random_teacher(rng, 3, 2, noise=0.3)
    x, d = population_samples(task)
    assert x.shape == (10, 3) and d.shape == (10, 2)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-14)
    np.testing.assert_allclose(x.T @ x / 10, task.sxx, atol=1e-13)
    np.testing.assert_allclose(d.T @ x / 10, task.syx, atol=1e-13)
    np.testing.assert_allclose(d.T @ d / 10, task.syy, atol=1e-13)
    # the population loss of the affine map s ↦ P A^{-1}(b + U x), written with moments
    model = QuadraticEnergy.random(rng, 4, 3, 2)
    M = model.P @ np.linalg.solve(model.A, model.U)
    c = model.P @ np.linalg.solve(model.A, model.b)
    want = 0.5 * (np.trace(task.syy) - 2 * np.trace(M.T @ task.syx)
                  + np.trace(M @ task.sxx @ M.T) + c @ c)
    assert loss(model, x, d) == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------- training
def test_ep_training_reaches_the_gradient_flow_solution():
    """All three flows drive J to zero on a realizable task and learn the teacher map."""
    model, x, d, T = regression(3)
    t = np.linspace(0.0, 25.0, 11)
    finals = {}
    for rule, beta in [("gradient", 0.0), ("ep", 0.02), ("ep_centered", 0.02)]:
        sol = train(model, x, d, t, rule=rule, beta=beta, **FAST)
        assert np.all(sol.status == 0), sol.message
        L = loss_along(model, sol.states, x, d)
        assert L[-1] < 1e-10 * L[0]
        if rule == "gradient":
            assert np.all(np.diff(L) <= 1e-12 * L[0])  # gradient flow: J is a Lyapunov function
        end = models_along(model, sol.states)
        assert np.all(min_eigenvalue(end) > 0)
        # the learned input-output map is the teacher's: P A^{-1} U = T, P A^{-1} b = 0
        np.testing.assert_allclose(end.P[-1] @ np.linalg.solve(end.A[-1], end.U[-1]), T, atol=1e-5)
        np.testing.assert_allclose(end.P[-1] @ np.linalg.solve(end.A[-1], end.b[-1]), 0, atol=1e-5)
        finals[rule] = tuple(s[-1] for s in sol.states)
    # the solutions themselves differ by O(β) (one-sided) and O(β²) (centred)
    d1 = _params_distance(finals["ep"], finals["gradient"])
    d2 = _params_distance(finals["ep_centered"], finals["gradient"])
    assert d2 < 0.1 * d1 and d1 < 0.1


@pytest.mark.parametrize(("rule", "order", "span"), [("ep", 1, (1e-3, 1e-1)),
                                                     ("ep_centered", 2, (1e-2, 2e-1))])
def test_ep_trajectory_approaches_gradient_flow(rule, order, span):
    """max_t ‖θ_EP(t) − θ_GF(t)‖ = O(β^order), one batched integration over the β sweep."""
    model, x, d, _ = regression(4)
    t = np.linspace(0.0, 6.0, 7)
    tight = {"rtol": 1e-10, "atol": 1e-12}
    gf = train(model, x, d, t, rule="gradient", **tight)
    betas = np.geomspace(*span, 4)
    ep = train(model, x, d, t, rule=rule, beta=betas, **tight)
    assert np.all(ep.status == 0)
    dist = _params_distance(ep.states, tuple(g[None] for g in gf.states)).max(axis=1)
    assert abs(loglog_slope(betas, dist) - order) < 0.1


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_ep_vs_gradient_flow_on_random_instances(seed, layered):
    model, x, d, _ = regression(seed, layered=layered)
    t = np.linspace(0.0, 3.0, 4)
    loose = {"rtol": 1e-7, "atol": 1e-9}
    gf = train(model, x, d, t, rule="gradient", **loose)
    betas = np.array([0.004, 0.02, 0.1])
    ep = train(model, x, d, t, rule="ep", beta=betas, **loose)
    dist = _params_distance(ep.states, tuple(g[None] for g in gf.states)).max(axis=1)
    assert abs(loglog_slope(betas, dist) - 1) < 0.15
    # structure: masked couplings stay exactly zero
    if model.w_mask is not None:
        assert np.all(ep.states[2][..., ~model.w_mask] == 0)
        assert np.all(ep.states[1][..., ~model.u_mask] == 0)
    # symmetric up to the rounding of the integrator's stage sums
    np.testing.assert_allclose(ep.states[2], np.swapaxes(ep.states[2], -1, -2), rtol=0, atol=1e-14)


def test_batched_training_equals_single():
    rng = np.random.default_rng(6)
    model = QuadraticEnergy.random(rng, 4, 2, 2, radius=0.3, batch=(2,))
    x = rng.standard_normal((2, 6, 2))
    d = rng.standard_normal((2, 6, 2))
    betas = np.array([0.05, 0.2])
    t = np.linspace(0.0, 2.0, 3)
    sol = train(model, x, d, t, rule="ep_centered", beta=betas, **FAST)
    for i in range(2):
        one = QuadraticEnergy(model.W[i], model.b[i], model.U[i], model.P[i])
        single = train(one, x[i], d[i], t, rule="ep_centered", beta=betas[i], **FAST)
        for a, b in zip(sol.states, single.states, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-12)


def test_population_training_runs_through_the_same_flow():
    rng = np.random.default_rng(7)
    task = Task.random_teacher(rng, 3, 2)
    x, d = population_samples(task)
    model = QuadraticEnergy.random(rng, 4, 3, 2, radius=0.3)
    sol = train(model, x, d, [0.0, 20.0], rule="ep", beta=0.02, **FAST)
    L = loss_along(model, sol.states, x, d)
    assert L[-1] < 1e-6 * L[0]


def test_train_argument_errors():
    model, x, d, _ = regression(0)
    with pytest.raises(ValueError, match=r"rule: expected one of \('gradient', 'ep', 'ep_centered'\)"):
        train(model, x, d, [0.0, 1.0], rule="bp")
    with pytest.raises(ValueError, match="beta: rule 'ep' needs a nonzero beta"):
        train(model, x, d, [0.0, 1.0], rule="ep")
    with pytest.raises(ValueError, match="trainable: expected names among"):
        train(model, x, d, [0.0, 1.0], rule="gradient", trainable=("V",))
    with pytest.raises(ValueError, match="t: expected a 1-D increasing array"):
        train(model, x, d, [1.0, 0.0], rule="gradient")
    with pytest.raises(ValueError, match=r"d: expected shape \(\*batch, m, n_out=2\)"):
        train(model, x, d[:, :1], [0.0, 1.0], rule="gradient")
    with pytest.raises(ValueError, match="beta: a negative beta"):
        train(model, x, d, [0.0, 1.0], rule="ep_centered", beta=50.0)
    assert isinstance(gradient(model, x, d), Params)
