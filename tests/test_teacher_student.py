"""Shallow teacher–student networks: Gaussian averages, order-parameter ODEs, simulation (linfa.teacher_student)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import linfa
from linfa import teacher_student as ts
from linfa.teacher_student import averages as av

DIMS = {"i2": 2, "i3": 3, "i4": 4, "j2": 2}


def _covariances(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    x = rng.standard_normal((count, n, n + 2))
    cov = x @ np.swapaxes(x, -1, -2) / (n + 2)
    cov[0] = np.outer(np.ones(n), np.ones(n)) * 0.7  # singular: one field repeated
    return cov


@pytest.mark.parametrize("kind", sorted(DIMS))
@pytest.mark.parametrize("act", ["erf", "linear"])
def test_cubature_matches_closed_forms(kind: str, act: str) -> None:
    cov = _covariances(np.random.default_rng(1), DIMS[kind], 4)
    closed = av.average(kind, cov, act, method="closed")
    cub = av.average(kind, cov, act, method="cubature")
    np.testing.assert_allclose(cub, closed, rtol=0, atol=1e-8)


def _monte_carlo(kind: str, act: ts.Activation, z: np.ndarray) -> tuple[float, float]:
    """Sample mean and standard error of the average ``kind`` over samples ``z`` (n, >= its order)."""
    g, dg = act.g, act.dg
    f = {"i2": lambda: g(z[:, 0]) * g(z[:, 1]),
         "i3": lambda: dg(z[:, 0]) * z[:, 1] * g(z[:, 2]),
         "i4": lambda: dg(z[:, 0]) * dg(z[:, 1]) * g(z[:, 2]) * g(z[:, 3]),
         "j2": lambda: dg(z[:, 0]) * dg(z[:, 1])}[kind]()
    return float(np.mean(f)), float(np.std(f) / np.sqrt(z.shape[0]))


@pytest.mark.parametrize("act", ["erf", "linear", "tanh"])
def test_averages_match_monte_carlo(act: str) -> None:
    # one sample of 10⁶ four-field vectors; each average reads its leading 2, 3 or 4 fields
    rng = np.random.default_rng(2)
    cov = _covariances(rng, 4, 2)[1]
    z = rng.multivariate_normal(np.zeros(4), cov, size=1_000_000, method="eigh")
    for kind, n in DIMS.items():
        mean, se = _monte_carlo(kind, ts.activation(act), z)
        assert abs(float(av.average(kind, cov[:n, :n], act)) - mean) < 5 * se + 1e-12, kind


def test_relu_cubature_matches_monte_carlo_and_known_i2() -> None:
    # relu: <relu(z1) relu(z2)> = (sqrt(1-ρ²) + (π - arccos ρ) ρ) σ1σ2/(2π)  (Cho & Saul 2009)
    cov = np.array([[1.0, 0.3], [0.3, 2.0]])
    rho = 0.3 / np.sqrt(2.0)
    exact = (np.sqrt(1 - rho**2) + (np.pi - np.arccos(rho)) * rho) * np.sqrt(2.0) / (2 * np.pi)
    assert abs(float(av.i2(cov, "relu", points=200)) - exact) < 1e-3
    cov3 = _covariances(np.random.default_rng(3), 3, 2)[1]
    z = np.random.default_rng(4).multivariate_normal(np.zeros(3), cov3, size=1_000_000, method="eigh")
    mean, se = _monte_carlo("i3", ts.activation("relu"), z)
    got = float(av.i3(cov3, "relu", points=120))
    assert abs(got - mean) < 5 * se + 2e-3


# ----------------------------------------------------------------------------- ODE vs simulation
@functools.cache
def _gaps(n: int, act: str) -> tuple[float, float]:
    """Mean over seeds and times of |ε_g(simulation) − ε_g(ODE from the same initial weights)|.

    Returned for the ODE and for a mutated ODE without the η² terms (I4 and the noise's σ² J2),
    wrong for SGD at η = 1.
    """
    seeds = 32
    rng = np.random.default_rng([15, n])
    w, wstar = ts.initial_weights(rng, n, 2, 2, size=seeds, scale=0.5)
    v, vstar, b = np.full((seeds, 2), 0.5), np.ones((seeds, 2)), rng.standard_normal((seeds, 2))
    alphas = np.linspace(0.0, 0.6, 4)
    sim = ts.simulate(w, wstar, v, vstar, alphas, rng, rule="DFA", b=b, eta=1.0, sigma=0.3, activation=act)
    eg_sim = ts.generalisation_error(sim.order_parameters(), act)
    out = []
    for second_order in (True, False):
        problem = ts.Problem.from_weights(w, wstar, v, vstar, rule="DFA", b=b, eta=1.0, sigma=0.3, activation=act,
                                          second_order=second_order)
        gap = eg_sim - ts.solve(problem, alphas[-1], saveat=alphas, observe=["eg"]).observed["eg"]
        assert np.all(gap[:, 0] == pytest.approx(0.0, abs=1e-12))  # same initial order parameters
        out.append(float(np.mean(np.abs(gap[:, 1:]))))
    return out[0], out[1]


NS = (500, 1000, 2000)


def _slope(act: str, second_order: bool = True) -> float:
    gaps = [_gaps(n, act)[0 if second_order else 1] for n in NS]
    return float(np.polyfit(np.log(NS), np.log(gaps), 1)[0])


@pytest.mark.parametrize("act", ["erf", "linear"])
def test_ode_is_the_large_n_limit_of_sgd(act: str) -> None:
    # Fluctuations of one run are O(1/√N): the mean gap falls with slope -1/2 in log-log
    # (an O(1/N) finite-size bias can steepen it). The window is about ±3 standard errors of the
    # fitted slope with 32 seeds; a wrong ODE leaves an O(1) gap (slope near 0): see the mutation test.
    assert -1.0 < _slope(act) < -0.25


@pytest.mark.parametrize("act", ["erf", "linear"])
def test_mutated_ode_fails_the_large_n_test(act: str) -> None:
    # the same simulations against the ODE without its η² terms: the gap no longer shrinks
    assert not -1.0 < _slope(act, second_order=False) < -0.25


# ----------------------------------------------------------------------------- linear g = deep linear flow
@pytest.mark.parametrize("rule", ["BP", "DFA"])
def test_linear_ode_is_the_deep_linear_population_flow(rule: str) -> None:
    # Linear g, η → 0 (no η² terms): with W1 = w/√N, W2 = vᵀ, Σxx = I_N, Σyx = v*ᵀ w*/√N and
    # t = η α, the ODE is linfa's (N, K, 1) flow, Q = W1 W1ᵀ, R = W1 w*ᵀ/√N, v = W2ᵀ.
    rng = np.random.default_rng(7)
    n, k, m, size, eta = 6, 3, 2, 4, 0.7
    w, wstar = ts.initial_weights(rng, n, k, m, size=size, scale=0.6)
    v, vstar, b = rng.standard_normal((size, k)), rng.standard_normal((size, m)), rng.standard_normal((size, k))
    alphas = np.linspace(0.0, 3.0, 4)
    problem = ts.Problem.from_weights(w, wstar, v, vstar, rule=rule, b=b, eta=eta, activation="linear",
                                      second_order=False)
    sol = ts.solve(problem, alphas[-1], saveat=alphas, rtol=1e-11, atol=1e-13)
    Q, R, vv = sol.states
    syx = np.einsum("bm,bmn->bn", vstar, wstar)[:, None, :] / np.sqrt(n)
    syy = np.einsum("bm,bmj,bj->b", vstar, wstar @ np.swapaxes(wstar, 1, 2) / n, vstar)[:, None, None] + 0.1
    task = linfa.Task(np.broadcast_to(np.eye(n), (size, n, n)), syx, syy)
    lin_rule = linfa.BP() if rule == "BP" else linfa.DFA((b[:, :, None],))
    lin = linfa.solve(lin_rule, task, (w / np.sqrt(n), v[:, None, :]), eta * alphas[-1], saveat=eta * alphas,
                      rtol=1e-11, atol=1e-13)
    W1, W2 = lin.states
    np.testing.assert_allclose(Q, W1 @ np.swapaxes(W1, -1, -2), atol=1e-8)
    np.testing.assert_allclose(R, W1 @ np.swapaxes(wstar, 1, 2)[:, None] / np.sqrt(n), atol=1e-8)
    np.testing.assert_allclose(vv, W2[:, :, 0, :], atol=1e-8)


def test_batched_solve_with_saveat_observe_until() -> None:
    # instances differ in initial conditions, feedback and learning rate; each batched instance is
    # the instance solved alone; `until` stops each at ε_g = tol on the interpolant
    rng = np.random.default_rng(11)
    w, wstar = ts.initial_weights(rng, 60, 2, 2, size=3, scale=0.3)
    v, vstar, b = 0.3 * rng.standard_normal((3, 2)), np.ones((3, 2)), rng.standard_normal((3, 2))
    eta = np.array([0.3, 0.6, 0.9])
    problem = ts.Problem.from_weights(w, wstar, v, vstar, rule="DFA", b=b, eta=eta)
    eg0 = ts.generalisation_error(problem.order_parameters())
    tol = 0.5 * float(eg0.min())
    sol = ts.solve(problem, 200.0, saveat=[0.0, 1.0, 2.0], observe=["eg", "alignment", "overlaps"],
                   until=ts.eg_below(tol), rtol=1e-10, atol=1e-12)
    assert sol.observed["overlaps"].shape == (3, 3, 2, 2)
    np.testing.assert_allclose(sol.observed["eg"][:, 0], eg0, rtol=1e-12)
    Q, R, vv = sol.state_final
    final = ts.generalisation_error(ts.OrderParameters(Q, R, problem.T, vv, vstar, b))
    np.testing.assert_allclose(final, tol, rtol=1e-6)
    for i in range(3):
        one = ts.Problem(problem.Q[i], problem.R[i], problem.T[i], v[i], vstar[i], rule="DFA", b=b[i], eta=eta[i])
        alone = ts.solve(one, 2.0, saveat=[0.0, 1.0, 2.0], observe=["eg"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(alone.observed["eg"], sol.observed["eg"][i], rtol=1e-7, atol=1e-12)


def test_frozen_second_layer_stays_put_in_ode_and_simulation() -> None:
    rng = np.random.default_rng(12)
    w, wstar = ts.initial_weights(rng, 80, 2, 1, size=2)
    v, vstar = rng.standard_normal((2, 2)), np.ones((2, 1))
    sim = ts.simulate(w, wstar, v, vstar, [0.0, 0.5], rng, train_second_layer=False)
    problem = ts.Problem.from_weights(w, wstar, v, vstar, train_second_layer=False)
    sol = ts.solve(problem, 0.5, saveat=[0.0, 0.5])
    np.testing.assert_array_equal(sim.v[:, -1], v)
    np.testing.assert_array_equal(sol.states[2][:, -1], v)
    assert not np.allclose(sol.states[1][:, -1], problem.R)  # the first layer did learn


def test_cubature_flow_matches_closed_form_flow() -> None:
    rng = np.random.default_rng(8)
    w, wstar = ts.initial_weights(rng, 50, 2, 1, size=1, scale=0.8)
    v, vstar = rng.standard_normal((1, 2)), np.ones((1, 1))
    problem = ts.Problem.from_weights(w, wstar, v, vstar, eta=0.3, sigma=0.2)
    y = (problem.Q, problem.R, problem.v)
    args = (problem.T, problem.vstar, problem.b, problem.eta, problem.sigma)
    closed = ts.Flow(ts.activation("erf"))(0.0, y, args)
    erf = ts.activation("erf")
    custom = ts.Flow(ts.activation((erf.g, erf.dg)), points=20)(0.0, y, args)  # 20⁴-point I4: error ~1e-6
    for a, c in zip(closed, custom, strict=True):
        np.testing.assert_allclose(c, a, atol=1e-5)


def test_eg_at_initialisation_matches_sampled_error() -> None:
    rng = np.random.default_rng(9)
    w, wstar = ts.initial_weights(rng, 40, 3, 2, size=1, scale=1.0)
    v, vstar = rng.standard_normal((1, 3)), rng.standard_normal((1, 2))
    x = rng.standard_normal((400_000, 40))
    g = ts.activation("erf").g
    err = g(x @ w[0].T / np.sqrt(40)) @ v[0] - g(x @ wstar[0].T / np.sqrt(40)) @ vstar[0]
    eg = ts.generalisation_error(ts.Problem.from_weights(w, wstar, v, vstar).order_parameters())
    assert abs(float(eg[0]) - 0.5 * np.mean(err**2)) < 5 * 0.5 * np.std(err**2) / np.sqrt(x.shape[0])


def test_simulation_same_seed_same_result() -> None:
    def run() -> ts.Simulation:
        rng = np.random.default_rng(3)
        w, wstar = ts.initial_weights(rng, 30, 2, 1, size=2)
        return ts.simulate(w, wstar, np.ones((2, 2)), np.ones((2, 1)), [0.0, 0.5], rng, sigma=0.1)

    a, b = run(), run()
    np.testing.assert_array_equal(a.Q, b.Q)
    np.testing.assert_array_equal(a.v, b.v)


def test_observables() -> None:
    op = ts.OrderParameters(np.eye(2), np.array([[0.9, 0.0], [0.1, 0.5]]), np.eye(2), np.array([1.0, 0.0]),
                            np.ones(2), np.array([2.0, 0.0]))
    assert ts.alignment(op) == pytest.approx(1.0)
    np.testing.assert_allclose(ts.overlaps(op), op.R)
    assert ts.specialisation(op) == pytest.approx(0.5 * (0.9 + 0.4))
    same = op._replace(R=np.eye(2), v=np.ones(2))  # the student is the teacher
    assert ts.generalisation_error(same) == pytest.approx(0.0, abs=1e-15)


# ----------------------------------------------------------------------------- bad input
def _args(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(Q=np.eye(2), R=np.zeros((2, 1)), T=np.eye(1), v=np.ones(2), vstar=np.ones(1))
    base.update(kw)
    return base


@pytest.mark.parametrize(("kw", "exc", "name"), [
    ({"Q": np.eye(3)}, ValueError, "Q"),
    ({"Q": -np.eye(2)}, ValueError, "Q"),
    ({"T": -np.eye(1)}, ValueError, "T"),
    ({"R": np.full((2, 1), 5.0)}, ValueError, "Q, R, T"),
    ({"v": np.ones(3)}, ValueError, "v"),
    ({"vstar": np.ones(2)}, ValueError, "vstar"),
    ({"rule": "DFA"}, ValueError, "b"),
    ({"rule": "DFA", "b": np.ones(3)}, ValueError, "b"),
    ({"rule": "FA"}, ValueError, "rule"),
    ({"eta": 0.0}, ValueError, "eta"),
    ({"sigma": -0.1}, ValueError, "sigma"),
    ({"activation": "sigmoid"}, ValueError, "activation"),
    ({"activation": 3}, TypeError, "activation"),
    ({"R": np.zeros((2, 0))}, ValueError, "M"),
    ({"Q": np.full((2, 2), np.nan)}, ValueError, "Q"),
    ({"second_order": 1}, TypeError, "second_order"),
    ({"v": np.ones(2) + 1j}, TypeError, "v"),
    ({"eta": [1.0, 2.0, 3.0], "v": np.ones((2, 2))}, ValueError, "batch"),
])
def test_problem_rejects_bad_input(kw: dict[str, object], exc: type[Exception], name: str) -> None:
    with pytest.raises(exc, match=name):
        ts.Problem(**_args(**kw))  # type: ignore[arg-type]


def test_other_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="K"):
        ts.initial_weights(rng, 10, 0, 1)
    with pytest.raises(ValueError, match="M"):
        ts.initial_weights(rng, 10, 1, 1.5)
    with pytest.raises(TypeError, match="rng"):
        ts.initial_weights(0, 10, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cov"):
        av.i3(np.eye(2))
    with pytest.raises(ValueError, match="method"):
        av.i2(np.eye(2), "tanh", method="closed")
    w, wstar = ts.initial_weights(rng, 10, 2, 1)
    with pytest.raises(ValueError, match="eta"):
        ts.simulate(w, wstar, np.ones((1, 2)), np.ones((1, 1)), [1.0], rng, eta=-1.0)
    with pytest.raises(ValueError, match="alphas"):
        ts.simulate(w, wstar, np.ones((1, 2)), np.ones((1, 1)), [1.0, 0.5], rng)
    with pytest.raises(ValueError, match="rule"):
        ts.Flow(ts.activation("erf"), rule="FA")
    with pytest.raises(ValueError, match="observe"):
        ts.solve(ts.Problem(**_args()), 1.0, observe=["loss"])  # type: ignore[arg-type]
