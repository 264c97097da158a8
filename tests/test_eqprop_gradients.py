"""Adjoint gradient vs finite differences; EP estimates -> gradient at rates β and β²."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.eqprop import (
    Params,
    QuadraticEnergy,
    adjoint,
    ep_error_coefficient,
    ep_gradient,
    ep_gradient_closed_form,
    gradient,
    gradient_error,
    loglog_slope,
    loss,
    parameter_derivative,
    params_inner,
    params_norm,
    update_angle,
)

SETTINGS = settings(max_examples=20, deadline=None)


@st.composite
def instances(draw: st.DrawFn, min_n: int = 1) -> tuple[QuadraticEnergy, np.ndarray, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(min_n, 6))
    n_out = draw(st.integers(1, n))
    n_in = draw(st.integers(0, 4))
    m = draw(st.integers(1, 4))
    readout = draw(st.sampled_from(["selection", "gaussian"]))
    radius = draw(st.floats(0.0, 0.8))
    rng = np.random.default_rng(seed)
    model = QuadraticEnergy.random(rng, n, n_in, n_out, radius=radius, readout=readout)
    return model, rng.standard_normal((m, n_in)), rng.standard_normal((m, n_out))


def _sub(a: Params, b: Params, scale: float = 1.0) -> Params:
    return Params(*((u - v) * scale for u, v in zip(a, b, strict=True)))


def _kappa(model: QuadraticEnergy) -> float:
    """||A^{-1} PᵀP||, the scale of β beyond which the expansion in β breaks down."""
    return float(np.linalg.norm(np.linalg.solve(model.A, model.Q), 2))


# --------------------------------------------------------------- adjoint
@SETTINGS
@given(instances(), st.integers(0, 2**32 - 1))
def test_adjoint_gradient_matches_central_differences(inst, seed):
    """Directional derivative of J along random (b, U, symmetric W) directions."""
    model, x, d = inst
    rng = np.random.default_rng(seed)
    g = gradient(model, x, d)
    D = rng.standard_normal((model.n, model.n))
    direction = Params(rng.standard_normal(model.n), rng.standard_normal(model.U.shape), D + D.T)
    h = 1e-5

    def J(t: float) -> float:
        moved = model.replace(b=model.b + t * direction.b, U=model.U + t * direction.U,
                              W=model.W + t * direction.W)
        return float(loss(moved, x, d))

    fd = (J(h) - J(-h)) / (2 * h)
    want = float(params_inner(g, direction))
    assert abs(fd - want) <= 1e-6 * (1 + abs(want) + float(loss(model, x, d)))


def test_symmetric_parametrisation_convention():
    """Moving the single coupling w_ij = w_ji changes J at rate 2 G_ij (G_ii on the diagonal)."""
    rng = np.random.default_rng(7)
    model = QuadraticEnergy.random(rng, 4, 2, 2)
    x, d = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    G = gradient(model, x, d).W
    np.testing.assert_allclose(G, G.T, atol=1e-15)
    h = 1e-6
    for i, j in [(0, 1), (2, 3), (1, 1)]:
        E = np.zeros((4, 4))
        E[i, j] = E[j, i] = 1.0
        fd = (loss(model.replace(W=model.W + h * E), x, d)
              - loss(model.replace(W=model.W - h * E), x, d)) / (2 * h)
        want = G[i, j] * (1 if i == j else 2)
        np.testing.assert_allclose(fd, want, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(instances())
def test_adjoint_solves_its_equation_and_gradient_is_its_average(inst):
    model, x, d = inst
    lam = adjoint(model, x, d)
    s0 = np.linalg.solve(model.A, (model.b + x @ model.U.T).T).T
    e = s0 @ model.P.T - d
    np.testing.assert_allclose(lam @ model.A, e @ model.P, atol=1e-11 * (1 + np.abs(e).max()))
    g = gradient(model, x, d)
    m = x.shape[0]
    np.testing.assert_allclose(g.b, lam.mean(0), atol=1e-13)
    np.testing.assert_allclose(g.U, sum(np.outer(lam[k], x[k]) for k in range(m)) / m, atol=1e-12)
    outer = sum(np.outer(lam[k], s0[k]) for k in range(m)) / m
    np.testing.assert_allclose(g.W, 0.5 * (outer + outer.T), atol=1e-12)


def test_parameter_derivative_is_local_gradient_of_F():
    """∂F/∂θ at fixed s by finite differences of the energy in the parameters."""
    from linfa.eqprop import total_energy

    rng = np.random.default_rng(8)
    model = QuadraticEnergy.random(rng, 4, 2, 2)
    x, s = rng.standard_normal((3, 2)), rng.standard_normal((3, 4))
    g = parameter_derivative(model, s, x)
    D = rng.standard_normal((4, 4))
    D = D + D.T
    DU = rng.standard_normal((4, 2))
    Db = rng.standard_normal(4)
    h = 1e-6

    def F(t: float) -> float:
        moved = model.replace(b=model.b + t * Db, U=model.U + t * DU, W=model.W + t * D)
        return float(np.mean(total_energy(moved, s, x)))

    want = float(params_inner(g, Params(Db, DU, D)))
    np.testing.assert_allclose((F(h) - F(-h)) / (2 * h), want, rtol=1e-7, atol=1e-8)


# ------------------------------------------------------------- EP estimates
@SETTINGS
@given(instances(), st.floats(-0.9, 3.0))
def test_one_sided_estimate_equals_its_closed_form(inst, t):
    """(1/β)(∂F(s^β) − ∂F(s^0)) computed from fixed points equals the μ_β formula, any β."""
    model, x, d = inst
    beta = t / _kappa(model)  # |β| ||A^{-1}Q|| < 1 keeps A + βQ ≻ 0 for β < 0
    if beta == 0:
        return
    ep = ep_gradient(model, x, d, beta)
    cf = ep_gradient_closed_form(model, x, d, beta)
    assert gradient_error(ep, cf) <= 1e-9 * (1 + params_norm(cf)) * (1 + 1 / abs(beta * _kappa(model)))
    g0 = ep_gradient_closed_form(model, x, d, 0.0)
    assert gradient_error(g0, gradient(model, x, d)) <= 1e-12 * (1 + params_norm(g0))


@SETTINGS
@given(instances())
def test_one_sided_error_is_first_order_with_closed_form_coefficient(inst):
    model, x, d = inst
    betas = np.geomspace(1e-4, 1e-2, 5) / _kappa(model)
    g = gradient(model, x, d)
    c1 = ep_error_coefficient(model, x, d)
    est = ep_gradient(model, x, d, betas)  # one batched call over the β sweep
    err = gradient_error(est, g)
    assert abs(loglog_slope(betas, err) - 1) < 0.1
    # error / β -> c1: the discrepancy is itself O(β)
    resid = gradient_error(_sub(est, g, 1.0), Params(*(c * b for c, b in zip(
        c1, (betas[:, None], betas[:, None, None], betas[:, None, None]), strict=True))))
    assert resid[0] / betas[0] <= 1e-3 * params_norm(c1)
    assert abs(loglog_slope(betas, resid) - 2) < 0.2


@SETTINGS
@given(instances())
def test_centred_error_is_second_order_with_closed_form_coefficient(inst):
    model, x, d = inst
    betas = np.geomspace(1e-3, 3e-2, 5) / _kappa(model)
    g = gradient(model, x, d)
    c2 = ep_error_coefficient(model, x, d, centered=True)
    est = ep_gradient(model, x, d, betas, centered=True)
    err = gradient_error(est, g)
    assert abs(loglog_slope(betas, err) - 2) < 0.1
    scaled = Params(*(c * b for c, b in zip(c2, (betas[:, None] ** 2, betas[:, None, None] ** 2,
                                                  betas[:, None, None] ** 2), strict=True)))
    resid = gradient_error(_sub(est, g), scaled)
    assert resid[0] / betas[0] ** 2 <= 1e-3 * params_norm(c2)


@SETTINGS
@given(instances())
def test_coefficients_match_finite_differences_in_beta(inst):
    """c1 = d/dβ of the one-sided estimate at 0, c2 = ½ d²/dβ² of the centred one (closed form)."""
    model, x, d = inst
    h = 1e-3 / _kappa(model)
    f = lambda b: ep_gradient_closed_form(model, x, d, b)
    d1 = _sub(f(h), f(-h), 0.5 / h)
    c1 = ep_error_coefficient(model, x, d)
    assert gradient_error(d1, c1) <= 1e-5 * params_norm(c1)
    g = gradient(model, x, d)
    centred = lambda b: Params(*(0.5 * (p + q) for p, q in zip(f(b), f(-b), strict=True)))
    d2 = _sub(centred(h), g, 1 / h**2)
    c2 = ep_error_coefficient(model, x, d, centered=True)
    assert gradient_error(d2, c2) <= 1e-4 * params_norm(c2) + 1e-15 * params_norm(g) / h**2


@SETTINGS
@given(instances(), st.floats(1e-4, 1e-2))
def test_update_angle_vanishes_with_beta(inst, t):
    model, x, d = inst
    g = gradient(model, x, d)
    beta = t / _kappa(model)
    a1 = update_angle(ep_gradient(model, x, d, beta), g)
    a2 = update_angle(ep_gradient(model, x, d, beta, centered=True), g)
    rel1 = gradient_error(ep_gradient(model, x, d, beta), g, relative=True)
    assert a1 <= 1.01 * np.degrees(np.arcsin(min(rel1, 1.0))) + 1e-5  # angle bounded by relative error
    assert a2 <= a1 + 1e-5
    assert update_angle(g, g) < 1e-5


# ----------------------------------------------------------------- batches
@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_batched_gradients_equal_single(seed, k):
    rng = np.random.default_rng(seed)
    model = QuadraticEnergy.random(rng, 4, 3, 2, batch=(k,))
    x, d = rng.standard_normal((k, 5, 3)), rng.standard_normal((k, 5, 2))
    betas = rng.uniform(0.01, 0.2, size=k)
    batched = [gradient(model, x, d), ep_gradient(model, x, d, betas),
               ep_gradient(model, x, d, betas, centered=True), ep_error_coefficient(model, x, d)]
    for i in range(k):
        one = QuadraticEnergy(model.W[i], model.b[i], model.U[i], model.P[i])
        singles = [gradient(one, x[i], d[i]), ep_gradient(one, x[i], d[i], betas[i]),
                   ep_gradient(one, x[i], d[i], betas[i], centered=True),
                   ep_error_coefficient(one, x[i], d[i])]
        for bt, sg in zip(batched, singles, strict=True):
            for a, b in zip(bt, sg, strict=True):
                np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-12)
    assert np.all(loss(model, x, d) == [loss(QuadraticEnergy(model.W[i], model.b[i], model.U[i],
                                                             model.P[i]), x[i], d[i])
                                        for i in range(k)])


def test_per_sample_gradients_by_broadcasting_average_to_the_dataset_gradient():
    rng = np.random.default_rng(9)
    model = QuadraticEnergy.random(rng, 5, 2, 2)
    x, d = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    per = gradient(model, x[:, None, :], d[:, None, :])  # batch axis of single samples
    whole = gradient(model, x, d)
    for a, b in zip(per, whole, strict=True):
        np.testing.assert_allclose(a.mean(0), b, atol=1e-13)


def test_ep_needs_nonzero_beta():
    import pytest

    model = QuadraticEnergy.random(np.random.default_rng(0), 3, 1, 1)
    with pytest.raises(ValueError, match="beta: the EP estimate needs a nonzero beta"):
        ep_gradient(model, np.zeros((1, 1)), np.zeros((1, 1)), 0.0)
