"""Observables against direct sample estimates and against their defining identities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa import observables as obs
from linfa.tasks import Task


def _setup(seed: int, widths=(4, 5, 3), batch=()):
    rng = np.random.default_rng(seed)
    sxx = np.diag(rng.uniform(0.5, 2.0, widths[0]))
    task = Task.random_teacher(rng, widths[0], widths[-1], sxx=sxx, noise=0.3, batch=batch)
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.5, batch=batch)
    return rng, task, ws


def test_loss_nse_alignment_agree_with_sample_estimates():
    rng, task, ws = _setup(0)
    b = linfa.feedback.fa((4, 5, 3), rng)
    rule = linfa.FA(b)
    X, Y = task.sample(rng, 400_000)
    e = Y - X @ (ws[1] @ ws[0]).T
    sq = np.sum(e**2, axis=1)
    np.testing.assert_allclose(obs.loss(rule, task, ws), 0.5 * sq.mean(), rtol=0.01)
    np.testing.assert_allclose(obs.nse(rule, task, ws), sq.mean() / np.sum(Y**2, axis=1).mean(), rtol=0.01)
    ewbe = np.einsum("ni,ij,jk,nk->n", e, ws[1], b[0], e)
    np.testing.assert_allclose(obs.alignment(rule, task, ws)[..., 0], ewbe.mean(), rtol=0.02)
    np.testing.assert_allclose(obs.error_covariance(rule, task, ws), e.T @ e / len(e), atol=0.02)


def test_population_signal_angle_is_the_angle_of_the_sample_signal_matrices():
    """cos θ_l = <M e, W^T e> summed over samples / norms: the sample version of the population angle."""
    rng, task, ws = _setup(1)
    b = linfa.feedback.fa((4, 5, 3), rng)
    rule = linfa.FA(b)
    X, Y = task.sample(rng, 300_000)
    e = Y - X @ (ws[1] @ ws[0]).T
    be, we = e @ b[0].T, e @ ws[1]
    cos = np.sum(be * we) / np.sqrt(np.sum(be**2) * np.sum(we**2))
    assert abs(obs.signal_angles(rule, task, ws)[0] - np.degrees(np.arccos(cos))) < 0.5


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_alignment_condition_for_single_error_vectors(seed):
    """Fact 1, per sample: angle(B e, W^T e) < 90° iff e^T W B e > 0."""
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((5, 3))
    w = rng.standard_normal((3, 5))
    e = rng.standard_normal((64, 3))
    ang = obs.signal_angle(b, w, e)
    ewbe = np.einsum("ni,ij,jk,nk->n", e, w, b, e)
    clear = np.abs(ewbe) > 1e-9
    assert np.all((ang[clear] < 90) == (ewbe[clear] > 0))
    assert np.all((ang >= 0) & (ang <= 180))


@pytest.mark.parametrize("name", ["FA", "DFA", "SignSymmetry", "BP"])
def test_angles_are_in_range_and_signs_agree(name):
    rng, task, ws = _setup(2, widths=(4, 5, 6, 3), batch=(16,))
    widths = (4, 5, 6, 3)
    rule = {
        "FA": lambda: linfa.FA(linfa.feedback.fa(widths, rng, batch=(16,))),
        "DFA": lambda: linfa.DFA(linfa.feedback.dfa(widths, rng, batch=(16,))),
        "SignSymmetry": linfa.SignSymmetry,
        "BP": linfa.BP,
    }[name]()
    ua = obs.update_angles(rule, task, ws)
    sa = obs.signal_angles(rule, task, ws)
    al = obs.alignment(rule, task, ws)
    assert ua.shape == (16, 3) and sa.shape == (16, 2) and al.shape == (16, 2)
    assert np.all((ua >= 0) & (ua <= 180)) and np.all((sa >= 0) & (sa <= 180))
    assert np.all((sa < 90) == (al > 0))
    if name == "BP":
        np.testing.assert_allclose(ua, 0, atol=1e-5)
        np.testing.assert_allclose(sa, 0, atol=1e-5)
        np.testing.assert_allclose(obs.weight_alignment(rule, task, ws), 1.0, atol=1e-12)


def test_update_angle_is_nan_where_bp_does_not_move():
    rng, task, _ = _setup(3, widths=(4, 5, 6, 3))
    ws = linfa.DeepLinear((4, 5, 6, 3)).zeros()
    rule = linfa.DFA(linfa.feedback.dfa((4, 5, 6, 3), rng))
    ua = obs.update_angles(rule, task, ws)
    assert np.all(np.isnan(ua))  # BP's update vanishes at zero weights: the angle is undefined


@pytest.mark.parametrize("name", ["BP", "FA"])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_conserved_quantities_have_zero_derivative_along_the_flow(name, seed):
    """Fact 2 at the level of the vector field: d/dt Q_l = 0, by central differences along f."""
    widths = (3, 4, 5, 2)
    rng, task, ws = _setup(seed, widths=widths)
    rule = linfa.BP() if name == "BP" else linfa.FA(linfa.feedback.fa(widths, rng))
    f = rule.dstate(task, ws)
    h = 1e-4
    plus = tuple(w + h * d for w, d in zip(ws, f, strict=True))
    minus = tuple(w - h * d for w, d in zip(ws, f, strict=True))
    for qp, qm, q in zip(obs.conserved_quantities(rule, plus), obs.conserved_quantities(rule, minus),
                         obs.conserved_quantities(rule, ws), strict=True):
        deriv = (qp - qm) / (2 * h)
        assert np.abs(deriv).max() < 1e-6 * max(1.0, np.abs(q).max())
        assert np.abs(q).max() > 1e-3  # non-trivial quantity
    q1 = obs.conserved_quantity(1)(rule, task, ws)
    np.testing.assert_array_equal(q1, obs.conserved_quantities(rule, ws)[0])


def test_dfa_conservation_law_is_not_claimed():
    rng, _task, ws = _setup(4)
    with pytest.raises(TypeError, match="no conservation law is known for DFA"):
        obs.conserved_quantities(linfa.DFA(linfa.feedback.dfa((4, 5, 3), rng)), ws)


@pytest.mark.parametrize("kind", ["DFA", "FA"])
def test_alignment_matrices_recover_a_planted_structure(kind):
    rng = np.random.default_rng(5)
    widths = (6, 5, 4, 3)
    if kind == "DFA":
        rule = linfa.DFA(linfa.feedback.dfa(widths, rng))
    else:
        rule = linfa.FA(linfa.feedback.fa(widths, rng))
    task = Task.random_teacher(rng, 6, 3)
    m1, m2 = rule.backward_matrices(linfa.DeepLinear(widths).zeros())
    a1 = rng.standard_normal((3, 6))
    a2 = rng.standard_normal((3, 3))
    a3 = rng.standard_normal((3, 3))
    planted = (m1 @ a1, m2 @ a2 @ m1.T, a3 @ m2.T)
    mats, res = obs.alignment_matrices(rule, task, planted)
    np.testing.assert_allclose(res, 0, atol=1e-10)
    for a, b in zip(mats, (a1, a2, a3), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
    kappa = obs.alignment_condition_numbers(rule, task, planted)
    np.testing.assert_allclose(kappa[1], np.linalg.cond(a2), rtol=1e-8)
    # a generic state does not have the structure
    generic = linfa.DeepLinear(widths).gaussian(rng, 1.0)
    assert np.all(obs.alignment_residuals(rule, task, generic)[:2] > 1e-2)


def test_layer_alignment_for_fa_and_kolen_pollack():
    rng, task, ws = _setup(6)
    b = linfa.feedback.fa((4, 5, 3), rng)
    cos = obs.layer_alignment(linfa.FA(b), task, ws)
    w2 = ws[1]
    np.testing.assert_allclose(cos[0], np.sum(w2.T * b[0]) / np.linalg.norm(w2) / np.linalg.norm(b[0]))
    kp = linfa.KolenPollack(0.1)
    np.testing.assert_allclose(obs.layer_alignment(kp, task, kp.init_state(ws, (w2.T,))), 1.0)
    with pytest.raises(TypeError, match="layer_alignment needs layer-wise feedback"):
        obs.layer_alignment(linfa.BP(), task, ws)


def test_angles_of_tiny_vectors_do_not_underflow():
    """Regression: sqrt(|a|² |b|²) underflowed to 0 for |a|, |b| ~ 1e-160 and gave NaN."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 4))
    b = a + 0.1 * rng.standard_normal((3, 4))
    np.testing.assert_allclose(obs.angle(1e-160 * a, 1e-160 * b), obs.angle(a, b), rtol=1e-12)
    e = rng.standard_normal((5, 3))
    bmat, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(obs.signal_angle(bmat, w, 1e-160 * e), obs.signal_angle(bmat, w, e), rtol=1e-12)


def test_signal_angles_at_the_optimum_are_quiet():
    """At W = W* with no noise Σee is ~0 and rounding can make its traces negative: no warning, no crash."""
    rng = np.random.default_rng(9)
    task = Task.random_teacher(rng, 3, 2)
    w1 = rng.standard_normal((3, 3))
    ws = (w1, task.optimum() @ np.linalg.inv(w1))
    rule = linfa.FA(linfa.feedback.fa((3, 3, 2), rng))
    with np.errstate(all="raise"):
        ang = obs.signal_angles(rule, task, ws)
    assert ang.shape == (1,) and (np.isnan(ang[0]) or 0 <= ang[0] <= 180)


def test_cosine_is_exact_near_parallel_and_matches_the_angle():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((4, 3, 5))
    b = a + 1e-9 * rng.standard_normal((4, 3, 5))
    c = obs.cosine(a, b)
    direct = np.sum(a * b, axis=(1, 2)) / np.linalg.norm(a, axis=(1, 2)) / np.linalg.norm(b, axis=(1, 2))
    np.testing.assert_allclose(c, direct, rtol=1e-15)
    far = rng.standard_normal((4, 3, 5))
    np.testing.assert_allclose(np.degrees(np.arccos(obs.cosine(a, far))), obs.angle(a, far), rtol=1e-10)
    assert np.isnan(obs.cosine(np.zeros((3, 5)), far[0]))


# --------------------------------------------------------------------------
# loss_rate, gradient, mode_strengths, pseudo_backprop_angle


def test_gradient_matches_central_finite_differences():
    rng, task, ws = _setup(11, widths=(4, 5, 6, 3))
    rule = linfa.FA(linfa.feedback.fa((4, 5, 6, 3), rng))  # the gradient does not depend on the rule
    grads = obs.gradient(rule, task, ws)
    h = 1e-6
    for l, w in enumerate(ws):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus, minus = [list(ws) for _ in range(2)]
            plus[l], minus[l] = w.copy(), w.copy()
            plus[l][idx] += h
            minus[l][idx] -= h
            fd[idx] = (obs.loss(rule, task, tuple(plus)) - obs.loss(rule, task, tuple(minus))) / (2 * h)
        np.testing.assert_allclose(grads[l], fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(obs.gradient_norms(rule, task, ws),
                               [np.linalg.norm(g) for g in grads], rtol=1e-12)


def test_loss_rate_is_minus_squared_gradient_norm_for_bp():
    _, task, ws = _setup(12, widths=(4, 5, 6, 3), batch=(3,))
    rate = obs.loss_rate(linfa.BP(), task, ws)
    assert rate.shape == (3,)
    np.testing.assert_allclose(rate, -np.sum(obs.gradient_norms(linfa.BP(), task, ws) ** 2, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("rule_name", ["FA", "DFA", "KP"])
def test_loss_rate_is_the_derivative_of_the_loss_along_a_solve(rule_name):
    widths = (4, 5, 6, 3)
    rng, task, ws = _setup(13, widths=widths, batch=(2,))
    if rule_name == "FA":
        rule, s0 = linfa.FA(linfa.feedback.fa(widths, rng, batch=(2,))), ws
    elif rule_name == "DFA":
        rule, s0 = linfa.DFA(linfa.feedback.dfa(widths, rng, batch=(2,))), ws
    else:
        rule = linfa.KolenPollack(0.3)
        s0 = rule.init_state(ws, linfa.feedback.fa(widths, rng, batch=(2,)))
    h, t = 1e-4, 0.3
    ts = np.array([t - h, t, t + h])
    sol = linfa.solve(rule, task, s0, t + h, saveat=ts, rtol=1e-12, atol=1e-14,
                      observe={"loss": obs.loss, "rate": obs.loss_rate})
    fd = (sol.observed["loss"][:, 2] - sol.observed["loss"][:, 0]) / (2 * h)
    np.testing.assert_allclose(sol.observed["rate"][:, 1], fd, rtol=1e-6)


def test_mode_strengths_follow_saxe_closed_form_from_aligned_init():
    rng = np.random.default_rng(14)
    s = np.array([3.0, 2.0, 1.0])
    task = Task.random_teacher(rng, 5, 3, singular_values=s)
    widths, u0 = (5, 4, 3), 1e-3
    sol = linfa.solve(linfa.BP(), task, linfa.DeepLinear(widths).aligned(task, u0), 4.0,
                      saveat=np.linspace(0, 4, 9), rtol=1e-11, atol=1e-13,
                      observe={"u": obs.mode_strengths})
    assert sol.observed["u"].shape == (9, 3)
    exact = linfa.exact.saxe_mode(np.linspace(0, 4, 9)[:, None], s, u0)
    np.testing.assert_allclose(sol.observed["u"], exact, atol=1e-8)
    # at the optimum W = Σyx the strengths are the singular values
    np.testing.assert_allclose(obs.mode_strengths(linfa.BP(), task, (task.syx,)), s, rtol=1e-12)


def test_pseudo_backprop_angle():
    widths = (4, 6, 5, 3)
    rng, task, ws = _setup(15, widths=widths, batch=(2,))
    # when W_{>l} has orthonormal rows, W_{>l}^+ = W_{>l}^T: BP is pseudo-backprop for that layer
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    sq = (ws[0], ws[1], q @ np.eye(3, 5))  # W_3 with orthonormal rows: W_3^+ = W_3^T
    ang = obs.pseudo_backprop_angle(linfa.BP(), task, sq)
    assert ang.shape == (2, 2)
    assert np.all(ang[..., 1] < 1e-5)
    # a rule whose hidden signal is exactly W_{>l}^+ e: DFA with B_l = W_{>l}^+ at this state
    pinvs = [np.linalg.pinv(s) for s in linfa.products.suffix_products(ws)[:-1]]
    ang = obs.pseudo_backprop_angle(linfa.DFA(pinvs), task, ws)
    assert np.all(ang < 1e-5)
    # and BP generally differs
    assert np.all(obs.pseudo_backprop_angle(linfa.BP(), task, ws) > 1.0)
