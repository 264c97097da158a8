"""The compiled path (traced tape + one compiled loop per instance) against the numpy engine.

The two routes share no step code: the engine is batched numpy
(linfa/integrate/_engine.py), the compiled path a numba loop interpreting
the tape (linfa/integrate/compiled.py). They must take the same steps and
agree to rounding on every problem the compiled path accepts, end with the
same statuses, and the compiled path must fall back to the engine whenever
the tape cannot be trusted.
"""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa.integrate import IntegrationError, Status, _engine, integrate
from linfa.integrate import compiled as compiled_mod
from linfa.integrate import trace as trace_mod
from linfa.integrate.controller import StepSizeController
from linfa.integrate.methods import METHODS
from linfa.integrate.problem import Problem


def _van_der_pol(t, y, a):
    x, v = y
    return (v, a[0] * (1 - x * x) * v - x)


def _lotka_volterra(t, y, a):
    u, v = y
    return (u * (a[0] - v), v * (u - a[0]))


@pytest.mark.parametrize("small_state", [None, 0])
@pytest.mark.parametrize("method", ["tsit5", "dopri5"])
@pytest.mark.parametrize("field", [_van_der_pol, _lotka_volterra])
def test_elementwise_fields_are_bit_for_bit_the_engines(field, method, small_state, monkeypatch):
    """Where the tape computes the field as numpy does (no matrix product), every other operation of the
    step is done alike on both routes (the stage sums, the error norm's partial sums, libm's pow), so the
    steps, the final states and the states saved from the dense output are identical to the last bit
    (hundreds of steps, accepted and rejected); with the loop's own combinations (small states, the
    default here) and with the engine's kernels (``SMALL_STATE = 0``)."""
    if small_state is not None:
        monkeypatch.setattr(compiled_mod, "SMALL_STATE", small_state)
    K = 4
    y0 = (np.linspace(0.5, 2, K)[:, None], np.linspace(0.0, 1.0, K)[:, None] + 0.5 * (field is _lotka_volterra))
    args = (np.linspace(0.5, 3, K)[:, None],)
    kw = dict(args=args, batch_shape=(K,), method=method, rtol=1e-8, atol=1e-10, saveat=np.linspace(0, 30, 7))
    a = integrate(field, y0, 30.0, kernel="numpy", **kw)
    b = integrate(field, y0, 30.0, kernel="compiled", **kw)
    assert a.stats["num_rejected"].sum() > 0 and a.stats["num_accepted"].max() > 200  # rejections, long runs
    for key in ("num_accepted", "num_rejected", "num_flow_evals"):
        np.testing.assert_array_equal(b.stats[key], a.stats[key], err_msg=key)
    for x, y in zip(a.states, b.states, strict=True):
        np.testing.assert_array_equal(y, x)


def _assert_same(a, b, *, rtol=1e-12):
    """Same steps, statuses and (to rounding) states of two solutions."""
    for key in ("num_accepted", "num_rejected", "num_flow_evals", "stiff"):
        np.testing.assert_array_equal(a.stats[key], b.stats[key], err_msg=key)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.t_final, b.t_final, rtol=1e-14)
    for x, y in zip(a.states, b.states, strict=True):
        fin = np.isfinite(y)
        np.testing.assert_array_equal(np.isfinite(x), fin)
        scale = np.max(np.abs(y[fin]), initial=1e-300)
        assert np.max(np.abs(x[fin] - y[fin]), initial=0.0) <= rtol * scale


class Damped(linfa.AbstractRule):
    """A user's rule (not registered): FA feedback at half strength plus weight decay on every layer."""

    name = "Damped"
    feedback_layout = linfa.rules.FeedbackLayout.layerwise()

    def _signals(self, state, e):
        out = [e]
        for b in reversed(self.feedback):
            out.append(0.5 * (b @ out[-1]))
        out.reverse()
        return out

    def dstate(self, task, state):
        return tuple(g - 0.1 * w for g, w in zip(super().dstate(task, state), state, strict=True))


def _rules(rng, widths, K):
    fa = tuple(rng.standard_normal((K, widths[l - 1], widths[l])) / np.sqrt(widths[l]) for l in range(2, len(widths)))
    dfa = tuple(rng.standard_normal((K, w, widths[-1])) / np.sqrt(widths[-1]) for w in widths[1:-1])
    return {"BP": linfa.BP(), "FA": linfa.FA(fa), "DFA": linfa.DFA(dfa), "SignSymmetry": linfa.SignSymmetry(),
            "Damped": Damped(fa), "KolenPollack": (linfa.KolenPollack(0.2), fa)}


@pytest.mark.parametrize("name", ["BP", "FA", "DFA", "SignSymmetry", "KolenPollack", "Damped"])
@pytest.mark.parametrize("whitened", [True, False])
def test_rules_compiled_agree_with_the_engine(name, whitened):
    rng = np.random.default_rng(5)
    K, widths = 3, (4, 5, 3, 2)
    rule = _rules(rng, widths, K)[name]
    sxx = None
    if not whitened:
        x = rng.standard_normal((K, 4, 6))
        sxx = x @ np.swapaxes(x, -1, -2) / 6
    task = linfa.Task.teacher(rng.standard_normal((K, 2, 4)) / 2, sxx=sxx)
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.3, batch=(K,))
    if isinstance(rule, tuple):  # Kolen-Pollack: the feedback is part of the state
        rule, fb = rule
        w0 = rule.init_state(w0, fb)
    ts = np.linspace(0.0, 5.0, 6)
    kw = dict(saveat=ts, rtol=1e-7, atol=1e-10, method="tsit5", observe={"loss": linfa.observables.loss})
    plan, why = _plan(rule, task, w0, ts)
    assert plan is not None, why
    a = linfa.solve(rule, task, w0, 5.0, kernel="compiled", **kw)
    b = linfa.solve(rule, task, w0, 5.0, kernel="numpy", **kw)
    # sign(W) jumps where an entry crosses zero: there a rounding difference moves the jump by a stage
    rtol = 1e-6 if name == "SignSymmetry" else 1e-12
    _assert_same(a, b, rtol=rtol)
    np.testing.assert_allclose(a.observed["loss"], b.observed["loss"], rtol=10 * rtol, atol=1e-13)
    assert (a.status == Status.success).all()


def _plan(rule, task, w0, ts):
    from linfa.dynamics.problem import prepare, vector_field

    y0, args, batch, unpack = prepare(rule, task, w0)
    p = Problem.build(vector_field(unpack), y0, float(ts[-1]), t0=0.0, args=args, batch_shape=batch, saveat=ts,
                      observe=None, controller=StepSizeController(), max_steps=1000, until=None, throw=False)
    return compiled_mod.plan_compiled(p, METHODS["tsit5"])


def _decay(t, y, a):
    """Two leaves, time-dependent forcing, a per-instance rate and a shared matrix."""
    rate = a[0][:, None]
    return (-rate * y[0] + (0.5 * t)[:, None] * np.ones(2), a[1] @ y[1] - y[1] * 0.25)


@pytest.mark.parametrize("method", ["tsit5", "dopri5"])
def test_a_plain_vector_field_compiled_agrees_with_the_engine(method):
    rng = np.random.default_rng(1)
    K = 4
    y0 = (rng.standard_normal((K, 2)), rng.standard_normal((K, 3, 2)))
    args = (rng.uniform(0.5, 2.0, K), np.array([[[0.0, 1.0, 0.0], [-1.0, 0.0, 0.5], [0.0, -0.5, 0.0]]]))
    kw = dict(args=args, batch_shape=(K,), saveat=np.linspace(0, 3, 7), method=method, rtol=1e-8, atol=1e-10)
    a = integrate(_decay, y0, 3.0, kernel="compiled", **kw)
    b = integrate(_decay, y0, 3.0, kernel="numpy", **kw)
    _assert_same(a, b)
    # and the exact solution of the first leaf: y' = -r y + t/2
    r = args[0][:, None, None]
    t = np.linspace(0, 3, 7)[None, :, None]
    exact = (y0[0][:, None] + 0.5 / r**2) * np.exp(-r * t) + 0.5 * t / r - 0.5 / r**2
    np.testing.assert_allclose(a.states[0], exact, rtol=1e-6, atol=1e-8)


def test_the_default_call_takes_the_compiled_path_for_a_small_problem(monkeypatch):
    calls = []
    real = compiled_mod.run
    monkeypatch.setattr(compiled_mod, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    y0 = (np.ones((2, 3)),)
    sol = integrate(lambda t, y, a: (-y[0],), y0, 1.0, batch_shape=(2,), rtol=1e-10, atol=1e-12)
    assert calls == [1] and sol.stats["kernel"] == "compiled"
    np.testing.assert_allclose(sol.state_final[0], np.exp(-1.0), rtol=1e-9)


def test_statuses_match_the_engine_on_constructed_failures():
    def vf(t, y, a):
        # instance 0: y' = y^5 from 1e50 (the flow overflows); 1: y' = -1e4 (y - 1) (stiff);
        # 2: y' = 1/(1 - t)^2 (finite values, the step must vanish at t = 1); 3: a rotation (smooth)
        q = 1.0 / ((1.0 - t) * (1.0 - t))
        y5 = y[0] * y[0] * y[0] * y[0] * y[0]
        return (a[0][:, None] * y5 + a[1][:, None] * (y[0] - 1.0) + a[2][:, None] * q[:, None]
                + a[3][:, None] * y[1], -a[3][:, None] * y[0] * np.ones(1))

    sel = np.eye(4)
    args = (sel[0], -1e4 * sel[1], sel[2], sel[3])
    y0 = (np.array([[1e50], [0.0], [0.0], [1.0]]), np.zeros((4, 1)))
    kw = dict(args=args, batch_shape=(4,), method="dopri5", max_steps=2000)
    a = integrate(vf, y0, 2.0, kernel="compiled", **kw)
    b = integrate(vf, y0, 2.0, kernel="numpy", **kw)
    assert a.status.tolist() == b.status.tolist() == [Status.non_finite, Status.max_steps, Status.stalled,
                                                       Status.success]
    assert a.stats["stiff"].tolist() == b.stats["stiff"].tolist() == [False, True, False, False]
    np.testing.assert_allclose(a.t_final, b.t_final, rtol=1e-6)  # 2000 steps at the stability limit: noisy
    # the same steps, except on the way into the singularity of instance 2: there a last-bit difference
    # (numpy's vectorised power in the step-size rule is not libm's) decides steps at the limit
    for key in ("num_accepted", "num_rejected"):
        np.testing.assert_array_equal(a.stats[key][[0, 1, 3]], b.stats[key][[0, 1, 3]])
    # throw=True: the failure the engine meets first (the overflow at t0, then the vanished step)
    for kernel in ("compiled", "numpy"):
        with pytest.raises(IntegrationError, match="non_finite"):
            integrate(vf, y0, 2.0, kernel=kernel, throw=True, **kw)
        with pytest.raises(IntegrationError, match=r"instance \(1,\) .* status stalled"):  # before max_steps
            integrate(vf, tuple(y[1:] for y in y0), 2.0, kernel=kernel, throw=True,
                      **{**kw, "args": tuple(a[1:] for a in args), "batch_shape": (3,)})


def test_the_stiffness_flag_is_h_rho_against_the_stability_limit():
    """On y' = -λ y the last two stages give ρ = λ exactly, so one step of size dt0 is flagged iff
    dt0 λ >= STIFF_FRACTION x (the stability limit)."""
    m = METHODS["dopri5"]
    frac = np.array([0.3, 0.45, 0.55, 0.8, 0.95, 1.2, 3.0])
    lam = frac * m.stability_limit
    kw = dict(args=(lam,), batch_shape=(len(lam),), method="dopri5", max_steps=1, dt0=1.0)
    for kernel in ("compiled", "numpy"):
        sol = integrate(lambda t, y, a: (-a[0][:, None] * y[0],), (np.ones((len(lam), 1)),), 100.0, kernel=kernel,
                        **kw)
        assert (sol.status == Status.max_steps).all()
        np.testing.assert_array_equal(sol.stats["stiff"], frac >= _engine.STIFF_FRACTION)


def test_a_remainder_of_a_few_ulps_is_not_a_step_of_its_own():
    """Ten steps of 0.1 reach 0.9999999999999999, not 1: the tenth is the last (no sliver step)."""
    ctrl = StepSizeController(dt0=0.1, max_factor=1.0)
    for kernel in ("compiled", "numpy"):
        sol = integrate(lambda t, y, a: (0.0 * y[0],), (np.ones((1, 1)),), 1.0, stepsize=ctrl, kernel=kernel,
                        batch_shape=(1,))
        assert sol.stats["num_accepted"].tolist() == [10] and sol.t_final[0] == 1.0


def test_thread_counts_give_bit_identical_results():
    rng = np.random.default_rng(2)
    K, widths = 5, (3, 4, 2)
    rule = linfa.FA((rng.standard_normal((K, 4, 2)),))
    task = linfa.Task.random_teacher(rng, 3, 2)
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.1, batch=(K,))
    sols = [linfa.solve(rule, task, w0, 4.0, saveat=[1.0, 4.0], kernel="compiled", threads=n) for n in (1, 2, 3)]
    for s in sols[1:]:
        for x, y in zip(s.states, sols[0].states, strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(s.stats["num_steps"], sols[0].stats["num_steps"])


def test_a_field_the_tracer_cannot_follow_falls_back_to_the_engine():
    def vf(t, y, a):
        return (-np.cos(t)[:, None] * y[0],)  # numpy.cos has no tape operation

    y0 = (np.ones((2, 1)),)
    kw = dict(batch_shape=(2,), saveat=[0.5, 1.0])
    default = integrate(vf, y0, 1.0, **kw)
    engine = integrate(vf, y0, 1.0, kernel="numpy", **kw)
    for x, y in zip(default.states, engine.states, strict=True):
        np.testing.assert_array_equal(x, y)
    assert default.stats["kernel"] == "numpy"
    with pytest.raises(ValueError, match=r"^kernel: the compiled path cannot run this problem: .*numpy.cos"):
        integrate(vf, y0, 1.0, kernel="compiled", **kw)


@pytest.mark.parametrize("vf", [
    lambda t, y, a: (y[0] if y[0][0, 0] > 0 else -y[0],),  # Python control flow on values
    lambda t, y, a: (y[0][0] * y[0],),  # indexing across instances
    lambda t, y, a: (np.asarray(y[0]) * 2,),  # conversion to an array
])
def test_untraceable_fields_fall_back_and_still_give_the_engines_answer(vf):
    y0 = (np.full((2, 2), 0.5),)
    default = integrate(vf, y0, 1.0, batch_shape=(2,))
    engine = integrate(vf, y0, 1.0, batch_shape=(2,), kernel="numpy")
    np.testing.assert_array_equal(default.states[0], engine.states[0])


def test_a_wrong_tape_is_caught_by_the_validation_and_falls_back(monkeypatch):
    real = trace_mod.trace

    def corrupted(*args, **kwargs):
        tape = real(*args, **kwargs)
        code = tape.code.copy()
        sub = np.flatnonzero(code[:, 0] == trace_mod.SUB)[0]
        code[sub, 0] = trace_mod.ADD  # E = Σyx + W instead of Σyx - W
        return trace_mod.Tape(code, tape.template, tape.D, tape.A, tape.out_off, tape.arg_shapes)

    monkeypatch.setattr(compiled_mod, "trace", corrupted)
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 2)
    w0 = linfa.DeepLinear((3, 3, 2)).gaussian(rng, 0.1, batch=(2,))
    with pytest.raises(ValueError, match="does not reproduce the field"):
        linfa.solve(linfa.BP(), task, w0, 1.0, kernel="compiled")
    default = linfa.solve(linfa.BP(), task, w0, 1.0)
    engine = linfa.solve(linfa.BP(), task, w0, 1.0, kernel="numpy")
    np.testing.assert_array_equal(default.states[1], engine.states[1])


def _T(x):
    return np.swapaxes(x, -1, -2)


def _every_op(t, y, a):
    """Products with every transpose flag (small ones in loops, 16 x 16 ones by BLAS), elementwise ops
    with per-instance and constant scalars, sign, negation, a materialised transpose."""
    w, v = y
    m = w @ _T(v) - 2.0 * (_T(_T(w)) @ _T(w))
    g = _T(w) @ v
    q = _T(g) @ _T(w)
    big = a[1] @ (_T(a[2]) @ _T(a[2])) @ _T(a[1])
    s = np.sign(_T(m) + m) / (1.0 + a[0][:, None, None] * a[0][:, None, None])
    r = (1.0 - w) * 0.5 - t[:, None, None] + 0.25 + 2.0 / (1.0 + w * w) + (0.5 + w) / 3.0  # scalars either side
    return (-(s @ w) + t[:, None, None] * w + _T(q) @ g * 0.5, _T(_T(m) @ big) @ v - w + r)


def test_the_compiled_interpreter_matches_the_field_and_the_numpy_reference():
    cores, arg_shapes, m = [(3, 2), (3, 2)], [(), (3, 16), (16, 16)], 5
    tape = trace_mod.trace(_every_op, cores, arg_shapes, m)
    ops = set(tape.code[:, 0].tolist())
    assert ops == set(trace_mod.OPS.values())
    mm = tape.code[tape.code[:, 0] == trace_mod.MATMUL]
    assert set(mm[:, 7].tolist()) == {0, 1, 2, 3}
    size = mm[:, 4] * mm[:, 5] * mm[:, 6]
    assert size.max() >= compiled_mod.BLAS_MIN_FLOPS > size.min()  # both product routes
    rng = np.random.default_rng(4)
    y = rng.standard_normal((m, 12))
    y[0, :6] = 0.0  # sign(0)
    args = rng.standard_normal((m, 1 + 48 + 256))
    t = rng.standard_normal(m)
    plan = compiled_mod.Plan(tape, args, np.array([0, 6]), np.array([6, 6]))
    got = plan.evaluate(y, args, t)
    ref = np.concatenate([o.reshape(m, -1) for o in trace_mod.evaluate(tape, cores, y, args, t)], axis=1)
    a = (args[:, 0], args[:, 1:49].reshape(m, 3, 16), args[:, 49:].reshape(m, 16, 16))
    field = _every_op(t, (y[:, :6].reshape(m, 3, 2), y[:, 6:].reshape(m, 3, 2)), a)
    want = np.concatenate([o.reshape(m, -1) for o in field], axis=1)
    np.testing.assert_allclose(ref, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_kernel_is_validated():
    y0 = (np.ones((1, 1)),)
    with pytest.raises(ValueError, match=r"^kernel: expected one of 'compiled', 'numpy'"):
        integrate(lambda t, y, a: (-y[0],), y0, 1.0, batch_shape=(1,), kernel="numba")
    with pytest.raises(ValueError, match=r"^kernel: 'compiled' runs the explicit"):
        integrate(lambda t, y, a: (-y[0],), y0, 1.0, batch_shape=(1,), method="rodas4", kernel="compiled")
    with pytest.raises(ValueError, match="extra stages"):
        integrate(lambda t, y, a: (-y[0],), y0, 1.0, batch_shape=(1,), method="dop853", kernel="compiled")


def test_products_large_enough_for_blas_threads_run_compiled_on_one_loop_thread(monkeypatch):
    """Rule of schedule.compiled_threads: a product of more than BLAS_THREADED_FLOPS multiply-adds runs
    compiled by default, on one loop thread (OpenBLAS threads the products), agreeing with the engine."""
    from linfa.integrate import compiled, schedule

    n = 70
    assert n**3 > schedule.BLAS_THREADED_FLOPS >= 64**3
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, n, n)) / n

    def vf(t, y, args):
        return (args[0] @ y[0] - y[0] @ args[0].swapaxes(-1, -2),)  # a stored transpose read in place

    used = []
    run = compiled.run
    monkeypatch.setattr(compiled, "run", lambda p, m, plan, threads=1: used.append(threads) or run(p, m, plan, threads))
    kw = dict(args=(a,), batch_shape=(2,), rtol=1e-8, atol=1e-10)
    y0 = (rng.standard_normal((2, n, n)),)
    default = integrate(vf, y0, 0.5, **kw)
    engine = integrate(vf, y0, 0.5, kernel="numpy", **kw)
    assert default.stats["kernel"] == "compiled" and engine.stats["kernel"] == "numpy"
    assert used == [1]
    _assert_same(default, engine)


def test_compiled_threads_rule():
    from linfa.integrate import schedule

    big = schedule.BLAS_THREADED_FLOPS + 1
    assert schedule.compiled_threads(64, 10_000, big, 3 * big) == 1  # OpenBLAS threads each product
    assert schedule.compiled_threads(64, 10_000, big, 3 * big, threads=2) == 2  # the override stands
    assert schedule.compiled_threads(1, 16, 16**3, 3 * 16**3) == 1  # too little work for a second thread
    work = schedule.COMPILED_THREAD_WORK
    assert schedule.compiled_threads(64, work, 512, 1024) == min(schedule.cores(), 64)
    assert schedule.compiled_threads(3, work, 512, 1024, threads=8) == 3  # at most one per instance


@pytest.mark.parametrize("name", ["BP", "FA", "DFA"])
@pytest.mark.parametrize("whitened", [True, False])
def test_large_products_fold_their_use_into_blas(name, whitened):
    """Products above BLAS_IN_PLACE_FLOPS: E = Σyx − W Σxx is one dgemm with β = 1 on a copy of Σyx, and
    an output leaf that is a product is written by its dgemm, times h; the run agrees with the engine."""
    n = 66
    assert n**3 > compiled_mod.BLAS_IN_PLACE_FLOPS
    rng = np.random.default_rng(8)
    K, widths = 2, (n, n, n)
    rule = _rules(rng, widths, K)[name]
    sxx = None
    if not whitened:
        x = rng.standard_normal((K, n, 2 * n))
        sxx = x @ np.swapaxes(x, -1, -2) / (2 * n)
    task = linfa.Task.teacher(rng.standard_normal((K, n, n)) / np.sqrt(n), sxx=sxx)
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.1, batch=(K,))
    ts = np.array([0.0, 1.0, 2.0])
    plan, why = _plan(rule, task, w0, ts)
    assert plan is not None, why
    ops = {tuple(r) for r in plan.fused[:, [0, 7]].tolist()}
    flags = [fl for op, fl in ops if op == compiled_mod.GEMM]
    assert any(fl & compiled_mod.ACCUMULATE and fl & compiled_mod.NEGATE for fl in flags)  # Σyx − W Σxx
    assert any(op == compiled_mod.COPY for op, _ in ops)
    assert plan.direct.sum() == 2  # both weight flows are products: δ_1 x^T-like, E W_1^T
    kw = dict(saveat=ts, rtol=1e-8, atol=1e-10, method="tsit5")
    a = linfa.solve(rule, task, w0, 2.0, **kw)
    b = linfa.solve(rule, task, w0, 2.0, kernel="numpy", **kw)
    assert a.stats["kernel"] == "compiled"
    _assert_same(a, b, rtol=1e-11)


def _large_ops(t, y, a):
    """70 x 70 products (above BLAS_IN_PLACE_FLOPS): folds of X - P, P + X and X + P; products that must
    not fold (read twice, P - P, P minus a scalar); both operands transposed; a product as an output leaf."""
    w, v = y
    A = a[0]
    p1 = _T(w) @ _T(v)  # both stored transposed, read twice: a plain GEMM
    e = A - p1 @ w  # X - P
    f = w @ v + A  # P + X
    g = A + v @ w  # X + P
    q = A @ v
    z = q - q  # P - P: not folded
    s = v @ A - 2.0  # P minus a scalar: not folded
    return (e + f + g + z + s + p1, w @ A)  # the second leaf is a product: written times h by dgemm


def test_fused_tape_matches_the_field_and_folds_what_it_may():
    n, m = 70, 2
    assert n**3 > compiled_mod.BLAS_IN_PLACE_FLOPS
    cores, arg_shapes = [(n, n), (n, n)], [(n, n)]
    tape = trace_mod.trace(_large_ops, cores, arg_shapes, m)
    rng = np.random.default_rng(6)
    y = rng.standard_normal((m, 2 * n * n)) / np.sqrt(n)
    args = rng.standard_normal((m, n * n))
    t = rng.standard_normal(m)
    plan = compiled_mod.Plan(tape, args, np.array([0, n * n]), np.array([n * n, n * n]))
    code = plan.fused
    gemm = code[code[:, 0] == compiled_mod.GEMM]
    fl = gemm[:, 7]
    acc = fl & compiled_mod.ACCUMULATE != 0
    assert acc.sum() == 3 and (acc & (fl & compiled_mod.NEGATE != 0)).sum() == 1  # e, f, g; only e negated
    assert (code[:, 0] == compiled_mod.COPY).sum() == 3
    assert ((fl & 3) == 3).any()  # p1: both operands read transposed by dgemm
    assert plan.direct.tolist() == [False, True] and (fl & compiled_mod.TO_LEAF != 0).sum() == 1
    assert (code[:, 0] == trace_mod.MATMUL).sum() == 0  # every product here is large: all go to dgemm
    a = (args.reshape(m, n, n),)
    field = _large_ops(t, (y[:, : n * n].reshape(m, n, n), y[:, n * n :].reshape(m, n, n)), a)
    want = np.concatenate([o.reshape(m, -1) for o in field], axis=1)
    got = plan.evaluate(y, args, t, fused=True)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(plan.evaluate(y, args, t), want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_a_product_returned_as_two_leaves_is_not_written_by_dgemm():
    n, m = 70, 1
    tape = trace_mod.trace(lambda t, y, a: _twice(y), [(n, n), (n, n)], [], m)
    plan = compiled_mod.Plan(tape, np.zeros((m, 0)), np.array([0, n * n]), np.array([n * n, n * n]))
    assert not plan.direct.any()
    y = np.random.default_rng(7).standard_normal((m, 2 * n * n))
    p = y[0, : n * n].reshape(n, n) @ y[0, n * n :].reshape(n, n)
    got = plan.evaluate(y, np.zeros((m, 0)), np.zeros(m), fused=True)
    np.testing.assert_allclose(got[0], np.concatenate([p.ravel(), p.ravel()]), rtol=1e-12, atol=1e-12 * abs(p).max())


def _twice(y):
    p = y[0] @ y[1]
    return (p, p)
