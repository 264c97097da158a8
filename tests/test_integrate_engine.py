"""The generic batched integrator on analytic ODEs (each problem beside its exact solution)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.integrate import (
    Event,
    IntegrationError,
    Status,
    flow_below,
    integrate,
    norm_above,
)

ADAPTIVE = ["dopri5", "tsit5", "dop853", "scipy:RK45", "scipy:DOP853", "scipy:LSODA"]

# --------------------------------------------------------------------------
# Problems: vector field, initial state, args, exact solution.


def fun_decay(t, y, args):
    return (-args[0][:, None] * y[0],)


def sol_decay(t, y0, args):
    return y0[:, None, :] * np.exp(-args[0][:, None, None] * t[None, :, None])


def fun_rotation(t, y, args):
    (z,) = y
    w = args[0][:, None]
    return (np.concatenate([w * z[:, 1:2], -w * z[:, 0:1]], axis=1),)


def sol_rotation(t, y0, args):
    w = args[0][:, None]
    c, s = np.cos(w * t), np.sin(w * t)
    return np.stack([c * y0[:, :1] + s * y0[:, 1:], -s * y0[:, :1] + c * y0[:, 1:]], axis=-1)


def fun_forced(t, y, args):
    # Each instance has its own time: dy/dt = cos(t) (a matrix-valued leaf).
    return (np.broadcast_to(np.cos(t)[:, None, None], y[0].shape).copy(),)


def sol_forced(t, y0, args):
    return y0[:, None] + np.sin(t)[None, :, None, None]


def fun_riccati(t, y, args):
    return (y[0] * (args[0][:, None] - y[0]),)


def sol_riccati(t, y0, args):
    s = args[0][:, None, None]
    u0 = y0[:, None, :]
    e = np.exp(s * t[None, :, None])
    return s * e / (e - 1 + s / u0)


PROBLEMS = {
    "decay": (fun_decay, np.array([[1.0], [2.0], [0.5]]), (np.array([1.0, 2.0, 3.0]),), sol_decay),
    "rotation": (fun_rotation, np.array([[1.0, 0.0], [0.3, -2.0]]), (np.array([1.0, 3.0]),), sol_rotation),
    "forced": (fun_forced, np.arange(8.0).reshape(2, 2, 2), (np.zeros((2, 1)),), sol_forced),
    "riccati": (fun_riccati, np.array([[1e-3], [0.5], [3.0]]), (np.array([2.0, 1.0, 1.5]),), sol_riccati),
}


@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_analytic_problems(name, method):
    fun, y0, args, exact = PROBLEMS[name]
    ts = np.linspace(0.0, 5.0, 11)
    sol = integrate(fun, (y0,), 5.0, args=args, batch_shape=(y0.shape[0],), saveat=ts,
                    method=method, rtol=1e-10, atol=1e-12)
    assert (sol.status == Status.success).all()
    np.testing.assert_allclose(sol.ts, ts)
    want = exact(ts, y0, args)
    tol = 1e-6 if method == "scipy:LSODA" else 1e-8
    np.testing.assert_allclose(sol.states[0], want, rtol=tol, atol=tol)
    np.testing.assert_allclose(sol.t_final, 5.0)
    np.testing.assert_allclose(sol.state_final[0], want[:, -1], rtol=tol, atol=tol)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_error_falls_with_tolerance(method):
    fun, y0, args, exact = PROBLEMS["riccati"]
    errs = []
    for rtol in (1e-4, 1e-7, 1e-10):
        sol = integrate(fun, (y0,), 5.0, args=args, batch_shape=(3,), method=method,
                        rtol=rtol, atol=rtol * 1e-3)
        errs.append(np.abs(sol.states[0][:, -1] - exact(np.array([5.0]), y0, args)[:, -1]).max())
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-8


def test_dopri5_matches_scipy_rk45_step_for_step():
    fun, y0, args, _ = PROBLEMS["riccati"]
    a = integrate(fun, (y0,), 5.0, args=args, batch_shape=(3,), rtol=1e-6, atol=1e-9)
    b = integrate(fun, (y0,), 5.0, args=args, batch_shape=(3,), rtol=1e-6, atol=1e-9,
                  method="scipy:RK45")
    np.testing.assert_array_equal(a.stats["num_accepted"], b.stats["num_accepted"])
    np.testing.assert_allclose(a.states[0], b.states[0], rtol=1e-12)
    # Six new stages per step, plus f(t0, y0) and one evaluation to choose the first step.
    np.testing.assert_array_equal(a.stats["num_flow_evals"], 6 * a.stats["num_steps"] + 2)


def test_dop853_builds_its_interpolant_only_for_interior_save_points():
    """A save at a step's end is the new state: no dense output, so no three extra evaluations."""
    fun, y0, args, exact = PROBLEMS["riccati"]
    kw = dict(args=args, batch_shape=(3,), method="dop853", rtol=1e-8, atol=1e-11)
    end = integrate(fun, (y0,), 5.0, **kw)
    np.testing.assert_array_equal(end.stats["num_flow_evals"], 12 * end.stats["num_steps"] + 2)
    ts = np.array([0.0, 1.3, 5.0])
    mid = integrate(fun, (y0,), 5.0, saveat=ts, **kw)
    # the step over t = 1.3 builds the interpolant (three extra stages); the step onto t1 does not
    np.testing.assert_array_equal(mid.stats["num_flow_evals"], 12 * mid.stats["num_steps"] + 2 + 3)
    np.testing.assert_array_equal(mid.states[0][:, -1], end.states[0][:, -1])
    np.testing.assert_allclose(mid.states[0], exact(ts, y0, args), rtol=1e-7)


def test_euler_is_discrete_gradient_descent():
    lam = np.array([1.0, 3.0])
    y0 = np.array([[1.0], [2.0]])
    dt, n = 0.01, 50
    sol = integrate(fun_decay, (y0,), n * dt, args=(lam,), batch_shape=(2,), method="euler",
                    dt0=dt, saveat=np.arange(n + 1) * dt)
    want = y0[:, None, :] * (1 - lam[:, None, None] * dt) ** np.arange(n + 1)[None, :, None]
    np.testing.assert_allclose(sol.states[0], want, rtol=1e-13)
    np.testing.assert_array_equal(sol.stats["num_steps"], [n, n])


def test_batched_equals_single_instances():
    rng = np.random.default_rng(1)
    s = rng.uniform(0.5, 3.0, 6)
    y0 = rng.uniform(1e-3, 1.0, (6, 1))
    ts = np.linspace(0, 4, 9)
    batched = integrate(fun_riccati, (y0,), 4.0, args=(s,), batch_shape=(6,), saveat=ts,
                        rtol=1e-9, atol=1e-12)
    for k in range(6):
        one = integrate(fun_riccati, (y0[k : k + 1],), 4.0, args=(s[k : k + 1],),
                        batch_shape=(1,), saveat=ts, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(batched.states[0][k], one.states[0][0], rtol=1e-12)
        assert batched.stats["num_steps"][k] == one.stats["num_steps"][0]


def test_multiple_batch_axes_and_shared_args():
    y0 = np.ones((2, 3, 1))
    lam = np.array([[[1.0], [2.0], [3.0]]])  # (1, 3, 1): shared over the first axis
    fun = lambda t, y, a: (-a[0] * y[0],)
    sol = integrate(fun, (y0,), 1.0, args=(lam,), batch_shape=(2, 3))
    assert sol.states[0].shape == (2, 3, 1, 1)
    np.testing.assert_allclose(sol.states[0][:, :, 0, 0], np.exp(-np.array([[1.0, 2.0, 3.0]] * 2)),
                               rtol=1e-7)


def test_t0_identity_and_nonzero_t0():
    fun, y0, args, _exact = PROBLEMS["forced"]
    sol = integrate(fun, (y0,), 3.0, t0=1.0, args=args, batch_shape=(2,), saveat=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(sol.states[0][:, 0], y0)
    want = y0[:, None] + (np.sin([1.0, 2.0, 3.0]) - np.sin(1.0))[None, :, None, None]
    np.testing.assert_allclose(sol.states[0], want, rtol=1e-7, atol=1e-7)
    same = integrate(fun, (y0,), 1.0, t0=1.0, args=args, batch_shape=(2,))
    np.testing.assert_array_equal(same.states[0][:, 0], y0)
    assert (same.status == Status.success).all()


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_restart_consistency(method):
    fun, y0, args, _ = PROBLEMS["riccati"]
    kw = dict(args=args, batch_shape=(3,), method=method, rtol=1e-11, atol=1e-13)
    direct = integrate(fun, (y0,), 6.0, **kw)
    first = integrate(fun, (y0,), 2.5, **kw)
    second = integrate(fun, first.state_final, 6.0, t0=2.5, **kw)
    np.testing.assert_allclose(second.state_final[0], direct.state_final[0], rtol=1e-9)


# --------------------------------------------------------------------------
# Stopping conditions


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853", "scipy:RK45", "scipy:LSODA"])
def test_event_time_is_located(method):
    y0 = np.array([[1.0], [2.0], [4.0]])
    lam = np.ones(3)
    half = Event(lambda t, y, a: y[0][:, 0] - 0.5, name="half")
    sol = integrate(fun_decay, (y0,), 10.0, args=(lam,), batch_shape=(3,), until=half,
                    method=method, rtol=1e-10, atol=1e-12, saveat=np.linspace(0, 10, 21))
    assert (sol.status == Status.event).all()
    np.testing.assert_array_equal(sol.event, [0, 0, 0])
    tol = 1e-6 if method == "scipy:LSODA" else 1e-8
    np.testing.assert_allclose(sol.t_final, np.log(2 * y0[:, 0]), rtol=tol)
    np.testing.assert_allclose(sol.t_event, sol.t_final)
    np.testing.assert_allclose(sol.state_final[0][:, 0], 0.5, rtol=tol)
    # Save points after the event are NaN, those before are on the trajectory.
    after = sol.ts[None, :] > sol.t_final[:, None]
    assert np.isnan(sol.states[0][after]).all()
    want = y0[:, None, 0] * np.exp(-sol.ts[None, :])
    np.testing.assert_allclose(sol.states[0][~after][:, 0], want[~after], rtol=tol)


def test_event_already_met_at_t0_and_directions():
    y0 = np.array([[0.2], [2.0]])
    half = Event(lambda t, y, a: y[0][:, 0] - 0.5)
    sol = integrate(fun_decay, (y0,), 5.0, args=(np.ones(2),), batch_shape=(2,), until=half)
    assert sol.status.tolist() == [Status.event, Status.event]
    np.testing.assert_allclose(sol.t_final, [0.0, np.log(4.0)], atol=1e-8)
    # Rising: y grows as e^t from 1, stop when it passes 3.
    up = Event(lambda t, y, a: y[0][:, 0] - 3.0, direction=1)
    sol = integrate(fun_decay, (np.ones((1, 1)),), 5.0, args=(-np.ones(1),), batch_shape=(1,),
                    until=up)
    np.testing.assert_allclose(sol.t_final, [np.log(3.0)], rtol=1e-8)
    # Any crossing: a rotation crosses y_0 = 0 at t = π/2.
    cross = Event(lambda t, y, a: y[0][:, 0], direction=0)
    sol = integrate(fun_rotation, (np.array([[1.0, 0.0]]),), 5.0, args=(np.ones(1),),
                    batch_shape=(1,), until=cross, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.t_final, [np.pi / 2], rtol=1e-9)


def test_steady_state_event():
    y0 = np.array([[1.0], [3.0]])
    sol = integrate(fun_decay, (y0,), 50.0, args=(np.ones(2),), batch_shape=(2,),
                    until=flow_below(1e-3), rtol=1e-10, atol=1e-13)
    assert (sol.status == Status.event).all()
    np.testing.assert_allclose(sol.t_final, np.log(y0[:, 0] / 1e-3), rtol=1e-8)


def fun_blowup(t, y, args):
    return (args[0][:, None] * y[0] ** 2,)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853", "scipy:LSODA"])
def test_diverging_instance_stops_while_batch_finishes(method):
    a = np.array([0.1, 1.0, 0.2])  # y = 1/(1/y0 - a t): the middle one blows up at t = 1
    y0 = np.ones((3, 1))
    ts = np.linspace(0, 2, 5)
    sol = integrate(fun_blowup, (y0,), 2.0, args=(a,), batch_shape=(3,), saveat=ts,
                    until=norm_above(1e6), method=method, rtol=1e-10, atol=1e-12)
    assert sol.status.tolist() == [Status.success, Status.diverged, Status.success]
    assert "diverged" in sol.messages[1]
    np.testing.assert_allclose(sol.t_final[1], 1 - 1e-6, rtol=1e-7)
    assert np.isnan(sol.states[0][1, ts > 1]).all()
    exact = 1 / (1 - a[[0, 2], None] * ts[None, :])
    np.testing.assert_allclose(sol.states[0][[0, 2], :, 0], exact, rtol=1e-8)


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_non_finite_instance_gets_status_and_nan(method):
    """Regression (dop853): a NaN error norm used to count as zero error, accepting NaN steps as success."""

    def fun(t, y, args):
        # The second instance's flow turns NaN after t = 1.
        bad = (args[0] > 0) & (t > 1.0)
        return (np.where(bad[:, None], np.nan, -y[0]),)

    ts = np.linspace(0, 3, 7)
    sol = integrate(fun, (np.ones((2, 1)),), 3.0, args=(np.array([0.0, 1.0]),), batch_shape=(2,),
                    saveat=ts, observe={"y": lambda t, y, a: y[0][..., 0]}, method=method)
    assert sol.status.tolist() == [Status.success, Status.non_finite]
    assert sol.t_final[1] <= 1.0 + 1e-6
    assert np.isnan(sol.states[0][1, ts > 1.0]).all()
    assert np.isnan(sol.observed["y"][1, ts > 1.0]).all()
    np.testing.assert_allclose(sol.observed["y"][0], np.exp(-ts), rtol=1e-7)
    before = ts <= sol.t_final[1]
    assert before.sum() >= 2
    np.testing.assert_allclose(sol.observed["y"][1, before], np.exp(-ts[before]), rtol=1e-7)
    with pytest.raises(IntegrationError, match="non_finite"):
        integrate(fun, (np.ones((2, 1)),), 3.0, args=(np.array([0.0, 1.0]),), batch_shape=(2,),
                  throw=True, method=method)


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_blow_up_ends_non_finite_not_success(method):
    sol = integrate(lambda t, y, a: (y[0],), (np.ones((1, 1)),), 1000.0, batch_shape=(1,), method=method)
    assert sol.status.tolist() == [Status.non_finite]
    assert sol.t_final[0] < 720  # e^t overflows near t = 709.8


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853", "euler"])
def test_batched_solve_is_bit_identical_to_single_solves(method):
    """Same answer whatever the batch: every saved value equal to the last bit (docs/design.md, batch axes)."""
    rng = np.random.default_rng(3)
    K = 7
    lam = rng.uniform(0.5, 3.0, (K, 1))
    y0 = rng.standard_normal((K, 3))
    ts = np.linspace(0.0, 3.0, 7)

    def vf(t, y, a):
        return (-a[0] * y[0] + np.sin(t)[:, None],)

    kw = {"method": method, "saveat": ts, "dt0": 0.01 if method == "euler" else None}
    batched = integrate(vf, (y0,), 3.0, args=(lam,), batch_shape=(K,), **kw)
    for k in range(K):
        single = integrate(vf, (y0[k : k + 1],), 3.0, args=(lam[k : k + 1],), batch_shape=(1,), **kw)
        np.testing.assert_array_equal(batched.states[0][k], single.states[0][0])


def test_max_steps_status_and_throw():
    y0 = np.ones((2, 1))
    sol = integrate(fun_rotation, (np.array([[1.0, 0.0], [0.0, 1.0]]),), 10.0,
                    args=(np.array([1.0, 100.0]),), batch_shape=(2,), max_steps=1000)
    assert sol.status.tolist() == [Status.success, Status.max_steps]
    assert "max_steps" in sol.messages[1]
    assert sol.stats["num_steps"][1] == 1000
    assert sol.stats["num_steps"][0] < 1000
    with pytest.raises(IntegrationError, match="max_steps"):
        integrate(fun_decay, (y0,), 10.0, args=(np.ones(2),), batch_shape=(2,), max_steps=3,
                  throw=True)
    with pytest.raises(IntegrationError):
        sol.raise_for_status()


def test_observe_is_evaluated_at_save_points():
    fun, y0, args, _exact = PROBLEMS["decay"]
    ts = np.linspace(0, 1, 4)
    sol = integrate(fun, (y0,), 1.0, args=args, batch_shape=(3,), saveat=ts,
                    observe={"sq": lambda t, y, a: y[0][..., 0] ** 2 + 0 * a[0],
                             "t": lambda t, y, a: t})
    np.testing.assert_allclose(sol.observed["sq"], sol.states[0][..., 0] ** 2)
    np.testing.assert_allclose(sol.observed["t"], np.broadcast_to(ts, (3, 4)))


# --------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(t1=-1.0), "t1"),
        (dict(saveat=[0.5, 0.2]), "saveat"),
        (dict(saveat=[0.0, 2.0]), "saveat"),
        (dict(rtol=0.0), "rtol"),
        (dict(atol=-1.0), "atol"),
        (dict(method="rk4"), "method"),
        (dict(method="scipy:Euler"), "method"),
        (dict(method="euler"), "dt0"),
        (dict(max_steps=0), "max_steps"),
        (dict(dt0=-0.1), "dt0"),
        (dict(batch_shape=(3,)), "y0"),
        (dict(args=(np.ones(5),)), "args"),
    ],
)
def test_bad_arguments(kwargs, match):
    call = dict(t1=1.0, args=(np.ones(2),), batch_shape=(2,))
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        integrate(fun_decay, (np.ones((2, 1)),), **call)


def test_bad_vector_field_output():
    with pytest.raises(ValueError, match="vf"):
        integrate(lambda t, y, a: (y[0], y[0]), (np.ones((2, 1)),), 1.0, batch_shape=(2,))
    with pytest.raises(ValueError, match="vf"):
        integrate(lambda t, y, a: (np.ones((2, 3)),), (np.ones((2, 1)),), 1.0, batch_shape=(2,))


# --------------------------------------------------------------------------
# Property: batched linear systems against the matrix exponential.


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 4), n=st.integers(1, 4))
def test_linear_systems_match_expm(seed, k, n):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, n, n)) / np.sqrt(n)
    y0 = rng.standard_normal((k, n))
    fun = lambda t, y, args: (np.einsum("kij,kj->ki", args[0], y[0]),)
    sol = integrate(fun, (y0,), 2.0, args=(a,), batch_shape=(k,), rtol=1e-10, atol=1e-12)
    want = np.stack([scipy.linalg.expm(2.0 * a[i]) @ y0[i] for i in range(k)])
    np.testing.assert_allclose(sol.state_final[0], want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_finite_blow_up_stalls_and_says_so(method):
    """y' = (1 - t)^-2 stays finite while the step size must shrink to nothing at t = 1: stalled, not non_finite."""

    def vf(t, y, a):
        with np.errstate(divide="ignore"):
            return ((np.abs(1.0 - t) ** -2.0)[:, None] * np.ones_like(y[0]),)

    sol = integrate(vf, (np.zeros((1, 1)),), 2.0, batch_shape=(1,), method=method)
    assert sol.status.tolist() == [Status.stalled]
    assert abs(sol.t_final[0] - 1.0) < 1e-6
    assert "step size became smaller" in sol.message


def test_vector_field_outputs_that_alias_its_input_or_are_reused_are_safe():
    """A vector field may return the very views it was given, or the same array at every call.

    Regression guard for any engine that keeps the vector field's outputs as its stages instead of
    copying them (tried at stop 11 and not kept): the input views are overwritten by the next stage.
    """
    y0 = np.array([[1.0], [0.5]])
    ts = np.linspace(0.0, 2.0, 5)
    # dy/dt = y, returned as the very view the engine passed in (one leaf: a contiguous view)
    grow = integrate(lambda t, y, args: y, (y0,), 2.0, batch_shape=(2,), saveat=ts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grow.states[0], y0[:, None, :] * np.exp(ts)[None, :, None], rtol=1e-8)
    # dy/dt = c, the same (read-only) argument array at every call, and in float32
    c = np.array([[2.0], [-1.0]], dtype=np.float32)
    c.setflags(write=False)
    line = integrate(lambda t, y, args: (args[0],), (y0,), 2.0, args=(c,), batch_shape=(2,), saveat=ts)
    want = y0[:, None, :] + c[:, None, :] * ts[None, :, None]
    np.testing.assert_allclose(line.states[0], want, rtol=1e-12, atol=1e-12)
    assert not c.flags.writeable and c[0, 0] == 2.0


def test_an_empty_batch_gives_empty_results_of_the_right_shapes():
    ts = np.array([0.0, 0.5, 1.0])
    sol = integrate(fun_decay, (np.zeros((0, 3)),), 1.0, args=(np.zeros(0),), batch_shape=(0,), saveat=ts,
                    observe={"sq": lambda t, y, args: (y[0] ** 2).sum(-1)})
    assert sol.states[0].shape == (0, 3, 3) and sol.state_final[0].shape == (0, 3)
    assert sol.observed["sq"].shape == (0, 3)
    assert sol.status.shape == sol.t_final.shape == sol.stats["num_steps"].shape == (0,)


# --------------------------------------------------------------------------
# The integrator below the domain: layering, method objects, the controller object.


def test_integrate_imports_nothing_of_the_learning_domain():
    """``linfa.integrate`` is generic: importing it loads no rule, task, observable or front end."""
    import subprocess
    import sys
    from pathlib import Path

    code = (  # load linfa.integrate without linfa/__init__.py (which imports the whole toolkit)
        "import importlib.util, sys, types\n"
        "pkg = types.ModuleType('linfa')\n"
        "pkg.__path__ = list(importlib.util.find_spec('linfa').submodule_search_locations)\n"
        "sys.modules['linfa'] = pkg\n"
        "import linfa.integrate\n"
        "assert callable(linfa.integrate.integrate)\n"
        "bad = [m for m in ('linfa.rules', 'linfa.tasks', 'linfa.observables', 'linfa.dynamics', "
        "'linfa.networks', 'linfa.feedback') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import linfa.integrate

    for path in Path(linfa.integrate.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("linfa.rules", "linfa.tasks", "linfa.observables"):
            assert name not in text, (path.name, name)


def test_old_front_end_paths_fail_with_a_message_naming_the_new_home():
    with pytest.raises(ImportError, match=r"linfa\.dynamics"):
        from linfa.integrate import solve  # noqa: F401
    with pytest.raises(ImportError, match=r"linfa\.dynamics\.until"):
        from linfa.integrate.until import when  # noqa: F401


@pytest.mark.parametrize("name", ["euler", "dopri5", "tsit5", "dop853"])
def test_a_method_object_or_class_is_accepted_where_its_name_is(name):
    from linfa.integrate import METHODS

    fun, y0, args, _ = PROBLEMS["riccati"]
    kw = {"dt0": 0.01} if name == "euler" else {}
    by_name = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,), method=name, **kw)
    obj = METHODS[name]
    for method in (obj, type(obj)):
        sol = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,), method=method, **kw)
        np.testing.assert_array_equal(sol.states[0], by_name.states[0])
        assert sol.method == name


def test_a_users_own_tableau_plugs_in_and_converges_at_its_declared_order():
    """Heun's method (order 2) written as data only: halving the step divides the error by 2**order."""
    from linfa.integrate import AbstractRungeKutta
    from linfa.integrate.methods import Euler

    class Heun(Euler):  # Euler's linear dense output is enough here
        name = "heun"
        order = 2
        C = np.array([0.0, 1.0])
        A = np.array([[0.0, 0.0], [1.0, 0.0]])
        B = np.array([0.5, 0.5])
        P = np.array([[1.0], [0.0], [0.0]])

    assert isinstance(Heun(), AbstractRungeKutta)
    fun, y0, args, exact = PROBLEMS["decay"]
    errs = []
    for dt in (0.02, 0.01):
        sol = integrate(fun, (y0,), 1.0, args=args, batch_shape=(3,), method=Heun, dt0=dt)
        errs.append(np.abs(sol.state_final[0] - exact(np.array([1.0]), y0, args)[:, -1]).max())
    assert abs(np.log2(errs[0] / errs[1]) - Heun.order) < 0.1
    with pytest.raises(TypeError, match=r"^method: expected"):
        integrate(fun, (y0,), 1.0, args=args, batch_shape=(3,), method=3)


def test_stability_limit_is_where_the_stability_function_leaves_the_unit_disc():
    from linfa.integrate import METHODS

    assert METHODS["euler"].stability_limit == pytest.approx(2.0)  # R(z) = 1 + z
    for m in METHODS.values():
        x = m.stability_limit
        poly = np.polynomial.Polynomial(
            [1.0, *(float(m.B @ np.linalg.matrix_power(m.A, k) @ np.ones(len(m.B))) for k in range(len(m.B)))]
        )
        assert abs(poly(-x)) <= 1.0 + 1e-9 and abs(poly(-x * (1 + 1e-6))) > 1.0
        assert np.all(np.abs(poly(-np.linspace(0.0, x, 200))) <= 1.0 + 1e-9)


def test_step_size_controller_object_is_the_keywords_and_one_home_of_the_defaults():
    from linfa.integrate import StepSizeController

    fun, y0, args, _ = PROBLEMS["riccati"]
    a = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,), rtol=1e-6, atol=1e-9)
    b = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,), stepsize=StepSizeController(rtol=1e-6, atol=1e-9))
    np.testing.assert_array_equal(a.states[0], b.states[0])
    default = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,))
    explicit = integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,),
                         rtol=StepSizeController.rtol, atol=StepSizeController.atol)
    np.testing.assert_array_equal(default.states[0], explicit.states[0])
    with pytest.raises(ValueError, match=r"^stepsize: "):
        integrate(fun, (y0,), 2.0, args=args, batch_shape=(3,), stepsize=StepSizeController(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"^atol: expected"):
        StepSizeController(atol=0.0)


# --------------------------------------------------------------------------
# Issues 17/18: failures that say what they are.


def test_complex_input_is_a_type_error_naming_the_argument():
    fun, y0, args, _ = PROBLEMS["decay"]
    with pytest.raises(TypeError, match=r"^y0\[0\]: expected real"):
        integrate(fun, (y0 + 1j,), 1.0, args=args, batch_shape=(3,))
    with pytest.raises(TypeError, match=r"^args\[0\]: expected real"):
        integrate(fun, (y0,), 1.0, args=(args[0] + 0j,), batch_shape=(3,))
    with pytest.raises(TypeError, match=r"^vf: output leaf 0: expected real"):
        integrate(lambda t, y, a: (y[0] * 1j,), (y0,), 1.0, batch_shape=(3,))
    with pytest.raises(TypeError, match=r"^observe\['z'\]: expected real"):
        integrate(fun, (y0,), 1.0, args=args, batch_shape=(3,), observe={"z": lambda t, y, a: y[0][..., 0] * 1j})


def test_a_zero_size_leaf_is_refused_up_front():
    with pytest.raises(ValueError, match=r"^y0\[1\]: expected a leaf with at least one entry"):
        integrate(lambda t, y, a: (-y[0], -y[1]), (np.ones((2, 3)), np.ones((2, 0))), 1.0, batch_shape=(2,))


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_an_overflowing_flow_is_non_finite_not_stalled(method):
    """y' = y^5 from 1e50: the flow (1e250) overflows in the first trial steps."""
    sol = integrate(lambda t, y, a: (y[0] ** 5,), (np.array([[1e50], [1.0]]),), 0.1, batch_shape=(2,),
                    method=method)
    assert sol.status.tolist() == [Status.non_finite, Status.success]
    assert "non-finite" in sol.messages[0]


def _stiff(t, y, a):
    return (-a[0][:, None] * (y[0] - np.cos(t)[:, None]),)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dop853"])
def test_max_steps_at_the_stability_limit_says_probably_stiff(method):
    """y' = -λ (y - cos t): with λ = 1e4 the step sits at (stability limit)/λ; with λ = 1 it does not."""
    sol = integrate(_stiff, (np.zeros((2, 1)),), 10.0, args=(np.array([1e4, 1.0]),), batch_shape=(2,),
                    method=method, max_steps=300)
    assert sol.status.tolist() == [Status.max_steps, Status.success]
    assert sol.stats["stiff"].tolist() == [True, False]
    assert "probably stiff" in sol.messages[0] and "scipy:" in sol.messages[0] and "'rodas4'" in sol.messages[0]
    # a max_steps ending that is not stiff (a long, oscillating, accuracy-limited run) does not say so
    rot = integrate(fun_rotation, (np.array([[1.0, 0.0]]),), 1e4, args=(np.ones(1),), batch_shape=(1,),
                    method=method, max_steps=300)
    assert rot.status.tolist() == [Status.max_steps] and "stiff" not in rot.message
    with pytest.raises(IntegrationError, match="probably stiff"):
        integrate(_stiff, (np.zeros((1, 1)),), 10.0, args=(np.array([1e4]),), batch_shape=(1,),
                  method=method, max_steps=300, throw=True)
    # and the implicit method it names solves it in far fewer steps (dopri5 needs ~36000)
    ok = integrate(_stiff, (np.zeros((1, 1)),), 10.0, args=(np.array([1e4]),), batch_shape=(1,),
                   method="scipy:LSODA", max_steps=1000)
    assert ok.status.tolist() == [Status.success]
