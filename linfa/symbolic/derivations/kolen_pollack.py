r"""Fact 8: under Kolen–Pollack the mismatch :math:`W_l - B_l^T` decays as :math:`e^{-\lambda t}`.

With :math:`G_l = M_l E W_{<l}^T` (the FA update through the current ``B``),
:math:`\dot W_l = G_l - \lambda W_l` and :math:`\dot B_l = G_l^T - \lambda B_l`, so

.. math::

    \frac{d}{dt}\big(W_l - B_l^T\big) = -\lambda\big(W_l - B_l^T\big),
    \qquad W_l(t) - B_l(t)^T = e^{-\lambda t}\big(W_l(0) - B_l(0)^T\big),

for any depth, initialisation and :math:`\Sigma_{xx}`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import linfa
from linfa.symbolic.calculus import conservation_step, rate_step
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.derivations._common import dims, gaussian, random_task, rel
from linfa.symbolic.matrices import symbols, task
from linfa.symbolic.numeric import CheckResult, lambdify, rk4

__all__ = ["kolen_pollack_decay"]


def _check(rng: np.random.Generator) -> CheckResult:
    n0, n1, n2, n3 = dims(rng, 4)
    lam = float(rng.uniform(0.1, 1.0))
    tk = random_task(rng, n0, n3)
    w1, w2, w3, b2, b3 = gaussian(rng, (n1, n0), (n2, n1), (n3, n2), (n1, n2), (n2, n3))
    rule = linfa.KolenPollack(lam)
    state = rule.init_state((w1, w2, w3), (b2, b3))
    t1 = float(rng.uniform(0.5, 3.0))
    end = rk4(rule.flow(tk), state, t1, 300)
    t, lm = sp.Symbol("t", real=True), sp.Symbol("lambda", positive=True)
    closed = []
    for w, b in ((w2, b2), (w3, b3)):  # the statement, lambdified at these widths
        Ws, Bs = sp.MatrixSymbol("W", *w.shape), sp.MatrixSymbol("B", *b.shape)
        f = lambdify(sp.exp(-lm * t) * (Ws - Bs.T), [Ws, Bs, t, lm])
        closed.append(f(w, b, t1, lam))
    got2 = end[1] - end[3].T
    got3 = end[2] - end[4].T
    err = max(rel(got2, closed[0]), rel(got3, closed[1]))
    return CheckResult("W_l − B_l^T = e^{−λt}(W_l(0) − B_l(0)^T) along RK4", err < 1e-8, err, 1e-8,
                       f"widths ({n0},{n1},{n2},{n3}), λ={lam:.3g}, t={t1:.3g}")


def kolen_pollack_decay() -> Derivation:
    """Kolen–Pollack: ``d/dt (W_l − B_l^T) = −λ (W_l − B_l^T)``, hence exponential decay."""
    lam = sp.Symbol("lambda", positive=True)
    t = sp.Symbol("t", real=True)
    A, W, B, S, Y = symbols("A W B S Y", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2))
    rule, tk, st = linfa.KolenPollack(lam), task(S, Y), (A, W, B)
    d = Derivation(
        "Kolen–Pollack mismatch decays exponentially",
        r"\frac{d}{dt}\left(W_l - B_l^T\right) = -\lambda\left(W_l - B_l^T\right),\quad "
        r"W_l(t) - B_l(t)^T = e^{-\lambda t}\left(W_l(0) - B_l(0)^T\right)",
        hypotheses=(r"\lambda \geq 0", r"\text{any depth, initialisation and } \Sigma_{xx}"),
        reference="Kolen & Pollack 1994; Akrout et al. 2019; docs/design.md, fact 8",
        conclusion=r"the forward and feedback weights align exponentially fast, at rate $\lambda$, "
                   r"whatever the task.",
    )
    _, dW, dB = rule.dstate(tk, st)
    G = (Y - W @ A @ S) @ A.T
    d.add("flow-W", dW, G - lam * W, reason="KolenPollack.flow: FA update G = E A^T with decay",
          show=r"\dot W = EA^T - \lambda W")
    d.add("flow-B", dB, G.T - lam * B, reason="KolenPollack.flow: the transposed update with decay",
          show=r"\dot B = AE^T - \lambda B")
    d.append(rate_step("mismatch", W - B.T, rule, tk, st, -lam * (W - B.T),
                       reason="the G terms cancel (B learns G^T); decay is linear",
                       label=r"W - B^T", rhs_label=r"-\lambda\,(W - B^T)"))
    d.append(conservation_step("integrating-factor", sp.exp(lam * t) * (W - B.T), rule, tk, st,
                               extra=[(t, 1)], reason="product rule with dt/dt = 1 and the previous step",
                               label=r"e^{\lambda t}(W - B^T)"))
    W1, W2, W3, B2, B3, S3, Y3 = symbols("W1 W2 W3 B2 B3 S Y", (3, 2), (3, 3), (2, 3), (3, 3), (3, 2),
                                         (2, 2), (2, 2))
    r3, t3, st3 = linfa.KolenPollack(lam), task(S3, Y3), (W1, W2, W3, B2, B3)
    d.append(rate_step("depth3-layer2", W2 - B2.T, r3, t3, st3, -lam * (W2 - B2.T),
                       reason="depth 3: B_2 learns the transpose of W_2's FA update",
                       label=r"W_2 - B_2^T", rhs_label=r"-\lambda\,(W_2 - B_2^T)"))
    d.append(rate_step("depth3-layer3", W3 - B3.T, r3, t3, st3, -lam * (W3 - B3.T),
                       reason="depth 3, output layer", label=r"W_3 - B_3^T",
                       rhs_label=r"-\lambda\,(W_3 - B_3^T)"))
    d.checks["decay along linfa's numerical flow"] = _check
    return d
