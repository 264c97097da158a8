"""Stopping conditions (``until``) with the stiff methods ``rodas4``, ``ros34pw2`` and ``bdf``.

The event time is located on the step's cubic Hermite interpolant (``bdf``: on its interpolating
polynomial); it must agree with closed forms and with the explicit engine's (``dopri5``, located on its
own dense output).
"""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa.dynamics import solve, until
from linfa.integrate import Event, Status, flow_below, integrate, norm_above
from linfa.integrate.rosenbrock import hermite

STIFF = ["rodas4", "ros34pw2", "bdf"]
#: Solver tolerance and the agreement asked for, per method (ros34pw2 has order 3: fewer digits in a few steps;
#: bdf overshoots its tolerance a little where y' = y² steepens).
TOL = {"rodas4": (1e-10, 1e-8), "ros34pw2": (1e-8, 1e-6), "bdf": (1e-10, 3e-8)}


def stiff_decay(t, y, args):
    """``y' = M y`` with ``M = [[-λ, 0], [μ, -μ]]``: ``a' = -λ a`` and a stiff follower ``b' = -μ (b - a)``."""
    return (args[0] @ y[0],)


def stiff_matrix(lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    m = np.zeros((lam.size, 2, 2))
    m[:, 0, 0], m[:, 1, 0], m[:, 1, 1] = -lam, mu, -mu
    return m


def test_hermite_matches_a_cubic_and_its_ends() -> None:
    rng = np.random.default_rng(0)
    c = rng.standard_normal((4, 3))  # y(s) = c0 + c1 s + c2 s^2 + c3 s^3, per component
    h, t0 = 0.7, 0.3

    def y(s):
        return c[0] + c[1] * s + c[2] * s**2 + c[3] * s**3

    def f(s):
        return c[1] + 2 * c[2] * s + 3 * c[3] * s**2

    theta = np.array([0.0, 0.25, 0.6, 1.0])
    got = hermite(np.tile(y(t0), (4, 1)), np.tile(f(t0), (4, 1)), np.tile(y(t0 + h), (4, 1)),
                  np.tile(f(t0 + h), (4, 1)), np.full(4, h), theta)
    want = np.array([y(t0 + th * h) for th in theta])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", STIFF)
def test_event_time_matches_the_closed_form_and_saves_stop_there(method) -> None:
    y0 = np.array([[[1.0], [1.0]], [[2.0], [0.0]], [[4.0], [4.0]]])
    lam, mu = np.ones(3), np.array([1e4, 1e3, 1e5])
    half = Event(lambda t, y, a: y[0][:, 0, 0] - 0.5, name="half")
    ts = np.linspace(0, 10, 21)
    sol = integrate(stiff_decay, (y0,), 10.0, args=(stiff_matrix(lam, mu),), batch_shape=(3,), until=half,
                    method=method, rtol=1e-9, atol=1e-12, saveat=ts)
    assert (sol.status == Status.event).all()
    np.testing.assert_array_equal(sol.event, [0, 0, 0])
    want = np.log(2 * y0[:, 0, 0])
    np.testing.assert_allclose(sol.t_final, want, rtol=1e-7)
    np.testing.assert_allclose(sol.state_final[0][:, 0, 0], 0.5, rtol=1e-7)
    after = ts[None, :] > sol.t_final[:, None]
    assert np.isnan(sol.states[0][after]).all()
    a = sol.states[0][:, :, 0, 0]
    np.testing.assert_allclose(a[~after], (y0[:, None, 0, 0] * np.exp(-ts[None, :]))[~after], rtol=1e-7)
    assert np.isfinite(a[~after]).all()


@pytest.mark.parametrize("method", STIFF)
def test_directions_flow_and_divergence_conditions(method) -> None:
    def lin(t, y, args):
        return (args[0][:, None] * y[0],)

    rtol, check = TOL[method]
    kw = dict(method=method, rtol=rtol, atol=1e-12)
    # rising: y = e^t passes 3 at log 3
    up = Event(lambda t, y, a: y[0][:, 0] - 3.0, direction=1)
    sol = integrate(lin, (np.ones((1, 1)),), 5.0, args=(np.ones(1),), batch_shape=(1,), until=up, **kw)
    np.testing.assert_allclose(sol.t_final, [np.log(3.0)], rtol=check)
    # any crossing: a rotation crosses y_0 = 0 at π/2
    def rot(t, y, args):
        return (y[0] @ np.array([[0.0, -1.0], [1.0, 0.0]]),)

    cross = Event(lambda t, y, a: y[0][:, 0], direction=0)
    sol = integrate(rot, (np.array([[1.0, 0.0]]),), 5.0, batch_shape=(1,), until=cross, **kw)
    np.testing.assert_allclose(sol.t_final, [np.pi / 2], rtol=check)
    # steady state on the flow: |y'| = y0 e^{-t} <= 1e-3
    y0 = np.array([[1.0], [3.0]])
    sol = integrate(lin, (y0,), 50.0, args=(-np.ones(2),), batch_shape=(2,), until=flow_below(1e-3), **kw)
    assert (sol.status == Status.event).all()
    np.testing.assert_allclose(sol.t_final, np.log(y0[:, 0] / 1e-3), rtol=check)
    # already met at t0, and a batch where only one instance diverges: y' = a y^2 -> 1/(1 - a t)
    sol = integrate(lin, (np.array([[0.2], [2.0]]),), 5.0, args=(-np.ones(2),), batch_shape=(2,),
                    until=Event(lambda t, y, a: y[0][:, 0] - 0.5), **kw)
    np.testing.assert_allclose(sol.t_final, [0.0, np.log(4.0)], atol=check)

    def blow(t, y, args):
        return (args[0][:, None] * y[0] * y[0],)

    a = np.array([0.1, 1.0, 0.2])
    sol = integrate(blow, (np.ones((3, 1)),), 3.0, args=(a,), batch_shape=(3,), until=norm_above(10.0), **kw)
    assert sol.status.tolist() == [Status.success, Status.diverged, Status.success]
    np.testing.assert_allclose(sol.t_final[1], 0.9, rtol=check)  # 1/(1 - t) = 10
    np.testing.assert_allclose(sol.state_final[0][[0, 2], 0], 1 / (1 - 3.0 * a[[0, 2]]), rtol=10 * check)


def _fa_problem(K: int, rng: np.random.Generator):
    widths = (5, 4, 3)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    sxx = (q * np.logspace(-2, 0, 5)) @ q.T
    task = linfa.Task.teacher(rng.standard_normal((K, 3, 5)) / np.sqrt(5), sxx=0.5 * (sxx + sxx.T))
    rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=0.3, batch=(K,)))
    w0 = tuple(0.3 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(2))
    return rule, task, w0


@pytest.mark.parametrize("method", STIFF)
def test_loss_threshold_time_agrees_with_dopri5(method) -> None:
    rule, task, w0 = _fa_problem(4, np.random.default_rng(3))
    loss0 = linfa.observables.loss(rule, task, w0)
    stop = until.loss_below(float(np.min(loss0)) * 0.1)
    rtol, check = TOL[method]
    kw = dict(until=stop, saveat=np.linspace(0, 200, 9), atol=1e-12)
    ref = solve(rule, task, w0, 200.0, method="dopri5", rtol=1e-10, **kw)
    got = solve(rule, task, w0, 200.0, method=method, rtol=rtol, **kw)
    assert (ref.status == Status.event).all()
    np.testing.assert_array_equal(got.status, ref.status)
    np.testing.assert_allclose(got.t_final, ref.t_final, rtol=100 * check)
    for a, b in zip(got.state_final, ref.state_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=100 * check, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(got.states[0]), np.isnan(ref.states[0]))
