"""Example sweep targets built on the foundation alone (usable before, and beside, the catalogue).

:func:`fa_alignment` is a representative batched check: feedback alignment on a
two-layer network from a small initialisation, integrated with fixed-step RK4
as one batch of ``K`` instances, checking Lillicrap et al.'s alignment
condition ``<e^T W B e> > 0`` at the end of training. For a Gaussian ``B`` and
more than one output this is a conjecture, not a theorem (docs/design.md, fact 3),
so a sweep may find counterexamples.

Run it as ``linfa sweep linfa.sweep.examples:FA_ALIGNMENT --instances 1000 --out fa.sqlite``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa import feedback
from linfa.networks import DeepLinear
from linfa.observables import alignment, loss
from linfa.rules import FA
from linfa.sweep.targets import Batched
from linfa.tasks import Task

__all__ = ["FA_ALIGNMENT", "fa_alignment"]


def fa_alignment(
    seeds: Sequence[np.random.SeedSequence],
    *,
    widths: tuple[int, int, int] = (5, 4, 3),
    t1: float = 4.0,
    steps: int = 100,
    init_scale: float = 1e-3,
) -> dict[str, Any]:
    """FA alignment after training, on ``K`` seeded instances solved as one batch.

    Instance ``k`` draws, from ``numpy.random.default_rng(seeds[k])`` alone, a
    teacher task (``N(0, 1/n0)`` entries, ``Σxx = I``), a Gaussian feedback
    matrix ``B`` (``n1 × n2``) and Gaussian initial weights of scale
    ``init_scale``. The batch is integrated with ``steps`` RK4 steps up to ``t1``.

    Parameters
    ----------
    seeds : sequence of numpy.random.SeedSequence
        One per instance (``K`` of them).
    widths : (n0, n1, n2)
    t1 : float
        Training time.
    steps : int
        RK4 steps.
    init_scale : float
        Standard deviation of the initial weights.

    Returns
    -------
    dict
        ``margin`` (``<e^T W B e> / <e^T e>`` at ``t1``), ``holds`` (margin > 0),
        ``loss`` (at ``t1``), ``nse0`` (loss at ``t1`` over the loss at 0),
        ``size`` (number of weights) and ``instance`` (``syx``, ``B``, ``W1``, ``W2``
        at 0), each with leading axis ``K``.
    """
    net = DeepLinear(widths)
    n0, _, n2 = widths
    rngs = [np.random.default_rng(s) for s in seeds]
    draws = []
    for rng in rngs:
        w_star = rng.standard_normal((n2, n0)) / np.sqrt(n0)
        b = feedback.fa(widths, rng)
        w0 = net.gaussian(rng, init_scale)
        draws.append((w_star, b, w0))
    task = Task.teacher(np.stack([d[0] for d in draws]))
    rule = FA(tuple(np.stack([d[1][i] for d in draws]) for i in range(len(widths) - 2)))
    state0 = tuple(np.stack([d[2][i] for d in draws]) for i in range(len(widths) - 1))
    state = state0
    h = t1 / steps
    for _ in range(steps):
        k1 = rule.dstate(task, state)
        k2 = rule.dstate(task, tuple(s + 0.5 * h * k for s, k in zip(state, k1, strict=True)))
        k3 = rule.dstate(task, tuple(s + 0.5 * h * k for s, k in zip(state, k2, strict=True)))
        k4 = rule.dstate(task, tuple(s + h * k for s, k in zip(state, k3, strict=True)))
        state = tuple(s + (h / 6.0) * (a + 2 * b + 2 * c + d)
                      for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True))
    l0 = loss(rule, task, state0)
    l1 = loss(rule, task, state)
    margin = alignment(rule, task, state)[..., 0] / (2.0 * l1)
    return {
        "holds": margin > 0,
        "margin": margin,
        "loss": l1,
        "nse0": l1 / l0,
        "size": np.full(len(seeds), sum(a * b for a, b in net.shapes)),
        "instance": {"syx": task.syx, "B": rule.feedback[0], "W1": state0[0], "W2": state0[1]},
    }


#: :func:`fa_alignment` as a batched sweep target with its default parameters.
FA_ALIGNMENT = Batched(fa_alignment)
