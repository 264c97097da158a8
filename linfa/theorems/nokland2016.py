"""Nøkland (2016): direct feedback alignment learns from exactly zero weights.

At ``W_1 = ⋯ = W_L = 0`` backprop's flow vanishes identically for ``L >= 2``
(every ``W_{>l}^T`` and every ``W_{<l}`` is zero), so BP cannot move. DFA's
first layer receives ``B_1 E ≠ 0`` and the network trains.

Reference: A. Nøkland, *Direct feedback alignment provides learning in deep
neural networks*, NeurIPS 2016 (training from zero initial weights).
"""

from __future__ import annotations

import numpy as np

from linfa import observables as obs
from linfa.instances import Instance
from linfa.rules import BP
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._numerics import trajectory
from linfa.theorems._statistics import POPULATION_REASON

__all__: list[str] = []


def _draw_zero(rng: np.random.Generator, size: int) -> Instance:
    depth = _draw.integers(rng, 2, 4)
    n0, nout = _draw.integers(rng, 1, 5, 2)
    widths = (n0, *_draw.integers(rng, nout, 6, depth - 1), nout)
    task = _draw.teacher_task(rng, widths[0], widths[-1], size)
    weights = _draw.network(widths).zeros(batch=(size,))
    feedback = _draw.dfa_feedback(rng, widths, size)
    return _draw.linear_instance(task, weights, rule="DFA", feedback=feedback, size=size, t1=20.0)


def _check_zero(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    ts = np.array([0.0, t1])
    bp_flow = BP().dstate(task, state)
    bp_still = np.all([np.all(d == 0.0, axis=(-2, -1)) for d in bp_flow], axis=0)
    _, out, ok = trajectory(rule, task, state, t1, saveat=ts, observe={"loss": obs.loss})
    _, bp_out, bp_ok = trajectory(BP(), task, state, t1, saveat=ts, observe={"loss": obs.loss})
    loss0 = out["loss"][:, 0]
    best = np.maximum(task.min_loss(), 0.0)
    excess = (out["loss"][:, -1] - best) / np.maximum(loss0 - best, 1e-300)  # DFA: fraction of excess loss left
    bp_moved = np.abs(bp_out["loss"][:, -1] - bp_out["loss"][:, 0])
    margin = np.where(ok & bp_ok & bp_still & (bp_moved == 0), FRACTION_LEFT - excess, -1.0)
    return Verdict(margin >= 0, margin, {"dfa_excess_loss_left": excess, "bp_loss_change": bp_moved})


FRACTION_LEFT = 0.1

register(Theorem(
    id="nokland2016.zero_init_training",
    paper="Nøkland 2016",
    title="DFA trains a deep linear network from exactly zero weights; BP cannot move",
    statement=(r"W(0) = 0:\ \dot W^{BP} \equiv 0,\quad "
               r"\frac{L^{DFA}(20) - L^*}{L(0) - L^*} \le 0.1"),
    reference="Nøkland, NeurIPS 2016 (DFA with zero initial weights)",
    hypotheses=("depth 2 to 4, all weights exactly zero, hidden widths >= n_L", "Gaussian DFA feedback",
                "any Σxx (non-whitened)",
                "BP: flow and loss change exactly zero; DFA: loss excess reduced to 10% by t = 20"),
    kind="empirical",
    fraction=0.9,
    tolerance=FRACTION_LEFT,
    tolerance_reason="BP's standstill is exact (compared with 0.0); DFA's progress is a finite-horizon claim: "
                     "at most 10% of the excess loss left at t = 20. At least 90% of instances: "
                     + POPULATION_REASON + "; measured 319 of 320 (8 instances at each of seeds 0-39; Clopper–Pearson "
                     "lower bound 0.97)",
    draw=_draw_zero,
    check_batch=_check_zero,
    fast_instances=13,
))
