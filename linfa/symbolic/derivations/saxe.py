r"""Fact 6: Saxe et al.'s mode dynamics for a two-layer linear network under BP.

With :math:`\Sigma_{xx} = I`, :math:`\Sigma_{yx} = USV^T` and a mode-aligned
initialisation :math:`W_1 = R\,\operatorname{diag}(a)V^T`,
:math:`W_2 = U\operatorname{diag}(c)R^T` (orthonormal columns), the BP flow
keeps the alignment and each mode evolves on its own:

.. math::

    \dot a = c(s - ca), \quad \dot c = a(s - ca), \quad
    \frac{d}{dt}(ca) = (a^2 + c^2)(s - ca),

so with a balanced start (:math:`a = c`, preserved since :math:`a^2 - c^2`
is conserved) the mode strength :math:`u = ca` obeys
:math:`\tau\dot u = 2u(s - u)` (time in units of τ, the inverse learning
rate), solved by

.. math::

    u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0} .
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import linfa
from linfa.random_matrices import haar_orthonormal
from linfa.symbolic.calculus import conservation_step, rate_step
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.matrices import diagonal, symbols, task
from linfa.symbolic.numeric import CheckResult, lambdify, rk4

__all__ = ["saxe_modes", "saxe_solution"]


def saxe_solution() -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    r"""The logistic mode strength :math:`u(t)` and its symbols ``(t, s, u0, tau)``."""
    t, s, u0, tau = sp.symbols("t s u_0 tau", positive=True)
    g = sp.exp(2 * s * t / tau)
    return s * g / (g - 1 + s / u0), (t, s, u0, tau)


def _check(rng: np.random.Generator) -> CheckResult:
    k = int(rng.integers(1, 4))
    n0, n1, n2 = (int(n) for n in rng.integers(k, k + 4, size=3))
    U, V, R = haar_orthonormal(rng, n2, k), haar_orthonormal(rng, n0, k), haar_orthonormal(rng, n1, k)
    s = np.sort(rng.uniform(0.5, 3.0, size=k))[::-1]
    u0 = rng.uniform(1e-3, 0.1, size=k)
    syx = (U * s) @ V.T
    tk = linfa.Task(np.eye(n0), syx, syx @ syx.T + 0.01 * np.eye(n2))
    w1 = (R * np.sqrt(u0)) @ V.T
    w2 = (U * np.sqrt(u0)) @ R.T
    t1 = float(rng.uniform(0.5, 4.0))
    end = rk4(linfa.BP().flow(tk), (w1, w2), t1, 400)
    modes = U.T @ end[1] @ end[0] @ V  # diagonal, entries u_i(t1)
    expr, (t, s_, u0_, tau) = saxe_solution()
    u = lambdify(expr, [t, s_, u0_, tau])
    want = np.array([u(t1, si, ui, 1.0) for si, ui in zip(s, u0, strict=True)])
    err = float(np.max(np.abs(modes - np.diag(want))))
    return CheckResult("BP mode strengths vs logistic solution", err < 1e-7, err, 1e-7,
                       f"widths ({n0},{n1},{n2}), {k} modes, t={t1:.3g}")


def saxe_modes() -> Derivation:
    """Saxe et al.: decoupled mode dynamics under BP and the logistic solution."""
    n, k = 3, 2
    U, V, R, S, Am, Cm = symbols("U V R S A C", (n, k), (n, k), (n, k), (k, k), (k, k), (k, k))
    I = sp.Identity(k)
    orth = ((U.T @ U, I), (V.T @ V, I), (R.T @ R, I))
    bp = linfa.BP()
    big = bp.dstate(task(sp.Identity(n), U @ S @ V.T), (R @ Am @ V.T, U @ Cm @ R.T))
    small = bp.dstate(task(I, S), (Am, Cm))
    d = Derivation(
        "Saxe mode dynamics",
        r"\tau\dot u = 2u(s - u),\quad u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0}",
        hypotheses=(r"\Sigma_{xx} = I,\ \Sigma_{yx} = USV^T", r"U^TU = V^TV = R^TR = I",
                    r"W_1(0) = R\operatorname{diag}(a)V^T,\ W_2(0) = U\operatorname{diag}(c)R^T",
                    r"a(0) = c(0) \text{ (balanced) for the logistic form}"),
        reference="Saxe, McClelland & Ganguli 2014; docs/design.md, fact 6",
        conclusion=r"the aligned subspace is invariant, modes decouple, and a balanced mode follows the "
                   r"logistic curve from $u_0$ to $s$.",
    )
    d.add("invariant-W1", big[0], R @ small[0] @ V.T, given=orth,
          reason="BP.flow commutes with the orthonormal change of basis",
          show=r"\dot W_1(RAV^T, UCR^T) = R\,\dot A\,V^T")
    d.add("invariant-W2", big[1], U @ small[1] @ R.T, given=orth, reason="likewise for the output layer",
          show=r"\dot W_2(RAV^T, UCR^T) = U\,\dot C\,R^T")
    a, c, s = diagonal("a", k), diagonal("c", k), diagonal("s", k, positive=True)
    rule, tk, st = linfa.BP(), task(sp.eye(k), s), (a, c)
    da, dc = rule.dstate(tk, st)
    a1, c1, s1 = a[0, 0], c[0, 0], s[0, 0]
    d.add("decoupled", sp.Matrix.hstack(da, dc), sp.Matrix.hstack(
        sp.diag(*[c[i, i] * (s[i, i] - c[i, i] * a[i, i]) for i in range(k)]),
        sp.diag(*[a[i, i] * (s[i, i] - c[i, i] * a[i, i]) for i in range(k)])), dims=f"{k} modes",
        reason="BP.flow on diagonal A, C, S is diagonal",
        show=r"\dot a_i = c_i(s_i - c_ia_i),\ \dot c_i = a_i(s_i - c_ia_i)")
    d.append(conservation_step("balanced", a1**2 - c1**2, rule, tk, st, dims=f"{k} modes",
                               reason="entry of the BP balancedness law", label=r"a_1^2 - c_1^2"))
    d.append(rate_step("mode-rate", c1 * a1, rule, tk, st, (a1**2 + c1**2) * (s1 - c1 * a1), dims=f"{k} modes",
                       label="c_1a_1", rhs_label=r"(a_1^2 + c_1^2)(s_1 - c_1a_1)"))
    u = sp.Symbol("u", positive=True)
    ap = sp.Symbol("a", positive=True)
    d.add("balanced-rate", (ap**2 + ap**2) * (s1 - ap * ap), 2 * u * (s1 - u), given=((u, ap**2),),
          reason="a = c (balanced start, kept by step 'balanced'), u = ca = a²",
          show=r"(a^2 + c^2)(s - ca) = 2u(s - u)\ \text{when } a = c")
    expr, (t, s_, u0, tau) = saxe_solution()
    d.add("logistic", tau * sp.diff(expr, t), 2 * expr * (s_ - expr),
          reason="differentiate the closed form", show=r"\tau\dot u(t) = 2u(t)(s - u(t))")
    d.add("initial", expr.subs(t, 0), u0, reason="u(0) = u_0", show=r"u(0) = u_0")
    d.add("limit", sp.limit(expr, t, sp.oo), s_, reason="t → ∞ (s > 0)", show=r"u(\infty) = s")
    d.checks["BP flow (RK4) vs logistic modes"] = _check
    return d
