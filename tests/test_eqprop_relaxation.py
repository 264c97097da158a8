"""Relaxation: closed form (an oracle) chained with its ODE, energy descent, nudged transient."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.eqprop import (
    QuadraticEnergy,
    decay,
    energy_along,
    fixed_point,
    loglog_slope,
    nudged_transient,
    relax,
    relaxation_args,
    relaxation_vf,
    transient_coefficient,
    transient_limit,
)

SETTINGS = settings(max_examples=20, deadline=None)


@st.composite
def instances(draw: st.DrawFn) -> tuple[QuadraticEnergy, np.ndarray, np.ndarray, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 6))
    n_out = draw(st.integers(1, n))
    n_in = draw(st.integers(0, 3))
    m = draw(st.integers(1, 3))
    readout = draw(st.sampled_from(["selection", "gaussian"]))
    rng = np.random.default_rng(seed)
    model = QuadraticEnergy.random(rng, n, n_in, n_out, radius=draw(st.floats(0.0, 0.8)),
                                   readout=readout)
    x, d = rng.standard_normal((m, n_in)), rng.standard_normal((m, n_out))
    return model, x, d, rng.standard_normal((m, n))


BETAS = st.sampled_from([0.0, 0.3, 1.0, -0.2])


def _scale(*arrays: np.ndarray) -> float:
    return 1.0 + max(float(np.abs(a).max(initial=0.0)) for a in arrays)


# ------------------------------------------------------------ closed form
def test_decay_is_the_matrix_exponential():
    from scipy.linalg import expm

    rng = np.random.default_rng(0)
    G = rng.standard_normal((4, 4))
    H = G @ G.T + np.eye(4)
    t = np.array([0.0, 0.3, 2.0])
    got = decay(H, t)
    for k, tk in enumerate(t):
        np.testing.assert_allclose(got[k], expm(-H * tk), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(instances(), BETAS)
def test_closed_form_chain(inst, beta):
    """t = 0 identity, semigroup property, t -> ∞ fixed point, d/dt = vector field."""
    model, x, d, s_init = inst
    if beta < 0 and np.linalg.eigvalsh(model.A + beta * model.Q)[0] <= 0.05:
        return
    t = np.array([0.0, 0.4, 1.1])
    traj = relax(model, s_init, t, x, d, beta)
    sc = _scale(traj, x, d)
    assert traj.shape == (3, *s_init.shape)
    np.testing.assert_allclose(traj[0], s_init, atol=1e-12 * sc)
    later = relax(model, traj[1], [0.7], x, d, beta)[0]
    np.testing.assert_allclose(later, traj[2], atol=1e-11 * sc)
    w_min = np.linalg.eigvalsh(model.A + beta * model.Q)[0]
    far = relax(model, s_init, [40.0 / w_min], x, d, beta)[0]
    np.testing.assert_allclose(far, fixed_point(model, x, d, beta), atol=1e-10 * sc)
    H, c = relaxation_args(model, x, d, beta)
    h = 1e-5
    for tk, sk in zip(t[1:], traj[1:], strict=True):
        fd = (relax(model, s_init, [tk + h], x, d, beta)[0]
              - relax(model, s_init, [tk - h], x, d, beta)[0]) / (2 * h)
        (vf,) = relaxation_vf(tk, (sk,), (H, c))
        np.testing.assert_allclose(fd, vf, atol=1e-7 * sc)


@SETTINGS
@given(instances(), BETAS)
def test_energy_is_non_increasing_along_relaxation(inst, beta):
    model, x, d, s_init = inst
    if beta < 0 and np.linalg.eigvalsh(model.A + beta * model.Q)[0] <= 0.05:
        return
    t = np.linspace(0.0, 6.0, 61)
    traj = relax(model, s_init, t, x, d, beta)
    F = energy_along(model, traj, x, d, beta)  # (T, m)
    sc = _scale(F)
    assert F.shape == (61, x.shape[0])
    assert np.all(np.diff(F, axis=0) <= 1e-12 * sc)
    # and it decreases towards the minimum value F(s^β)
    s_star = fixed_point(model, x, d, beta)
    F_star = energy_along(model, s_star[None], x, d, beta)[0]
    assert np.all(F >= F_star - 1e-12 * sc)


# ---------------------------------------------------------- nudged transient
@SETTINGS
@given(instances(), st.floats(0.01, 0.5))
def test_nudged_transient_is_the_scaled_velocity(inst, beta):
    """(1/β) ds/dt from the closed-form relaxation started at s^0 equals -e^{-H t} Pᵀ e."""
    model, x, d, _ = inst
    s0 = fixed_point(model, x)
    t = np.array([0.2, 1.0, 3.0])
    h = 1e-5
    fd = (relax(model, s0, t + h, x, d, beta) - relax(model, s0, t - h, x, d, beta)) / (2 * h * beta)
    got = nudged_transient(model, x, d, t, beta)
    np.testing.assert_allclose(fd, got, atol=1e-6 * _scale(got, x, d) / beta)


@SETTINGS
@given(instances())
def test_transient_limit_rate_and_coefficient(inst):
    """(1/β) ds/dt -> -e^{-At}Pᵀe with error β K(t)Pᵀe + O(β²)."""
    model, x, d, _ = inst
    t = np.array([0.0, 0.5, 1.5, 4.0])
    lim = transient_limit(model, x, d, t)
    K = transient_coefficient(model, x, d, t)
    kn = np.linalg.norm(K)
    if kn < 1e-10 * (1 + np.linalg.norm(lim)):
        return  # e = 0 or Q e^{-At}Pᵀe = 0: no first-order term to measure
    kappa = float(np.linalg.norm(model.Q, 2)) * t[-1]
    betas = np.geomspace(1e-4, 1e-2, 5) / kappa
    errs, resid = [], []
    for b in betas:
        tr = nudged_transient(model, x, d, t, b)
        errs.append(np.linalg.norm(tr - lim))
        resid.append(np.linalg.norm((tr - lim) / b - K))
    assert abs(loglog_slope(betas, errs) - 1) < 0.1
    assert resid[0] <= 1e-3 * kn
    # at t = 0 the scaled velocity is -Pᵀe exactly, whatever β
    np.testing.assert_allclose(nudged_transient(model, x, d, [0.0], 0.3)[0], lim[0], atol=1e-13)


@SETTINGS
@given(instances(), st.floats(0.01, 0.5))
def test_transient_integrates_to_the_nudged_displacement(inst, beta):
    """∫₀^∞ (1/β) ds/dt dt = (s^β − s^0)/β = −(A + βQ)^{-1}Pᵀe, by quadrature of the closed form."""
    model, x, d, _ = inst
    w_min = np.linalg.eigvalsh(model.A + beta * model.Q)[0]
    t = np.linspace(0.0, 40.0 / w_min, 4001)
    v = nudged_transient(model, x, d, t, beta)
    integral = np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(t)[:, None, None], axis=0)
    want = (fixed_point(model, x, d, beta) - fixed_point(model, x)) / beta
    np.testing.assert_allclose(integral, want, atol=2e-4 * _scale(want))


# ----------------------------------------------------------------- batches
def test_batched_relaxation_equals_single():
    rng = np.random.default_rng(11)
    k = 3
    model = QuadraticEnergy.random(rng, 4, 2, 2, batch=(k,))
    x, d = rng.standard_normal((k, 2, 2)), rng.standard_normal((k, 2, 2))
    s_init = rng.standard_normal((k, 2, 4))
    betas = np.array([0.0, 0.2, 0.9])
    t = np.array([0.0, 0.5, 2.0])
    traj = relax(model, s_init, t, x, d, betas)
    tr = nudged_transient(model, x, d, t, betas)
    K = transient_coefficient(model, x, d, t)
    for i in range(k):
        one = QuadraticEnergy(model.W[i], model.b[i], model.U[i], model.P[i])
        np.testing.assert_allclose(traj[i], relax(one, s_init[i], t, x[i], d[i], betas[i]),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tr[i], nudged_transient(one, x[i], d[i], t, betas[i]),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(K[i], transient_coefficient(one, x[i], d[i], t), rtol=1e-12,
                                   atol=1e-12)


def test_bad_times_raise():
    model = QuadraticEnergy.random(np.random.default_rng(0), 3, 1, 1)
    with pytest.raises(ValueError, match=r"t: expected times >= 0, got -1.0"):
        relax(model, np.zeros((1, 3)), [-1.0], np.zeros((1, 1)))


# ------------------------------------------------------- ODE route (linfa.integrate)
@settings(max_examples=10, deadline=None)
@given(instances(), BETAS)
def test_ode_relaxation_matches_closed_form(inst, beta):
    from linfa.eqprop import relax_ode

    model, x, d, s_init = inst
    if beta < 0 and np.linalg.eigvalsh(model.A + beta * model.Q)[0] <= 0.05:
        return
    t = np.linspace(0.0, 5.0, 11)
    sol = relax_ode(model, s_init, t, x, d, beta, rtol=1e-10, atol=1e-12)
    assert np.all(sol.status == 0)
    want = relax(model, s_init, t, x, d, beta)
    np.testing.assert_allclose(sol.states[0], want, atol=1e-8 * _scale(want))
    F = energy_along(model, sol.states[0], x, d, beta)
    assert np.all(np.diff(F, axis=0) <= 1e-9 * _scale(F))


def test_ode_nudged_transient_and_batch():
    """(1/β)·vf along the integrated nudged phase from s^0 → -e^{-At}Pᵀe, rate β; batched over β."""
    from linfa.eqprop import relax_ode

    rng = np.random.default_rng(12)
    model = QuadraticEnergy.random(rng, 5, 2, 2)
    x, d = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    s0 = fixed_point(model, x)
    t = np.linspace(0.0, 3.0, 7)
    betas = np.array([1e-3, 1e-2, 1e-1])

    def scaled_velocity(tt, y, args):
        (v,) = relaxation_vf(tt, y, args)
        return v / args[2][..., None, None]

    H, c = relaxation_args(model, x, d, betas)
    sol = relax_ode(model, s0, t, x, d, betas, rtol=1e-11, atol=1e-13)
    assert sol.states[0].shape == (3, 7, 3, 5)
    from linfa.integrate import integrate

    sol2 = integrate(relaxation_vf, (np.broadcast_to(s0, (3, 3, 5)).copy(),), 3.0,
                     args=(H, c, betas), batch_shape=(3,), saveat=t,
                     observe={"v": scaled_velocity}, rtol=1e-11, atol=1e-13)
    v = sol2.observed["v"]
    np.testing.assert_allclose(v, nudged_transient(model, x, d, t, betas),
                               atol=1e-6 * _scale(v))
    lim = transient_limit(model, x, d, t)
    errs = np.linalg.norm((v - lim[None]).reshape(3, -1), axis=1)
    assert abs(loglog_slope(betas, errs) - 1) < 0.1
    np.testing.assert_allclose(sol.states[0], sol2.states[0], atol=1e-12)
