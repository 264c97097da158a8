r"""Fact 7: two-phase learning with a quadratic energy (Scellier & Bengio, linear case).

.. math::

    F_\beta(s) = \tfrac12 s^TAs - s^T(b + Ux) + \tfrac\beta2\lVert Ps - d\rVert^2,
    \qquad A = I - W \succ 0,\ W = W^T .

With :math:`H_\beta = A + \beta P^TP`, :math:`h = b + Ux`, :math:`e = Ps^0 - d`,
:math:`\lambda = A^{-1}P^Te`, :math:`\nu = A^{-1}P^TP\lambda`,
:math:`\rho = A^{-1}P^TP\nu`:

* fixed points :math:`s^\beta = H_\beta^{-1}(h + \beta P^Td)`, and exactly
  :math:`s^\beta = s^0 - \beta\mu_\beta`, :math:`\mu_\beta = H_\beta^{-1}P^Te`;
* :math:`\frac{d}{d\beta}\frac{\partial F}{\partial\theta}(s^\beta)\big|_0 = \frac{dJ}{d\theta}`
  for :math:`\theta = (b, U, W)`, :math:`J = \tfrac12\lVert Ps^0 - d\rVert^2`;
* the one-sided estimate has error :math:`\beta c_1 + O(\beta^2)`, the centred
  one :math:`\beta^2c_2 + O(\beta^3)`, with
  :math:`c_1 = (-\nu, -\nu x^T, -\operatorname{sym}(\nu s^{0T}) - \tfrac12\lambda\lambda^T)`,
  :math:`c_2 = (\rho, \rho x^T, \operatorname{sym}(\rho s^{0T}) + \operatorname{sym}(\nu\lambda^T))`;
* along the nudged relaxation :math:`\dot s = -\partial F_\beta/\partial s`
  from :math:`s^0`, exactly :math:`\frac1\beta\dot s = -e^{-H_\beta t}P^Te`,
  whose β → 0 limit is :math:`-e^{-At}P^Te`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from linfa.symbolic.calculus import time_derivative
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.matrices import frobenius, sym, symbols, symmetric, vector
from linfa.symbolic.numeric import CheckResult, lambdify, rk4

__all__ = ["quadratic_energy"]


def _coefficient(expr: Any, beta: sp.Symbol, k: int) -> Any:
    """Coefficient of β^k in a matrix expression polynomial in β (k-th derivative at 0 over k!)."""
    e = sp.expand(expr.doit())
    for _ in range(k):
        e = time_derivative(e, [(beta, 1)])
    return sp.expand((e.subs(beta, 0) / sp.factorial(k)).doit())


def _truncate(expr: Any, beta: sp.Symbol, order: int) -> Any:
    """The terms of order < ``order`` in β of a matrix expression polynomial in β."""
    return sp.MatAdd(*[beta**k * _coefficient(expr, beta, k) for k in range(order)]).doit()


def _statements(n: int, n_in: int, n_out: int) -> dict[str, Any]:
    """The closed forms as matrix-symbol expressions (for lambdifying at any size)."""
    A, U, P, b, x, d = symbols("A U P b x d", (n, n), (n, n_in), (n_out, n), (n, 1), (n_in, 1), (n_out, 1))
    beta = sp.Symbol("beta", real=True)
    h = b + U @ x
    s0 = A.I @ h
    e = P @ s0 - d
    Q = P.T @ P
    lam = A.I @ P.T @ e
    nu = A.I @ Q @ lam
    rho = A.I @ Q @ nu
    return {
        "args": [A, U, P, b, x, d, beta],
        "s_beta": (A + beta * Q).I @ (h + beta * P.T @ d),
        "grad": [lam, lam @ x.T, sym(lam @ s0.T)],
        "c1": [-nu, -nu @ x.T, -sym(nu @ s0.T) - lam @ lam.T / 2],
        "c2": [rho, rho @ x.T, sym(rho @ s0.T) + sym(nu @ lam.T)],
        "transient0": -P.T @ e,  # -e^{-At} P^T e at t = 0 (and the vector the semigroup acts on)
    }


def _check(rng: np.random.Generator) -> CheckResult:
    from scipy.linalg import expm

    from linfa.eqprop import (
        QuadraticEnergy,
        ep_error_coefficient,
        fixed_point,
        gradient,
        nudged_transient,
        transient_limit,
    )

    n, n_in, n_out = int(rng.integers(3, 7)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    G = rng.standard_normal((n, n))
    W = 0.5 * (G + G.T) / np.sqrt(n) * 0.4
    Wm = W - max(0.0, float(np.linalg.eigvalsh(W).max()) - 0.5) * np.eye(n)  # keeps A = I − W ≻ 0
    b, U = rng.standard_normal(n), rng.standard_normal((n, n_in))
    P = rng.standard_normal((n_out, n))
    x, d = rng.standard_normal((1, n_in)), rng.standard_normal((1, n_out))
    model = QuadraticEnergy.from_coupling(Wm, P=P, b=b, U=U)
    A = np.eye(n) - Wm
    beta = float(rng.uniform(0.05, 0.3))
    st = _statements(n, n_in, n_out)
    args = (A, U, P, b[:, None], x.T, d.T)
    errs = {}
    sb = lambdify(st["s_beta"], st["args"])(*args, beta)[:, 0]
    errs["nudged fixed point"] = float(np.abs(sb - fixed_point(model, x, d, beta)[0]).max())
    for key, fn in (("gradient", lambda: gradient(model, x, d)),
                    ("c1", lambda: ep_error_coefficient(model, x, d)),
                    ("c2", lambda: ep_error_coefficient(model, x, d, centered=True))):
        want = lambdify(st["grad" if key == "gradient" else key], st["args"])(*args, beta)
        got = fn()
        errs[key] = max(float(np.abs(np.reshape(w, np.shape(g)) - g).max()) for w, g in zip(want, got, strict=True))
    # the nudged transient: (1/β) ds/dt from an RK4 relaxation vs −e^{−H t} P^T e, and its β → 0 limit
    H = A + beta * P.T @ P
    c = b + U @ x[0] + beta * P.T @ d[0]
    t1 = float(rng.uniform(0.1, 2.0))
    (s_t,) = rk4(lambda t, s: (-(H @ s[0]) + c,), (fixed_point(model, x)[0],), t1, 200)
    pe = -lambdify(st["transient0"], st["args"])(*args, beta)[:, 0]
    errs["transient (RK4)"] = float(np.abs((-(H @ s_t) + c) / beta + expm(-H * t1) @ pe).max())
    errs["transient (eqprop)"] = float(np.abs(nudged_transient(model, x, d, [t1], beta)[0, 0]
                                              + expm(-H * t1) @ pe).max())
    errs["limit (eqprop)"] = float(np.abs(transient_limit(model, x, d, [t1])[0, 0] + expm(-A * t1) @ pe).max())
    worst = max(errs, key=lambda k: errs[k])
    return CheckResult("closed forms vs linfa.eqprop and an RK4 relaxation", errs[worst] < 1e-8, errs[worst],
                       1e-8, f"n={n}, n_in={n_in}, n_out={n_out}, β={beta:.3g}; worst: {worst}")


def quadratic_energy() -> Derivation:
    """Fixed points, EP gradient limit, error coefficients and nudged transient of a quadratic energy."""
    d = Derivation(
        "Two-phase learning with a quadratic energy",
        r"\frac{d}{d\beta}\frac{\partial F}{\partial\theta}(s^\beta)\Big|_0 = \frac{dJ}{d\theta},\ "
        r"\widehat\nabla_\beta = \frac{dJ}{d\theta} + \beta c_1 + O(\beta^2),\ "
        r"\widehat\nabla^c_\beta = \frac{dJ}{d\theta} + \beta^2c_2 + O(\beta^3),\ "
        r"\lim_{\beta\to0}\tfrac1\beta\dot s(t) = -e^{-At}P^Te",
        hypotheses=(r"A = I - W \succ 0,\ W = W^T", r"H_\beta = A + \beta P^TP \succ 0",
                    r"\partial F/\partial W \text{ and } dJ/dW \text{ are gradients on symmetric matrices}",
                    r"\text{the nudged phase starts at } s^0"),
        reference="Scellier & Bengio 2017; docs/design.md, fact 7",
    )
    # ---------------- dimension-free algebra
    n, k, m = 3, 2, 1
    A, P, U, H, X = symbols("A P U H X", (n, n), (k, n), (n, m), (n, n), (n, n))
    b, x, dd = symbols("b x d", (n, 1), (m, 1), (k, 1))
    beta = sp.Symbol("beta", real=True)
    h = b + U @ x
    Q = P.T @ P
    s0 = A.I @ h
    e = P @ s0 - dd
    lam, nu, rho = A.I @ P.T @ e, A.I @ Q @ A.I @ P.T @ e, A.I @ Q @ A.I @ Q @ A.I @ P.T @ e
    sb = H.I @ (h + beta * P.T @ dd)
    Hdef = ((H, A + beta * Q),)
    s = sp.MatrixSymbol("s", n, 1)
    ds = sp.MatrixSymbol("delta", n, 1)
    # s^T h written as ½(s^T h + h^T s): equal as 1×1 matrices, and sympy cannot transpose 1×1 products
    F = s.T @ A @ s / 2 - (s.T @ h + h.T @ s) / 2 + beta * (P @ s - dd).T @ (P @ s - dd) / 2
    g = (A + beta * Q) @ s - h - beta * P.T @ dd
    d.add("stationary", time_derivative(F, [(s, ds)]), (ds.T @ g + g.T @ ds) / 2, given=((A.T, A),),
          reason="directional derivative of F_β (A symmetric): ∂F/∂s = H_β s − h − βP^Td, "
                 "zero iff s = s^β = H_β^{-1}(h + βP^Td)",
          show=r"\partial_sF_\beta = H_\beta s - h - \beta P^Td = 0 \iff s = s^\beta")
    d.add("fixed-point", H @ sb, h + beta * P.T @ dd, reason="H_β H_β^{-1} = I",
          show=r"H_\beta s^\beta = h + \beta P^Td")
    d.add("exact-shift", H @ (sb - s0 + beta * H.I @ P.T @ e), sp.ZeroMatrix(n, 1), given=Hdef,
          reason="multiply by H_β (invertible): s^β − s^0 = −β H_β^{-1}P^Te exactly",
          show=r"H_\beta\left(s^\beta - s^0 + \beta\mu_\beta\right) = 0,\ \mu_\beta = H_\beta^{-1}P^Te")
    d.add("neumann", (A + beta * Q) @ (lam - beta * nu + beta**2 * rho), P.T @ e + beta**3 * Q @ rho,
          reason="so μ_β = λ − βν + β²ρ − β³H_β^{-1}Qρ: the expansion behind c_1 and c_2",
          show=r"H_\beta(\lambda - \beta\nu + \beta^2\rho) = P^Te + \beta^3P^TP\rho")
    # the nudged transient, with X = e^{-H t} (dX/dt = −H X, H X = X H)
    s_t = sb + X @ (s0 - sb)
    rhs_field = -H @ s_t + h + beta * P.T @ dd
    d.add("transient-ode", time_derivative(s_t, [(X, -H @ X)]), rhs_field,
          reason="s(t) = s^β + e^{−H_βt}(s^0 − s^β) solves ṡ = −∂F_β/∂s, s(0) = s^0",
          show=r"\tfrac{d}{dt}\left[s^\beta + e^{-H_\beta t}(s^0 - s^\beta)\right] = -H_\beta s + h + \beta P^Td")
    d.add("transient-velocity", rhs_field, -beta * X @ P.T @ e,
          given=((H @ X, X @ H), *Hdef),
          reason="e^{−H_βt} commutes with H_β, and H_β(s^0 − s^β) = βP^Te",
          show=r"\tfrac1\beta\dot s(t) = -e^{-H_\beta t}P^Te \xrightarrow{\beta\to0} -e^{-At}P^Te")
    # ---------------- gradients dJ/dθ by directional derivatives (dimension-free)
    D, Db, DU = symbols("D db dU", (n, n), (n, 1), (n, m))
    J = e.T @ e / 2
    sym_A = ((A.T, A),)
    d.add("dJ/db", time_derivative(J, [(b, Db)]), (lam.T @ Db + Db.T @ lam) / 2, given=sym_A,
          reason="chain rule through s^0 = A^{-1}h (A symmetric); a 1×1 matrix equals its transpose",
          show=r"dJ = \tfrac12(\lambda^T db + db^T\lambda) = \lambda^T db")
    d.add("dJ/dU", time_derivative(J, [(U, DU)]), (lam.T @ DU @ x + x.T @ DU.T @ lam) / 2, given=sym_A,
          reason="chain rule through h = b + Ux", show=r"dJ = \lambda^T dU\,x = \langle \lambda x^T, dU\rangle")
    d.add("dJ/dW", time_derivative(J, [(A, -D)]), (lam.T @ D @ s0 + s0.T @ D @ lam) / 2,
          given=(*sym_A, (D.T, D)),
          reason="dA = −dW (symmetric) and d(A^{-1}) = A^{-1} dW A^{-1}", show=r"dJ = \lambda^T dW\, s^0")
    lv, sv, Dm = vector("l", 2), vector("s", 2), symmetric("D", 2)
    d.add("symmetric-gradient", (lv.T * Dm * sv)[0, 0], frobenius(sym(lv * sv.T), Dm), dims="n=2",
          reason="for symmetric dW, λ^T dW s^0 = ⟨sym(λ s^{0T}), dW⟩: dJ/dW = sym(λ s^{0T})",
          show=r"\lambda^TD\,s = \langle\operatorname{sym}(\lambda s^T), D\rangle,\ D = D^T")
    # ---------------- EP estimates from the exact shift and the Neumann expansion
    L, Nv, R, R1, R2, S0 = symbols("lambda nu rho r_+ r_- s0", *([(n, 1)] * 6))
    mu_p = L - beta * Nv + beta**2 * R - beta**3 * R1  # μ_β  (r_+ = H_β^{-1}Qρ)
    mu_m = L + beta * Nv + beta**2 * R + beta**3 * R2  # μ_{−β} (r_- = H_{−β}^{-1}Qρ)
    est = {
        "b": lambda mu, bt: mu,
        "U": lambda mu, bt: mu @ x.T,
        "W": lambda mu, bt: (-(S0 - bt * mu) @ (S0 - bt * mu).T / 2 + S0 @ S0.T / 2) / bt,
    }
    dF = {"b": r"-s", "U": r"-sx^T", "W": r"-\tfrac12ss^T"}
    grads = {"b": L, "U": L @ x.T, "W": sym(L @ S0.T)}
    c1 = {"b": -Nv, "U": -Nv @ x.T, "W": -sym(Nv @ S0.T) - L @ L.T / 2}
    c2 = {"b": R, "U": R @ x.T, "W": sym(R @ S0.T) + sym(Nv @ L.T)}
    for name in ("b", "U", "W"):
        one = est[name](mu_p, beta)
        cen = (one + est[name](mu_m, -beta)) / 2
        d.add(f"ep-limit-{name}", _coefficient(one, beta, 0), grads[name],
              reason=f"∂F/∂{name} = {dF[name]}; with s^β = s^0 − βμ_β its β-derivative at 0 is the β⁰ term",
              show=rf"\frac{{d}}{{d\beta}}\frac{{\partial F}}{{\partial {name}}}(s^\beta)\Big|_0"
                   rf" = \frac{{dJ}}{{d{name}}}")
        d.add(f"one-sided-{name}", _truncate(one - grads[name], beta, 2), beta * c1[name],
              reason="insert μ_β = λ − βν + β²ρ − β³r_+ and keep orders β⁰, β¹",
              show=rf"\widehat\nabla^{{{name}}}_\beta - \frac{{dJ}}{{d{name}}} = \beta c_1^{{{name}}} + O(\beta^2)")
        d.add(f"centred-{name}", _truncate(cen - grads[name], beta, 3), beta**2 * c2[name],
              reason="average with −β: the β¹ terms cancel; keep orders up to β²",
              show=rf"\widehat\nabla^{{c,{name}}}_\beta - \frac{{dJ}}{{d{name}}} = \beta^2 c_2^{{{name}}} + O(\beta^3)")
    d.checks["closed forms vs linfa.eqprop"] = _check
    return d
