"""The Rosenbrock-W method ``ros34pw2``: W-order conditions, order with a wrong W, agreement, reuse."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.linalg import expm

import linfa
from linfa.dynamics import solve
from linfa.integrate import integrate
from linfa.integrate.rosenbrock import AbstractRosenbrock, Rodas4
from linfa.integrate.wmethod import Ros34PW2, transformed, w_step


def _w_conditions(alpha: np.ndarray, big_gamma: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Residuals of the W-method order conditions up to order 3 (any W; Hairer & Wanner IV.7).

    Trees of f-nodes (weights through ``α``) and W-nodes (one child, weights
    through the full ``Γ``); the exact solution has no W, so W-trees need 0.
    """
    one = np.ones(len(w))
    a = alpha @ one
    g = big_gamma @ one
    return np.array([
        w @ one - 1,
        w @ a - 1 / 2,  # f(f)
        w @ g,  # W(f)
        w @ a**2 - 1 / 3,  # f(f, f)
        w @ alpha @ a - 1 / 6,  # f(f(f))
        w @ alpha @ g,  # f(W(f))
        w @ big_gamma @ a,  # W(f(f))
        w @ big_gamma @ g,  # W(W(f))
    ])


def test_ros34pw2_satisfies_the_w_order_conditions_and_a_mutation_fails() -> None:
    al, ga, b, bh = (Ros34PW2.alpha_classical, Ros34PW2.gamma_classical, Ros34PW2.b_classical,
                     Ros34PW2.b_hat_classical)
    assert np.max(np.abs(_w_conditions(al, ga, b))) < 1e-14  # order 3 for any W
    emb = _w_conditions(al, ga, bh)
    assert np.max(np.abs(emb[:3])) < 1e-14 and np.max(np.abs(emb[3:])) > 1e-3  # embedded: order 2, not 3
    # the transformed coefficients used by the step give back the classical form
    alpha, big_gamma, b2 = Ros34PW2.classical()
    np.testing.assert_allclose(alpha, al, atol=1e-14)
    np.testing.assert_allclose(big_gamma, ga, atol=1e-14)
    np.testing.assert_allclose(b2, b, atol=1e-14)
    np.testing.assert_allclose(Ros34PW2.embedded_weights(), bh, atol=1e-14)
    # stiffly accurate: the last stage's argument plus u_4 is the solution
    np.testing.assert_allclose(Ros34PW2.a[3, :3], Ros34PW2.m[:3], atol=1e-14)
    # every single mutated coefficient breaks some condition
    for arr, idx in [(al, (2, 1)), (ga, (3, 1)), (ga, (2, 0)), (b, (1,))]:
        bad = arr.copy()
        bad[idx] += 1e-3
        conds = _w_conditions(bad if arr is al else al, bad if arr is ga else ga, bad if arr is b else b)
        assert np.max(np.abs(conds)) > 1e-5
    # rodas4 is a Rosenbrock method but not a W-method
    r_alpha, r_gamma, r_b = Rodas4.classical()
    assert np.max(np.abs(_w_conditions(r_alpha, r_gamma, r_b))) > 1e-3


def _order_with_wrong_w(method: type[AbstractRosenbrock]) -> np.ndarray:
    """Observed orders on y' = A y (closed form) with W = A + a fixed perturbation."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 4))
    a = a - np.swapaxes(a, -1, -2) - 0.5 * np.eye(4)
    w = a + 0.3 * rng.standard_normal((2, 4, 4))  # a deliberately wrong Jacobian
    y0 = rng.standard_normal((2, 4))
    t1 = 2.0
    exact = np.stack([expm(t1 * a[k]) @ y0[k] for k in range(2)])
    errs = []
    for n in (16, 32, 64):
        h = np.full(2, t1 / n)
        lus = [sla.lu_factor(np.eye(4) / (h[k] * method.gamma) - w[k]) for k in range(2)]

        def lin_solve(r: np.ndarray, lus: list = lus) -> np.ndarray:
            return np.stack([sla.lu_solve(lus[k], r[k]) for k in range(2)])

        y = y0.copy()
        for _ in range(n):
            y, _ = w_step(method, lambda dt, v: np.einsum("kij,kj->ki", a, v), y, lin_solve, h)
        errs.append(np.max(np.abs(y - exact)))
    return np.log2(np.array(errs[:-1]) / np.array(errs[1:]))


def test_order_3_on_a_linear_problem_with_a_perturbed_jacobian() -> None:
    slopes = _order_with_wrong_w(Ros34PW2)
    assert np.all((slopes > 2.7) & (slopes < 3.6)), slopes
    # the same experiment detects a method that needs the exact Jacobian
    assert np.all(_order_with_wrong_w(Rodas4) < 2.5)


def test_transformed_inverts_classical() -> None:
    a, c, m, e = transformed(Ros34PW2.alpha_classical, Ros34PW2.gamma_classical, Ros34PW2.b_classical,
                             Ros34PW2.b_hat_classical)
    np.testing.assert_array_equal(a, Ros34PW2.a)
    np.testing.assert_array_equal(c, Ros34PW2.c)
    np.testing.assert_array_equal(m, Ros34PW2.m)
    np.testing.assert_array_equal(e, Ros34PW2.e)


def _fa_problem(K: int, widths: tuple[int, ...], rng: np.random.Generator, cond: float | None = None):
    n0, nl = widths[0], widths[-1]
    sxx = None
    if cond is not None:
        q, _ = np.linalg.qr(rng.standard_normal((n0, n0)))
        sxx = (q * np.logspace(-np.log10(cond), 0, n0)) @ q.T
        sxx = 0.5 * (sxx + sxx.T)
    w_star = rng.standard_normal((K, nl, n0)) / np.sqrt(n0)
    task = linfa.Task.teacher(w_star, sxx=sxx) if sxx is not None else linfa.Task.teacher(w_star)
    rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=0.1, batch=(K,)))
    w0 = tuple(0.1 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(len(widths) - 1))
    return rule, task, w0


def test_agrees_with_dopri5_and_rodas4_on_a_small_fa_problem() -> None:
    rule, task, w0 = _fa_problem(3, (5, 4, 3), np.random.default_rng(1))
    ts = [0.0, 2.0, 7.5, 20.0]
    ref = solve(rule, task, w0, 20.0, saveat=ts, rtol=1e-11, atol=1e-13, method="dopri5")
    got = solve(rule, task, w0, 20.0, saveat=ts, rtol=1e-8, atol=1e-11, method="ros34pw2")
    ro = solve(rule, task, w0, 20.0, saveat=ts, rtol=1e-8, atol=1e-11, method="rodas4")
    assert np.all(got.status == 0) and got.method == "ros34pw2"
    for a, b, c in zip(got.states, ref.states, ro.states, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.max(np.abs(b)))
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-6 * np.max(np.abs(b)))


def test_stiff_instance_matches_scipy_radau_and_reuses_its_factorisations() -> None:
    """A small W4: ill-conditioned Σxx (eigenvalues 1e-3 .. 1), long horizon."""
    rule, task, w0 = _fa_problem(2, (6, 4, 3), np.random.default_rng(2), cond=1e3)
    t1 = 1e4
    ref = solve(rule, task, w0, t1, rtol=1e-10, atol=1e-12, method="scipy:Radau")
    got = solve(rule, task, w0, t1, rtol=1e-6, atol=1e-9, method="ros34pw2")
    assert np.all(got.status == 0) and np.all(ref.status == 0)
    for a, b in zip(got.state_final, ref.state_final, strict=True):
        rel = np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))
        assert np.all(rel < 1e-5), rel
    st = got.stats
    assert np.all(st["num_jacobians"] * 5 < st["num_steps"])  # W is reused across steps ...
    assert np.all(st["num_lu"] * 2 < st["num_steps"])  # ... and so is its factorisation
    explicit = solve(rule, task, w0, t1, rtol=1e-6, atol=1e-9, method="tsit5")
    assert np.all(st["num_steps"] < explicit.stats["num_steps"])


def test_generic_vf_method_objects_and_errors() -> None:
    lam = np.array([[-1.0], [-1e4]])

    def vf(t, y, args):
        return (args[0] * y[0],)

    y0 = (np.ones((2, 3)),)
    sol = integrate(vf, y0, 1.0, args=(lam,), batch_shape=(2,), method="ros34pw2", rtol=1e-9, atol=1e-12,
                    saveat=[0.5, 1.0])
    want = np.exp(lam * np.array([0.5, 1.0]))[:, :, None] * np.ones(3)
    np.testing.assert_allclose(sol.states[0], want, rtol=1e-6, atol=1e-12)
    for obj in (Ros34PW2, Ros34PW2()):
        again = integrate(vf, y0, 1.0, args=(lam,), batch_shape=(2,), method=obj, rtol=1e-9, atol=1e-12,
                          saveat=[0.5, 1.0])
        np.testing.assert_array_equal(again.states[0], sol.states[0])
    # a field depending on t (exact ∂f/∂t by a dual t)
    lam2 = np.array([1e4, 1.0])[:, None]

    def ramp(t, y, args):
        return (-args[0] * (y[0] - 1.0 * t[:, None] * np.ones((1, 1))),)

    s2 = integrate(ramp, (np.zeros((2, 1)),), 10.0, args=(lam2,), batch_shape=(2,), method="ros34pw2",
                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s2.state_final[0], 10.0 - (1 - np.exp(-lam2 * 10.0)) / lam2, rtol=1e-6)
    with pytest.raises(ValueError, match="ros34pw2"):
        solve(linfa.BP(), linfa.Task.teacher(np.eye(2)), (np.eye(2), np.eye(2)), 1.0, method="ros34pw3")
