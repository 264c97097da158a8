"""The symbolic machinery: steps verify (or fail) honestly, derivatives follow the flow, rendering."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import linfa
from linfa.symbolic import (
    Derivation,
    Step,
    VerificationError,
    antisymmetric,
    flow_rates,
    is_conserved,
    is_nonincreasing,
    matrix,
    rate_step,
    sq_norm,
    symbols,
    symmetric,
    task,
    time_derivative,
)
from linfa.symbolic.numeric import compare, flow_derivative, lambdify, rk4, sample_relation

x, y = sp.symbols("x y", real=True)
c = sp.Symbol("c", positive=True)


# ------------------------------------------------------------------ steps
def test_polynomial_identity_verifies_and_a_false_one_fails() -> None:
    assert Step("sq", (x + y) ** 2, x**2 + 2 * x * y + y**2).check().ok
    bad = Step("sq-wrong", (x + y) ** 2, x**2 + y**2).check()
    assert not bad.ok
    assert "residual" in bad.detail and "2*x*y" in bad.detail


def test_simplify_needed_for_rational_and_exponential_identities() -> None:
    assert Step("r", 1 / (x + 1) - 1 / (x + 2), 1 / ((x + 1) * (x + 2))).check().ok
    assert not Step("r", 1 / (x + 1), 1 / (x + 2), method="expand").check().ok
    assert Step("e", sp.exp(2 * x), sp.exp(x) ** 2).check().ok


def test_matrix_symbol_identity_is_dimension_free() -> None:
    A, B = symbols("A B", (3, 2), (2, 3))
    r = Step("t", (A @ B).T, B.T @ A.T).check()
    assert r.ok and "dimension-free" in r.method
    assert not Step("t", (A @ B).T, 2 * B.T @ A.T).check().ok


def test_non_commuting_products_do_not_verify() -> None:
    A, B = symbols("A B", (2, 2), (2, 2))
    assert not Step("comm", A @ B, B @ A).check().ok
    M, N = matrix("M", 2, 2), matrix("N", 2, 2)
    assert not Step("comm", M * N, N * M).check().ok


def test_given_substitutes_a_hypothesis() -> None:
    B, N = symbols("B N", (3, 2), (2, 2))
    e = sp.MatrixSymbol("e", 2, 1)
    lhs = e.T @ N @ B.T @ B @ e
    assert not Step("no-hyp", lhs, c * e.T @ N @ e).check().ok
    assert Step("hyp", lhs, c * e.T @ N @ e, given=((B.T @ B, c * sp.Identity(2)),)).check().ok


def test_inequality_with_witness_and_sign() -> None:
    assert Step("amgm", x**2 + y**2, 2 * x * y, ">=", witness=(x - y) ** 2).check().ok
    # a wrong witness fails, and so does a witness of unknown sign
    assert not Step("amgm", x**2 + y**2, 2 * x * y, ">=", witness=(x + y) ** 2).check().ok
    assert not Step("sign", x * y, 0, ">=").check().ok
    assert Step("sign", c * (x**2 + 1), 0, ">").check().ok
    assert Step("le", 2 * x * y, x**2 + y**2, "<=", witness=(x - y) ** 2).check().ok


def test_psd_needs_a_gram_witness() -> None:
    G = matrix("G", 2, 3)
    assert Step("gram", G * G.T, sp.zeros(2, 2), "psd", witness=G).check().ok
    assert not Step("gram", G * G.T, sp.zeros(2, 2), "psd").check().ok
    K = antisymmetric("K", 2)
    assert not Step("gram", G * G.T + K, sp.zeros(2, 2), "psd", witness=G).check().ok


def test_numeric_steps_are_labelled_and_can_fail() -> None:
    r = Step("num", sp.sin(x) ** 2 + sp.cos(x) ** 2, 1, method="numeric").check()
    assert r.ok and "NUMERIC ONLY" in r.method and r.numeric_only
    assert not Step("num", sp.sin(x), x, method="numeric").check().ok
    A = sp.MatrixSymbol("A", 3, 3)
    assert Step("num", A @ A.T, sp.ZeroMatrix(3, 3), "psd", method="numeric").check().ok
    assert not Step("num", A + A.T, sp.ZeroMatrix(3, 3), "psd", method="numeric").check().ok


def test_malformed_step_is_a_failure_not_a_crash() -> None:
    A, B = symbols("A B", (2, 3), (3, 3))
    r = Step("shape", A, B).check()
    assert not r.ok and "error" in r.method


def test_bad_relation_and_method_raise() -> None:
    with pytest.raises(ValueError, match="relation"):
        Step("s", x, y, "≈")
    with pytest.raises(ValueError, match="method"):
        Step("s", x, y, method="guess")


def test_report_names_the_failed_step() -> None:
    d = Derivation("demo", "x")
    p, q = sp.symbols("p q", real=True)
    d.add("good", (x + 1) ** 2, x**2 + 2 * x + 1, defines=p)
    d.add("bad", (x + 1) ** 2, x**2 + 1, defines=q)
    d.conclude(p - q, 2 * x, name="also-good", uses=("good", "bad"))  # true of the stated right-hand sides
    rep = d.verify()
    assert not rep.ok and not bool(rep) and rep.failed == ["bad"]
    with pytest.raises(VerificationError, match="'bad'"):
        rep.raise_if_failed()
    assert "FAILED: bad" in str(rep)
    assert d.run(verbose=False) == 1
    with pytest.raises(ValueError, match="already exists"):
        d.add("good", x, x)


# --------------------------------------------------------------- calculus
def test_time_derivative_is_the_product_rule_on_explicit_matrices() -> None:
    A, dA = matrix("A", 2, 2), matrix("D", 2, 2)
    got = time_derivative(A * A.T, [(A, dA)])  # explicit matrices: pairs, not a dict
    assert (got - (dA * A.T + A * dA.T)).applyfunc(sp.expand) == sp.zeros(2, 2)


def test_time_derivative_on_matrix_symbols_with_inverse_and_time() -> None:
    A, D = symbols("A D", (2, 2), (2, 2))
    t = sp.Symbol("t", real=True)
    got = time_derivative(A.I, {A: D})
    assert sp.expand((got + A.I @ D @ A.I).doit()) == sp.ZeroMatrix(2, 2)
    got = time_derivative(sp.exp(t) * A, [(A, D), (t, 1)])
    assert sp.expand((got - sp.exp(t) * A - sp.exp(t) * D).doit()) == sp.ZeroMatrix(2, 2)


def test_flow_rates_come_from_the_rule() -> None:
    A, W, B, S, Y = symbols("A W B S Y", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2))
    rates = flow_rates(linfa.FA((B,)), task(S, Y), (A, W))
    assert set(rates) == {A, W}
    assert sp.expand((rates[A] - B @ (Y - W @ A @ S)).doit()) == sp.ZeroMatrix(3, 2)
    # explicit matrices: one rate per entry symbol
    Am, Wm, Bm = matrix("A", 2, 2), matrix("W", 1, 2), matrix("B", 2, 1)
    r = flow_rates(linfa.FA((Bm,)), task(sp.eye(2), matrix("Y", 1, 2)), (Am, Wm))
    assert len(r) == 6


def test_is_conserved_distinguishes_true_and_false_laws() -> None:
    A, W, B, S, Y = symbols("A W B S Y", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2))
    fa, tk = linfa.FA((B,)), task(S, Y)
    assert is_conserved(lambda st: st[0] @ st[0].T - B @ st[1] - st[1].T @ B.T, fa, tk, (A, W))
    # the BP law is not conserved by FA, nor the FA law by BP
    assert not is_conserved(lambda st: st[0] @ st[0].T - st[1].T @ st[1], fa, tk, (A, W))
    assert not is_conserved(lambda st: st[0] @ st[0].T - B @ st[1] - st[1].T @ B.T, linfa.BP(), tk, (A, W))


def test_loss_is_nonincreasing_under_bp_explicitly() -> None:
    """dL/dt = -‖∂L/∂W_1‖² - ‖∂L/∂W_2‖² under BP (explicit 2×2×1, Σxx = I)."""
    A, W, Y = matrix("A", 2, 2), matrix("W", 1, 2), matrix("Y", 1, 2)
    tk, st = task(sp.eye(2), Y, sp.Matrix([[1]])), (A, W)
    E = Y - W * A
    loss = (-(W * A * Y.T)[0, 0] + sq_norm(W * A) / 2)
    g1, g2 = W.T * E, E * A.T
    assert is_nonincreasing(loss, linfa.BP(), tk, st, sq_norm(g1) + sq_norm(g2))
    assert not is_nonincreasing(loss, linfa.BP(), tk, st, sq_norm(g1))
    step = rate_step("loss", loss, linfa.BP(), tk, st, 0, relation="<=", witness=sq_norm(g1) + sq_norm(g2))
    assert step.check().ok


def test_symmetric_and_antisymmetric_matrices() -> None:
    S, K = symmetric("S", 3), antisymmetric("K", 3)
    assert S == S.T and K == -K.T and len(S.free_symbols) == 6 and len(K.free_symbols) == 3


# ---------------------------------------------------------------- numeric
def test_lambdify_and_complex_step_match_the_numeric_flow() -> None:
    rng = np.random.default_rng(0)
    A, W, B, S, Y = symbols("A W B S Y", (5, 4), (3, 5), (5, 3), (4, 4), (3, 4))
    rule = linfa.FA((B,))
    q = A @ A.T - W.T @ W  # not conserved by FA
    dq = time_derivative(q, flow_rates(rule, task(S, Y), (A, W)))
    a, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 5)), rng.standard_normal((5, 3))
    tk = linfa.Task.random_teacher(rng, 4, 3, noise=0.1)
    num = linfa.FA((b,))
    got = flow_derivative(lambdify(q, [A, W]), (a, w), num.dstate(tk, (a, w)))
    want = lambdify(dq, [A, W, B, S, Y])(a, w, b, tk.sxx, tk.syx)
    assert compare("dq", got, want, tol=1e-12).ok
    assert np.max(np.abs(want)) > 1e-3


def test_sample_relation_and_rk4() -> None:
    rng = np.random.default_rng(0)
    ok, _ = sample_relation(x**2 + y**2, 2 * x * y, ">=", rng)
    assert ok
    ok, err = sample_relation(x * y, 0, ">=", rng, points=30)
    assert not ok and err > 0
    # rk4 on y' = -y
    (end,) = rk4(lambda t, s: (-s[0],), (np.ones(3),), 1.0, 50)
    assert np.allclose(end, np.exp(-1.0), atol=1e-8)


# -------------------------------------------------------------- rendering
def test_rendering_contains_each_step() -> None:
    d = Derivation("demo", r"(x+1)^2 \geq 0", hypotheses=("x \\in \\mathbb{R}",), reference="folklore")
    d.add("expand_1", (x + 1) ** 2, x**2 + 2 * x + 1, reason="binomial")
    d.add("sign", (x + 1) ** 2, 0, ">=", reason="a square")
    tex = d._repr_latex_()
    assert tex.startswith("$$") and r"\begin{aligned}" in tex and r"\geq" in tex and r"expand\_1" in tex
    md = d._repr_markdown_()
    assert "1. `expand_1`" in md and "2. `sign`" in md and "folklore" in md
    assert "[expand_1]" in d.to_text()


def test_import_linfa_does_not_import_sympy() -> None:
    code = "import sys, linfa; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_report_scope_separates_dimension_free_from_fixed_size_proofs():
    import sympy as sp

    from linfa.symbolic import Derivation, Step

    a, b = sp.symbols("a b", real=True)
    A = sp.MatrixSymbol("A", 3, 3)
    P, s_ = sp.MatrixSymbol("P", 3, 3), sp.Symbol("s", real=True)
    free = Derivation(title="free", statement="", steps=[
        Step("transpose", (A.T).T, A, defines=P), Step("claim", P, A, uses=("transpose",), claim=True)])
    assert free.verify().ok and free.verify().scope == "dimension-free"
    M = sp.Matrix(2, 2, sp.symbols("m0:4", real=True))
    fixed = Derivation(title="fixed", statement="", steps=[
        Step("transpose", (M.T).T, M, dims="n=2"),
        Step("square", (a + b) ** 2, a**2 + 2 * a * b + b**2, defines=s_),
        Step("claim", s_, (a + b) ** 2, uses=("square",), claim=True),
    ])
    report = fixed.verify()
    assert not report.ok and report.structure  # "transpose" is not on the way to the claim
    fixed.steps[-1] = Step("claim", s_, (a + b) ** 2, uses=("square", "transpose"), claim=True)
    report = fixed.verify()
    assert report.ok and report.fixed_dims == ("n=2",)
    assert report.scope == "some steps exact only at n=2"
    assert "verified (some steps exact only at n=2)" in str(report)


def test_calculus_steps_end_a_chain_through_the_flow_steps() -> None:
    """conservation_step / rate_step with flow_steps' placeholder rates are claims that hold only via the flow."""
    from linfa.symbolic import Derivation, conservation_step, flow_steps

    A, W, Y = matrix("A", 2, 2), matrix("W", 1, 2), matrix("Y", 1, 2)
    B = matrix("B", 2, 1)
    tk, st = task(sp.eye(2), Y, sp.Matrix([[1]])), (A, W)
    flows, rates = flow_steps(linfa.FA((B,)), tk, st, ("A", "W"))
    law = lambda s: s[0] * s[0].T - B * s[1] - s[1].T * B.T
    d = Derivation("FA law, chained", "dQ/dt = 0")
    for f in flows:
        d.append(f)
    d.append(conservation_step("law", law, linfa.FA((B,)), tk, st, rates=rates, uses=("flow-A", "flow-W"),
                               claim=True))
    assert d.verify().ok
    assert not d.without("flow-A").verify().ok  # the placeholder rate of A is left unexplained
    # BP's loss, as a claim resting on BP's flow steps
    E = Y - W * A
    loss = -(W * A * Y.T)[0, 0] + sq_norm(W * A) / 2
    bflows, brates = flow_steps(linfa.BP(), tk, st, ("A", "W"), prefix="bp")
    d2 = Derivation("BP loss, chained", "dL/dt <= 0")
    for f in bflows:
        d2.append(f)
    d2.append(rate_step("loss", loss, linfa.BP(), tk, st, 0, relation="<=", rates=brates, uses=("bp-A", "bp-W"),
                        witness=sq_norm(W.T * E) + sq_norm(E * A.T), claim=True))
    assert d2.verify().ok
    assert not d2.without("bp-W").verify().ok
    with pytest.raises(ValueError, match="uses: a step written with placeholder rates"):
        rate_step("loss", loss, linfa.BP(), tk, st, 0, relation="<=", rates=brates)
