"""The closed-form oracles of linfa.exact: their own identities, and against trajectories."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa import exact
from linfa.dynamics import solve


@settings(deadline=None, max_examples=30)
@given(s=st.floats(0.0, 5.0), u0=st.floats(1e-4, 6.0), t=st.floats(1e-3, 10.0))
def test_saxe_mode_solves_its_ode(s, u0, t):
    u = exact.saxe_mode(t, s, u0)
    h = 1e-5
    du = (exact.saxe_mode(t + h, s, u0) - exact.saxe_mode(t - h, s, u0)) / (2 * h)
    np.testing.assert_allclose(du, 2 * u * (s - u), rtol=1e-6, atol=1e-8)


def test_saxe_mode_limits():
    s, u0 = np.array([0.0, 1.0, 3.0]), np.array([0.5, 1e-3, 4.0])
    np.testing.assert_allclose(exact.saxe_mode(0.0, s, u0), u0)
    np.testing.assert_allclose(exact.saxe_mode(1e3, s[1:], u0[1:]), s[1:], rtol=1e-12)
    np.testing.assert_allclose(exact.saxe_mode(2.0, 0.0, 0.5), 0.5 / (1 + 2 * 0.5 * 2.0))
    # The textbook form.
    t = 0.7
    want = s[1:] * np.exp(2 * s[1:] * t) / (np.exp(2 * s[1:] * t) - 1 + s[1:] / u0[1:])
    np.testing.assert_allclose(exact.saxe_mode(t, s[1:], u0[1:]), want, rtol=1e-13)


def test_deep_saxe_mode_against_ode():
    from scipy.integrate import solve_ivp

    s, u0, L = 2.0, 0.05, 3
    ts = np.array([0.5, 1.0, 2.0, 4.0])
    ref = solve_ivp(lambda t, u: L * u ** (2 - 2 / L) * (s - u), (0, 4), [u0], t_eval=ts,
                    rtol=1e-12, atol=1e-14).y[0]
    np.testing.assert_allclose(exact.saxe_mode(ts, s, u0, depth=L), ref, rtol=1e-8)


def test_deep_saxe_weights_match_bp_flow():
    rng = np.random.default_rng(0)
    task = linfa.Task.random_teacher(rng, 3, 3, singular_values=[2.0, 1.0, 0.5])
    net = linfa.DeepLinear((3, 3, 3, 3))
    u0 = np.array([0.1, 0.05, 0.2])
    ts = np.array([0.0, 1.0, 3.0])
    sol = solve(linfa.BP(), task, net.aligned(task, u0), 3.0, saveat=ts, rtol=1e-11, atol=1e-13)
    for got, want in zip(sol.states, exact.saxe_weights(task, ts, u0, net.widths), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_bp_fixed_point_solves_normal_equations():
    rng = np.random.default_rng(1)
    sxx = linfa.spd_with_condition(rng, 4, 10.0, batch=(2,))
    task = linfa.Task.random_teacher(rng, 4, 3, sxx=sxx[0])
    w = exact.bp_fixed_point(task)
    np.testing.assert_allclose(w @ task.sxx, task.syx, atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        exact.bp_fixed_point(linfa.Task.tree_unflatten((np.zeros((4, 4)), task.syx, task.syy)))


def test_fa_zero_init_structure_along_trajectory():
    rng = np.random.default_rng(2)
    widths = (5, 6, 3)
    task = linfa.Task.random_teacher(rng, 5, 3, sxx=linfa.spd_with_condition(rng, 5, 3.0))
    fb = linfa.feedback.fa(widths, rng)
    zero = linfa.DeepLinear(widths).zeros()
    ts = np.linspace(0, 5, 6)
    sol = solve(linfa.FA(fb), task, zero, 5.0, saveat=ts, rtol=1e-11, atol=1e-13)
    st_ = exact.fa_zero_init_structure(tuple(w[1:] for w in sol.states), (fb[0],))
    assert np.all(st_.holds(1e-8))
    # From a generic initialisation the structure fails: the predicate can fail.
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.3)
    sol = solve(linfa.FA(fb), task, w0, 5.0, rtol=1e-8)
    assert not exact.fa_zero_init_structure(sol.state_final, fb).holds(1e-3)


def test_dfa_zero_init_structure_along_trajectory():
    rng = np.random.default_rng(3)
    widths = (4, 6, 5, 2)
    task = linfa.Task.random_teacher(rng, 4, 2, sxx=linfa.spd_with_condition(rng, 4, 3.0))
    fb = linfa.feedback.dfa(widths, rng)
    zero = linfa.DeepLinear(widths).zeros()
    sol = solve(linfa.DFA(fb), task, zero, 6.0, saveat=[2.0, 6.0], rtol=1e-11, atol=1e-13)
    structure = exact.dfa_zero_init_structure(sol.states, fb)
    assert np.all(structure.holds(1e-8))
    assert structure.factors["A_2"].shape == (2, 2, 2)
    assert np.abs(sol.states[1][-1]).max() > 1e-2  # the middle layer did learn
    w0 = linfa.DeepLinear(widths).gaussian(rng, 0.3)
    assert not exact.dfa_zero_init_structure(w0, fb).holds(1e-3)


def test_structure_arguments():
    with pytest.raises(ValueError, match="two layers"):
        exact.fa_zero_init_structure((np.eye(2),), (np.eye(2),))
    with pytest.raises(ValueError, match="feedback"):
        exact.dfa_zero_init_structure((np.eye(2), np.eye(2)), ())
    with pytest.raises(ValueError, match="u0"):
        exact.saxe_mode(1.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("s", "u0", "depth"), [(0.105, 1.0, 3), (1.0, 3.0, 4), (0.0, 0.5, 3), (0.0, 0.5, 5), (2.0, 0.01, 3)]
)
def test_deep_saxe_mode_decaying_or_zero_mode_matches_an_independent_ode(s, u0, depth):
    """Regression: u0 > s used to divide by zero at the bracket end; s = 0 used to lose the quadrature."""
    from scipy.integrate import solve_ivp

    ts = np.array([0.0, 0.5, 3.0, 6.0])
    ref = solve_ivp(lambda t, u: depth * u ** (2 - 2 / depth) * (s - u), (0, 6), [u0], t_eval=ts,
                    rtol=1e-12, atol=1e-14).y[0]
    np.testing.assert_allclose(exact.saxe_mode(ts, s, u0, depth=depth), ref, rtol=1e-9)
