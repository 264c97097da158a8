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

The derivation (depth 2 only; deeper networks are left to the catalogue entry's
numerical check) has two claims, each checked from earlier steps alone:
``aligned`` (dimension-free: BP's rates at the aligned point are the aligned
rates of the :math:`k \times k` problem, so :math:`W_2W_1 = U\,CA\,V^T` for all
t) and ``logistic`` (at 2 modes: the diagonal flow, the conserved
:math:`\delta = a^2 - c^2`, which stays 0 from a balanced start and so fixes
:math:`c = a`, the mode rate, and the closed form solving it from :math:`u_0`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import linfa
from linfa.random_matrices import haar_orthonormal
from linfa.symbolic.calculus import flow_steps, placeholder, time_derivative
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
    """Saxe et al.: decoupled mode dynamics under BP and the logistic solution (depth 2)."""
    n, k = 3, 2
    U, V, R, S, Am, Cm = symbols("U V R S A C", (n, k), (n, k), (n, k), (k, k), (k, k), (k, k))
    W1, W2 = symbols("W_1 W_2", (n, n), (n, n))
    I = sp.Identity(k)
    orth = ((U.T @ U, I), (V.T @ V, I), (R.T @ R, I))
    bp = linfa.BP()
    big = bp.dstate(task(sp.Identity(n), U @ S @ V.T), (R @ Am @ V.T, U @ Cm @ R.T))
    d = Derivation(
        "Saxe mode dynamics",
        r"W(t) = U\operatorname{diag}(u(t))V^T,\quad \tau\dot u = 2u(s - u),\quad "
        r"u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0}",
        hypotheses=(r"\text{depth } 2 \text{ (deeper nets: the entry's numerical check)}",
                    r"\Sigma_{xx} = I,\ \Sigma_{yx} = USV^T", r"U^TU = V^TV = R^TR = I",
                    r"W_1(0) = R\operatorname{diag}(a)V^T,\ W_2(0) = U\operatorname{diag}(c)R^T,\ a, c > 0",
                    r"a(0) = c(0) \text{ (balanced) for the logistic form}"),
        reference="Saxe, McClelland & Ganguli 2014; docs/design.md, fact 6",
        conclusion=r"the aligned subspace is invariant (so $W = W_2W_1 = U\,CA\,V^T$ with $(A, C)$ following "
                   r"BP's flow on the $k \times k$ problem), modes decouple, and a balanced mode follows the "
                   r"logistic curve from $u_0$ to $s$.",
    )
    # ---------------- the aligned subspace is invariant (dimension-free)
    flows, _ = flow_steps(bp, task(I, S), (Am, Cm), ("A", "C"), (Cm.T @ (S - Cm @ Am), (S - Cm @ Am) @ Am.T),
                          prefix="reduced", reason="BP.flow on the k × k problem (Σxx = I, Σyx = S)")
    for f in flows:
        d.append(f)
    dA, dC = (f.defines for f in flows)
    dW1, dW2 = placeholder(W1, r"\dot W_1"), placeholder(W2, r"\dot W_2")
    d.add("invariant-W1", big[0], R @ dA @ V.T, given=orth, uses=("reduced-A",), defines=dW1,
          reason="BP.flow commutes with the orthonormal change of basis",
          show=r"\dot W_1(RAV^T, UCR^T) = R\,\dot A\,V^T")
    d.add("invariant-W2", big[1], U @ dC @ R.T, given=orth, uses=("reduced-C",), defines=dW2,
          reason="likewise for the output layer", show=r"\dot W_2(RAV^T, UCR^T) = U\,\dot C\,R^T")
    d.conclude(time_derivative(W2 @ W1, {W1: dW1, W2: dW2}), U @ (dC @ Am + Cm @ dA) @ V.T,
               name="aligned", uses=("invariant-W1", "invariant-W2"),
               given=((W1, R @ Am @ V.T), (W2, U @ Cm @ R.T), *orth),
               reason="product rule on W = W_2W_1 with the two rates at the aligned point: the network stays "
                      "U (CA) V^T, its mode matrix CA moving by BP's flow on the k × k problem",
               show=r"\tfrac{d}{dt}(W_2W_1) = U\,\tfrac{d}{dt}(CA)\,V^T \text{ at } W_1 = RAV^T,\ W_2 = UCR^T"
                    r" \implies W(t) = U\,C(t)A(t)\,V^T")
    # ---------------- diagonal modes decouple; a balanced mode is logistic (at k = 2 modes)
    a, c, s = diagonal("a", k, positive=True), diagonal("c", k, positive=True), diagonal("s", k, positive=True)
    rule, tk, st = linfa.BP(), task(sp.eye(k), s), (a, c)
    da, dc = rule.dstate(tk, st)
    pa = sp.diag(*[sp.Symbol(rf"\dot a_{i}", real=True) for i in range(k)])
    pc = sp.diag(*[sp.Symbol(rf"\dot c_{i}", real=True) for i in range(k)])
    rates = [(a, pa), (c, pc)]
    dims = f"{k} modes"
    d.add("flow-a", da, sp.diag(*[c[i, i] * (s[i, i] - c[i, i] * a[i, i]) for i in range(k)]), dims=dims,
          defines=pa, reason="BP.flow on diagonal A, C, S is diagonal",
          show=r"\dot A = \operatorname{diag}(\dot a_i),\ \dot a_i = c_i(s_i - c_ia_i)")
    d.add("flow-c", dc, sp.diag(*[a[i, i] * (s[i, i] - c[i, i] * a[i, i]) for i in range(k)]), dims=dims,
          defines=pc, reason="BP.flow on diagonal A, C, S is diagonal",
          show=r"\dot C = \operatorname{diag}(\dot c_i),\ \dot c_i = a_i(s_i - c_ia_i)")
    a1, c1, s1 = a[0, 0], c[0, 0], s[0, 0]
    ddelta, delta, delta0 = sp.Symbol(r"\dot\delta", real=True), sp.Symbol(r"\delta", real=True), \
        sp.Symbol(r"\delta_0", real=True)
    du, u = sp.Symbol(r"\dot u", real=True), sp.Symbol("u", positive=True)
    d.define("def-delta", delta, a1**2 - c1**2, reason="notation: the balance of mode 1",
             show=r"\delta := a_1^2 - c_1^2")
    d.add("balanced", time_derivative(a1**2 - c1**2, rates), 0, dims=dims, defines=ddelta,
          uses=("flow-a", "flow-c"), reason="product rule, then the flows of a and c (BP balancedness, one entry)",
          show=r"\dot\delta := \tfrac{d}{dt}\left(a_1^2 - c_1^2\right) = 0")
    tau_ = sp.Symbol(r"\tau", positive=True)
    t_ = sp.Symbol("t", positive=True)
    d.add("balance-kept", delta0 + sp.Integral(ddelta, (tau_, 0, t_)), 0, defines=delta, uses=("balanced",),
          given=((delta0, 0),), reason="δ(t) = δ(0) + ∫_0^t δ' dτ, and δ(0) = a_1(0)² − c_1(0)² = 0 (balanced start)",
          show=r"\delta(t) = \delta(0) + \int_0^t\dot\delta\,d\tau = 0")
    d.add("c-from-balance", c1, sp.sqrt(a1**2 - delta), uses=("def-delta",),
          reason="c_1 > 0 is fixed by a_1 and δ", show=r"c_1 = \sqrt{a_1^2 - \delta}")
    d.add("mode-rate", time_derivative(c1 * a1, rates), (a1**2 + c1**2) * (s1 - c1 * a1), dims=dims,
          defines=du, uses=("flow-a", "flow-c"), reason="product rule, then the flows of a and c",
          show=r"\dot u := \tfrac{d}{dt}(c_1a_1) = (a_1^2 + c_1^2)(s_1 - c_1a_1)")
    d.define("def-u", u, c1 * a1, reason="notation: the strength of mode 1", show=r"u := c_1a_1")
    d.add("balanced-rate", du, 2 * u * (s1 - u), uses=("balance-kept", "c-from-balance", "mode-rate", "def-u"),
          reason="δ = 0 makes c_1 = a_1, so a_1² + c_1² = 2u",
          show=r"\dot u = 2u(s_1 - u)")
    expr, (t, s_, u0, tau) = saxe_solution()
    u_init, u_inf = sp.Symbol("u(0)", real=True), sp.Symbol(r"u(\infty)", real=True)
    d.add("initial", expr.subs(t, 0), u0, defines=u_init, reason="u(0) = u_0", show=r"u(0) = u_0")
    d.add("limit", sp.limit(expr, t, sp.oo), s_, defines=u_inf, reason="t → ∞ (s > 0)", show=r"u(\infty) = s")
    d.conclude(sp.Matrix([tau * sp.diff(expr, t), u_init, u_inf]), sp.Matrix([du, u0, s_]),
               name="logistic", uses=("balanced-rate", "initial", "limit"), given=((u, expr), (s1, s_)),
               reason="differentiate the closed form: it solves the balanced mode equation (time in units of τ; "
                      "linfa's BP flow has τ = 1) from u_0, and rises to s",
               show=r"u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0}:\ \tau\dot u = 2u(s - u),\ "
                    r"u(0) = u_0,\ u(\infty) = s")
    d.checks["BP flow (RK4) vs logistic modes"] = _check
    return d
