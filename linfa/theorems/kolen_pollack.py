"""Kolen & Pollack (1994): learned feedback converges to the transpose of the forward weights.

With the same update for ``W_k`` and ``B_k^T`` and weight decay ``λ`` on both,

.. math::

    \\frac{d}{dt}(W_k - B_k^T) = -\\lambda (W_k - B_k^T)
    \\quad\\Longrightarrow\\quad W_k(t) - B_k(t)^T = e^{-\\lambda t}(W_k(0) - B_k(0)^T)

exactly, for any task and any initialisation (docs/design.md, fact 8).

Reference: J. F. Kolen, J. B. Pollack, *Backpropagation without weight
transport*, IEEE ICNN 1994; in deep learning, Akrout et al., NeurIPS 2019.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from linfa.exact import kolen_pollack_mismatch
from linfa.instances import Instance
from linfa.rules import AbstractRule, KolenPollack
from linfa.tasks import Task
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._numerics import bound, fro, saveat, t, tighter_reexamine, trajectory

__all__: list[str] = []


def _draw_kp(rng: np.random.Generator, size: int) -> Instance:
    widths, task, weights = _draw.gaussian_teacher_network(rng, size, max_depth=3)
    feedback = _draw.fa_feedback(rng, widths, size)
    decay = float(rng.uniform(0.1, 1.0))
    return _draw.linear_instance(task, weights, rule="KolenPollack", feedback=feedback, size=size, decay=decay,
                                 t1=3.0, n_save=6)


def _mismatch(layer: int) -> Callable[[AbstractRule, Task, tuple[np.ndarray, ...]], np.ndarray]:
    def obs(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
        assert isinstance(rule, KolenPollack)
        return rule.weights(state)[layer - 1] - t(rule.feedback_of(state)[layer - 2])

    return obs


def _check_kp(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    assert isinstance(rule, KolenPollack)
    depth = inst.depth
    t1, ts = saveat(inst)
    _, out, ok = trajectory(rule, task, state, t1, saveat=ts,
                            observe={f"D{k}": _mismatch(k) for k in range(2, depth + 1)})
    err = np.zeros(ok.shape)
    for k in range(2, depth + 1):
        d = out[f"D{k}"]
        exact = kolen_pollack_mismatch(ts, d[:, 0], rule.decay)
        err = np.maximum(err, np.max(fro(d - exact), axis=1) / np.maximum(fro(d[:, 0]), 1e-300))
    return bound(err, TOL, ok, {"relative_error": err})


TOL = 1e-8

register(Theorem(
    id="kolen_pollack.mismatch_decay",
    paper="Kolen & Pollack 1994",
    title="W_k − B_k^T decays exactly as e^{−λt}",
    statement=r"W_k(t) - B_k(t)^T = e^{-\lambda t}\,\big(W_k(0) - B_k(0)^T\big)",
    reference="Kolen & Pollack, IEEE ICNN 1994 (weight decay makes W and B^T converge); docs/design.md, fact 8",
    hypotheses=("Kolen–Pollack rule, depth 2 or 3, decay λ in [0.1, 1]", "any initial W and B", "any Σxx"),
    kind="theorem",
    tolerance=TOL,
    tolerance_reason="closed form against dopri5 at rtol 1e-9 over t <= 3, relative to the initial mismatch; "
                     "measured <= 4e-11 (128 instances, seeds 0-3)",
    draw=_draw_kp,
    check_batch=_check_kp,
    reexamine=tighter_reexamine(_check_kp, TOL),
    fact=8,
    derivation="kolen_pollack_decay", derivation_claim="decay",
))
