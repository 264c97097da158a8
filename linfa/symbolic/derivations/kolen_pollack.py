r"""Fact 8: under Kolen–Pollack the mismatch :math:`W_l - B_l^T` decays as :math:`e^{-\lambda t}`.

With :math:`G_l = M_l E W_{<l}^T` (the FA update through the current ``B``),
:math:`\dot W_l = G_l - \lambda W_l` and :math:`\dot B_l = G_l^T - \lambda B_l`, so

.. math::

    \frac{d}{dt}\big(W_l - B_l^T\big) = -\lambda\big(W_l - B_l^T\big),
    \qquad W_l(t) - B_l(t)^T = e^{-\lambda t}\big(W_l(0) - B_l(0)^T\big),

for any depth, initialisation and :math:`\Sigma_{xx}`. The derivation checks depths 2 and 3 as
chains: each layer's two flows define :math:`\dot W_l, \dot B_l`, the mismatch step defines
:math:`\dot M_l = -\lambda M_l`, and the claim :math:`\frac{d}{dt}(e^{\lambda t}M_l) = 0` is checked
from it alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import linfa
from linfa.symbolic.calculus import flow_steps, placeholder, time_derivative
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
    """Kolen–Pollack: ``d/dt (W_l − B_l^T) = −λ (W_l − B_l^T)``, hence exponential decay (depth 2 and 3)."""
    lam = sp.Symbol("lambda", positive=True)
    t = sp.Symbol("t", real=True)
    A, W, B, S, Y = symbols("A W B S Y", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2))
    rule, tk, st = linfa.KolenPollack(lam), task(S, Y), (A, W, B)
    claim = r"W_l(t) - B_l(t)^T = e^{-\lambda t}\left(W_l(0) - B_l(0)^T\right)"
    d = Derivation(
        "Kolen–Pollack mismatch decays exponentially",
        r"\frac{d}{dt}\left(W_l - B_l^T\right) = -\lambda\left(W_l - B_l^T\right),\quad " + claim,
        hypotheses=(r"\lambda \geq 0", r"\text{any initialisation and } \Sigma_{xx}",
                    r"\text{depth 2 and 3 (deeper: the same cancellation layer by layer, not checked here)}"),
        reference="Kolen & Pollack 1994; Akrout et al. 2019; docs/design.md, fact 8",
        conclusion=r"the forward and feedback weights align exponentially fast, at rate $\lambda$, "
                   r"whatever the task: $\frac{d}{dt}\big(e^{\lambda t}M\big) = 0$ integrates to "
                   r"$M(t) = e^{-\lambda t}M(0)$ for the mismatch $M = W_l - B_l^T$.",
    )
    E = Y - W @ A @ S
    G = E @ A.T
    flows, rates = flow_steps(rule, tk, st, ("A", "W", "B"), (B @ E, G - lam * W, G.T - lam * B),
                              reason="KolenPollack.flow: the FA update G = E A^T (resp. G^T for B) with decay",
                              shows=(r"\dot A = BE", r"\dot W = EA^T - \lambda W", r"\dot B = AE^T - \lambda B"))
    for f in flows[1:]:  # A's rate does not enter the mismatch
        d.append(f)
    _mismatch(d, "", W, B, rates, lam, t, ("flow-W", "flow-B"), "W", "B", claim,
              "the G terms cancel (B learns G^T); the decay is linear")
    W1, W2, W3, B2, B3, S3, Y3 = symbols("W1 W2 W3 B2 B3 S Y", (3, 2), (3, 3), (2, 3), (3, 3), (3, 2),
                                         (2, 2), (2, 2))
    r3, t3, st3 = linfa.KolenPollack(lam), task(S3, Y3), (W1, W2, W3, B2, B3)
    flows3, rates3 = flow_steps(r3, t3, st3, ("W_1", "W_2", "W_3", "B_2", "B_3"), prefix="depth3-flow",
                                reason="KolenPollack.flow of a depth-3 net (FA updates through B_2, B_3, with decay)")
    for f in flows3[1:]:  # W_1 has no feedback partner
        d.append(f)
    for layer, (w, b) in ((2, (W2, B2)), (3, (W3, B3))):
        _mismatch(d, f"depth3-layer{layer}-", w, b, rates3, lam, t,
                  (f"depth3-flow-W_{layer}", f"depth3-flow-B_{layer}"), f"W_{layer}", f"B_{layer}",
                  claim.replace("_l", f"_{layer}"),
                  f"depth 3: B_{layer} learns the transpose of W_{layer}'s FA update; the decay is linear")
    d.checks["decay along linfa's numerical flow"] = _check
    return d


def _mismatch(d: Derivation, prefix: str, W: Any, B: Any, rates: dict[Any, Any], lam: Any, t: Any,
              flows: tuple[str, str], wl: str, bl: str, claim: str, why: str) -> None:
    """Steps ``M' = −λM`` (from the two flows) and the claim ``d/dt(e^{λt} M) = 0`` for ``M = W − B^T``."""
    M = sp.MatrixSymbol(f"M_{{{wl}}}" if prefix else "M", *W.shape)
    dM = placeholder(M, rf"\dot M_{{{wl}}}" if prefix else r"\dot M")
    name = f"{prefix}mismatch" if prefix else "mismatch"
    d.define(f"{prefix}def-M", M, W - B.T, reason="notation: the mismatch",
             show=rf"{sp.latex(M)} := {wl} - {bl}^T")
    d.add(name, time_derivative(W - B.T, rates), -lam * M, defines=dM, uses=(*flows, f"{prefix}def-M"),
          reason=f"product rule, then the flows of {wl} and {bl}: {why}",
          show=rf"{sp.latex(dM)} := \tfrac{{d}}{{dt}}\left({wl} - {bl}^T\right) = -\lambda {sp.latex(M)}")
    d.conclude(time_derivative(sp.exp(lam * t) * M, [(M, dM), (t, 1)]), sp.ZeroMatrix(*W.shape),
               name=f"{prefix}decay" if prefix else "decay", uses=(name,),
               reason="integrating factor: d/dt(e^{λt}M) = e^{λt}(λM + \\dot M) = 0, so e^{λt}M(t) = M(0)",
               show=rf"\frac{{d}}{{dt}}\left(e^{{\lambda t}}{sp.latex(M)}\right) = 0 \implies {claim}")
