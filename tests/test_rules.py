"""Learning-rule flows against independent routes: finite differences, hand formulas, sympy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa import observables as obs
from linfa.tasks import Task


def _task(rng: np.random.Generator, n0: int, nl: int, batch: tuple[int, ...] = ()) -> Task:
    """A task with non-whitened input covariance."""
    a = rng.standard_normal((*batch, n0, n0))
    sxx = a @ np.swapaxes(a, -1, -2) / n0 + 0.1 * np.eye(n0)
    return Task.random_teacher(rng, n0, nl, sxx=sxx, noise=0.3, batch=batch)


widths_st = st.lists(st.integers(1, 4), min_size=2, max_size=6).map(tuple)


@settings(max_examples=25, deadline=None)
@given(widths=widths_st, seed=st.integers(0, 2**32 - 1))
def test_bp_flow_is_minus_gradient_by_finite_differences(widths, seed):
    rng = np.random.default_rng(seed)
    task = _task(rng, widths[0], widths[-1])
    net = linfa.DeepLinear(widths)
    ws = net.gaussian(rng, 0.7)
    flow = linfa.BP().dstate(task, ws)
    h = 1e-5
    for l, w in enumerate(ws):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            plus = [x.copy() for x in ws]
            minus = [x.copy() for x in ws]
            plus[l][idx] += h
            minus[l][idx] -= h
            fd[idx] = -(obs.loss(linfa.BP(), task, tuple(plus)) - obs.loss(linfa.BP(), task, tuple(minus))) / (2 * h)
        scale = max(1.0, np.abs(fd).max())
        np.testing.assert_allclose(flow[l], fd, atol=1e-7 * scale, rtol=1e-6)


def _hand_products(ws):
    """W_{<l} and the error E by explicit loops, independent of linfa.rules."""
    depth = len(ws)
    below = [np.eye(ws[0].shape[1])]
    for l in range(1, depth):
        below.append(ws[l - 1] @ below[-1])
    total = ws[-1] @ below[-1]
    return below, total


@pytest.mark.parametrize("depth", [2, 3])
def test_fa_flow_matches_hand_formula(depth):
    rng = np.random.default_rng(depth)
    widths = (4, 5, 3, 2)[: depth + 1]
    task = _task(rng, widths[0], widths[-1])
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.5)
    bs = linfa.feedback.fa(widths, rng)
    _below, total = _hand_products(ws)
    e = task.syx - total @ task.sxx
    if depth == 2:
        (b2,) = bs
        expected = [b2 @ e, e @ ws[0].T]
    else:
        b2, b3 = bs
        expected = [b2 @ b3 @ e, b3 @ e @ ws[0].T, e @ (ws[1] @ ws[0]).T]
    got = linfa.FA(bs).dstate(task, ws)
    for g, x in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("depth", [2, 3])
def test_dfa_flow_matches_hand_formula(depth):
    rng = np.random.default_rng(10 + depth)
    widths = (4, 5, 3, 2)[: depth + 1]
    task = _task(rng, widths[0], widths[-1])
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.5)
    bs = linfa.feedback.dfa(widths, rng)
    _, total = _hand_products(ws)
    e = task.syx - total @ task.sxx
    if depth == 2:
        expected = [bs[0] @ e, e @ ws[0].T]
    else:
        expected = [bs[0] @ e, bs[1] @ e @ ws[0].T, e @ (ws[1] @ ws[0]).T]
    got = linfa.DFA(bs).dstate(task, ws)
    for g, x in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, x, rtol=1e-12, atol=1e-12)


def test_sign_symmetry_flow_matches_hand_formula():
    rng = np.random.default_rng(3)
    widths = (3, 4, 4, 2)
    task = _task(rng, 3, 2)
    w1, w2, w3 = linfa.DeepLinear(widths).gaussian(rng, 0.5)
    e = task.syx - w3 @ w2 @ w1 @ task.sxx
    expected = [np.sign(w2).T @ np.sign(w3).T @ e, np.sign(w3).T @ e @ w1.T, e @ (w2 @ w1).T]
    got = linfa.SignSymmetry().dstate(task, (w1, w2, w3))
    for g, x in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, x, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lam=st.floats(0.0, 3.0))
def test_kolen_pollack_mismatch_decays_at_rate_lambda(seed, lam):
    rng = np.random.default_rng(seed)
    widths = (3, 4, 5, 2)
    task = _task(rng, 3, 2)
    rule = linfa.KolenPollack(lam)
    state = rule.init_state(linfa.DeepLinear(widths).gaussian(rng, 0.5), linfa.feedback.fa(widths, rng))
    d = rule.dstate(task, state)
    for l in range(1, 3):
        w, b = state[l], state[3 + l - 1]
        dw, db = d[l], d[3 + l - 1]
        np.testing.assert_allclose(dw - db.T, -lam * (w - b.T), atol=1e-12)


def test_kolen_pollack_without_decay_is_fa_on_the_weights():
    rng = np.random.default_rng(7)
    widths = (3, 4, 2)
    task = _task(rng, 3, 2)
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.5)
    bs = linfa.feedback.fa(widths, rng)
    kp = linfa.KolenPollack(0.0)
    d = kp.dstate(task, kp.init_state(ws, bs))
    for a, b in zip(d[:2], linfa.FA(bs).dstate(task, ws), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_two_layer_flows_on_sympy_matrices_equal_hand_formulas():
    import sympy as sp
    n0, n1, n2 = 2, 3, 2
    A = sp.Matrix(n1, n0, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    W = sp.Matrix(n2, n1, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    B = sp.Matrix(n1, n2, lambda i, j: sp.Symbol(f"b{i}{j}", real=True))
    s = sp.Matrix(n0, n0, lambda i, j: sp.Symbol(f"s{min(i, j)}{max(i, j)}", real=True))
    syx = sp.Matrix(n2, n0, lambda i, j: sp.Symbol(f"y{i}{j}", real=True))
    task = Task.tree_unflatten((s, syx, sp.zeros(n2, n2)))
    E = syx - W * A * s
    da, dw = linfa.BP().flow(task)(0, (A, W))
    assert (da - W.T * E).expand() == sp.zeros(n1, n0)
    assert (dw - E * A.T).expand() == sp.zeros(n2, n1)
    da, dw = linfa.FA((B,)).flow(task)(0, (A, W))
    assert (da - B * E).expand() == sp.zeros(n1, n0)
    assert (dw - E * A.T).expand() == sp.zeros(n2, n1)


RULES = ["BP", "FA", "DFA", "SignSymmetry", "KolenPollack"]


def _rule_and_state(name, widths, rng, batch):
    net = linfa.DeepLinear(widths)
    ws = net.gaussian(rng, 0.4, batch=batch)
    if name == "BP":
        return linfa.BP(), ws
    if name == "SignSymmetry":
        return linfa.SignSymmetry(), ws
    if name == "FA":
        return linfa.FA(linfa.feedback.fa(widths, rng, batch=batch)), ws
    if name == "DFA":
        return linfa.DFA(linfa.feedback.dfa(widths, rng, batch=batch)), ws
    rule = linfa.KolenPollack(0.2)
    return rule, rule.init_state(ws, linfa.feedback.fa(widths, rng, batch=batch))


@pytest.mark.parametrize("name", RULES)
def test_batched_flow_equals_per_instance(name):
    rng = np.random.default_rng(11)
    widths = (3, 4, 5, 2)
    K = 4
    task = _task(rng, 3, 2, batch=(K,))
    rule, state = _rule_and_state(name, widths, rng, (K,))
    rule.validate(task, state)
    batched = rule.flow(task)(0.0, state)
    assert [d.shape for d in batched] == [s.shape for s in state]
    leaves, aux = rule.tree_flatten()
    for k in range(K):
        rk = type(rule).tree_unflatten(aux, tuple(b[k] for b in leaves))
        tk = Task(task.sxx[k], task.syx[k], task.syy[k])
        single = rk.flow(tk)(0.0, tuple(s[k] for s in state))
        for a, b in zip(batched, single, strict=True):
            np.testing.assert_allclose(a[k], b, rtol=1e-13, atol=1e-15)


def test_unbatched_feedback_broadcasts_against_batched_state():
    rng = np.random.default_rng(12)
    widths = (3, 4, 2)
    task = _task(rng, 3, 2)
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.4, batch=(5,))
    rule = linfa.FA(linfa.feedback.fa(widths, rng))
    rule.validate(task, ws)
    d = rule.dstate(task, ws)
    single = rule.dstate(task, tuple(w[2] for w in ws))
    np.testing.assert_allclose(d[0][2], single[0], rtol=1e-14)


def test_backward_matrices_reproduce_the_signals():
    rng = np.random.default_rng(13)
    widths = (3, 4, 5, 2)
    for name in RULES:
        rule, state = _rule_and_state(name, widths, rng, ())
        ms = rule.backward_matrices(state)
        assert [m.shape for m in ms] == [(4, 2), (5, 2)]
        e = rng.standard_normal((2, 3))
        sig = rule._signals(state, e)
        for m, s in zip(ms, sig[:-1], strict=True):
            np.testing.assert_allclose(m @ e, s, rtol=1e-12)


# ------------------------------------------------------------------ bad input


def test_validate_rejects_wrong_depth_and_shapes():
    rng = np.random.default_rng(0)
    task = _task(rng, 3, 2)
    with pytest.raises(ValueError, match=r"state\[0\] \(W_1\): expected shape \(\*batch, m, 3\), got \(4, 5\)"):
        linfa.BP().validate(task, (np.zeros((4, 5)), np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"state\[1\] \(W_2\): expected shape \(\*batch, 2, 4\), got \(3, 4\)"):
        linfa.BP().validate(task, (np.zeros((4, 3)), np.zeros((3, 4))))
    with pytest.raises(TypeError, match="state: expected a tuple"):
        linfa.BP().validate(task, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        linfa.BP().validate(task, (np.full((4, 3), np.nan), np.zeros((2, 4))))
    with pytest.raises(ValueError, match="batch shapes"):
        linfa.BP().validate(task, (np.zeros((3, 4, 3)), np.zeros((5, 2, 4))))


def test_feedback_of_wrong_length_or_shape_is_rejected():
    rng = np.random.default_rng(0)
    task = _task(rng, 3, 2)
    ws = linfa.DeepLinear((3, 4, 5, 2)).zeros()
    with pytest.raises(ValueError, match="feedback: expected 2 matrices"):
        linfa.FA((np.zeros((4, 5)),)).validate(task, ws)
    with pytest.raises(ValueError, match=r"feedback\[1\]: expected shape \(\*batch, 5, 2\), got \(5, 3\)"):
        linfa.FA((np.zeros((4, 5)), np.zeros((5, 3)))).validate(task, ws)
    with pytest.raises(ValueError, match=r"feedback\[1\]: expected 5 rows"):
        linfa.FA((np.zeros((4, 5)), np.zeros((4, 2))))
    with pytest.raises(ValueError, match=r"feedback\[0\]: expected shape \(\*batch, 4, 2\), got \(4, 3\)"):
        linfa.DFA((np.zeros((4, 3)), np.zeros((5, 3)))).validate(task, ws)
    with pytest.raises(TypeError, match="feedback: expected a tuple"):
        linfa.FA(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="decay"):
        linfa.KolenPollack(-1.0)
    with pytest.raises(ValueError, match=r"state: expected the weights W_1..W_L followed by the learned feedback"):
        linfa.KolenPollack(0.1).validate(task, (*ws, np.zeros((4, 5))))


def test_whitened_fast_path_is_bit_identical():
    rng = np.random.default_rng(21)
    widths = (4, 5, 3)
    task = Task.random_teacher(rng, 4, 3, batch=(3,))
    assert task.whitened and not _task(rng, 4, 3).whitened
    general = Task.tree_unflatten(task.tree_flatten(), whitened=False)
    ws = linfa.DeepLinear(widths).gaussian(rng, 0.5, batch=(3,))
    rule = linfa.FA(linfa.feedback.fa(widths, rng))
    for a, b in zip(rule.dstate(task, ws), rule.dstate(general, ws), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ declaration and registry


def test_builtins_declare_their_identity():
    assert linfa.rules.names()[:5] == ("BP", "SignSymmetry", "FA", "DFA", "KolenPollack")
    for name in linfa.rules.names()[:5]:
        assert linfa.rules.get(name).name == name
    assert linfa.FA.feedback_shapes((3, 4, 5, 2)) == [(4, 5), (5, 2)]
    assert linfa.KolenPollack.feedback_shapes((3, 4, 5, 2)) == [(4, 5), (5, 2)]
    assert linfa.DFA.feedback_shapes((3, 4, 5, 2)) == [(4, 2), (5, 2)]
    assert linfa.BP.feedback_shapes((3, 4, 2)) == []
    assert linfa.DFA.feedback_names(3) == ("B1", "B2") and linfa.FA.feedback_names(3) == ("B2", "B3")
    assert linfa.KolenPollack.learns_feedback and not linfa.FA.learns_feedback
    rng = np.random.default_rng(5)
    ws = linfa.DeepLinear((3, 4, 5, 2)).gaussian(rng, 0.5)
    bs = linfa.feedback.fa((3, 4, 5, 2), rng)
    kp = linfa.KolenPollack(0.2)
    state = kp.init_state(ws, bs)
    assert len(state) == 5 and kp.depth(state) == 3
    assert all(a is b for a, b in zip(kp.feedback_of(state), bs, strict=True))
    assert linfa.FA(bs).feedback_of(ws) == linfa.FA(bs).feedback
    with pytest.raises(TypeError, match="does not learn its feedback"):
        linfa.FA(bs).init_state(ws, bs)
    with pytest.raises(TypeError, match="needs the initial feedback"):
        kp.init_state(ws)


def test_register_get_and_custom_layout():
    # a layout of one's own: one matrix, from the output to the first layer only
    layout = linfa.rules.FeedbackLayout(lambda w: [(w[1], w[-1])], first=1, kind="first-layer",
                                        description="B_1 of shape (n_1, n_L)")

    @linfa.rules.register
    class FirstOnly(linfa.AbstractRule):
        name = "FirstOnlyTest"
        feedback_layout = layout

        def _signals(self, state, e):  # δ_L = e, δ_l = W_{l+1}^T δ_{l+1} for l >= 2, δ_1 = B_1 e
            out = [e]
            for w in reversed(self.weights(state)[2:]):
                out.append(np.swapaxes(w, -1, -2) @ out[-1])
            out.append(self.feedback[0] @ e)
            return out[::-1]

    try:
        assert linfa.rules.get("FirstOnlyTest") is FirstOnly
        with pytest.raises(ValueError, match="already registered"):
            linfa.rules.register(type("Other", (linfa.AbstractRule,), {"name": "FirstOnlyTest"}))
        rng = np.random.default_rng(6)
        widths = (3, 4, 5, 2)
        task = Task.random_teacher(rng, 3, 2)
        ws = linfa.DeepLinear(widths).gaussian(rng, 0.5)
        rule = FirstOnly(linfa.feedback.for_rule("FirstOnlyTest", widths, rng))
        inst = linfa.Instance.from_problem(rule, task, ws)
        assert sorted(k for k in inst.arrays if k.startswith("B")) == ["B1"]
        rule2, task2, ws2 = inst.problem()
        np.testing.assert_array_equal(rule2.feedback[0], rule.feedback[0])
        # M_1 = B_1, M_2 = W_3^T: the flow of layer 2 is BP's, of layer 1 uses B_1
        bp = linfa.BP().dstate(task, ws)
        mine = rule2.dstate(task2, ws2)
        np.testing.assert_allclose(mine[1], bp[1], rtol=1e-13)
        np.testing.assert_allclose(mine[2], bp[2], rtol=1e-13)
        e = task.syx - ws[2] @ ws[1] @ ws[0] @ task.sxx
        np.testing.assert_allclose(mine[0], rule.feedback[0] @ e, rtol=1e-13)
    finally:
        linfa.rules.unregister("FirstOnlyTest")
    with pytest.raises(KeyError, match="no rule 'FirstOnlyTest'"):
        linfa.rules.get("FirstOnlyTest")
    with pytest.raises(ValueError, match=r"params\['rule'\]: expected one of"):
        inst.rule()


def test_registry_rejects_bad_declarations():
    with pytest.raises(TypeError, match=r"subclass of linfa\.AbstractRule"):
        linfa.rules.register(object)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        linfa.rules.register(type("NoName", (linfa.AbstractRule,), {}))
    with pytest.raises(ValueError, match="learns_feedback but no feedback_layout"):
        linfa.rules.register(type("Bad", (linfa.AbstractRule,), {"name": "BadLearn", "learns_feedback": True}))


def test_unknown_name_loads_an_entry_point_lazily(monkeypatch):
    import importlib.metadata as md

    class FromPackage(linfa.AbstractRule):
        name = "FromPackageTest"

        def _signals(self, state, e):
            return [e for _ in self.weights(state)]

    calls = []

    class EP:
        name = "FromPackageTest"

        def load(self):
            calls.append(1)
            return FromPackage

    monkeypatch.setattr(md, "entry_points", lambda group: [EP()] if group == "linfa.rules" else [])
    linfa.rules.get("FA")
    assert calls == []  # known names never touch the entry points
    try:
        assert linfa.rules.get("FromPackageTest") is FromPackage and calls == [1]
    finally:
        linfa.rules.unregister("FromPackageTest")
