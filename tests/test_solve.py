"""linfa.solve on learning rules, chained against the closed forms (neural-tangents style)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa import exact, observables
from linfa.dynamics import FailedInstancesWarning, solve, until
from linfa.integrate import IntegrationError, Status

TIGHT = dict(rtol=1e-12, atol=1e-14)


def saxe_problem(batch=(), seed=0):
    rng = np.random.default_rng(seed)
    task = linfa.Task.random_teacher(rng, 4, 3, singular_values=[3.0, 1.5, 0.5], batch=batch)
    net = linfa.DeepLinear((4, 5, 3))
    u0 = np.array([1e-3, 2e-3, 5e-2])
    return task, net, u0


def fa_problem(batch=(3,), seed=0, widths=(4, 6, 3), scale=1e-2):
    rng = np.random.default_rng(seed)
    task = linfa.Task.random_teacher(rng, widths[0], widths[-1], batch=batch)
    fb = linfa.feedback.fa(widths, rng, batch=batch)
    w0 = linfa.DeepLinear(widths).gaussian(rng, scale, batch=batch)
    return linfa.FA(fb), task, w0


# --------------------------------------------------------------------------
# Closed form vs ODE


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_saxe_closed_form_matches_ode(method):
    task, net, u0 = saxe_problem(batch=(2,))
    w0 = net.aligned(task, u0)
    ts = np.linspace(0.0, 8.0, 17)
    sol = solve(linfa.BP(), task, w0, 8.0, saveat=ts, method=method, **TIGHT)
    assert (sol.status == Status.success).all()
    want = exact.saxe_weights(task, ts, u0, net.widths)
    for got, w in zip(sol.states, want, strict=True):
        scale = np.linalg.norm(w, axis=(-2, -1), keepdims=True)
        assert np.max(np.abs(got - w) / scale) <= 1e-7
    # The mode strengths themselves.
    u_svd, s, vt = np.linalg.svd(task.syx)
    w_total = sol.states[1] @ sol.states[0]
    modes = np.einsum("kir,ktij,krj->ktr", u_svd, w_total, vt[:, :3])
    u_exact = exact.saxe_mode(ts[:, None], s[:, None, :], u0)
    np.testing.assert_allclose(modes, u_exact, rtol=1e-7)


def test_saxe_loss_threshold_time_is_located():
    task, net, u0 = saxe_problem()
    w0 = net.aligned(task, u0)
    thr = 0.2
    sol = solve(linfa.BP(), task, w0, 20.0, until=until.loss_below(thr), **TIGHT)
    assert sol.status == Status.event
    s = np.linalg.svd(task.syx, compute_uv=False)

    def loss_at(t):
        return 0.5 * np.sum((s - exact.saxe_mode(t, s, u0)) ** 2)

    from scipy.optimize import brentq

    t_star = brentq(lambda t: loss_at(t) - thr, 0.0, 20.0, xtol=1e-14)
    np.testing.assert_allclose(sol.t_final, t_star, rtol=1e-8)
    np.testing.assert_allclose(observables.loss(linfa.BP(), task, sol.state_final), thr, rtol=1e-8)


# --------------------------------------------------------------------------
# Chained identities: t0, restart, long time


def test_t0_identity():
    rule, task, w0 = fa_problem()
    sol = solve(rule, task, w0, 3.0, saveat=[0.0, 3.0])
    for got, w in zip(sol.states, w0, strict=True):
        np.testing.assert_array_equal(got[:, 0], w)
    same = solve(rule, task, w0, 0.0)
    for got, w in zip(same.state_final, w0, strict=True):
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_restart_equals_direct(method):
    rule, task, w0 = fa_problem()
    direct = solve(rule, task, w0, 10.0, method=method, **TIGHT)
    first = solve(rule, task, w0, 4.0, method=method, **TIGHT)
    second = solve(rule, task, first.state_final, 10.0, t0=4.0, method=method, **TIGHT)
    for a, b in zip(second.state_final, direct.state_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_long_time_fixed_point_is_least_squares():
    rng = np.random.default_rng(3)
    sxx = linfa.spd_with_condition(rng, 4, 5.0)
    task = linfa.Task.random_teacher(rng, 4, 2, sxx=sxx, noise=0.1)
    w0 = linfa.DeepLinear((4, 6, 2)).gaussian(rng, 0.3)
    sol = solve(linfa.BP(), task, w0, 1e3, until=until.steady_state(1e-9), rtol=1e-10, atol=1e-12)
    assert sol.status == Status.event
    assert sol.t_final < 1e3
    np.testing.assert_allclose(sol.state_final[1] @ sol.state_final[0], exact.bp_fixed_point(task),
                               rtol=1e-7, atol=1e-8)


# --------------------------------------------------------------------------
# Conservation laws along trajectories


@pytest.mark.parametrize("rule_name", ["BP", "FA"])
def test_conservation_laws(rule_name):
    rule, task, w0 = fa_problem(widths=(5, 4, 3), scale=0.3)
    if rule_name == "BP":
        rule = linfa.BP()
    ts = np.linspace(0, 15, 16)
    sol = solve(rule, task, w0, 15.0, saveat=ts, observe={"Q": observables.conserved_quantity(1),
                                                         "loss": observables.loss},
                rtol=1e-10, atol=1e-12)
    q = sol.observed["Q"]
    drift = np.abs(q - q[:, :1]).max(axis=(1, 2, 3))
    assert np.all(drift <= 1e-7 * (1 + np.abs(q[:, 0]).max()))
    # The weights did move a lot meanwhile (the test could fail).
    assert np.all(np.abs(sol.states[0][:, -1] - sol.states[0][:, 0]).max(axis=(1, 2)) > 0.1)


# --------------------------------------------------------------------------
# Methods agree; batched equals per instance


def test_methods_agree():
    rule, task, w0 = fa_problem(batch=(2,))
    ts = np.linspace(0, 6, 4)
    ref = solve(rule, task, w0, 6.0, saveat=ts, method="dop853", **TIGHT)
    for method, tol in (("dopri5", 1e-8), ("scipy:LSODA", 1e-5)):
        sol = solve(rule, task, w0, 6.0, saveat=ts, method=method, rtol=1e-10, atol=1e-12)
        for a, b in zip(sol.states, ref.states, strict=True):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())


@settings(deadline=None, max_examples=5)
@given(seed=st.integers(0, 2**31 - 1), rule_kind=st.sampled_from(["BP", "FA", "DFA"]))
def test_batched_equals_per_instance(seed, rule_kind):
    rng = np.random.default_rng(seed)
    K, widths = 4, (3, 4, 4, 2)
    task = linfa.Task.random_teacher(rng, widths[0], widths[-1], batch=(K,))
    if rule_kind == "FA":
        rule = linfa.FA(linfa.feedback.fa(widths, rng, batch=(K,)))
    elif rule_kind == "DFA":
        rule = linfa.DFA(linfa.feedback.dfa(widths, rng, batch=(K,)))
    else:
        rule = linfa.BP()
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.2, batch=(K,))
    ts = np.linspace(0, 3, 4)
    batched = solve(rule, task, w0, 3.0, saveat=ts, rtol=1e-9, atol=1e-12)
    leaves, aux = rule.tree_flatten()
    for k in range(K):
        rk = type(rule).tree_unflatten(aux, [a[k] for a in leaves])
        tk = linfa.Task(task.sxx[k], task.syx[k], task.syy[k])
        one = solve(rk, tk, tuple(w[k] for w in w0), 3.0, saveat=ts, rtol=1e-9, atol=1e-12)
        for a, b in zip(batched.states, one.states, strict=True):
            np.testing.assert_allclose(a[k], b, rtol=1e-9, atol=1e-12)


def test_broadcasting_shared_task_and_feedback():
    rng = np.random.default_rng(5)
    widths = (3, 4, 2)
    task = linfa.Task.random_teacher(rng, 3, 2)
    rule = linfa.FA(linfa.feedback.fa(widths, rng))
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.1, batch=(2, 3))
    sol = solve(rule, task, w0, 2.0, observe={"loss": observables.loss})
    assert sol.states[0].shape == (2, 3, 1, 4, 3)
    assert sol.observed["loss"].shape == (2, 3, 1)
    one = solve(rule, task, tuple(w[1, 2] for w in w0), 2.0)
    np.testing.assert_allclose(sol.states[1][1, 2], one.states[1], rtol=1e-9)


def test_kolen_pollack_mismatch_decays_exactly():
    rng = np.random.default_rng(2)
    widths = (3, 4, 2)
    task = linfa.Task.random_teacher(rng, 3, 2)
    rule = linfa.KolenPollack(0.7)
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.3)
    b0 = linfa.feedback.fa(widths, rng)
    state0 = rule.init_state(w0, b0)
    ts = np.linspace(0, 4, 5)
    sol = solve(rule, task, state0, 4.0, saveat=ts, **TIGHT)
    gap = sol.states[1] - np.swapaxes(sol.states[2], -1, -2)
    want = exact.kolen_pollack_mismatch(ts, w0[1] - b0[0].T, 0.7)
    np.testing.assert_allclose(gap, want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------
# Stopping and failure


def test_divergence_condition_stops_one_instance():
    rng = np.random.default_rng(4)
    w_star = rng.standard_normal((3, 2, 3))
    w_star[1] *= 50.0  # this teacher drives the weights far beyond the bound
    task = linfa.Task.teacher(w_star)
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.1, batch=(3,))
    ts = np.linspace(0, 10, 11)
    with pytest.warns(FailedInstancesWarning, match=r"^1 of 3 instance\(s\) failed \(1 diverged\)") as warned:
        sol = solve(linfa.BP(), task, w0, 10.0, saveat=ts, until=until.diverged(8.0),
                    observe={"loss": observables.loss})
    assert len(warned) == 1
    assert sol.status.tolist() == [Status.success, Status.diverged, Status.success]
    norm = np.sqrt(sum(np.sum(w[1] ** 2) for w in sol.state_final))
    np.testing.assert_allclose(norm, 8.0, rtol=1e-8)
    assert np.isnan(sol.observed["loss"][1, ts > sol.t_final[1]]).all()
    assert np.isfinite(sol.observed["loss"][[0, 2]]).all()
    with pytest.raises(IntegrationError, match="diverged"):
        solve(linfa.BP(), task, w0, 10.0, until=until.diverged(8.0), throw=True)


def test_euler_is_full_batch_gradient_descent():
    rng = np.random.default_rng(6)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3)
    lr, n = 0.05, 20
    sol = solve(linfa.BP(), task, w, lr * n, method="euler", dt0=lr)
    f = linfa.BP().flow(task)
    for _ in range(n):
        w = tuple(a + lr * d for a, d in zip(w, f(0.0, w), strict=True))
    for a, b in zip(sol.state_final, w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# --------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (dict(t1=-1.0), ValueError, "t1"),
        (dict(saveat=[1.0, 0.5]), ValueError, "saveat"),
        (dict(saveat=[0.0, 3.0]), ValueError, "saveat"),
        (dict(rtol=-1e-6), ValueError, "rtol"),
        (dict(atol=0.0), ValueError, "atol"),
        (dict(method="bogus"), ValueError, "method"),
        (dict(state0="wrong shape"), ValueError, "state0"),
        (dict(state0="not a tuple"), TypeError, "state0"),
        (dict(rule="not a rule"), TypeError, "rule"),
        (dict(until=["loss"]), TypeError, "until"),
        (dict(observe={"x": 3}), TypeError, "observe"),
    ],
)
def test_bad_arguments(change, exc, match):
    rule, task, w0 = fa_problem(batch=())
    call = dict(rule=rule, task=task, state0=w0, t1=1.0)
    if change.get("state0") == "wrong shape":
        change = dict(state0=(w0[0], w0[1][:, :-1]))
    elif change.get("state0") == "not a tuple":
        change = dict(state0=np.ones(3))
    call.update(change)
    with pytest.raises(exc, match=match):
        solve(call.pop("rule"), call.pop("task"), call.pop("state0"), call.pop("t1"), **call)


def test_euler_takes_exactly_t_over_dt_steps_and_equals_discrete_gd():
    """Regression: accumulated rounding used to add an 11th sliver step for dt0 = 0.1, t1 = 1."""
    rng = np.random.default_rng(4)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3)
    sol = linfa.solve(linfa.BP(), task, w, 1.0, method="euler", dt0=0.1)
    assert int(np.ravel(sol.stats["num_steps"])[0]) == 10
    state = w
    for _ in range(10):  # ten steps of full-batch gradient descent with learning rate 0.1
        state = tuple(a + 0.1 * d for a, d in zip(state, linfa.BP().dstate(task, state), strict=True))
    for a, b in zip(sol.states, state, strict=True):
        np.testing.assert_allclose(a[..., -1, :, :], b, rtol=1e-12, atol=1e-14)


def test_until_with_a_per_layer_observable_is_a_clear_error():
    from linfa import observables as obs
    from linfa.dynamics import until

    rng = np.random.default_rng(5)
    task = linfa.Task.random_teacher(rng, 3, 2, batch=(4,))
    w = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3, batch=(4,))
    rule = linfa.FA(linfa.feedback.fa((3, 4, 2), rng))
    with pytest.raises(ValueError, match=r"until \(when\(update_angles, 10\)\): expected one value per instance"):
        linfa.solve(rule, task, w, 1.0, until=until.when(obs.update_angles, 10))
    with pytest.raises(ValueError, match="direction: expected -1, 0 or 1"):
        until.when(obs.loss, 0.1, direction=2)
    for method in ("dopri5", "scipy:LSODA"):  # a reduced observable works on both routes
        sol = linfa.solve(rule, task, w, 50.0, method=method,
                          until=until.when(lambda r, t, s: obs.update_angles(r, t, s)[..., -1], 1e-3))
        assert sol.status.shape == (4,)


def test_solve_on_an_empty_batch():
    rng = np.random.default_rng(0)
    task = linfa.Task.teacher(rng.standard_normal((0, 2, 3)))
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.1, batch=(0,))
    rule = linfa.FA((rng.standard_normal((0, 4, 2)),))
    sol = solve(rule, task, w0, 1.0, saveat=[0.0, 1.0], observe={"loss": linfa.observables.loss})
    assert [s.shape for s in sol.states] == [(0, 2, 4, 3), (0, 2, 2, 4)]
    assert sol.observed["loss"].shape == (0, 2) and sol.status.shape == (0,)
