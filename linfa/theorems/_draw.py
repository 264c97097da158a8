"""Drawing batched learning-dynamics instances for the catalogue (seeded numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa import feedback as fb
from linfa.instances import Instance
from linfa.networks import DeepLinear
from linfa.random_matrices import spd_with_condition
from linfa.tasks import Task

__all__ = ["dfa_feedback", "fa_feedback", "gaussian_teacher_network", "integers", "linear_instance", "network",
           "random_sxx", "rule_feedback", "teacher_task"]


def integers(rng: np.random.Generator, lo: int, hi: int, n: int | None = None) -> Any:
    """Uniform integers in ``[lo, hi]`` (one, or ``n`` of them as a tuple)."""
    if n is None:
        return int(rng.integers(lo, hi + 1))
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=n))


def random_sxx(rng: np.random.Generator, n: int, size: int, *, max_condition: float = 10.0) -> np.ndarray:
    """Random SPD input moments ``(size, n, n)``, trace ``n``, condition number in ``[1, max_condition]``."""
    cond = float(rng.uniform(1.0, max_condition))
    return spd_with_condition(rng, n, cond, batch=(size,))


def teacher_task(
    rng: np.random.Generator, n_in: int, n_out: int, size: int, *, whitened: bool = False, noise: float = 0.0
) -> Task:
    """A batch of linear-teacher tasks; non-whitened input unless ``whitened``."""
    sxx = None if whitened else random_sxx(rng, n_in, size)
    return Task.random_teacher(rng, n_in, n_out, sxx=sxx, noise=noise, batch=(size,))


def gaussian_teacher_network(
    rng: np.random.Generator, size: int, *, max_depth: int, noise: float = 0.0
) -> tuple[tuple[int, ...], Task, tuple[np.ndarray, ...]]:
    """A random deep linear problem ``(widths, task, weights)``, batched over ``size``.

    Depth in ``2..max_depth``, widths in ``1..5``, a non-whitened teacher task
    (output noise ``noise``) and Gaussian weights of scale 0.5, drawn in that order.
    """
    depth = integers(rng, 2, max_depth)
    widths = integers(rng, 1, 5, depth + 1)
    task = teacher_task(rng, widths[0], widths[-1], size, noise=noise)
    weights = network(widths).gaussian(rng, 0.5, batch=(size,))
    return widths, task, weights


def linear_instance(
    task: Task,
    weights: Sequence[np.ndarray],
    *,
    rule: str,
    feedback: Sequence[np.ndarray] = (),
    size: int,
    **params: Any,
) -> Instance:
    """Pack a batched learning-dynamics instance (:meth:`linfa.Instance.learning`)."""
    return Instance.learning(task, weights, rule=rule, feedback=feedback, size=size, **params)


def network(widths: Sequence[int]) -> DeepLinear:
    """Shorthand for :class:`~linfa.DeepLinear`."""
    return DeepLinear(tuple(widths))


def rule_feedback(rng: np.random.Generator, rule: str, widths: Sequence[int], size: int, kind: str = "gaussian",
                  scale: float | None = None) -> tuple[np.ndarray, ...]:
    """The feedback of ``rule``'s declared layout (:func:`linfa.feedback.for_rule`) batched over ``size``."""
    return fb.for_rule(rule, widths, rng, kind=kind, scale=scale, batch=(size,))


def fa_feedback(rng: np.random.Generator, widths: Sequence[int], size: int, kind: str = "gaussian",
                scale: float | None = None) -> tuple[np.ndarray, ...]:
    """FA feedback ``(B_2, ..., B_L)`` batched over ``size``."""
    return fb.fa(widths, rng, kind=kind, scale=scale, batch=(size,))


def dfa_feedback(rng: np.random.Generator, widths: Sequence[int], size: int, kind: str = "gaussian",
                 scale: float | None = None) -> tuple[np.ndarray, ...]:
    """DFA feedback ``(B_1, ..., B_{L-1})`` batched over ``size``."""
    return fb.dfa(widths, rng, kind=kind, scale=scale, batch=(size,))
