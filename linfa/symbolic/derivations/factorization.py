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
from linfa.symbolic.calculus import conservation_step
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
    dW, dZ = rule.dstate(tk, (W, Z))
    d.add("flow-W", dW, B.T @ E, reason="FA.flow with feedback B^T for Z^T, Σxx = I", show=r"\dot W = B^TE")
    d.add("flow-Z", dZ, E @ W.T, reason="FA.flow", show=r"\dot Z = EW^T")
    d.append(conservation_step("conserved", (B.T @ Z + Z.T @ B) / 2 - W @ W.T / 2, rule, tk, (W, Z),
                               label=r"\operatorname{Sym}(B^TZ) - \tfrac12WW^T"))
    K = B.T @ Z
    Wstar = K.I @ B.T @ Y
    d.add("first-layer", B.T @ E, K @ (Wstar - W), reason="factor B^TZ out of B^TE",
          show=r"B^TE = (B^TZ)\left((B^TZ)^{-1}B^TY - W\right)")
    d.add("first-layer-fixed", B.T @ (Y - Z @ Wstar), sp.ZeroMatrix(r, m),
          reason="so with B^TZ invertible, B^TE = 0 iff W = (B^TZ)^{-1}B^TY",
          show=r"W = (B^TZ)^{-1}B^TY \Rightarrow B^TE = 0")
    Pw = W.T @ (W @ W.T).I @ W
    d.add("second-layer", E @ W.T @ (W @ W.T).I @ W, Y @ Pw - Z @ W,
          reason="E W^T = 0 gives ZW = YΠ_W, Π_W = W^T(WW^T)^{-1}W the projector on row(W)",
          show=r"EW^T(WW^T)^{-1}W = Y\Pi_W - ZW")
    C = sp.MatrixSymbol("C", r, m)  # C stands for B^T Y
    Kr = sp.MatrixSymbol("K", r, r)  # (B^T Z)^{-1}, invertible
    P_of = lambda X: X.T @ (X @ X.T).I @ X
    d.add("same-row-space", P_of(Kr @ C), C.T @ (C @ C.T).I @ C,
          given=(((Kr @ C @ C.T @ Kr.T).I, Kr.T.I @ (C @ C.T).I @ Kr.I),),
          reason="W = K B^TY with K invertible has the row space of B^TY: Π_W = Π_{B^TY} "
                 "(given: inverse of a product of invertible square factors K, CC^T, K^T)",
          show=r"\Pi_{K C} = \Pi_C\quad (C = B^TY,\ K = (B^TZ)^{-1})")
    U, V = symbols("U V", (n, r), (m, r))
    d.add("optimal-if-rank", U @ V.T @ V @ (V.T @ V).I @ V.T, U @ V.T,
          reason="r ≥ rank Y, Y = UV^T, B^TU of full column rank: row(B^TY) = row(V^T), and YΠ = Y",
          show=r"Y\Pi_{V^T} = UV^TV(V^TV)^{-1}V^T = Y")
    d.checks["FA factorisation integrated to its fixed point"] = _check
    from linfa.symbolic.derivation import Counterexample

    d.counterexamples.append(Counterexample("r >= rank Y", "the FA fixed point is optimal", _suboptimal))
    return d
