"""The batched variable-order NDF/BDF method ``bdf``: coefficients, formulas, order, agreement, batching."""

from __future__ import annotations

import numpy as np
import pytest
from _stiff_problems import fa_instance, stiff_fa, stiff_linear
from scipy.linalg import expm

from linfa.dynamics import solve
from linfa.integrate import IntegrationError, Status, integrate, linsolve
from linfa.integrate.bdf import BDF, interpolate, kept_lu_contraction, newton, predict, rescale
from linfa.loglog import loglog_slope


def _stability_angle(m: BDF, k: int) -> float:
    """A(α) of the order-k formula from its boundary locus ``z(ξ)``, ``|ξ| = 1`` (in degrees)."""
    theta = np.linspace(1e-4, np.pi, 100_001)
    w = 1 - np.exp(-1j * theta)  # ∇ on y_n = ξ^n
    z = sum(w**j / j for j in range(1, k + 1)) - m.kappa[k] * m.gamma[k] * w ** (k + 1)
    left = z.real < 0
    if not left.any():
        return 90.0
    return float(np.degrees(np.min(np.arctan2(np.abs(z.imag[left]), -z.real[left]))))


def test_ndf_coefficients_have_the_published_stability_angles_and_gains() -> None:
    """Shampine & Reichelt (1997), Table 1: A(α) of NDF/BDF 1-5 and the NDF's step size gain."""
    ndf, bdf = BDF(), BDF(ndf=False)
    got_ndf = [_stability_angle(ndf, k) for k in range(1, 6)]
    got_bdf = [_stability_angle(bdf, k) for k in range(1, 6)]
    np.testing.assert_allclose(got_ndf, [90, 90, 80, 66, 51], atol=1.0)
    np.testing.assert_allclose(got_bdf, [90, 90, 86, 73, 51], atol=1.0)
    # same error with steps 26%, 26%, 26%, 12%, 0% longer: (C_BDF / C_NDF)^(1/(k+1))
    k = np.arange(1, 6)
    gain = np.abs(bdf.error_const[1:] / ndf.error_const[1:]) ** (1 / (k + 1))
    np.testing.assert_allclose(gain, [1.26, 1.26, 1.26, 1.12, 1.0], atol=0.005)
    np.testing.assert_allclose(bdf.error_const[1:], 1 / (k + 1))  # BDF: C_k = 1/(k+1)


def _differences(values: np.ndarray, k: int) -> np.ndarray:
    """Backward differences ∇^j y_n, j = 0..k, from values y_n, y_{n-1}, ... (axis 1), by repeated differencing."""
    out = [values[:, 0]]
    cur = values
    for _ in range(k):
        cur = cur[:, :-1] - cur[:, 1:]
        out.append(cur[:, 0])
    return np.stack(out, axis=1)


def test_rescaled_differences_and_interpolant_are_those_of_the_same_polynomial() -> None:
    """A polynomial of degree <= k is its own interpolant: rescaling its differences to a new step gives
    its differences on the new grid, and the interpolant evaluates it anywhere."""
    rng = np.random.default_rng(0)
    order = np.array([1, 2, 3, 4, 5, 5, 3])
    n, D, R = order.size, 3, 8
    coef = rng.standard_normal((n, 6, D))
    coef[np.arange(6)[None, :] > order[:, None]] = 0.0  # degree order_i
    t_n = rng.uniform(-1, 1, n)
    h = rng.uniform(0.1, 0.5, n)
    rho = rng.uniform(0.2, 3.0, n)

    def p(t: np.ndarray) -> np.ndarray:  # (n, m) times -> (n, m, D)
        return np.einsum("nmj,njd->nmd", t[..., None] ** np.arange(6), coef)

    def dif_on(step: np.ndarray) -> np.ndarray:
        dif = np.zeros((n, R, D))
        for i, k in enumerate(order):
            grid = t_n[i] - step[i] * np.arange(k + 1)
            dif[i, : k + 1] = _differences(p(np.broadcast_to(grid, (n, k + 1)))[i][None], k)[0]
        return dif

    dif = dif_on(h)
    marker = rng.standard_normal((n, R, D))
    for i, k in enumerate(order):
        dif[i, k + 1 :] = marker[i, k + 1 :]  # rows above the order: left alone
    rescale(dif, order, rho)
    want = dif_on(rho * h)
    for i, k in enumerate(order):
        np.testing.assert_allclose(dif[i, : k + 1], want[i, : k + 1], rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(dif[i, k + 1 :], marker[i, k + 1 :])
    t = t_n + rng.uniform(-2, 0.5, n)
    got = interpolate(want, order, t_n, rho * h, t)
    np.testing.assert_allclose(got, p(t[:, None])[:, 0], rtol=1e-10, atol=1e-10)


def _linear(K: int, rng: np.random.Generator, stiff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``A`` (K, 4, 4): decaying rotations (eigenvalues with real parts in [-stiff, -0.5]) and ``y0`` (K, 4, 1)."""
    a = rng.standard_normal((K, 4, 4))
    q, _ = np.linalg.qr(rng.standard_normal((K, 4, 4)))
    rates = np.logspace(np.log10(0.5), np.log10(stiff), 4)
    a = a - np.swapaxes(a, -1, -2) - np.einsum("kij,j,klj->kil", q, rates, q)
    return a, rng.standard_normal((K, 4, 1))


def test_one_step_has_order_k_plus_1_and_its_error_estimate_is_asymptotically_exact() -> None:
    """From exact history on a grid of step h, one NDF step of order k errs by (C_k / α_k) h^{k+1} y^{(k+1)}
    (the residual C_k h^{k+1} y^{(k+1)} over the formula's leading coefficient α_k), and d = y_{n+1} - y⁽⁰⁾
    is (1 + C_k / α_k) h^{k+1} y^{(k+1)}: the estimate C_k d is α_k + C_k = γ_{k+1} times the actual error.
    Halving h divides the error by 2^{k+1}."""
    m = BDF()
    rng = np.random.default_rng(1)
    a, y0 = _linear(1, rng)
    a, y0 = a[0], y0[0, :, 0]
    t_n = 1.0
    for k in range(1, 6):
        errs, ests = [], []
        for h in (0.02, 0.01):
            hist = np.stack([expm((t_n - j * h) * a) @ y0 for j in range(k + 1)])[None]
            dif = np.zeros((1, 8, 4))
            dif[0, : k + 1] = _differences(hist, k)[0]
            order = np.array([k])
            y_pred, psi = predict(m, dif, order)
            c = np.array([h / m.alpha[k]])
            mat = np.eye(4) - c[0] * a
            conv, d, y, _, _ = newton(lambda pos, yy: yy @ a.T, lambda pos, r, mat=mat: np.linalg.solve(mat, r.T).T,
                                      y_pred, psi, c, np.ones(1), np.ones((1, 4)), np.array([1e-14]),
                                      np.ones(1), 10)
            assert conv.all()
            exact = expm((t_n + h) * a) @ y0
            errs.append(np.linalg.norm(y[0] - exact))
            ests.append(np.linalg.norm(m.error_const[k] * d[0]))
        np.testing.assert_allclose(ests[1] / errs[1], m.gamma[k] + 1 / (k + 1), rtol=0.04, err_msg=f"k = {k}")
        slope = loglog_slope([0.02, 0.01], errs)
        assert k + 0.8 < slope < k + 1.2, (k, slope)


def test_global_error_follows_the_tolerance_on_a_linear_system() -> None:
    rng = np.random.default_rng(2)
    K = 2
    a, y0 = _linear(K, rng, stiff=50.0)
    ts = np.linspace(0, 4, 9)
    exact = np.stack([[expm(t * a[i]) @ y0[i] for t in ts] for i in range(K)])
    errs = []
    tols = np.array([1e-5, 1e-7, 1e-9])
    for rtol in tols:
        sol = integrate(lambda t, y, args: (args[0] @ y[0],), (y0,), 4.0, args=(a,), batch_shape=(K,),
                        method="bdf", rtol=rtol, atol=rtol * 1e-3, saveat=ts)
        assert (sol.status == Status.success).all()
        errs.append(np.max(np.abs(sol.states[0] - exact)) / np.max(np.abs(exact)))
    errs_a = np.array(errs)
    slope = loglog_slope(tols, errs_a)
    # proportional, not exactly: at tighter tolerances the method climbs to higher orders and the error per
    # tolerance drifts (0.2 rtol at 1e-5 to 2 rtol at 1e-9); a method of the wrong order or a broken
    # error estimate gives a slope far from 1
    assert 0.6 < slope < 1.25, (slope, errs_a)
    assert np.all(errs_a < 20 * tols), errs_a


def test_stiff_linear_system_matches_expm_at_interpolated_save_points_and_reuses_its_lu() -> None:
    rng = np.random.default_rng(3)
    K, n = 2, 6
    a, y0 = stiff_linear(K, n, rng, 6)  # eigenvalues -1 .. -1e6
    ts = np.array([0.0, 0.3, 1.0, 2.5, 5.0])
    sol = integrate(lambda t, y, args: (args[0] @ y[0],), (y0,), 5.0, args=(a,), batch_shape=(K,), method="bdf",
                    rtol=1e-9, atol=1e-12, saveat=ts)
    assert (sol.status == Status.success).all() and sol.method == "bdf"
    exact = np.stack([[expm(t * a[i]) @ y0[i] for t in ts] for i in range(K)])
    np.testing.assert_allclose(sol.states[0], exact, rtol=0, atol=1e-7 * np.max(np.abs(exact)))
    st = sol.stats
    assert np.all(st["num_jacobians"] <= 3)  # J is exact and constant: refreshed only on Newton trouble
    assert np.all(st["num_lu"] * 4 < st["num_steps"])


def _fa_problem(K: int, rng: np.random.Generator, cond: float = 1e4, scale: float = 0.5):
    return stiff_fa(K, rng, cond, scale)


def test_agrees_with_rodas4_on_a_stiff_fa_problem() -> None:
    """A small W4: ill-conditioned Σxx (eigenvalues 1e-4 .. 1), long horizon (tsit5 needs ~5x the steps)."""
    rule, task, w0 = _fa_problem(1, np.random.default_rng(4))
    ts = np.array([0.0, 10.0, 300.0, 3e3, 1e4])
    ref = solve(rule, task, w0, 1e4, saveat=ts, rtol=1e-8, atol=1e-11, method="rodas4")
    got = solve(rule, task, w0, 1e4, saveat=ts, rtol=1e-7, atol=1e-10, method="bdf")
    assert np.all(got.status == 0) and np.all(ref.status == 0)
    # a tolerance sets the local error per step; over a long stiff horizon the global error is a modest
    # multiple of it (about an order of magnitude here). 50 rtol allows for that and stays far below the error
    # a wrong coefficient or test leaves (of the size of the solution's change over a step)
    for a, b in zip(got.states, ref.states, strict=True):
        rel = np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))
        assert np.all(rel < 50 * 1e-7), rel
    st = got.stats
    assert np.all(st["num_jacobians"] * 20 < st["num_steps"]) and np.all(st["num_lu"] * 5 < st["num_steps"])
    assert np.all(st["num_steps"] * 2 < ref.stats["num_steps"])


def test_batch_is_bit_identical_to_solo_runs_whatever_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linsolve, "THREAD_DIM", 1)  # spread even these small (36 x 36) LUs over threads
    rule, task, w0 = _fa_problem(3, np.random.default_rng(5), cond=1e2, scale=0.3)
    ts = np.linspace(0, 500, 6)
    kw = dict(saveat=ts, rtol=1e-6, atol=1e-9, method="bdf", kernel="numpy")  # the batched route's LU threads
    batch = solve(rule, task, w0, 500.0, threads=2, **kw)
    for i in range(3):
        one = solve(*fa_instance(rule, task, w0, i), 500.0, threads=1, **kw)
        for a, b in zip(one.states, batch.states, strict=True):
            np.testing.assert_array_equal(a[0], b[i])
        for key in ("num_steps", "num_jacobians", "num_lu", "num_flow_evals"):
            assert one.stats[key][0] == batch.stats[key][i], key


def test_blow_up_is_non_finite_for_that_instance_alone() -> None:
    """y' = a y: e^t overflows near t = 709.8; e^{t/2} does not by t = 1000."""
    a = np.array([[0.5], [1.0], [-1.0]])
    sol = integrate(lambda t, y, args: (args[0] * y[0],), (np.ones((3, 1)),), 1000.0, args=(a,), batch_shape=(3,),
                    method="bdf", rtol=1e-4, atol=1e-12)
    assert sol.status.tolist() == [Status.success, Status.non_finite, Status.success]
    assert 700 < sol.t_final[1] < 720
    np.testing.assert_allclose(np.log(sol.state_final[0][0, 0]), 500.0, atol=0.3)  # rtol 1e-4 over 500 e-folds
    assert abs(sol.state_final[0][2, 0]) < 1e-10
    assert "non-finite" in sol.messages[1]

    def nan_after_1(t, y, args):  # the second instance's flow turns NaN after t = 1
        return (-np.where((args[0] > 0) & (t > 1.0), np.nan, 1.0)[:, None] * y[0],)

    on = np.array([0.0, 1.0])
    sol = integrate(nan_after_1, (np.ones((2, 1)),), 3.0, args=(on,), batch_shape=(2,), method="bdf",
                    saveat=[0.5, 1.0, 2.0, 3.0], rtol=1e-8, atol=1e-12)
    assert sol.status.tolist() == [Status.success, Status.non_finite]
    np.testing.assert_allclose(sol.states[0][0, :, 0], np.exp(-np.array([0.5, 1.0, 2.0, 3.0])), rtol=1e-6)
    assert sol.t_final[1] <= 1.0 and np.isnan(sol.states[0][1, 2:]).all()
    with pytest.raises(IntegrationError, match="non_finite"):
        integrate(nan_after_1, (np.ones((2, 1)),), 3.0, args=(on,), batch_shape=(2,), method="bdf", throw=True)


def test_method_objects_time_dependent_fields_and_errors() -> None:
    lam2 = np.array([1e4, 1.0])[:, None]

    def forced(t, y, args):  # y' = -λ (y - cos t), closed form
        return (-args[0] * (y[0] - np.cos(t)[:, None]),)

    sol = integrate(forced, (np.zeros((2, 1)),), 10.0, args=(lam2,), batch_shape=(2,), method=BDF(max_order=3),
                    rtol=1e-9, atol=1e-12)
    exact = lam2 / (lam2**2 + 1) * (lam2 * np.cos(10.0) + np.sin(10.0)) - lam2**2 / (lam2**2 + 1) * np.exp(-lam2 * 10)
    np.testing.assert_allclose(sol.state_final[0], exact, rtol=1e-6)
    with pytest.raises(ValueError, match="max_order"):
        BDF(max_order=6)
    with pytest.raises(ValueError, match="grow_above"):
        BDF(grow_above=0.5)
    with pytest.raises(ValueError, match="bdf"):
        integrate(forced, (np.zeros((2, 1)),), 1.0, args=(lam2,), batch_shape=(2,), method="bdf6")
    with pytest.raises(ValueError, match="kernel"):
        integrate(forced, (np.zeros((2, 1)),), 1.0, args=(lam2,), batch_shape=(2,), method="bdf", kernel="compiled")
    for bad in (1.0, 0.0, -0.5):
        with pytest.raises(ValueError, match="lu_contraction"):
            BDF(lu_contraction=bad)
    with pytest.raises(TypeError, match="lu_contraction"):
        BDF(lu_contraction="0.3")
    with pytest.raises(ValueError, match="lu_contraction"):
        BDF(lu_contraction=np.nan)


@pytest.mark.parametrize("r", [0.4, 0.7, 1.0, 1.3, 2.0])
def test_a_kept_lu_leaves_the_fraction_of_the_newton_error_the_refactor_bound_is_about(r: float) -> None:
    """One Newton iteration on ``y' = λ y`` with the LU of ``I - c_{LU} λ`` and ``c = r c_{LU}``: the gain
    ``g = 2/(1 + r)`` leaves ``|1 - r|/(1 + r)`` of the error, in a stiff and in a non-stiff component alike
    (the reason ``lu_contraction`` must stay below 1)."""
    lam = np.array([-1e9, -1e-9])  # |c λ| >> 1 and << 1
    c_lu = 1.0
    c = np.full(2, r * c_lu)
    y_pred = np.ones((2, 1))
    psi = np.full((2, 1), 0.25)

    def f(pos, y):
        return lam[pos, None] * y

    def solve(pos, rhs):
        return rhs / (1 - c_lu * lam[pos, None])

    exact = (c * lam - psi[:, 0]) / (1 - c * lam)  # d = c λ (y⁽⁰⁾ + d) - ψ
    _, d, _, _, _ = newton(f, solve, y_pred, psi, c, 2 / (1 + c / c_lu), np.ones((2, 1)), np.zeros(2),
                           np.ones(2), 1)
    np.testing.assert_allclose(np.abs(1 - d[:, 0] / exact), abs(1 - r) / (1 + r), rtol=1e-6, atol=1e-8)


def test_the_kept_lu_contraction_and_the_band_of_c_a_bound_keeps() -> None:
    """``q(r) = |1 - r| / (1 + r)``, ``r = c / c_{LU}``: 0 at ``r = 1``, the same at ``r`` and ``1/r``."""
    assert BDF().lu_contraction == 0.3
    c_lu = np.full(4, 2.0)
    np.testing.assert_allclose(kept_lu_contraction(c_lu * [1.0, 3.0, 1 / 3, 1.5], c_lu), [0.0, 0.5, 0.5, 0.2])
    assert np.isnan(kept_lu_contraction(np.ones(1), np.full(1, np.nan)))[0]


def test_the_newton_test_starts_from_the_kept_lus_contraction_not_an_earlier_rate() -> None:
    """``y' = λ y``, λ = -1e6, the LU kept from ``c_{LU} = 2 c`` (``q = 1/3``) and a rate of 0.01 carried from
    earlier steps: started from that rate the test stops after one iteration, a third of the error left, far
    above the tolerance; started from ``max(ρ, q)`` it iterates until the error is within it."""
    lam, c_lu, c = -1e6, 2e-3, np.array([1e-3])
    y_pred = np.ones((1, 1))
    psi = np.full((1, 1), -0.5)
    tol = np.array([0.1])

    def f(pos, y):
        return lam * y

    def solve(pos, rhs):
        return rhs / (1 - c_lu * lam)

    exact = (c * lam - psi[:, 0]) / (1 - c * lam)  # d = c λ (y⁽⁰⁾ + d) - ψ, about -1.5
    gain = 2 / (1 + c / c_lu)
    q = kept_lu_contraction(c, np.array([c_lu]))
    np.testing.assert_allclose(q, 1 / 3, rtol=1e-3)
    results = {}
    for label, rate in (("carried", np.array([0.01])), ("floored", np.maximum(np.array([0.01]), q))):
        conv, d, _, iters, _ = newton(f, solve, y_pred, psi, c, gain, np.ones((1, 1)), tol, rate, 5)
        assert conv[0]
        results[label] = (abs(d[0, 0] - exact[0]), int(iters[0]))
    # the test's estimate ρ‖δ_m‖ of the error left is below the truth ρ‖δ_m‖/(1 - ρ) by the factor 1 - ρ
    bound = tol[0] / (1 - q[0])
    assert results["carried"][1] == 1 and results["carried"][0] > 2 * bound
    assert results["floored"][1] >= 2 and results["floored"][0] <= bound


def test_every_step_with_a_kept_lu_starts_the_newton_test_from_its_contraction(monkeypatch) -> None:
    """Through the integrator (numpy route; the compiled one is checked bit for bit against it): every Newton
    call gets a rate of at least ``q(r)``, ``r = c / c_{LU}`` read back from the gain ``2 / (1 + r)``; and
    some steps do run on a kept LU with ``r != 1``."""
    from linfa.integrate import bdf as bdf_module

    seen = []
    real_newton = bdf_module.newton

    def spy(f, solve_, y_pred, psi, c, gain, scale, tol, rate, maxiter):
        r = 2 / gain - 1
        seen.append((np.abs(1 - r) / (1 + r), rate.copy()))
        return real_newton(f, solve_, y_pred, psi, c, gain, scale, tol, rate, maxiter)

    monkeypatch.setattr(bdf_module, "newton", spy)
    rule, task, w0 = stiff_fa(4, np.random.default_rng(2), 1e3, 0.5)
    sol = solve(rule, task, w0, 300.0, rtol=1e-6, atol=1e-9, method="bdf", kernel="numpy")
    assert np.all(sol.status == Status.success)
    q = np.concatenate([s[0] for s in seen])
    rate = np.concatenate([s[1] for s in seen])
    assert np.all(rate >= q * (1 - 1e-12))
    assert np.mean(q > 0.05) > 0.05  # the floor is exercised


def test_the_bound_reaches_both_routes() -> None:
    """On each route the default runs as ``lu_contraction=0.3`` (bit for bit), and a wider bound keeps LUs
    across larger changes of ``c``: fewer LUs with 0.5 than with 0.2."""
    rng = np.random.default_rng(8)
    a, y0 = stiff_linear(2, 40, rng, 3)

    def field(t, y, args):
        return (args[0] @ y[0],)

    kw = dict(args=(a,), batch_shape=(2,), rtol=1e-6, atol=1e-9)
    exact = np.stack([expm(2.0 * a[i]) @ y0[i] for i in range(2)])
    for kernel in ("numpy", "compiled"):
        default = integrate(field, (y0,), 2.0, method="bdf", kernel=kernel, **kw)
        same = integrate(field, (y0,), 2.0, method=BDF(lu_contraction=0.3), kernel=kernel, **kw)
        wide = integrate(field, (y0,), 2.0, method=BDF(lu_contraction=0.5), kernel=kernel, **kw)
        tight = integrate(field, (y0,), 2.0, method=BDF(lu_contraction=0.2), kernel=kernel, **kw)
        assert default.stats["kernel"] == kernel
        np.testing.assert_array_equal(default.state_final[0], same.state_final[0])
        np.testing.assert_array_equal(default.stats["num_lu"], same.stats["num_lu"])
        assert np.all(wide.stats["num_lu"] < tight.stats["num_lu"])
        for sol in (default, wide, tight):
            np.testing.assert_allclose(sol.state_final[0], exact, rtol=0, atol=1e-4 * np.max(np.abs(exact)))
