"""The compiled ``bdf`` (linfa/integrate/compiled_bdf.py) against the batched numpy ``bdf`` (linfa/integrate/bdf.py).

The two routes share the method's coefficients and nothing of its step: one is
batched numpy over all instances, the other a numba loop per instance
interpreting the traced flow, with LAPACK called directly. They must take the
same steps, Jacobians and LUs, end with the same statuses, give the same
result for any batch and thread count, and the compiled one must hand to the
numpy one what it cannot run.

On how far they agree: every operation of the method is done alike on both
routes, down to the order of the sums in the norms and the C library's
``pow`` in the step rules (numpy's SIMD ``power`` differs in the last bit for
about 6% of arguments). So where the tape evaluates the flow exactly as numpy
does (elementwise operations: Robertson, Van der Pol, linear systems written
out by components) the routes are **bit for bit identical** over whole long
runs (:func:`_assert_same`). A flow with matrix products rounds differently
on the two routes (the tape's loops against BLAS), and a stiff BDF run
amplifies that through its discrete decisions (a Newton iteration, an order,
a refactorisation on the edge): the routes then take about the same steps and
agree to the tolerance (:func:`_assert_close`), as the numpy route does with
itself started from ``y0 (1 + 2^-52)``.

Checked by mutation (one change to compiled_bdf.py at a time, each made these
tests fail): the gain ``g = 1``; the rate's ``0.3``; the divergence test
dropped, at ``1 x`` or ``4 x``; the error constant of order ``k - 1``; a sign
in the difference update; ``R(ρ)`` off by one; the interpolant's ``(j - 1) h``;
the bound on a kept LU's contraction doubled; that contraction's floor under
the Newton rate dropped; ``grow_above`` ignored; no move to double
precision; the last step not landed on ``t1``; ``max_steps`` off by one;
``non_finite`` reported as ``stalled``; save points from order ``k - 1``; the
order never raised; the Newton safety factor dropped; no power-of-two scaling
of the right-hand side; ``J`` stored untransposed; a new ``J`` not marked
fresh; the initial step of error order 2; ``dt0`` doubled.
"""

from __future__ import annotations

import numpy as np
import pytest
from _stiff_problems import fa_instance, stiff_fa, stiff_linear
from scipy.linalg import expm

import linfa
from linfa.dynamics import FailedInstancesWarning, solve
from linfa.integrate import BDF, IntegrationError, Status, integrate
from linfa.integrate.compiled_bdf import JACOBIAN_ENTRIES
from linfa.integrate.events import norm_above

COUNTS = ("num_accepted", "num_rejected", "num_flow_evals", "num_jacobians", "num_lu", "num_newton_failures")


def _assert_same(ref, got) -> None:
    """Bit for bit: the same steps, Jacobians, LUs, statuses, final times and saved states."""
    assert ref.stats["kernel"] == "numpy" and got.stats["kernel"] == "compiled"
    for key in COUNTS:
        np.testing.assert_array_equal(got.stats[key], ref.stats[key], err_msg=key)
    np.testing.assert_array_equal(got.status, ref.status)
    np.testing.assert_array_equal(got.t_final, ref.t_final)
    for x, y in zip(ref.states, got.states, strict=True):
        np.testing.assert_array_equal(y, x)


def _assert_close(ref, got, *, rtol: float, t_rtol: float = 1e-12) -> None:
    """Rounding apart: the same statuses, about the same steps (15%, plus 3), final times to ``t_rtol``, saved
    states to ``rtol`` relative to each leaf's size.

    Only the steps are compared: a decision on an edge, flipped by rounding, changes the ones that follow,
    and the rarer events (rejections, refactorisations) move most. The numpy route does the same to itself:
    on the stiff linear system below, started from ``y0 (1 + 2^-52)``, its rejections went from 13 and 22 to
    18 and 35 (the compiled route: 26 and 24) and its steps by 3-4%."""
    assert ref.stats["kernel"] == "numpy" and got.stats["kernel"] == "compiled"
    a, b = ref.stats["num_steps"], got.stats["num_steps"]
    assert np.all(np.abs(a - b) <= 0.15 * a + 3), (a, b)
    np.testing.assert_array_equal(got.status, ref.status)
    np.testing.assert_allclose(got.t_final, ref.t_final, rtol=t_rtol)
    for x, y in zip(ref.states, got.states, strict=True):
        fin = np.isfinite(x)
        np.testing.assert_array_equal(np.isfinite(y), fin)
        scale = np.max(np.abs(x[fin]), initial=1e-300)
        assert np.max(np.abs(x[fin] - y[fin]), initial=0.0) <= rtol * scale


def _by_components(a: np.ndarray):
    """``y' = a y`` written out by components (``n`` leaves of shape ``(*batch, 1)``, the ``a_ij`` as
    arguments): elementwise operations only, which the tape evaluates exactly as numpy does."""
    n = a.shape[-1]

    def field(t, y, args):
        return tuple(sum((args[i * n + j] * y[j] for j in range(1, n)), args[i * n] * y[0]) for i in range(n))

    return field, tuple(a[..., i, j, None] for i in range(n) for j in range(n))


def _fa_problem(K: int, seed: int, cond: float = 1e3, scale: float = 0.5):
    """FA (6, 4, 3), Σxx with eigenvalues log-spaced from 1/cond to 1 in a random basis."""
    return stiff_fa(K, np.random.default_rng(seed), cond, scale)


@pytest.mark.parametrize("single_lu", [True, False])
def test_agrees_with_the_numpy_route_on_a_stiff_fa_problem(single_lu: bool) -> None:
    """Orders 1-5, refactorisations, Newton failures and save points read from the polynomial inside steps;
    the flow's products round differently on the two routes, so they agree to the tolerance."""
    problem = _fa_problem(3, seed=4)
    ts = np.array([0.0, 0.37, 3.0, 10.0, 29.9, 30.0])
    kw = dict(saveat=ts, rtol=1e-8, atol=1e-11, method=BDF(single_lu=single_lu))
    ref = solve(*problem, 30.0, kernel="numpy", **kw)
    got = solve(*problem, 30.0, **kw)  # the default route
    _assert_close(ref, got, rtol=50 * 1e-8, t_rtol=0)
    assert np.all(got.status == Status.success)
    st = got.stats
    assert np.all(st["num_lu"] > st["num_jacobians"]) and np.all(st["num_steps"] > 5 * st["num_lu"])


def test_stiff_linear_field_agrees_with_the_numpy_route_and_with_expm() -> None:
    rng = np.random.default_rng(3)
    K, n = 2, 6
    a, y0 = stiff_linear(K, n, rng, 3)  # eigenvalues -1 .. -1e3
    ts = np.array([0.0, 0.3, 1.0, 2.5, 5.0])
    kw = dict(batch_shape=(K,), method="bdf", rtol=1e-8, atol=1e-11, saveat=ts)
    exact = np.stack([[expm(t * a[i]) @ y0[i] for t in ts] for i in range(K)])

    def field(t, y, args):
        return (args[0] @ y[0],)

    ref = integrate(field, (y0,), 5.0, args=(a,), kernel="numpy", **kw)
    got = integrate(field, (y0,), 5.0, args=(a,), kernel="compiled", **kw)
    _assert_close(ref, got, rtol=50 * 1e-8, t_rtol=0)
    np.testing.assert_allclose(got.states[0], exact, rtol=0, atol=1e-6 * np.max(np.abs(exact)))
    # the same system by components: bit for bit
    by_comp, args = _by_components(a)
    leaves = tuple(y0[:, i] for i in range(n))
    ref = integrate(by_comp, leaves, 5.0, args=args, kernel="numpy", **kw)
    got = integrate(by_comp, leaves, 5.0, args=args, kernel="compiled", **kw)
    _assert_same(ref, got)
    np.testing.assert_allclose(np.stack(got.states, axis=-2), exact, rtol=0, atol=1e-6 * np.max(np.abs(exact)))


@pytest.mark.parametrize(("rtol", "atol"), [(1e-7, 1e-11), (1e-4, 1e-7)])
def test_robertson_kinetics_with_newton_failures_agree_with_the_numpy_route(rtol: float, atol: float) -> None:
    """Robertson's stiff chemical kinetics (three scalar leaves), whose Newton iteration fails and retries;
    at the loose tolerance some of its iterations diverge (``‖δ_m‖ > 2 ‖δ_{m-1}‖``) and are stopped early."""

    def robertson(t, y, args):
        a, b, c = y
        k = args[0]
        return (-0.04 * a + k * b * c, 0.04 * a - k * b * c - 3e7 * b * b, 3e7 * b * b)

    y0 = (np.array([[1.0], [0.9]]), np.zeros((2, 1)), np.array([[0.0], [0.1]]))
    kw = dict(args=(np.array([[1e4], [2e4]]),), batch_shape=(2,), method="bdf", rtol=rtol, atol=atol,
              saveat=np.geomspace(1e-3, 1e3, 6))
    ref = integrate(robertson, y0, 1e3, kernel="numpy", **kw)
    got = integrate(robertson, y0, 1e3, **kw)
    _assert_same(ref, got)
    assert np.all(got.stats["num_newton_failures"] >= 2)
    total = sum(s[:, -1, 0] for s in got.states)  # the kinetics conserve a + b + c
    np.testing.assert_allclose(total, [1.0, 1.0], rtol=10 * rtol)


def test_batch_is_bit_identical_to_solo_runs_whatever_the_threads() -> None:
    rule, task, w0 = _fa_problem(3, seed=5, cond=1e2, scale=0.3)
    ts = np.linspace(0, 200, 5)
    kw = dict(saveat=ts, rtol=1e-6, atol=1e-9, method="bdf", kernel="compiled")
    batch = solve(rule, task, w0, 200.0, threads=2, **kw)
    again = solve(rule, task, w0, 200.0, threads=1, **kw)
    for a, b in zip(batch.states, again.states, strict=True):
        np.testing.assert_array_equal(a, b)
    for i in range(3):
        one = solve(*fa_instance(rule, task, w0, i), 200.0, threads=1, **kw)
        for a, b in zip(one.states, batch.states, strict=True):
            np.testing.assert_array_equal(a[0], b[i])
        for key in COUNTS:
            assert one.stats[key][0] == batch.stats[key][i], key


def test_endings_max_steps_and_non_finite_as_on_the_numpy_route() -> None:
    # max_steps: both routes stop every instance after 40 steps, at about the same time and state
    problem = _fa_problem(2, seed=4)
    kw = dict(rtol=1e-8, atol=1e-11, method="bdf", max_steps=40)
    with pytest.warns(FailedInstancesWarning, match="max_steps"):
        ref = solve(*problem, 30.0, kernel="numpy", **kw)
    with pytest.warns(FailedInstancesWarning, match="max_steps"):
        got = solve(*problem, 30.0, kernel="compiled", **kw)
    assert got.status.tolist() == [Status.max_steps] * 2
    # the step sizes are set by error estimates with rounding noise of about 1e-8 relative (d is a small
    # difference of large terms) on either route, and a decision on an edge (a rejection more or less) moves
    # the 40th step's time: the times agree to 1e-3 and the states to 1e-5
    _assert_close(ref, got, rtol=1e-5, t_rtol=1e-3)
    assert np.all(got.stats["num_steps"] == 40) and np.all(ref.stats["num_steps"] == 40)
    for x, y in zip(ref.state_final, got.state_final, strict=True):
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-5 * np.max(np.abs(x)))
    # y' = a y: e^t overflows near t = 709.8, for that instance alone
    a = np.array([[0.5], [1.0], [-1.0]])
    kw = dict(args=(a,), batch_shape=(3,), method="bdf", rtol=1e-4, atol=1e-12)

    def field(t, y, args):
        return (args[0] * y[0],)

    ref = integrate(field, (np.ones((3, 1)),), 1000.0, kernel="numpy", **kw)
    got = integrate(field, (np.ones((3, 1)),), 1000.0, kernel="compiled", **kw)
    assert got.status.tolist() == [Status.success, Status.non_finite, Status.success]
    _assert_same(ref, got)
    assert 700 < got.t_final[1] < 720
    with pytest.raises(IntegrationError, match="non_finite"):
        integrate(field, (np.ones((3, 1)),), 1000.0, kernel="compiled", throw=True, **kw)


def test_what_the_compiled_route_cannot_run_goes_to_the_numpy_route() -> None:
    problem = _fa_problem(2, seed=4)
    kw = dict(rtol=1e-6, atol=1e-9, method="bdf")
    sol = solve(*problem, 10.0, until=norm_above(1e3), **kw)
    assert sol.stats["kernel"] == "numpy"
    with pytest.raises(ValueError, match=r"kernel: .*until"):
        solve(*problem, 10.0, until=norm_above(1e3), kernel="compiled", **kw)
    assert solve(*problem, 10.0, kernel="numpy", **kw).stats["kernel"] == "numpy"
    lam = np.array([1e4, 1.0])[:, None]

    def forced(t, y, args):  # np.cos of a traced time: not on the tape
        return (-args[0] * (y[0] - np.cos(t)[:, None]),)

    kw = dict(args=(lam,), batch_shape=(2,), method="bdf", rtol=1e-9, atol=1e-12)
    sol = integrate(forced, (np.zeros((2, 1)),), 10.0, **kw)
    assert sol.stats["kernel"] == "numpy" and np.all(sol.status == Status.success)
    with pytest.raises(ValueError, match=r"kernel: .*traced"):
        integrate(forced, (np.zeros((2, 1)),), 10.0, kernel="compiled", **kw)
    with pytest.raises(ValueError, match="kernel"):
        integrate(forced, (np.zeros((2, 1)),), 1.0, kernel="compiled", method="rodas4", args=(lam,),
                  batch_shape=(2,))


def test_given_first_step_empty_interval_and_a_two_axis_batch_as_on_the_numpy_route() -> None:
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((2, 2, 3, 3)))
    a = -np.einsum("bkij,j,bklj->bkil", q, np.logspace(0, 2, 3), q)  # batch (2, 2), eigenvalues -1 .. -100
    y0 = rng.standard_normal((2, 2, 3, 1))
    field, args = _by_components(a)
    leaves = tuple(y0[:, :, i] for i in range(3))

    kw = dict(args=args, batch_shape=(2, 2), method="bdf", rtol=1e-8, atol=1e-11, saveat=[0.0, 0.5, 2.0])
    for extra in ({}, {"dt0": 1e-4}):
        ref = integrate(field, leaves, 2.0, kernel="numpy", **extra, **kw)
        got = integrate(field, leaves, 2.0, kernel="compiled", **extra, **kw)
        _assert_same(ref, got)
        assert got.stats["num_lu"].shape == (2, 2)
        exact = np.einsum("bkij,bkjl->bkil", np.vectorize(expm, signature="(n,n)->(n,n)")(2.0 * a), y0)
        np.testing.assert_allclose(np.stack(got.state_final, axis=-2), exact, rtol=0,
                                   atol=1e-6 * np.max(np.abs(y0)))
    kw["saveat"] = [1.0]
    ref = integrate(field, leaves, 1.0, t0=1.0, kernel="numpy", **kw)
    got = integrate(field, leaves, 1.0, t0=1.0, kernel="compiled", **kw)
    _assert_same(ref, got)
    np.testing.assert_array_equal(np.stack(got.states, axis=-2)[:, :, 0], y0)
    assert np.all(got.status == Status.success)


def test_threads_for_checks_its_arguments_and_caps_at_the_instances() -> None:
    from linfa.integrate import compiled_bdf

    assert compiled_bdf.threads_for(3, 10, 100, threads=8) == 3
    assert compiled_bdf.threads_for(0, 10, 100) == 1
    with pytest.raises(ValueError, match="threads"):
        compiled_bdf.threads_for(4, 3, 10, 0)
    with pytest.raises(ValueError, match="threads"):
        compiled_bdf.threads_for(4, 3, 10, 2.7)
    with pytest.raises(ValueError, match="K"):
        compiled_bdf.threads_for(-3, 3, 10, 2)


@pytest.mark.parametrize("rtol", [1e-4, 1e-7])
def test_elementwise_flows_are_bit_for_bit_the_same_on_both_routes_over_long_runs(rtol: float) -> None:
    """Robertson to t = 4e5, stiff Van der Pol (ε from 1e-6 to 1e-3) and a stiff linear system written out by
    components from random states (D = 6: every norm's sum and the initial step's depend on the order of the
    terms), over hundreds to thousands of steps, LUs kept and refactored, Newton failures: every count and
    every saved state identical."""
    K = 6

    def robertson(t, y, args):
        a, b, c = y
        return (-0.04 * a + args[0] * b * c, 0.04 * a - args[0] * b * c - 3e7 * b * b, 3e7 * b * b)

    def van_der_pol(t, y, args):
        return (y[1], ((1 - y[0] * y[0]) * y[1] - y[0]) / args[0])

    cases = [(robertson, (np.ones((K, 1)), np.zeros((K, 1)), np.zeros((K, 1))), 4e5,
              np.linspace(1e4, 3e4, K)[:, None]),
             (van_der_pol, (np.full((K, 1), 2.0), np.full((K, 1), -0.66)), 2.0, np.logspace(-6, -3, K)[:, None])]
    for field, y0, t1, arg in cases:
        kw = dict(args=(arg,), batch_shape=(K,), method="bdf", rtol=rtol, atol=rtol * 1e-4,
                  saveat=np.linspace(0, t1, 7))
        ref = integrate(field, y0, t1, kernel="numpy", **kw)
        got = integrate(field, y0, t1, kernel="compiled", **kw)
        _assert_same(ref, got)
        st = got.stats
        assert np.all(got.status == Status.success) and np.all(st["num_steps"] > 200)
        assert np.all(st["num_newton_failures"] > 0) and np.all(st["num_lu"] > 2 * st["num_jacobians"])
        assert np.all(st["num_lu"] * 4 < st["num_steps"])  # LUs kept across steps
    a, y0 = stiff_linear(16, 6, np.random.default_rng(11), 4)  # eigenvalues -1 .. -1e4
    by_comp, args = _by_components(a)
    kw = dict(args=args, batch_shape=(16,), method="bdf", rtol=rtol, atol=rtol * 1e-3, saveat=np.linspace(0, 5, 6))
    leaves = tuple(y0[:, i] for i in range(6))
    ref = integrate(by_comp, leaves, 5.0, kernel="numpy", **kw)
    got = integrate(by_comp, leaves, 5.0, kernel="compiled", **kw)
    _assert_same(ref, got)
    assert np.all(got.status == Status.success) and np.all(got.stats["num_lu"] > 2)


def test_memory_does_not_grow_by_a_jacobian_per_instance() -> None:
    """``J`` and the LU live in one workspace per thread, not one per instance.

    An instance leaves the compiled loop only for a new ``J`` or at its end, so
    its LU never outlives the loop's call and its ``J`` only the call for it;
    ``K`` instances must cost their states and differences, not ``K`` Jacobians
    (``D² x 8`` bytes each) and LUs (as many again). Measured as numpy's peak
    allocation (tracemalloc) at ``K = 4`` and ``K = 16`` on an FA (24, 16, 8)
    problem, ``D = 512`` (the Jacobians are computed ``JACOBIAN_ENTRIES / D² = 4``
    instances a call in both): storing them per instance adds ``12 x 2 x 2 MiB``.
    """
    import tracemalloc

    def peak(K: int) -> int:
        rng = np.random.default_rng(3)
        widths = (24, 16, 8)
        task = linfa.Task.teacher(rng.standard_normal((K, 8, 24)) / np.sqrt(24))
        rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=0.3, batch=(K,)))
        w0 = tuple(0.3 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(2))
        tracemalloc.start()
        try:
            sol = solve(rule, task, w0, 1.0, rtol=1e-6, atol=1e-9, method="bdf", threads=1)
            used = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sol.stats["kernel"] == "compiled" and np.all(sol.status == Status.success)
        return used

    D = 24 * 16 + 16 * 8
    assert JACOBIAN_ENTRIES // (D * D) == 4
    peak(4)  # traced and compiled
    assert peak(16) - peak(4) < 12 * (D * D * 8) / 4


@pytest.mark.parametrize("threads", [1, 2])
def test_groups_of_two_give_the_results_of_one_group(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    """Each round hands an instance its own Jacobian in the group's workspace, whatever the group.

    With ``JACOBIAN_ENTRIES`` cut to two Jacobians, five instances run as
    groups of two (and one), each group's rounds reusing its thread's
    workspace; some instances need several Jacobians while others in their
    group have ended or need none. Bit for bit as one group of five.
    """
    from linfa.integrate import compiled_bdf

    problem = _fa_problem(5, seed=2)
    kw = dict(rtol=1e-6, atol=1e-9, method="bdf", kernel="compiled")
    one = solve(*problem, 200.0, threads=1, **kw)
    monkeypatch.setattr(compiled_bdf, "JACOBIAN_ENTRIES", 2 * 36 * 36)
    groups = solve(*problem, 200.0, threads=threads, **kw)
    assert len(set(one.stats["num_jacobians"].tolist())) > 1  # groups whose instances ask for J unevenly
    for key in COUNTS:
        np.testing.assert_array_equal(groups.stats[key], one.stats[key], err_msg=key)
    for a, b in zip(one.states, groups.states, strict=True):
        np.testing.assert_array_equal(b, a)
