"""Stopping conditions for :func:`linfa.solve` (``until=...``).

Each instance of a batch stops at the first time its condition is met; the
time is located on the integrator's interpolant (see
:class:`linfa.integrate.Event`). Conditions on the learning state are written
with an observable ``obs(rule, task, state) -> (*batch,)``:

>>> from linfa.dynamics import until
>>> conditions = [until.loss_below(1e-6), until.diverged(1e3), until.steady_state(1e-9)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import real
from linfa.integrate import Event, Status, flow_below, norm_above
from linfa.observables import Observable, loss

__all__ = ["Condition", "diverged", "loss_below", "steady_state", "when"]


@dataclass(frozen=True)
class Condition:
    """A stopping condition on ``(rule, task, state)``.

    Parameters
    ----------
    fn : callable
        ``fn(rule, task, state) -> ndarray (*batch,)``; the instance stops
        when it falls to ``<= 0`` (``direction=-1``), rises to ``>= 0``
        (``+1``) or changes sign (``0``).
    direction : {-1, 0, 1}
    status : Status
        ``Status.event`` or ``Status.diverged``.
    name : str
    """

    fn: Observable
    direction: int = -1
    status: Status = Status.event
    name: str = "condition"

    def event(self, unpack: Callable[[tuple[Any, ...]], tuple[Any, Any]]) -> Event:
        """The generic :class:`Event`, given how to rebuild ``(rule, task)`` from ``args``."""
        fn = self.fn

        def g(t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...]) -> np.ndarray:
            rule, task = unpack(args)
            return np.asarray(fn(rule, task, y), dtype=np.float64)

        return Event(g, direction=self.direction, status=self.status, name=self.name)


def when(observable: Observable, threshold: float, *, direction: int = -1,
         status: Status = Status.event) -> Condition:
    """Stop when ``observable`` crosses ``threshold``.

    Parameters
    ----------
    observable : callable
        ``obs(rule, task, state) -> (*batch,)`` (e.g. :func:`linfa.observables.loss`).
    threshold : float
    direction : {-1, 0, 1}
        ``-1``: stop once ``obs <= threshold``; ``+1``: once ``obs >= threshold``;
        ``0``: at the first crossing.
    status : Status
    """
    if not callable(observable):
        raise TypeError(f"observable: expected a callable, got {type(observable).__name__}")
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction: expected -1, 0 or 1, got {direction!r}")
    thr = real("threshold", threshold)  # finite: a NaN threshold would never be crossed
    try:
        status = Status(status)
    except ValueError:
        raise ValueError(f"status: expected a linfa.Status, got {status!r}") from None
    name = getattr(observable, "__name__", "observable")

    def g(rule: Any, task: Any, state: tuple[np.ndarray, ...]) -> Any:
        return np.asarray(observable(rule, task, state)) - thr

    return Condition(g, direction=direction, status=status, name=f"when({name}, {thr:g})")


def loss_below(threshold: float) -> Condition:
    """Stop once the loss ``L <= threshold`` (:func:`linfa.observables.loss`)."""
    thr = real("threshold", threshold, positive=True)
    c = when(loss, thr, direction=-1)
    return Condition(c.fn, direction=-1, name=f"loss_below({thr:g})")


def steady_state(tol: float) -> Event:
    """Stop once the flow is small: ``‖dstate/dt‖ <= tol`` (Euclidean norm of all leaves)."""
    return flow_below(tol)


def diverged(bound: float) -> Event:
    """Stop with status ``diverged`` once the state's Euclidean norm reaches ``bound``."""
    return norm_above(bound)
