r"""Fact 7: two-phase learning with a quadratic energy (Scellier & Bengio, linear case).

.. math::

    F_\beta(s) = \tfrac12 s^TAs - s^T(b + Ux) + \tfrac\beta2\lVert Ps - d\rVert^2,
    \qquad A = I - W \succ 0,\ W = W^T .

With :math:`H_\beta = A + \beta P^TP`, :math:`h = b + Ux`, :math:`e = Ps^0 - d`,
:math:`\lambda = A^{-1}P^Te`, :math:`\nu = A^{-1}P^TP\lambda`,
:math:`\rho = A^{-1}P^TP\nu`, :math:`\sigma = A^{-1}P^TP\rho`:

* fixed points :math:`s^\beta = H_\beta^{-1}(h + \beta P^Td)`, and exactly
  :math:`s^\beta = s^0 - \beta\mu_\beta`, :math:`\mu_\beta = H_\beta^{-1}P^Te
  = \lambda - \beta\nu + \beta^2\rho - \beta^3\sigma + \beta^4H_\beta^{-1}P^TP\sigma`;
* :math:`\frac{d}{d\beta}\frac{\partial F}{\partial\theta}(s^\beta)\big|_0 = \frac{dJ}{d\theta}`
  for :math:`\theta = (b, U, W)`, :math:`J = \tfrac12\lVert Ps^0 - d\rVert^2`;
* the one-sided estimate has error :math:`\beta c_1 + O(\beta^2)`, the centred
  one :math:`\beta^2c_2 + O(\beta^4)`, with
  :math:`c_1 = (-\nu, -\nu x^T, -\operatorname{sym}(\nu s^{0T}) - \tfrac12\lambda\lambda^T)`,
  :math:`c_2 = (\rho, \rho x^T, \operatorname{sym}(\rho s^{0T}) + \operatorname{sym}(\nu\lambda^T))`;
* the nudged relaxation :math:`\dot s = -\partial F_\beta/\partial s` is solved by
  :math:`s(t) = s^\beta + e^{-H_\beta t}(s(0) - s^\beta)`; from :math:`s^0`, exactly
  :math:`\frac1\beta\dot s = -e^{-H_\beta t}P^Te`, whose β → 0 limit is :math:`-e^{-At}P^Te`.

The derivation is a chain (:mod:`linfa.symbolic.derivation`): the Neumann
identities define :math:`P^Te` in terms of the series, the exact shifts define
:math:`s^{\pm\beta}`, the gradient and estimate steps define the pairings of
:math:`dJ/d\theta` and of the estimates with a direction
:math:`(db, dU, dW = dW^T)`; the claims are checked from these alone. An
identity for every direction is the identity of vectors. "O(βᵏ)" is made
exact: the remainder is written out as βᵏ times a polynomial in β whose
coefficients involve :math:`H_{\pm\beta}^{-1}` (bounded near β = 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from linfa.symbolic.calculus import time_derivative
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.matrices import sym, symbols
from linfa.symbolic.numeric import CheckResult, lambdify, rk4

__all__ = ["quadratic_energy"]


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


def _by_order(expr: Any, beta: sp.Symbol) -> dict[int, Any]:
    """The terms of a matrix expression polynomial in β, grouped by their power of β."""
    e = sp.expand(expr.doit())
    terms = e.args if isinstance(e, sp.MatAdd) else (e,)
    out: dict[int, list[Any]] = {}
    for term in terms:
        coeff, mat = term.as_coeff_mmul()
        for c in sp.Add.make_args(sp.expand(coeff)):
            k = sp.degree(c, beta) if c.has(beta) else 0
            out.setdefault(int(k), []).append(sp.MatMul(c, mat))
    return {k: sp.MatAdd(*v) for k, v in out.items()}


def _tail(expr: Any, beta: sp.Symbol, order: int) -> Any:
    """The terms of order ``>= order`` in β: the explicit remainder of an expansion to order ``order - 1``."""
    parts = [v for k, v in _by_order(expr, beta).items() if k >= order]
    return sp.MatAdd(*parts)


def quadratic_energy() -> Derivation:
    """Fixed points, EP error coefficients and nudged relaxation of a quadratic energy (dimension-free)."""
    claims = {
        "one-sided": r"\widehat\nabla_\beta - \frac{dJ}{d\theta} = \beta c_1 + O(\beta^2)",
        "centred": r"\widehat\nabla^c_\beta - \frac{dJ}{d\theta} = \beta^2 c_2 + O(\beta^4)",
        "relaxation": r"\dot s = -\frac{\partial F_\beta}{\partial s} \implies "
                      r"s(t) = s^\beta + e^{-H_\beta t}(s(0) - s^\beta)",
    }
    d = Derivation(
        "Two-phase learning with a quadratic energy",
        r"\frac{d}{d\beta}\frac{\partial F}{\partial\theta}(s^\beta)\Big|_0 = \frac{dJ}{d\theta},\ "
        + claims["one-sided"] + r",\ " + claims["centred"] + r",\ " + claims["relaxation"]
        + r",\ H_\beta s^\beta = h + \beta P^Td,\ \tfrac1\beta\dot s(t) = -e^{-H_\beta t}P^Te",
        hypotheses=(r"A = I - W \succ 0,\ W = W^T", r"H_{\pm\beta} = A \pm \beta P^TP \succ 0",
                    r"\partial F/\partial W \text{ and } dJ/dW \text{ are gradients on symmetric matrices}",
                    r"\text{the nudged phase starts at } s^0 \text{ (for } \tfrac1\beta\dot s)",
                    r"\langle X, D\rangle = \operatorname{tr}(X^TD);\ \text{for } D = D^T:\ "
                    r"\langle\operatorname{sym}(ab^T), D\rangle = \tfrac12(a^TDb + b^TDa)"),
        reference="Scellier & Bengio 2017; docs/design.md, fact 7",
        conclusion=r"the identities hold for every direction $(db, dU, dW)$, $dW = dW^T$, i.e. as vectors; "
                   r"the remainders are polynomials in $\beta$ whose coefficients involve "
                   r"$H_{\pm\beta}^{-1}$, bounded near $\beta = 0$.",
    )
    n, k, m = 3, 2, 1
    A, P, U, H, Hm, X = symbols("A P U H_beta H_{-beta} X", (n, n), (k, n), (n, m), (n, n), (n, n), (n, n))
    b, x, dd = symbols("b x d", (n, 1), (m, 1), (k, 1))
    beta = sp.Symbol("beta", real=True)
    h = b + U @ x
    Q = P.T @ P
    s0 = A.I @ h
    e = P @ s0 - dd
    sym_A = ((A.T, A),)
    # ---------------- the free energy's gradient in s; fixed point and relaxation
    s, ds = sp.MatrixSymbol("s", n, 1), sp.MatrixSymbol("delta", n, 1)
    # s^T h written as ½(s^T h + h^T s): equal as 1×1 matrices, and sympy cannot transpose 1×1 products
    F = s.T @ A @ s / 2 - (s.T @ h + h.T @ s) / 2 + beta * (P @ s - dd).T @ (P @ s - dd) / 2
    c = h + beta * P.T @ dd
    g = H @ s - c
    dF = sp.MatrixSymbol(r"dF_\beta[\delta]", 1, 1)
    d.add("stationary", time_derivative(F, [(s, ds)]), (ds.T @ g + g.T @ ds) / 2, given=((H, A + beta * Q), *sym_A),
          defines=dF, reason="directional derivative of F_β (A symmetric): ∂F/∂s = H_β s − h − βP^Td",
          show=r"dF_\beta[\delta] = \langle \partial_sF_\beta, \delta\rangle,\quad "
               r"\partial_sF_\beta = H_\beta s - h - \beta P^Td")
    d.conclude(dF, sp.ZeroMatrix(1, 1), name="fixed-point", uses=("stationary",), given=((s, H.I @ c),),
               reason="at s^β = H_β^{-1}(h + βP^Td) the gradient vanishes in every direction δ",
               show=r"\partial_sF_\beta(s^\beta) = 0 \iff H_\beta s^\beta = h + \beta P^Td")
    s_init = sp.MatrixSymbol("s(0)", n, 1)
    s_beta = H.I @ c
    s_t = s_beta + X @ (s_init - s_beta)  # X = e^{-H t}: dX/dt = −H X
    v = time_derivative(s_t, [(X, -H @ X)])
    d.conclude((ds.T @ v + v.T @ ds) / 2, -dF, name="relaxation", uses=("stationary",), given=((s, s_t),),
               reason="s(t) = s^β + e^{−H_βt}(s(0) − s^β) has ṡ = −H_β e^{−H_βt}(s(0) − s^β) = −∂F/∂s(s(t)) "
                      "(paired with every direction δ), and s(0) is its initial value",
               show=claims["relaxation"] + r",\ \langle\dot s, \delta\rangle = -dF_\beta[\delta]\big|_{s(t)}")
    # ---------------- the exact shift of the fixed point and its expansion in β (both signs of β)
    S0, L, Nu, Rho, Sig = symbols("s^0 lambda nu rho sigma", *([(n, 1)] * 5))
    es = P @ S0 - dd  # the error at the free fixed point
    d.define("def-s0", S0, s0, reason="the free fixed point", show=r"s^0 := A^{-1}h")
    d.define("def-lambda", L, A.I @ P.T @ es, reason="the adjoint state",
             show=r"\lambda := A^{-1}P^Te,\ e = Ps^0 - d")
    for name, vec, prev, tex in (("nu", Nu, L, r"\nu := A^{-1}P^TP\lambda"), ("rho", Rho, Nu, r"\rho := A^{-1}P^TP\nu"),
                                 ("sigma", Sig, Rho, r"\sigma := A^{-1}P^TP\rho")):
        d.define(f"def-{name}", vec, A.I @ Q @ prev, reason="notation", show=tex)
    shifted = {}
    for sign, Hs, tag in ((1, H, "+"), (-1, Hm, "-")):
        bt = sign * beta
        series = L - bt * Nu + bt**2 * Rho - bt**3 * Sig
        q = sp.MatrixSymbol(f"q_{tag}", n, 1)
        r = sp.MatrixSymbol(f"r_{tag}", n, 1)  # the remainder, bounded near β = 0
        hb = rf"H_{{{'' if sign > 0 else '-'}\beta}}"
        d.define(f"def-r{tag}", r, Hs.I @ Q @ Sig, reason="the remainder of the series (bounded near β = 0)",
                 show=rf"r_{tag} := {hb}^{{-1}}P^TP\sigma")
        d.add(f"neumann{tag}", P.T @ es, Hs @ (series + bt**4 * r), defines=q,
              uses=("def-s0", "def-lambda", "def-nu", "def-rho", "def-sigma", f"def-r{tag}"),
              given=((Hs, A + bt * Q),),
              reason="telescoping: H_{±β} = A ± βP^TP and Aν = P^TPλ, Aρ = P^TPν, Aσ = P^TPρ",
              show=rf"q_{tag} := P^Te = {hb}\left(\lambda {'-' if sign > 0 else '+'} \beta\nu + \beta^2\rho "
                   rf"{'-' if sign > 0 else '+'} \beta^3\sigma + \beta^4r_{tag}\right)")
        Sb = sp.MatrixSymbol(rf"s^{{{'' if sign > 0 else '-'}\beta}}", n, 1)
        d.add(f"exact-shift{tag}", Hs.I @ (h + bt * P.T @ dd), S0 - bt * Hs.I @ q, defines=Sb, uses=("def-s0",),
              given=((A.I, Hs.I @ (A + bt * Q) @ A.I), (q, P.T @ e)),
              reason="s^{±β} = H_{±β}^{-1}(h ± βP^Td) and s^0 = A^{-1}h = H_{±β}^{-1}H_{±β}A^{-1}h, "
                     "with H_{±β} = A ± βP^TP",
              show=rf"s^{{{'' if sign > 0 else '-'}\beta}} = s^0 {'-' if sign > 0 else '+'} \beta {hb}^{{-1}}"
                   rf"q_{tag},\ q_{tag} = P^Te")
        shifted[tag] = (q, Sb, bt, series + bt**4 * r)
    q, Sb, _, _ = shifted["+"]
    Xs = X @ (S0 - Sb)  # e^{-Ht}(s^0 - s^β): the relaxation from s^0
    d.conclude(time_derivative(Sb + Xs, [(X, -H @ X)]) / beta, -X @ q, name="transient-velocity",
               uses=("exact-shift+",), given=((H @ X, X @ H),),
               reason="from s^0: ṡ = −H_β e^{−H_βt}(s^0 − s^β) = −β e^{−H_βt}P^Te (e^{−H_βt} commutes with H_β); "
                      "its β → 0 limit is −e^{−At}P^Te",
               show=r"\tfrac1\beta\dot s(t) = -e^{-H_\beta t}P^Te \xrightarrow{\beta\to0} -e^{-At}P^Te")
    # ---------------- gradients, as pairings with a direction (db, dU, dW = D = D^T)
    D, Db, DU = symbols("D db dU", (n, n), (n, 1), (n, m))

    def pb(v: Any) -> Any:  # <v, db>
        return (v.T @ Db + Db.T @ v) / 2

    def pu(v: Any) -> Any:  # <v x^T, dU>
        return (v.T @ DU @ x + x.T @ DU.T @ v) / 2

    def pw(u: Any, w: Any) -> Any:  # <sym(u w^T), D> for symmetric D
        return (u.T @ D @ w + w.T @ D @ u) / 2

    directions = [(b, Db), (U, DU), (A, -D)]  # dA = −dW
    J = e.T @ e / 2
    dJ = sp.MatrixSymbol("dJ[D]", 1, 1)
    d.add("gradient", time_derivative(J, directions), pb(L) + pu(L) + pw(L, S0), defines=dJ,
          uses=("def-s0", "def-lambda"), given=(*sym_A, (D.T, D)),
          reason="chain rule through s^0 = A^{-1}(b + Ux), d(A^{-1}) = A^{-1} dW A^{-1} (A, dW symmetric)",
          show=r"dJ[D] = \langle(\lambda,\ \lambda x^T,\ \operatorname{sym}(\lambda s^{0T})), D\rangle,"
               r"\ \lambda = A^{-1}P^Te")
    estimates = {}
    for tag in ("+", "-"):
        q, Sb, bt, _ = shifted[tag]
        est = sp.MatrixSymbol(rf"\langle\widehat\nabla_{{{'' if tag == '+' else '-'}\beta}}, D\rangle", 1, 1)
        dF_at = [time_derivative(F.subs(s, point), directions) for point in (Sb, S0)]
        d.add(f"estimate{tag}", (dF_at[0] - dF_at[1]) / bt,
              (-pb(Sb) - pu(Sb) - pw(Sb, Sb) / 2 + pb(S0) + pu(S0) + pw(S0, S0) / 2) / bt, defines=est,
              reason="∂F/∂b = −s, ∂F/∂U = −s x^T, ∂F/∂W = −½ s s^T at fixed s; the estimate is their change "
                     "from s^0 to the nudged fixed point, over the nudge",
              show=rf"\langle\widehat\nabla_{{{'' if tag == '+' else '-'}\beta}}, D\rangle := "
                   rf"\tfrac{{1}}{{{'' if tag == '+' else '-'}\beta}}\left(\langle\partial_\theta F(s^{{"
                   rf"{'' if tag == '+' else '-'}\beta}}), D\rangle - \langle\partial_\theta F(s^0), D\rangle\right)")
        estimates[tag] = est
    c1 = -pb(Nu) - pu(Nu) - pw(Nu, S0) - pw(L, L) / 2
    c2 = pb(Rho) + pu(Rho) + pw(Rho, S0) + pw(Nu, L)
    grad = pb(L) + pu(L) + pw(L, S0)

    def value(tag: str) -> Any:  # the estimate once its premises are inserted (to write the explicit remainder)
        _, Sb, bt, mu = shifted[tag]
        pairing = sp.MatAdd(-pb(Sb), -pu(Sb), -pw(Sb, Sb) / 2, pb(S0), pu(S0), pw(S0, S0) / 2)
        return sp.MatMul(1 / bt, pairing.xreplace({Sb: S0 - bt * mu}))

    values = {tag: value(tag) for tag in ("+", "-")}
    one = sp.MatAdd(values["+"], -grad)
    d.conclude(estimates["+"] - dJ, sp.MatAdd(beta * c1, _tail(one, beta, 2)), name="one-sided",
               uses=("neumann+", "exact-shift+", "gradient", "estimate+"),
               reason="insert s^β = s^0 − βμ_β, μ_β = λ − βν + β²ρ − β³σ + β⁴r_+: the β⁰ terms are dJ/dθ "
                      "(the EP limit), the β¹ terms c_1; the rest is β² times a polynomial in β",
               show=claims["one-sided"] + r",\ c_1 = (-\nu,\ -\nu x^T,\ -\operatorname{sym}(\nu s^{0T}) - "
                    r"\tfrac12\lambda\lambda^T)\ \big(\text{so } \tfrac{d}{d\beta}\tfrac{\partial F}{\partial\theta}"
                    r"(s^\beta)\big|_0 = \tfrac{dJ}{d\theta}\big)")
    half = sp.Rational(1, 2)
    cen = sp.MatAdd(sp.MatMul(half, values["+"]), sp.MatMul(half, values["-"]), -grad)
    d.conclude((estimates["+"] + estimates["-"]) / 2 - dJ, sp.MatAdd(beta**2 * c2, _tail(cen, beta, 4)),
               name="centred",
               uses=("neumann+", "neumann-", "exact-shift+", "exact-shift-", "gradient", "estimate+", "estimate-"),
               reason="average the ±β estimates: the β¹ and β³ terms cancel, the β² terms are c_2; the rest is "
                      "β⁴ times a polynomial in β",
               show=claims["centred"] + r",\ c_2 = (\rho,\ \rho x^T,\ \operatorname{sym}(\rho s^{0T}) + "
                    r"\operatorname{sym}(\nu\lambda^T))")
    d.checks["closed forms vs linfa.eqprop"] = _check
    return d
