r"""Fact 4: matrix factorisation under feedback alignment (Garg & Vempala).

Factorise :math:`Y \approx ZW` (``Y`` is ``n × m``, ``Z`` is ``n × r``,
``W`` is ``r × m``) as a two-layer network with whitened input
(:meth:`linfa.Task.factorization`); the first layer ``W`` learns with a
fixed ``B^T`` (``B`` shaped like ``Z``) in place of :math:`Z^T`:

.. math::

    \dot W = B^TE, \qquad \dot Z = EW^T, \qquad E = Y - ZW .

Then :math:`\operatorname{Sym}(B^TZ) - \tfrac12 WW^T` is conserved, and at a
fixed point with :math:`B^TZ` invertible (and ``W`` of full row rank ``r``)

.. math::

    ZW = Y\Pi, \qquad \Pi = \text{projector onto the row space of } B^TY,

which is the optimum :math:`Y` when :math:`r \geq \operatorname{rank} Y`
(and :math:`B^TU` has full column rank, ``Y = UV^T``), and otherwise a
``B``-dependent subspace, optimal only if it is the top right-singular one.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import linfa
from linfa.symbolic.calculus import flow_steps, time_derivative
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.derivations._common import lambdified, rel
from linfa.symbolic.matrices import symbols, task
from linfa.symbolic.numeric import CheckResult, rk4
from linfa.tasks import Task

__all__ = ["fa_factorization"]


def _proj(X: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the row space of X."""
    return np.linalg.pinv(X) @ X


def _check(rng: np.random.Generator) -> CheckResult:
    n, m, r = int(rng.integers(3, 6)), int(rng.integers(3, 6)), 2
    Y = rng.standard_normal((n, m))
    Y = Y / np.linalg.norm(Y, 2)
    B = rng.standard_normal((n, r)) / np.sqrt(n)
    tk = Task.factorization(Y)
    rule = linfa.FA((B.T,))  # linfa's feedback for layer 2 stands for W_2^T = Z^T
    w0 = 0.1 * rng.standard_normal((r, m))
    z0 = 0.1 * rng.standard_normal((n, r))
    law = lambdified(lambda B, Z, W: (B.T @ Z + Z.T @ B) / 2 - W @ W.T / 2, "B Z W", (n, r), (n, r), (r, m))
    state: tuple[np.ndarray, ...] = (w0, z0)
    for _ in range(150):  # up to t = 1500; most instances converge by t ≈ 100
        state = rk4(rule.flow(tk), state, 10.0, 200)
        w, z = state
        grad = max(float(np.abs(g).max()) for g in rule.dstate(tk, state))
        if grad < 1e-10:
            break
    w, z = state
    err_law = rel(law(B, z, w), law(B, z0, w0))
    pi = lambdified(lambda Y, B: (B.T @ Y).T @ ((B.T @ Y) @ (B.T @ Y).T).I @ (B.T @ Y), "Y B", (n, m), (n, r))(Y, B)
    err_fp = rel(z @ w, Y @ pi)
    err_pi = rel(pi, _proj(B.T @ Y))
    kappa = np.linalg.cond(B.T @ z)
    ok = grad < 1e-8 and max(err_law, err_fp, err_pi) < 1e-6 and np.isfinite(kappa)
    return CheckResult("FA factorisation: law conserved, fixed point ZW = YΠ", bool(ok), max(err_law, err_fp, err_pi),
                       1e-6, f"n={n}, m={m}, r={r}; |flow| {grad:.1e}, law {err_law:.1e}, ZW−YΠ {err_fp:.1e}, "
                       f"cond(B^T Z) {kappa:.2g}")


def _suboptimal() -> CheckResult:
    """r < rank Y: the FA fixed point's loss exceeds the Eckart–Young optimum for a generic B."""
    rng = np.random.default_rng(3)
    n = m = 4
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((m, m)))
    Y = (u * np.array([2.0, 1.0, 0.5, 0.25])) @ v.T
    B = rng.standard_normal((n, 1))
    pi = _proj(B.T @ Y)
    fa_loss = 0.5 * np.linalg.norm(Y - Y @ pi) ** 2
    best = 0.5 * (1.0**2 + 0.5**2 + 0.25**2)
    return CheckResult("r = 1 < rank Y: loss of ZW = YΠ above the optimum", bool(fa_loss > best + 1e-3),
                       float(fa_loss - best), 0.0, f"FA fixed-point loss {fa_loss:.4f} vs optimum {best:.4f}")


def fa_factorization() -> Derivation:
    """Garg–Vempala: conserved ``Sym(B^T Z) − ½ W W^T``; fixed points ``Z W = Y Π``."""
    n, m, r = 4, 3, 2
    Z, W, B, Y = symbols("Z W B Y", (n, r), (r, m), (n, r), (n, m))
    rule = linfa.FA((B.T,))
    tk = task(sp.Identity(m), Y)
    E = Y - Z @ W
    d = Derivation(
        "Matrix factorisation under FA",
        r"\tfrac{d}{dt}\left(\operatorname{Sym}(B^TZ) - \tfrac12WW^T\right) = 0;\quad "
        r"\dot W = \dot Z = 0,\ B^TZ \text{ invertible} \Rightarrow ZW = Y\Pi_{\operatorname{row}(B^TY)}",
        hypotheses=(r"\Sigma_{xx} = I,\ \Sigma_{yx} = Y", r"B^TZ \text{ invertible at the fixed point}",
                    r"W \text{ of full row rank } r \text{ (so } WW^T \text{ is invertible)}"),
        reference="Garg & Vempala 2022; docs/design.md, fact 4",
        conclusion=r"$Z W = Y\Pi$; if $r \geq \operatorname{rank}Y$ (and $B^TU$ has full column rank) this is $Y$, "
                   r"the optimum; if $r < \operatorname{rank}Y$ it is optimal only when $\operatorname{row}(B^TY)$ "
                   r"is the top right-singular subspace (counterexample attached).",
    )
    flows, rates = flow_steps(rule, tk, (W, Z), ("W", "Z"), (B.T @ E, E @ W.T),
                              reason="FA.flow with feedback B^T for Z^T, Σxx = I",
                              shows=(r"\dot W = B^TE", r"\dot Z = EW^T"))
    for f in flows:
        d.append(f)
    Wd, Zd = rates[W], rates[Z]
    d.conclude(time_derivative((B.T @ Z + Z.T @ B) / 2 - W @ W.T / 2, rates), sp.ZeroMatrix(r, r),
               name="conserved", uses=("flow-W", "flow-Z"), reason="product rule, then the flows",
               show=r"\tfrac{d}{dt}\left(\operatorname{Sym}(B^TZ) - \tfrac12WW^T\right) = 0")
    C = sp.MatrixSymbol("C", r, m)  # stands for B^T Y
    Kr = sp.MatrixSymbol("K", r, r)  # stands for (B^T Z)^{-1}, invertible
    d.define("def-C", C, B.T @ Y, reason="notation", show=r"C := B^TY")
    d.define("def-K", Kr, (B.T @ Z).I, reason="notation; B^TZ invertible by hypothesis",
             show=r"K := (B^TZ)^{-1}")
    d.add("first-layer", W, Kr @ (C - Wd), uses=("flow-W", "def-C", "def-K"),
          reason="B^TE = B^TY − (B^TZ)W: solve for W",
          show=r"W = K\,(C - \dot W)")
    P = sp.MatrixSymbol("P", n, m)
    Pw = W.T @ (W @ W.T).I @ W
    d.add("second-layer", Z @ W, Y @ Pw - Zd @ (W @ W.T).I @ W, defines=P, uses=("flow-Z",),
          reason="E W^T (WW^T)^{-1} W = YΠ_W − ZW with Π_W = W^T(WW^T)^{-1}W the projector on row(W)",
          show=r"P := ZW = Y\Pi_W - \dot Z(WW^T)^{-1}W")
    Pc = C.T @ (C @ C.T).I @ C
    d.conclude(P, Y @ Pc, name="fixed-point", uses=("second-layer", "first-layer"),
               given=((Wd, sp.ZeroMatrix(r, m)), (Zd, sp.ZeroMatrix(n, r)),
                      ((Kr @ C @ C.T @ Kr.T).I, Kr.T.I @ (C @ C.T).I @ Kr.I)),
               reason="at a fixed point Ẇ = Ż = 0: W = KC, and W = KC with K invertible has the row "
                      "space of C = B^TY, so Π_W = Π_C (given: inverse of a product of invertible "
                      "square factors K, CC^T, K^T)",
               show=r"\dot W = \dot Z = 0 \Rightarrow ZW = Y\Pi_{\operatorname{row}(B^TY)}")
    U, V, G = symbols("U V G", (n, r), (m, r), (r, r))
    d.conclude(P, U @ V.T, name="optimal-if-rank", uses=("fixed-point",),
               given=((Y, U @ V.T), (C, G @ V.T),
                      ((G @ V.T @ V @ G.T).I, G.T.I @ (V.T @ V).I @ G.I)),
               reason="r ≥ rank Y: Y = UV^T with U, V of r columns, and G = B^TU invertible (B^TU of full "
                      "column rank), so C = B^TY = GV^T has the row space of V^T and YΠ_C = Y "
                      "(given: inverse of a product of invertible square factors G, V^TV, G^T)",
               show=r"r \geq \operatorname{rank}Y \Rightarrow ZW = Y\Pi_{V^T} = Y")
    d.checks["FA factorisation integrated to its fixed point"] = _check
    from linfa.symbolic.derivation import Counterexample

    d.counterexamples.append(Counterexample("r >= rank Y", "the FA fixed point is optimal", _suboptimal))
    return d
