"""The batched stiff method ``rodas4``: tableau, order, agreement with independent routes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

import linfa
from linfa.dynamics import solve
from linfa.integrate import integrate
from linfa.integrate.rosenbrock import Rodas4, step


def _conditions(w: np.ndarray, method: type[Rodas4]) -> np.ndarray:
    """Residuals of the Rosenbrock order conditions up to order 4 (Hairer & Wanner IV.7, Table 7.1)."""
    alpha, big_gamma, _ = method.classical()
    g = method.gamma
    beta = alpha + np.tril(big_gamma, -1)
    bp = beta.sum(axis=1)
    a = alpha.sum(axis=1)
    return np.array([
        w.sum() - 1,
        w @ bp - (0.5 - g),
        w @ a**2 - 1 / 3,
        w @ beta @ bp - (1 / 6 - g + g * g),
        w @ a**3 - 1 / 4,
        w @ (a * (alpha @ bp)) - (1 / 8 - g / 3),
        w @ beta @ a**2 - (1 / 12 - g / 3),
        w @ beta @ beta @ bp - (1 / 24 - g / 2 + 1.5 * g * g - g**3),
    ])


def test_rodas4_satisfies_the_order_conditions_and_its_estimate_has_order_3() -> None:
    _, big_gamma, b = Rodas4.classical()
    assert np.allclose(np.diag(big_gamma), Rodas4.gamma)
    assert np.max(np.abs(_conditions(b, Rodas4))) < 1e-13  # order 4: all 8 conditions
    emb = _conditions(Rodas4.embedded_weights(), Rodas4)
    assert np.max(np.abs(emb[:4])) < 1e-13  # the embedded solution: order 3 ...
    assert np.max(np.abs(emb[4:])) > 1e-3  # ... and not 4
    # stiffly accurate: the last stage's argument plus u_6 is the solution
    np.testing.assert_array_equal(Rodas4.a[5, :5], Rodas4.m[:5])


def test_rodas4_stability_function_is_l_stable() -> None:
    """On y' = λy the step is R(hλ) y; R(-∞) = 0 (L-stable), |R| <= 1 on the left half plane."""
    z = np.concatenate([-np.logspace(-2, 8, 60), 1j * np.logspace(-2, 4, 30) - 1e-9])
    out = []
    for zi in z:
        y, _ = step(Rodas4, lambda dt, v, zi=zi: zi * v, np.ones((1, 1), dtype=complex),
                    np.full((1, 1, 1), zi), np.ones(1))
        out.append(y[0, 0])
    r = np.abs(np.array(out))
    assert np.all(r <= 1 + 1e-12)
    assert r[59] < 1e-6  # hλ = -1e8


def test_order_of_convergence_on_a_linear_problem_with_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 4))
    a = a - np.swapaxes(a, -1, -2) - 0.5 * np.eye(4)  # decaying rotations, two instances
    y0 = rng.standard_normal((2, 4))
    t1 = 2.0
    exact = np.stack([expm(t1 * a[k]) @ y0[k] for k in range(2)])
    errs = []
    for n in (8, 16, 32):
        h = np.full(2, t1 / n)
        y = y0.copy()
        for _ in range(n):
            y, _ = step(Rodas4, lambda dt, v: np.einsum("kij,kj->ki", a, v), y, a, h)
        errs.append(np.max(np.abs(y - exact)))
    slopes = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((slopes > 3.7) & (slopes < 4.6)), slopes


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


def test_agrees_with_dopri5_on_a_non_stiff_rule_problem() -> None:
    rule, task, w0 = _fa_problem(3, (5, 4, 3), np.random.default_rng(1))
    ts = [0.0, 2.0, 7.5, 20.0]
    ref = solve(rule, task, w0, 20.0, saveat=ts, rtol=1e-11, atol=1e-13, method="dopri5")
    got = solve(rule, task, w0, 20.0, saveat=ts, rtol=1e-8, atol=1e-11, method="rodas4",
                observe={"loss": linfa.observables.loss})
    assert np.all(got.status == 0)
    for a, b in zip(got.states, ref.states, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.max(np.abs(b)))
    assert got.observed["loss"].shape == (3, 4)
    # per instance: one instance's result does not depend on its batch neighbours
    one = solve(linfa.FA((rule.feedback[0][1:2],)), linfa.Task(task.sxx[1:2], task.syx[1:2], task.syy[1:2]),
                tuple(w[1:2] for w in w0), 20.0, saveat=ts, rtol=1e-8, atol=1e-11, method="rodas4")
    for a, b in zip(one.states, got.states, strict=True):
        np.testing.assert_allclose(a[0], b[1], rtol=1e-12, atol=1e-14)


def test_stiff_instance_matches_scipy_radau_and_takes_few_steps() -> None:
    """A small W4: ill-conditioned Σxx (eigenvalues 1e-3 .. 1), long horizon."""
    rule, task, w0 = _fa_problem(2, (6, 4, 3), np.random.default_rng(2), cond=1e3)
    t1 = 1e4
    ref = solve(rule, task, w0, t1, rtol=1e-10, atol=1e-12, method="scipy:Radau")  # 1e-12 agrees to 5e-13
    got = solve(rule, task, w0, t1, rtol=1e-6, atol=1e-9, method="rodas4")
    assert np.all(got.status == 0) and np.all(ref.status == 0)
    for a, b in zip(got.state_final, ref.state_final, strict=True):
        rel = np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))
        assert np.all(rel < 1e-5), rel
    explicit = solve(rule, task, w0, t1, rtol=1e-6, atol=1e-9, method="tsit5")
    assert np.all(got.stats["num_steps"] * 4 < explicit.stats["num_steps"])


def test_generic_vf_and_errors() -> None:
    # integrate() with a vector field of 1-D leaves: y' = -100 (y - cos-free target), closed form
    lam = np.array([[-1.0], [-1e4]])

    def vf(t, y, args):
        return (args[0] * y[0],)

    y0 = (np.ones((2, 3)),)
    sol = integrate(vf, y0, 1.0, args=(lam,), batch_shape=(2,), method="rodas4", rtol=1e-9, atol=1e-12,
                    saveat=[0.5, 1.0])
    want = np.exp(lam * np.array([0.5, 1.0]))[:, :, None] * np.ones(3)
    np.testing.assert_allclose(sol.states[0], want, rtol=1e-7, atol=1e-12)
    for obj in (Rodas4, Rodas4()):  # a method object goes wherever the name does
        again = integrate(vf, y0, 1.0, args=(lam,), batch_shape=(2,), method=obj, rtol=1e-9, atol=1e-12,
                          saveat=[0.5, 1.0])
        np.testing.assert_array_equal(again.states[0], sol.states[0])
    # a field depending on t, through an operation with a dual rule (t * ...) and one without (cos)
    lam2 = np.array([1e4, 1.0])

    def forced(t, y, args):
        return (-args[0] * (y[0] - np.cos(t)[:, None]),)

    def ramp(t, y, args):
        return (-args[0] * (y[0] - 1.0 * t[:, None] * np.ones((1, 1))),)

    s1 = integrate(forced, (np.zeros((2, 1)),), 10.0, args=(lam2[:, None],), batch_shape=(2,), method="rodas4",
                   rtol=1e-9, atol=1e-12)
    lm = lam2[:, None]
    exact = lm / (lm**2 + 1) * (lm * np.cos(10.0) + np.sin(10.0)) - lm**2 / (lm**2 + 1) * np.exp(-lm * 10.0)
    np.testing.assert_allclose(s1.state_final[0], exact, rtol=1e-6)
    s2 = integrate(ramp, (np.zeros((2, 1)),), 10.0, args=(lam2[:, None],), batch_shape=(2,), method="rodas4",
                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s2.state_final[0], 10.0 - (1 - np.exp(-lm * 10.0)) / lm, rtol=1e-7)
    with pytest.raises(ValueError, match="rodas4"):
        solve(linfa.BP(), linfa.Task.teacher(np.eye(2)), (np.eye(2), np.eye(2)), 1.0, method="rodas5")


def test_scipy_implicit_route_uses_the_exact_jacobian() -> None:
    """Same stiff linear field written two ways: with ``@`` (dual numbers give J exactly) and with einsum
    (no derivative rule: scipy's finite differences, D extra evaluations per Jacobian)."""
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a = -(q * np.logspace(0, 4, 6)) @ q.T  # eigenvalues -1 .. -1e4

    def vf_matmul(t, y, args):
        return (args[0] @ y[0],)

    def vf_einsum(t, y, args):
        return (np.einsum("kij,kjl->kil", args[0], y[0]),)

    y0 = (np.ones((1, 6, 1)),)
    want = expm(2.0 * a) @ np.ones((6, 1))
    runs = {}
    for name, vf in (("exact", vf_matmul), ("fd", vf_einsum)):
        runs[name] = integrate(vf, y0, 2.0, args=(a[None],), batch_shape=(1,), method="scipy:BDF",
                               rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(runs[name].state_final[0][0], want, rtol=1e-5, atol=1e-9)
    assert runs["exact"].stats["num_flow_evals"][0] < runs["fd"].stats["num_flow_evals"][0]
