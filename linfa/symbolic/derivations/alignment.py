r"""Fact 1: the FA hidden update is within 90° of BP's iff :math:`e^TWBe > 0`.

Two layers ``h = A x``, ``ŷ = W h``, one sample ``(x, y)``, error
``e = y − W A x``. Read off the flows on the single-sample moments
(:math:`\Sigma_{xx} = xx^T`, :math:`\Sigma_{yx} = yx^T`):

.. math::

    \dot A_{FA} = B e x^T, \qquad \dot A_{BP} = W^T e x^T, \qquad
    \langle \dot A_{FA}, \dot A_{BP}\rangle_F = \lVert x\rVert^2\, e^T W B e,

and the norms factor as :math:`\lVert x\rVert\lVert Be\rVert`,
:math:`\lVert x\rVert\lVert W^Te\rVert`. Hence the cosine of the angle
between the updates equals that between the signals :math:`Be` and
:math:`W^Te` and has the sign of :math:`e^TWBe` (hypotheses: :math:`x`,
:math:`Be`, :math:`W^Te` non-zero, else the angle is undefined).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import linfa
from linfa.observables import signal_angle, update_angles
from linfa.symbolic.calculus import placeholder
from linfa.symbolic.derivation import Derivation
from linfa.symbolic.derivations._common import dims, gaussian, lambdified
from linfa.symbolic.matrices import frobenius, matrix, scalar, sq_norm, task, vector
from linfa.symbolic.numeric import CheckResult
from linfa.tasks import Task

__all__ = ["alignment_condition"]


def _check(rng: np.random.Generator) -> CheckResult:
    n0, n1, n2 = dims(rng, 3, 3, 8)
    k = 64
    a, w, b = gaussian(rng, (n1, n0), (n2, n1), (n1, n2), scale=1.0)
    ewbe = lambdified(lambda W, B, e: e.T @ W @ B @ e, "W B e", (n2, n1), (n1, n2), (n2, 1))
    mismatches, worst = 0, 0.0
    for _ in range(k):
        x = rng.standard_normal((n0, 1))
        y = rng.standard_normal((n2, 1))
        e = y - w @ a @ x
        tk = Task(x @ x.T, y @ x.T, y @ y.T)
        th_update = float(update_angles(linfa.FA((b,)), tk, (a, w))[0])
        th_signal = float(signal_angle(b, w, e[:, 0]))
        worst = max(worst, abs(th_update - th_signal))
        if (th_update < 90.0) != (float(ewbe(w, b, e)[0, 0]) > 0):
            mismatches += 1
    ok = mismatches == 0 and worst < 1e-6
    return CheckResult("angle(FA, BP update) < 90° ⇔ e^T W B e > 0 (observables)", ok, worst, 1e-6,
                       f"widths ({n0},{n1},{n2}), {k} samples, {mismatches} sign mismatches")


def alignment_condition() -> Derivation:
    """Lillicrap et al.'s alignment condition, from FA.flow and BP.flow on one sample."""
    dims_ = "n0=2, n1=3, n2=2"
    A, W, B = matrix("A", 3, 2), matrix("W", 2, 3), matrix("B", 3, 2)
    x, y, e = vector("x", 2), vector("y", 2), vector("e", 2)
    tk = task(x * x.T, y * x.T, y * y.T)
    fa, bp = linfa.FA((B,)).dstate(tk, (A, W)), linfa.BP().dstate(tk, (A, W))
    d = Derivation(
        "Alignment condition",
        r"\cos\angle\big(\dot A_{FA}, \dot A_{BP}\big) = \frac{e^TWBe}{\lVert Be\rVert\lVert W^Te\rVert}"
        r"\quad\text{so the angle is} < 90^\circ \iff e^TWBe > 0",
        hypotheses=(r"h = Ax,\ \hat y = Wh,\ e = y - WAx", r"x \neq 0,\ Be \neq 0,\ W^Te \neq 0"),
        reference="Lillicrap et al. 2016; docs/design.md, fact 1",
        conclusion=r"the denominator is positive under the hypotheses, so the cosine has the sign of "
                   r"$e^TWBe$.",
    )
    ufa, ubp = placeholder(fa[0], r"U_{FA}"), placeholder(bp[0], r"U_{BP}")
    ip, nfa, nbp, sig, nbe, nwe = (sp.Symbol(n, real=True) for n in ("ip", "n_FA", "n_BP", "s", "n_Be", "n_We"))
    nx = sq_norm(x)
    d.define("error", e, y - W * A * x, reason="the error of the sample", dims=dims_, show=r"e := y - WAx")
    d.add("fa-update", fa[0], B * e * x.T, defines=ufa, uses=("error",), dims=dims_,
          reason="FA.flow on one sample: E = (y − WAx) x^T = e x^T", show=r"U_{FA} := \dot A_{FA} = B e x^T")
    d.add("bp-update", bp[0], W.T * e * x.T, defines=ubp, uses=("error",), dims=dims_,
          reason="BP.flow on one sample", show=r"U_{BP} := \dot A_{BP} = W^T e x^T")
    d.add("signals", frobenius(B * e, W.T * e), scalar(e.T * W * B * e), defines=sig, dims=dims_,
          reason="⟨Be, W^Te⟩ = e^T W B e", show=r"s := \langle Be, W^Te\rangle = e^TWBe")
    d.define("norm-Be", nbe, sq_norm(B * e), dims=dims_, reason="notation",
          show=r"n_{Be} := \lVert Be\rVert^2")
    d.define("norm-We", nwe, sq_norm(W.T * e), dims=dims_, reason="notation",
          show=r"n_{We} := \lVert W^Te\rVert^2")
    d.add("inner", frobenius(ufa, ubp), nx * sig, defines=ip, uses=("fa-update", "bp-update", "signals"),
          reason="Frobenius product of rank-one matrices", dims=dims_,
          show=r"\langle U_{FA}, U_{BP}\rangle_F = \lVert x\rVert^2\, s")
    d.add("norm-fa", sq_norm(ufa), nx * nbe, defines=nfa, uses=("fa-update", "norm-Be"),
          reason="rank-one norm", dims=dims_, show=r"\lVert U_{FA}\rVert^2 = \lVert x\rVert^2 n_{Be}")
    d.add("norm-bp", sq_norm(ubp), nx * nwe, defines=nbp, uses=("bp-update", "norm-We"),
          reason="rank-one norm", dims=dims_, show=r"\lVert U_{BP}\rVert^2 = \lVert x\rVert^2 n_{We}")
    d.conclude(ip / sp.sqrt(nfa * nbp), sig / sp.sqrt(nbe * nwe), uses=("inner", "norm-fa", "norm-bp"),
               reason="the factor ‖x‖² cancels from the cosine (‖x‖² ≥ 0)", method="simplify", dims=dims_)
    d.checks["update angle vs e^T W B e at random samples"] = _check
    return d
