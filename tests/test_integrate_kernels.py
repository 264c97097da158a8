"""The engine's compiled loops against their numpy definitions, and threaded shards against one loop.

Both are claims of bit-identity, so every comparison is ``assert_array_equal``:
the compiled loops must round exactly as the numpy expressions they replace
(no reassociation, no fused multiply-add), and a solve cut into threads must
equal the solve in one loop to the last bit, whatever the cut.
"""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa import observables
from linfa.dynamics import FailedInstancesWarning, solve, until
from linfa.integrate import IntegrationError, Status, schedule
from linfa.integrate._kernels import lincomb_nz, power, scale_rows, scaled_error
from linfa.integrate.methods import METHODS, lincomb


def _rows(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    # magnitudes over many decades, so that any change of rounding shows
    return rng.standard_normal((m, n)) * np.exp(rng.uniform(-20, 20, (m, n)))


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_lincomb_kernel_equals_numpy_lincomb_for_every_tableau_row(method):
    rng = np.random.default_rng(0)
    m = METHODS[method]
    S = m.n_stages
    rows = _rows(rng, S + 2, 1001)
    coefficient_rows = [np.concatenate(([1.0], m.A[i, :i])) for i in range(1, S)]
    coefficient_rows.append(np.concatenate(([1.0], m.B)))
    coefficient_rows += [np.concatenate(([0.0], w)) for w in m.error_weights]
    for c in coefficient_rows:
        idx = np.flatnonzero(c)
        want = lincomb(c, rows[: c.size], np.empty(1001))
        got = np.empty(1001)
        lincomb_nz(idx, c[idx], rows, got)
        np.testing.assert_array_equal(got, want)


def test_lincomb_kernel_propagates_non_finite_like_numpy():
    rng = np.random.default_rng(1)
    rows = _rows(rng, 4, 50)
    rows[1, 3], rows[2, 7], rows[3, 9] = np.inf, np.nan, -np.inf
    c = np.array([0.5, -2.0, 1.0, 3.0])
    got = np.empty(50)
    lincomb_nz(np.arange(4), c, rows, got)
    np.testing.assert_array_equal(got, lincomb(c, rows, np.empty(50)))
    assert np.isnan(got[7]) and np.isinf(got[3])


def test_scale_kernel_equals_numpy_into_a_strided_view():
    rng = np.random.default_rng(2)
    src = _rows(rng, 9, 12)
    h = rng.uniform(1e-6, 1.0, 9)
    buf = np.zeros((9, 30))
    scale_rows(src, h, buf[:, 5:17])
    np.testing.assert_array_equal(buf[:, 5:17], src * h[:, None])
    assert not buf[:, :5].any() and not buf[:, 17:].any()  # nothing written outside the view


def test_scaled_error_kernel_equals_numpy():
    rng = np.random.default_rng(3)
    rows = _rows(rng, 8, 400)
    y, y_new = _rows(rng, 2, 400)
    y_new[[4, 9]] = np.nan, np.inf
    w = np.array([0.0, 0.3, 0.0, -1.2, 2.5, 0.0, 0.1, -0.05])
    idx = np.flatnonzero(w)
    rtol, atol = 1e-6, 1e-9
    want = lincomb(w, rows, np.empty(400)) / np.maximum(np.abs(y) * rtol + atol, np.abs(y_new) * rtol + atol)
    got = np.empty(400)
    sq = np.empty(1)
    scaled_error(idx, w[idx], rows, y, y_new, rtol, atol, got, sq)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[4]) and np.isnan(sq[0])


def _sum_squares_reference(x: np.ndarray) -> float:
    """The compiled path's order: four partial sums over i mod 4, the last D mod 4 terms into the first."""
    s = [0.0, 0.0, 0.0, 0.0]
    full = len(x) - len(x) % 4
    for i in range(full):
        s[i % 4] += float(x[i]) * float(x[i])
    for i in range(full, len(x)):
        s[0] += float(x[i]) * float(x[i])
    return (s[0] + s[1]) + (s[2] + s[3])


@pytest.mark.parametrize("D", [1, 3, 4, 7, 101])
def test_scaled_error_sums_each_instances_squares_in_the_compiled_paths_order(D: int):
    """Per instance of a flat batch, bit for bit: the order decides the last bits (and a step on the edge)."""
    rng = np.random.default_rng(5)
    K = 3
    rows = rng.standard_normal((4, K * D)) * np.exp(rng.uniform(-5, 5, (4, K * D)))
    y, y_new = rng.standard_normal((2, K * D))
    idx = np.array([1, 3])
    got, sq = np.empty(K * D), np.empty(K)
    scaled_error(idx, np.array([0.5, -2.0]), rows, y, y_new, 1e-6, 1e-9, got, sq)
    for k in range(K):
        assert sq[k] == _sum_squares_reference(got[k * D:(k + 1) * D])


# --------------------------------------------------------------------------
# Threads


def _mixed_problem():
    """Seven instances: most converge, one is stopped by a loss threshold, one diverges."""
    rng = np.random.default_rng(4)
    K = 7
    w_star = rng.standard_normal((K, 2, 3))
    w_star[2] *= 50.0  # drives its weights beyond the divergence bound
    task = linfa.Task.teacher(w_star)
    feedback = (rng.standard_normal((K, 4, 2)),)
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.1, batch=(K,))
    return linfa.FA(feedback), task, w0


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853", "euler"])
def test_threads_are_bit_identical_to_one_loop(method):
    rule, task, w0 = _mixed_problem()
    ts = np.linspace(0.0, 3.0, 13)
    kw = dict(saveat=ts, method=method, observe={"loss": observables.loss},
              until=[until.diverged(8.0), until.loss_below(1e-3)],
              dt0=0.005 if method == "euler" else None)
    with pytest.warns(FailedInstancesWarning) as warned:
        one = solve(rule, task, w0, 3.0, threads=1, **kw)
    # the shards see every ending: reaching t1, a stopping condition, a divergence
    assert {Status.success, Status.event, Status.diverged} <= set(one.status.tolist())
    n_diverged = int(np.sum(one.status == Status.diverged))
    assert n_diverged == 1 and not any(Status(s).failed for s in one.status if s != Status.diverged)
    (w,) = warned
    assert str(w.message).startswith("1 of 7 instance(s) failed (1 diverged)")
    for threads in (None, 2, 3, 7, 50):
        with pytest.warns(FailedInstancesWarning, match=r"^1 of 7 instance\(s\) failed \(1 diverged\)") as warned:
            many = solve(rule, task, w0, 3.0, threads=threads, **kw)
        assert len(warned) == 1  # one warning per call, not one per shard
        for a, b in zip(one.states, many.states, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(one.observed["loss"], many.observed["loss"])
        np.testing.assert_array_equal(one.status, many.status)
        np.testing.assert_array_equal(one.t_final, many.t_final)
        for key in ("num_steps", "num_accepted", "num_rejected", "num_flow_evals"):
            np.testing.assert_array_equal(one.stats[key], many.stats[key])


def test_threads_with_a_flow_event_count_the_same_evaluations():
    """A steady-state stop evaluates the flow while locating the event; each instance's count is its own."""
    rng = np.random.default_rng(6)
    K = 16
    task = linfa.Task.teacher(rng.standard_normal((K, 2, 3)))
    w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.3, batch=(K,))
    one = solve(linfa.BP(), task, w0, 50.0, until=until.steady_state(1e-2))
    assert (one.status == Status.event).all()
    for threads in (2, 5):
        many = solve(linfa.BP(), task, w0, 50.0, until=until.steady_state(1e-2), threads=threads)
        np.testing.assert_array_equal(one.t_final, many.t_final)
        for a, b in zip(one.state_final, many.state_final, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(one.stats["num_flow_evals"], many.stats["num_flow_evals"])


def test_threads_with_throw_raise_the_failure():
    rule, task, w0 = _mixed_problem()
    with pytest.raises(IntegrationError, match="diverged"):
        solve(rule, task, w0, 3.0, until=until.diverged(8.0), throw=True, threads=3)


def test_a_failing_shard_stops_the_others():
    """throw=True: a shard that fails early must not wait for a slow shard to run to max_steps."""
    from linfa.integrate import Event, integrate

    def vf(t, y, a):  # instance 0: a fast rotation (many steps); instance 1: growth past |y| = 10
        w, g = a[0][:, None], a[1][:, None]
        return (np.concatenate([-w * y[0][:, 1:] + g * y[0][:, :1], w * y[0][:, :1] + g * y[0][:, 1:]], axis=1),)

    big = Event(lambda t, y, a: 10.0 - np.linalg.norm(y[0], axis=1), status=Status.diverged)
    args = (np.array([2000.0, 0.0]), np.array([0.0, 50.0]))
    y0 = (np.array([[1.0, 0.0], [1.0, 0.0]]),)
    kw = dict(args=args, batch_shape=(2,), until=big, max_steps=5_000, throw=True)
    with pytest.raises(IntegrationError, match="diverged"):
        integrate(vf, y0, 10.0, threads=2, **kw)
    # without throw, the slow instance does run to max_steps: the early stop above was the cancel
    sol = integrate(vf, y0, 10.0, threads=2, **{**kw, "throw": False})
    assert sol.status.tolist() == [Status.max_steps, Status.diverged]


@pytest.mark.parametrize("threads, error", [(0, ValueError), (1.5, ValueError), (True, TypeError),
                                            ("2", TypeError)])
def test_bad_threads_are_named(threads, error):
    rule, task, w0 = _mixed_problem()
    with pytest.raises(error, match="threads"):
        solve(rule, task, w0, 1.0, threads=threads)


def test_scipy_route_refuses_threads():
    rule, task, w0 = _mixed_problem()
    with pytest.raises(ValueError, match="threads"):
        solve(rule, task, w0, 1.0, method="scipy:LSODA", threads=2)


def test_default_plan_with_chunks_and_threads_is_bit_identical(monkeypatch):
    """Force the default plan to cut the batch into chunks of one instance on every core: same bits."""
    rule, task, w0 = _mixed_problem()
    kw = dict(saveat=np.linspace(0.0, 3.0, 7), method="tsit5", until=[until.loss_below(1e-3)], threads=None)
    one = solve(rule, task, w0, 3.0, **{**kw, "threads": 1})
    monkeypatch.setattr(schedule, "CACHE_BYTES", 1)
    monkeypatch.setattr(schedule, "MIN_CHUNK_ENTRIES", 1)
    monkeypatch.setattr(schedule, "THREAD_ENTRIES", 1)
    monkeypatch.setattr(schedule, "cores", lambda: 2)
    assert schedule.plan(7, 20, 7, 4) == (2, 1)
    many = solve(rule, task, w0, 3.0, **kw)
    for a, b in zip(one.states, many.states, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.t_final, many.t_final)
    np.testing.assert_array_equal(one.stats["num_flow_evals"], many.stats["num_flow_evals"])


@pytest.mark.parametrize("K, D, side", [(1, 32, 4), (256, 32, 4), (16, 512, 16), (256, 512, 16), (4096, 512, 16),
                                        (256, 8192, 64), (16, 32768, 128), (1, 524288, 512)])
def test_schedule_plan_follows_its_rule(monkeypatch, K, D, side):
    monkeypatch.setattr(schedule, "cores", lambda: 2)
    threads, chunk = schedule.plan(K, D, 7, side)
    assert 1 <= threads <= min(K, 2) and 1 <= chunk <= K
    # a chunk fits the cache budget, unless that would leave it fewer entries than the minimum
    fits = chunk * 8 * (7 + 6) * D <= schedule.CACHE_BYTES
    assert fits or chunk == K or (chunk - 1) * D < schedule.MIN_CHUNK_ENTRIES
    if side > schedule.BLAS_SERIAL_DIM or K * D < 2 * schedule.THREAD_ENTRIES:
        assert threads == 1  # BLAS threads the products itself, or too little array work per step
    else:
        assert threads == 2
    assert schedule.plan(K, D, 7, side, threads=3)[0] == min(3, K)  # threads= overrides



def test_rms_sums_in_index_order_and_power_is_the_c_librarys_pow():
    """``controller.rms``: ``sqrt(Σ_d x_d² / D)`` summed left to right, as a Python loop over floats does
    (the compiled bdf loop's order); ``power``: ``math.pow`` element by element, with broadcasting."""
    import math

    from linfa.integrate.controller import rms

    rng = np.random.default_rng(5)
    for D in (1, 3, 7, 8, 9, 100, 1001):
        x = rng.standard_normal((4, D)) * np.exp(rng.uniform(-20, 20, (4, D)))
        want = []
        for row in x:
            acc = 0.0
            for v in row:
                acc += v * v
            want.append(math.sqrt(acc / D))
        np.testing.assert_array_equal(rms(x), want)
        np.testing.assert_array_equal(rms(x[:, ::-1].T.T[:, ::-1]), want)  # a non-contiguous view
    assert rms(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="x"):
        rms(np.ones(3))
    base = rng.uniform(0, 3, 2000)
    ex = -1.0 / rng.integers(1, 7, 2000)
    np.testing.assert_array_equal(power(base, ex), [math.pow(b, e) for b, e in zip(base, ex, strict=True)])
    np.testing.assert_array_equal(power(base[:5, None], np.array([0.5, -0.25])),
                                  [[math.pow(b, e) for e in (0.5, -0.25)] for b in base[:5]])
    assert power(np.zeros(0), -0.5).shape == (0,)
    assert power(0.0, -0.5) == np.inf and np.isnan(power(np.nan, 0.5))
