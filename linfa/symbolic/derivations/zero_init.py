r"""Fact 3: feedback alignment from zero initialisation (two layers).

With :math:`M = \int_0^t E`, :math:`N = \int_0^t E M^T` the FA solution from
:math:`A(0) = 0, W(0) = 0` is

.. math::

    A = BM, \qquad W = NB^T, \qquad N + N^T = MM^T

(any :math:`\Sigma_{xx}`; also after any number of discrete GD/SGD steps).
If :math:`B^TB = cI`:

.. math::

    e^TWBe = \tfrac c2 \lVert M^Te\rVert^2 \geq 0, \qquad
    \frac{dL}{dt} = -c\lVert EM^T\rVert^2 - \tfrac c2\lVert M^TE\rVert^2 \leq 0
    \quad(\Sigma_{xx} = I),

and for a single output (where :math:`B^TB = \lVert b\rVert^2` always)
:math:`W^T = \tfrac12\lVert M\rVert^2\, b`, a non-negative multiple of the
feedback. Without :math:`B^TB = cI` the sign of :math:`e^TWBe` is not
guaranteed: a numerical counterexample is attached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import linfa
from linfa.observables import loss
from linfa.random_matrices import haar_orthonormal
from linfa.rules import error
from linfa.symbolic.calculus import flow_steps, time_derivative
from linfa.symbolic.derivation import Counterexample, Derivation
from linfa.symbolic.derivations._common import dims, lambdified, rel
from linfa.symbolic.matrices import (
    antisymmetric,
    frobenius,
    matrix,
    sq_norm,
    symbols,
    symmetric,
    task,
    vector,
)
from linfa.symbolic.numeric import CheckResult, compare, flow_derivative, rk4
from linfa.tasks import Task

__all__ = ["fa_zero_init"]


def _augmented_flow(rule: linfa.FA, tk: Task) -> Any:
    """FA flow of (A, W) from linfa, with the auxiliary M' = E, N' = E M^T."""
    f = rule.flow(tk)

    def g(t: float, st: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        a, w, m, _ = st
        e = error(tk, w @ a)
        return (*f(t, (a, w)), e, e @ m.T)

    return g


def _check(rng: np.random.Generator) -> CheckResult:
    n0, n1, n2 = dims(rng, 3, 2, 6)
    n1 = max(n1, n2)
    c = float(rng.uniform(0.3, 2.0))
    b = np.sqrt(c) * haar_orthonormal(rng, n1, n2)
    tk = Task.random_teacher(rng, n0, n2, noise=0.2)  # Σxx = I
    rule = linfa.FA((b,))
    z = (np.zeros((n1, n0)), np.zeros((n2, n1)), np.zeros((n2, n0)), np.zeros((n2, n2)))
    a, w, m, nn = rk4(_augmented_flow(rule, tk), z, float(rng.uniform(0.2, 2.0)), 200)
    errs = {
        "A = BM": rel(a, b @ m),
        "W = NB^T": rel(w, nn @ b.T),
        "N + N^T = MM^T": rel(nn + nn.T, m @ m.T),
    }
    e = rng.standard_normal((n2, 1))
    ewbe = lambdified(lambda W, B, e: e.T @ W @ B @ e, "W B e", (n2, n1), (n1, n2), (n2, 1))(w, b, e)
    half = lambdified(lambda M, e: (e.T @ M) @ (M.T @ e), "M e", (n2, n0), (n2, 1))(m, e)
    errs["e^T W B e = (c/2)|M^T e|^2"] = rel(ewbe, c / 2 * half)
    formula = lambdified(
        lambda E, M: -c * sp.Trace((E @ M.T).T @ (E @ M.T)) - c / 2 * sp.Trace((M.T @ E).T @ (M.T @ E)),
        "E M", (n2, n0), (n2, n0))
    dl = flow_derivative(lambda A, W: loss(rule, tk, (A, W)), (a, w), rule.dstate(tk, (a, w)))
    errs["dL/dt formula"] = rel(dl, formula(error(tk, w @ a), m))
    worst = max(errs, key=lambda k: errs[k])
    res = compare("zero-init FA structure and Lyapunov rate", errs[worst], 0.0, tol=1e-7)
    return CheckResult(res.name, res.ok, errs[worst], 1e-7, f"widths ({n0},{n1},{n2}), c={c:.3g}; worst: {worst}")


def _counterexample() -> CheckResult:
    """Zero-init FA with B^T B far from cI: an error direction e with e^T W B e < 0."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        tk = Task.random_teacher(rng, 3, 2, singular_values=[3.0, 1.0])
        b = rng.standard_normal((3, 2))
        b[:, 1] = 0.9 * b[:, 0] + 0.1 * b[:, 1]  # nearly collinear feedback columns
        rule = linfa.FA((b,))
        st: tuple[np.ndarray, ...] = (np.zeros((3, 3)), np.zeros((2, 3)))
        for _ in range(20):
            st = rk4(rule.flow(tk), st, 0.25, 10)
            wb = st[1] @ b
            lam, vec = np.linalg.eigh(wb + wb.T)
            if lam[0] < -1e-3:
                e = vec[:, 0]
                val = float(e @ wb @ e)
                gram = np.linalg.eigvalsh(b.T @ b)
                return CheckResult("e^T W B e < 0 from zero init with a general B", val < 0, val, 0.0,
                                   f"seed {seed}, B^T B eigenvalues {np.array2string(gram, precision=3)}, "
                                   f"e = {np.array2string(e, precision=3)}")
    return CheckResult("e^T W B e < 0 from zero init with a general B", False, float("nan"), 0.0, "none found")


def fa_zero_init() -> Derivation:
    """FA from zero init: ``A = BM``, ``W = NB^T``, ``N + N^T = MM^T``, and its consequences."""
    _, W, B, S, Y, M, N = symbols("A W B S Y M N", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2), (2, 2), (2, 2))
    c = sp.Symbol("c", positive=True)
    eta = sp.Symbol("eta", positive=True)
    I2 = sp.Identity(2)
    rule, tk = linfa.FA((B,)), task(S, Y)
    Es = Y - N @ B.T @ B @ M @ S  # E at the structured point
    fa_s = rule.dstate(tk, (B @ M, N @ B.T))
    hyp = ((B.T @ B, c * I2),)
    d = Derivation(
        "FA from zero initialisation",
        r"A = BM,\ W = NB^T,\ N + N^T = MM^T;\ B^TB = cI \Rightarrow e^TWBe = \tfrac c2\lVert M^Te\rVert^2,\ "
        r"\dot L = -c\lVert EM^T\rVert^2 - \tfrac c2\lVert M^TE\rVert^2",
        hypotheses=(r"A(0) = 0,\ W(0) = 0", r"M = \int_0^t E,\ N = \int_0^t EM^T",
                    r"B^TB = cI \text{ for the sign claims (implicit in the papers; needed, see counterexample)}",
                    r"\Sigma_{xx} = I \text{ for } \dot L"),
        reference="Lillicrap et al. 2016; docs/design.md, fact 3",
        conclusion=r"the structured curve solves FA's ODE with the same (zero) initial value, so by uniqueness "
                   r"it is the FA trajectory; the sign claims follow with $B^TB = cI$.",
    )
    # --- the structure: the structured curve solves FA's ODE (with M' = E, N' = E M^T)
    Md, Nd = sp.MatrixSymbol(r"\dot{M}", 2, 2), sp.MatrixSymbol(r"\dot{N}", 2, 2)
    FA_, FW_ = sp.MatrixSymbol("F_A", 3, 2), sp.MatrixSymbol("F_W", 2, 3)
    DA, DW, DN = sp.MatrixSymbol("D_A", 3, 2), sp.MatrixSymbol("D_W", 2, 3), sp.MatrixSymbol("D_N", 2, 2)
    rates = {M: Md, N: Nd}
    d.define("def-M", Md, Es, reason="M = ∫E: its rate is the error at the structured point",
             show=r"\dot M := E = \Sigma_{yx} - NB^TBM\Sigma_{xx}")
    d.define("def-N", Nd, Es @ M.T, reason="N = ∫EM^T", show=r"\dot N := EM^T")
    d.add("fa-flow-A", fa_s[0], B @ Es, defines=FA_, reason="FA.flow's dA/dt at (BM, NB^T); any Σxx",
          show=r"F_A := \dot A_{FA}(BM, NB^T) = BE")
    d.add("fa-flow-W", fa_s[1], Es @ M.T @ B.T, defines=FW_, reason="FA.flow's dW/dt = E A^T at A = BM",
          show=r"F_W := \dot W_{FA}(BM, NB^T) = EM^TB^T")
    d.add("structure-A", time_derivative(B @ M, rates) - FA_, sp.ZeroMatrix(3, 2), defines=DA,
          uses=("def-M", "fa-flow-A"), reason="d/dt(BM) = B Ṁ = BE",
          show=r"D_A := \tfrac{d}{dt}(BM) - F_A = 0")
    d.add("structure-W", time_derivative(N @ B.T, rates) - FW_, sp.ZeroMatrix(2, 3), defines=DW,
          uses=("def-N", "fa-flow-W"), reason="d/dt(NB^T) = Ṅ B^T = E M^T B^T",
          show=r"D_W := \tfrac{d}{dt}(NB^T) - F_W = 0")
    d.add("symmetric-part", time_derivative(N + N.T - M @ M.T, rates), sp.ZeroMatrix(2, 2), defines=DN,
          uses=("def-M", "def-N"), reason="d/dt(N + N^T) = EM^T + ME^T = d/dt(MM^T); zero at t = 0",
          show=r"D_N := \tfrac{d}{dt}\left(N + N^T - MM^T\right) = 0")
    d.conclude(sp.Trace(DA @ DA.T) + sp.Trace(DW @ DW.T) + sp.Trace(DN @ DN.T), 0, name="structure",
               uses=("structure-A", "structure-W", "symmetric-part"),
               reason="the structured curve solves FA's ODE (all residuals vanish) from the same zero "
                      "initial value, so by uniqueness it is the FA trajectory; N + N^T − MM^T stays 0",
               show=r"A = BM,\ W = NB^T,\ N + N^T = MM^T \text{ along FA from zero init}")
    # --- the structure survives discrete steps (GD/SGD on the moments of any batch)
    gd = tuple(s + eta * r for s, r in zip((B @ M, N @ B.T), (FA_, FW_), strict=True))
    d.conclude(B @ (M + eta * Es) - gd[0], sp.ZeroMatrix(3, 2), name="discrete-A", uses=("fa-flow-A",),
               reason="the structure is linear in M: a GD/SGD step (moments of its batch) keeps it",
               show=r"B(M + \eta E) = A + \eta\,F_A")
    d.conclude((N + eta * Es @ M.T) @ B.T - gd[1], sp.ZeroMatrix(2, 3), name="discrete-W", uses=("fa-flow-W",),
               reason="likewise for N", show=r"(N + \eta EM^T)B^T = W + \eta\,F_W")
    # --- the sign of e^T W B e when B^T B = cI
    e = sp.MatrixSymbol("e", 2, 1)
    Mm, Km, ev = matrix("M", 2, 3), antisymmetric("K", 2), vector("e", 2)
    Nm = matrix("N", 2, 2)
    dm = "n2=2, n0=3"
    q = sp.Symbol("q", real=True)
    wq = sp.MatrixSymbol("w", 1, 1)
    d.add("ewbe", e.T @ W @ B @ e, c * e.T @ N @ e, given=((W, N @ B.T), *hyp), defines=wq,
          reason="substitute W = NB^T, then B^TB = cI", show=r"w := e^TWBe = c\, e^TNe")
    d.define("general-N", Nm, Mm * Mm.T / 2 + Km, dims=dm,
             reason="every N with N + N^T = MM^T is MM^T/2 + K with K := N − MM^T/2 antisymmetric",
             show=r"N = \tfrac12MM^T + K,\ K^T=-K")
    d.add("half-norm", wq[0, 0], c / 2 * sq_norm(Mm.T * ev), defines=q, dims=dm,
          uses=("ewbe", "general-N"), given=((e, ev), (N, Nm)), reason="e^TKe = 0 for antisymmetric K",
          show=r"q := w = c\,e^TNe = \tfrac c2\lVert M^Te\rVert^2")
    d.conclude(q, 0, ">=", name="alignment", dims=dm, uses=("half-norm",),
               reason="c > 0 times a sum of squares; and e^TWBe = c e^TNe = q",
               show=r"B^TB = cI \Rightarrow e^TWBe = \tfrac c2\lVert M^Te\rVert^2 \geq 0")
    # --- the loss rate, Σxx = I
    Ai, Wi = symbols("A W", (3, 2), (2, 3))
    tki = task(sp.Identity(2), Y)
    Ei = Y - Wi @ Ai
    flows, frates = flow_steps(rule, tki, (Ai, Wi), ("A", "W"), (B @ Ei, Ei @ Ai.T), prefix="lyap-flow",
                               reason="FA.flow with Σxx = I")
    for f in flows:
        d.append(f)
    Vd = sp.MatrixSymbol(r"\dot{V}", 2, 2)
    Ez = Y - N @ B.T @ B @ M
    d.add("d(WA)", time_derivative(Wi @ Ai, frates), Ei @ Ai.T @ Ai + Wi @ B @ Ei, defines=Vd,
          uses=("lyap-flow-A", "lyap-flow-W"), reason="product rule with FA.flow (Σxx = I)",
          show=r"\dot V := \tfrac{d}{dt}(WA) = EA^TA + WBE")
    Vm = matrix("Vd", 2, 3)
    d.add("d(WA)-structured", Vd, c * (Ez @ M.T @ M + N @ Ez), uses=("d(WA)",),
          given=((Ai, B @ M), (Wi, N @ B.T), *hyp), reason="substitute A = BM, W = NB^T, B^TB = cI",
          show=r"\dot V = c\,(EM^TM + NE)")
    Wt, Ym, Syy = matrix("V", 2, 3), matrix("Y", 2, 3), symmetric("C", 2)
    Em = matrix("E", 2, 3)
    Lm = sp.Rational(1, 2) * Syy.trace() - frobenius(Wt, Ym) + sp.Rational(1, 2) * sq_norm(Wt)
    Ld = sp.Symbol(r"\dot{L}", real=True)
    d.define("def-Vdot", Vm, c * (Em * Mm.T * Mm + Nm * Em), dims=dm, uses=("d(WA)-structured",),
             reason="V = WA moves at c(EM^TM + NE) (the step above, written out in entries), E = Σyx − V",
             show=r"\dot V := c\,(EM^TM + NE)")
    d.add("chain-rule", time_derivative(Lm, [(Wt, Vm)]), -frobenius(Em, Vm), dims=dm, defines=Ld,
          given=tuple(zip(Em, Ym - Wt, strict=True)),
          reason="L = ½tr Σyy − tr(V^TΣyx) + ½‖V‖² for V = WA, Σxx = I: dL/dt = −⟨E, dV/dt⟩",
          show=r"\dot L = -\langle E, \dot V\rangle")
    d.add("loss-rate", Ld, -c * sq_norm(Em * Mm.T) - c / 2 * sq_norm(Mm.T * Em), dims=dm,
          uses=("chain-rule", "def-Vdot", "general-N"),
          reason="⟨E, EM^TM⟩ = ‖EM^T‖², ⟨E, NE⟩ = ½‖M^TE‖² (K drops out)",
          show=r"\dot L = -c\lVert EM^T\rVert^2 - \tfrac c2\lVert M^TE\rVert^2")
    d.conclude(Ld, 0, "<=", name="lyapunov", dims=dm, uses=("loss-rate",),
               witness=c * sq_norm(Em * Mm.T) + c / 2 * sq_norm(Mm.T * Em),
               reason="negative of a sum of squares (c > 0)", show=r"\dot L \leq 0")
    # --- single output
    m1, b1, n = matrix("M", 1, 2), matrix("b", 3, 1), sp.Symbol("n", real=True)
    d.add("one-output-N", n, sq_norm(m1) / 2, dims="n2=1, n0=2", method="definition",
          reason="for 1×1 N, N + N^T = MM^T reads 2N = ‖M‖²", show=r"N = \tfrac12\lVert M\rVert^2")
    d.conclude((sp.Matrix([[n]]) * b1.T).T, sq_norm(m1) / 2 * b1, name="one-output", dims="n2=1, n1=3, n0=2",
               uses=("one-output-N",), reason="W^T = BN^T with B = b",
               show=r"W^T = \tfrac12\lVert M\rVert^2\, b,\ \tfrac12\lVert M\rVert^2 \geq 0")
    d.checks["zero-init FA along linfa's numerical flow"] = _check
    d.counterexamples.append(Counterexample("B^T B = cI", "e^T W B e >= 0", _counterexample))
    return d

