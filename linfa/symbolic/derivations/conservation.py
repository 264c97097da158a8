r"""Fact 2: conservation laws of FA and BP, and the discrete-step drift of the FA law.

Two layers ``h = A x``, ``ŷ = W h`` (``A = W_1``, ``W = W_2``), feedback
``B`` (``n_1 × n_2``) in place of :math:`W^T`, any :math:`\Sigma_{xx}`:

.. math::

    \frac{d}{dt}\big(AA^T - BW - W^TB^T\big) = 0 \quad(\text{FA}), \qquad
    \frac{d}{dt}\big(AA^T - W^TW\big) = 0 \quad(\text{BP}).

A gradient step of size η (full batch, or a mini-batch with its empirical
moments) changes the FA law by exactly :math:`\eta^2 (BE)(BE)^T \succeq 0`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import linfa
from linfa.observables import conserved_quantities
from linfa.symbolic.calculus import flow_steps, time_derivative
from linfa.symbolic.derivation import Counterexample, Derivation
from linfa.symbolic.derivations._common import dims, gaussian, lambdified, random_task, rel
from linfa.symbolic.matrices import symbols, task
from linfa.symbolic.numeric import CheckResult, flow_derivative, rk4
from linfa.tasks import Task

__all__ = ["bp_balancedness", "fa_conservation", "fa_discrete_drift", "fa_law"]

_REF = "Lillicrap et al. 2016; docs/design.md, fact 2"


def fa_law(A: Any, W: Any, B: Any) -> Any:
    r"""The FA conserved quantity :math:`Q = AA^T - BW - W^TB^T` (sympy or numpy)."""
    return A @ A.T - B @ W - W.T @ B.T


def bp_law(A: Any, W: Any) -> Any:
    r"""Balancedness :math:`AA^T - W^TW` (sympy or numpy)."""
    return A @ A.T - W.T @ W


def _two_layer(n0: int = 2, n1: int = 3, n2: int = 2) -> tuple[Any, ...]:
    return symbols("A W B S Y", (n1, n0), (n2, n1), (n1, n2), (n0, n0), (n2, n0))


# ------------------------------------------------------------------ checks
def _check_conserved(rule_name: str) -> Any:
    def check(rng: np.random.Generator) -> CheckResult:
        n0, n1, n2 = dims(rng, 3)
        tk = random_task(rng, n0, n2)
        a, w, b = gaussian(rng, (n1, n0), (n2, n1), (n1, n2))
        if rule_name == "FA":
            rule: linfa.AbstractRule = linfa.FA((b,))
            q = lambdified(fa_law, "A W B", (n1, n0), (n2, n1), (n1, n2))
            qf = lambda A, W: q(A, W, b)
        else:
            rule = linfa.BP()
            qf = lambdified(bp_law, "A W", (n1, n0), (n2, n1))
        # (i) d/dt Q along linfa's numerical flow (complex step) vanishes
        rates = rule.dstate(tk, (a, w))
        dq = flow_derivative(qf, (a, w), rates)
        scale = float(np.max(np.abs(rates[0]))) * max(1.0, float(np.max(np.abs(a))))
        err1 = float(np.max(np.abs(dq))) / scale
        # (ii) Q constant along an RK4 trajectory and equal to linfa's observable
        end = rk4(rule.flow(tk), (a, w), 2.0, 400)
        err2 = rel(qf(*end), qf(a, w))
        err3 = rel(qf(*end), conserved_quantities(rule, end)[0])
        err = max(err1, err2, err3)
        return CheckResult(f"{rule_name} law conserved numerically", err < 1e-8, err, 1e-8,
                           f"widths ({n0},{n1},{n2}); dQ/dt {err1:.1e}, drift {err2:.1e}, vs observable {err3:.1e}")

    return check


# ------------------------------------------------------------------ builders
def fa_conservation() -> Derivation:
    """FA conservation law ``A A^T - B W - W^T B^T`` (any init, any Σxx; depth 2 and 3)."""
    A, W, B, S, Y = _two_layer()
    rule = linfa.FA((B,))
    tk = task(S, Y)
    E = Y - W @ A @ S
    d = Derivation(
        "FA conservation law",
        r"\frac{d}{dt}\left(AA^T - BW - W^TB^T\right) = 0",
        hypotheses=(r"\text{any initialisation}", r"\text{any } \Sigma_{xx} \text{ (not even assumed symmetric)}"),
        reference=_REF,
        conclusion=r"$Q = AA^T - BW - W^TB^T$ is constant; for depth $L$ each "
                   r"$W_lW_l^T - B_{l+1}W_{l+1} - W_{l+1}^TB_{l+1}^T$ is.",
    )
    flows, rates = flow_steps(rule, tk, (A, W), ("A", "W"), (B @ E, E @ A.T),
                              reason="FA.flow with E = Σyx − W A Σxx",
                              shows=(r"\dot A = BE,\quad E = \Sigma_{yx} - WA\Sigma_{xx}", r"\dot W = EA^T"))
    for f in flows:
        d.append(f)
    P1, P2 = sp.MatrixSymbol("P_1", 3, 3), sp.MatrixSymbol("P_2", 3, 3)
    d.add("d(AA^T)", time_derivative(A @ A.T, rates), B @ E @ A.T + A @ E.T @ B.T, defines=P1,
          uses=("flow-A",), reason="product rule, then the flow of A",
          show=r"P_1 := \tfrac{d}{dt}AA^T = \dot AA^T + A\dot A^T = BEA^T + AE^TB^T")
    d.add("d(BW)", time_derivative(B @ W + W.T @ B.T, rates), B @ E @ A.T + A @ E.T @ B.T, defines=P2,
          uses=("flow-W",), reason="B fixed; product rule, then the flow of W",
          show=r"P_2 := \tfrac{d}{dt}(BW + W^TB^T) = B\dot W + \dot W^TB^T = BEA^T + AE^TB^T")
    d.conclude(P1 - P2, sp.ZeroMatrix(3, 3), name="conserved", uses=("d(AA^T)", "d(BW)"),
               reason="linearity of d/dt: dQ/dt = P_1 − P_2, and the two are equal")
    # depth 3: each layer's law, from the depth-3 flow
    W1, W2, W3, B2, B3, S3, Y3 = symbols("W1 W2 W3 B2 B3 S Y", (3, 2), (3, 3), (2, 3), (3, 3), (3, 2),
                                         (2, 2), (2, 2))
    r3, t3, st3 = linfa.FA((B2, B3)), task(S3, Y3), (W1, W2, W3)
    flows3, rates3 = flow_steps(r3, t3, st3, ("W_1", "W_2", "W_3"), prefix="depth3-flow",
                                reason="FA.flow of a depth-3 net (M_1 = B_2 B_3, M_2 = B_3)")
    for f in flows3:
        d.append(f)
    for layer, (wa, wb, bb) in enumerate(((W1, W2, B2), (W2, W3, B3)), 1):
        d.conclude(time_derivative(fa_law(wa, wb, bb), rates3), sp.ZeroMatrix(wa.shape[0], wa.shape[0]),
                   name=f"depth3-layer{layer}", uses=(f"depth3-flow-W_{layer}", f"depth3-flow-W_{layer + 1}"),
                   reason="product rule, then the depth-3 flows of the two layers",
                   show=rf"\frac{{d}}{{dt}}\left(W_{layer}W_{layer}^T - B_{layer + 1}W_{layer + 1} - "
                        rf"W_{layer + 1}^TB_{layer + 1}^T\right) = 0")
    d.checks["FA law along linfa's numerical flow"] = _check_conserved("FA")
    return d


def bp_balancedness() -> Derivation:
    """BP balancedness ``A A^T - W^T W`` (any init, any Σxx; depth 2 and 3)."""
    A, W, _, S, Y = _two_layer()
    rule, tk = linfa.BP(), task(S, Y)
    E = Y - W @ A @ S
    d = Derivation(
        "BP balancedness",
        r"\frac{d}{dt}\left(AA^T - W^TW\right) = 0",
        hypotheses=(r"\text{any initialisation}", r"\text{any } \Sigma_{xx}"),
        reference="Saxe et al. 2014; Arora et al. 2018; docs/design.md, fact 2",
        conclusion=r"$W_lW_l^T - W_{l+1}^TW_{l+1}$ is constant under gradient flow.",
    )
    flows, rates = flow_steps(rule, tk, (A, W), ("A", "W"), (W.T @ E, E @ A.T), reason="BP.flow")
    for f in flows:
        d.append(f)
    P1, P2 = sp.MatrixSymbol("P_1", 3, 3), sp.MatrixSymbol("P_2", 3, 3)
    d.add("d(AA^T)", time_derivative(A @ A.T, rates), W.T @ E @ A.T + A @ E.T @ W, defines=P1,
          uses=("flow-A",), reason="product rule, then dA/dt = W^T E",
          show=r"P_1 := \tfrac{d}{dt}AA^T = W^TEA^T + AE^TW")
    d.add("d(W^TW)", time_derivative(W.T @ W, rates), W.T @ E @ A.T + A @ E.T @ W, defines=P2,
          uses=("flow-W",), reason="product rule, then dW/dt = E A^T",
          show=r"P_2 := \tfrac{d}{dt}W^TW = W^TEA^T + AE^TW")
    d.conclude(P1 - P2, sp.ZeroMatrix(3, 3), name="conserved", uses=("d(AA^T)", "d(W^TW)"),
               reason="linearity of d/dt; the two rates are equal")
    W1, W2, W3, S3, Y3 = symbols("W1 W2 W3 S Y", (3, 2), (3, 3), (2, 3), (2, 2), (2, 2))
    r3, t3, st3 = linfa.BP(), task(S3, Y3), (W1, W2, W3)
    flows3, rates3 = flow_steps(r3, t3, st3, ("W_1", "W_2", "W_3"), prefix="depth3-flow",
                                reason="BP.flow of a depth-3 net")
    for f in flows3:
        d.append(f)
    for layer, (wa, wb) in enumerate(((W1, W2), (W2, W3)), 1):
        d.conclude(time_derivative(bp_law(wa, wb), rates3), sp.ZeroMatrix(wa.shape[0], wa.shape[0]),
                   name=f"depth3-layer{layer}", uses=(f"depth3-flow-W_{layer}", f"depth3-flow-W_{layer + 1}"),
                   reason="product rule, then the depth-3 flows of the two layers",
                   show=rf"\frac{{d}}{{dt}}\left(W_{layer}W_{layer}^T - W_{layer + 1}^TW_{layer + 1}\right) = 0")
    d.checks["balancedness along linfa's numerical flow"] = _check_conserved("BP")
    return d


def _gd_step(rule: linfa.AbstractRule, tk: Task, state: tuple[Any, ...], eta: Any) -> tuple[Any, ...]:
    return tuple(s + eta * r for s, r in zip(state, rule.dstate(tk, state), strict=True))


def _check_drift(rng: np.random.Generator) -> CheckResult:
    n0, n1, n2 = dims(rng, 3)
    tk = random_task(rng, n0, n2)
    X, Yv = tk.sample(rng, int(rng.integers(1, 4)))
    batch = Task.from_samples(X, Yv)  # a mini-batch: SGD is GD on its empirical moments
    a, w, b = gaussian(rng, (n1, n0), (n2, n1), (n1, n2), scale=1.0)
    eta = float(rng.uniform(0.01, 0.5))
    rule = linfa.FA((b,))
    a1, w1 = _gd_step(rule, batch, (a, w), eta)
    got = fa_law(a1, w1, b) - fa_law(a, w, b)
    g = lambdified(lambda A, W, B, S, Y: B @ (Y - W @ A @ S), "A W B S Y",
                   (n1, n0), (n2, n1), (n1, n2), (n0, n0), (n2, n0))(a, w, b, batch.sxx, batch.syx)
    want = eta**2 * g @ g.T
    err = rel(got, want)
    lam = float(np.linalg.eigvalsh(0.5 * (got + got.T)).min()) / max(1.0, float(np.abs(want).max()))
    ok = err < 1e-9 and lam > -1e-9
    return CheckResult("SGD step drift = η² (BÊ)(BÊ)^T ⪰ 0", ok, err, 1e-9,
                       f"widths ({n0},{n1},{n2}), η={eta:.3g}, min eigenvalue/scale {lam:.2e}")


def _bp_drift_indefinite() -> CheckResult:
    rng = np.random.default_rng(1)
    tk = random_task(rng, 3, 3)
    a, w = gaussian(rng, (3, 3), (3, 3), scale=1.0)
    rule = linfa.BP()
    a1, w1 = _gd_step(rule, tk, (a, w), 0.1)
    dq = bp_law(a1, w1) - bp_law(a, w)
    lam = np.linalg.eigvalsh(0.5 * (dq + dq.T))
    ok = bool(lam.min() < -1e-6 and lam.max() > 1e-6)
    return CheckResult("BP's one-step drift of A A^T − W^T W is indefinite", ok, float(lam.min()), 0.0,
                       f"eigenvalues {np.array2string(lam, precision=3)}")


def fa_discrete_drift() -> Derivation:
    """One gradient step of size η changes the FA law by exactly ``η² (BE)(BE)^T ⪰ 0``."""
    A, W, B, S, Y = _two_layer()
    eta = sp.Symbol("eta", positive=True)
    rule, tk = linfa.FA((B,)), task(S, Y)
    E = Y - W @ A @ S
    A1, W1 = _gd_step(rule, tk, (A, W), eta)
    d = Derivation(
        "FA law under discrete steps",
        r"Q(A + \eta BE,\ W + \eta EA^T) - Q(A, W) = \eta^2 (BE)(BE)^T \succeq 0",
        hypotheses=(
            r"Q = AA^T - BW - W^TB^T",
            r"E = \hat\Sigma_{yx} - WA\hat\Sigma_{xx}"
            r" \text{ from the moments of the batch used (full batch or SGD mini-batch)}",
        ),
        reference=_REF,
        conclusion=r"under GD/SGD the FA law drifts upward in the PSD order by $O(\eta^2)$ per step; "
                   r"for BP the drift $\eta^2(W^TEE^TW - AE^TEA^T)$ is indefinite.",
    )
    Ap, Wp, D = sp.MatrixSymbol("A'", 3, 2), sp.MatrixSymbol("W'", 2, 3), sp.MatrixSymbol(r"\Delta Q", 3, 3)
    d.add("step-A", A1, A + eta * B @ E, defines=Ap, reason="one step of size η along FA.flow",
          show=r"A' = A + \eta BE")
    d.add("step-W", W1, W + eta * E @ A.T, defines=Wp, reason="one step of size η along FA.flow",
          show=r"W' = W + \eta EA^T")
    d.add("one-step", fa_law(Ap, Wp, B) - fa_law(A, W, B), eta**2 * B @ E @ E.T @ B.T, defines=D,
          uses=("step-A", "step-W"),
          reason="expand the product; the O(η) terms are those of the flow and cancel",
          show=r"\Delta Q := Q(A', W') - Q(A, W) = \eta^2\, B E E^T B^T")
    # depth 3: each layer's law changes by η² G_l G_l^T with G_l its update
    W1_, W2_, W3_, B2, B3, S3, Y3 = symbols("W1 W2 W3 B2 B3 S Y", (3, 2), (3, 3), (2, 3), (3, 3), (3, 2),
                                            (2, 2), (2, 2))
    r3, t3, st = linfa.FA((B2, B3)), task(S3, Y3), (W1_, W2_, W3_)
    G = r3.dstate(t3, st)
    new = _gd_step(r3, t3, st, eta)
    primes = [sp.MatrixSymbol(f"W_{i}'", *w.shape) for i, w in enumerate(st, 1)]
    for i, (w, g, n, p) in enumerate(zip(st, G, new, primes, strict=True), 1):
        d.add(f"depth3-step-W_{i}", n, w + eta * g, defines=p, reason="one step of size η along the depth-3 FA.flow",
              show=rf"W_{i}' = W_{i} + \eta G_{i}")
    # BP contrast (exact)
    rb = linfa.BP()
    Ab, Wb = _gd_step(rb, tk, (A, W), eta)
    Abp, Wbp = sp.MatrixSymbol("A_{BP}'", 3, 2), sp.MatrixSymbol("W_{BP}'", 2, 3)
    d.add("bp-step-A", Ab, A + eta * W.T @ E, defines=Abp, reason="one step of size η along BP.flow",
          show=r"A_{BP}' = A + \eta W^TE")
    d.add("bp-step-W", Wb, W + eta * E @ A.T, defines=Wbp, reason="one step of size η along BP.flow",
          show=r"W_{BP}' = W + \eta EA^T")
    d.conclude(bp_law(Abp, Wbp) - bp_law(A, W), eta**2 * (W.T @ E @ E.T @ W - A @ E.T @ E @ A.T),
               name="bp-contrast", uses=("bp-step-A", "bp-step-W"),
               reason="same expansion for BP: a difference of two PSD terms",
               show=r"\Delta(AA^T - W^TW) = \eta^2\,(W^TEE^TW - AE^TEA^T)")
    d.conclude(fa_law(primes[0], primes[1], B2) - fa_law(W1_, W2_, B2), eta**2 * G[0] @ G[0].T,
               name="depth3-layer1", uses=("depth3-step-W_1", "depth3-step-W_2"),
               reason="as above; G_1 = B_2 B_3 E", show=r"\Delta Q_1 = \eta^2 G_1G_1^T")
    d.conclude(fa_law(primes[1], primes[2], B3) - fa_law(W2_, W3_, B3), eta**2 * G[1] @ G[1].T,
               name="depth3-layer2", uses=("depth3-step-W_2", "depth3-step-W_3"),
               reason="as above; G_2 = B_3 E W_1^T", show=r"\Delta Q_2 = \eta^2 G_2G_2^T")
    d.conclude(D, sp.ZeroMatrix(3, 3), "psd", name="psd", witness=eta * B @ E, uses=("one-step",),
               reason="Gram form G G^T with G = η B E")
    d.checks["one SGD step on a mini-batch, numpy"] = _check_drift
    d.counterexamples.append(Counterexample(
        "fixed feedback (FA)", "the one-step drift is PSD (BP's is indefinite)", _bp_drift_indefinite))
    return d
