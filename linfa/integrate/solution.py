"""What an integration returns: :class:`Solution`, :class:`Status`, :class:`IntegrationError`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["STIFF_HINT", "IntegrationError", "Solution", "Status", "describe"]


class Status(enum.IntEnum):
    """How one instance's integration ended.

    ``success`` and ``event`` are normal endings; the others are failures, and
    with ``throw=True`` the first of them raises :class:`IntegrationError`.
    Each member's :attr:`message` is the sentence a person reads.
    """

    success = 0
    event = 1
    max_steps = 2
    diverged = 3
    non_finite = 4
    stalled = 5

    @property
    def message(self) -> str:
        """What happened and what to try."""
        return _MESSAGES[self]

    @property
    def failed(self) -> bool:
        """True for the endings that are failures (not ``success`` nor ``event``)."""
        return self not in (Status.success, Status.event)


_MESSAGES = {
    Status.success: "The integration reached t1.",
    Status.event: "A stopping condition (`until`) was met; the event time is in `t_final`.",
    Status.max_steps: (
        "The maximum number of solver steps was reached. Try increasing `max_steps`; if the state "
        "grows without bound, stop it at a finite bound with `until=diverged(bound)`."
    ),
    Status.diverged: (
        "The state diverged: a divergence condition in `until` was met (its norm passed the "
        "bound). Later saved values are NaN; check the learning rate, the feedback or the task."
    ),
    Status.non_finite: (
        "The state or its flow became non-finite (NaN or inf) and shrinking the step did not "
        "help. Later saved values are NaN. If the dynamics blow up, stop them at a finite "
        "bound with `until=diverged(bound)`."
    ),
    Status.stalled: (
        "The step size became smaller than the spacing of floating-point times; the problem "
        "may be stiff or blow up in finite time. Try a `scipy:` method such as 'scipy:LSODA' "
        "or looser tolerances."
    ),
}

#: Added to the ``max_steps`` message of an instance whose steps sat at the stability limit.
STIFF_HINT = (
    "Its steps sat at the stability limit of the explicit method: the problem is probably stiff. "
    "Use a stiff method: method='bdf' (batched variable-order BDF, exact Jacobian and LU kept across "
    "steps; fewest steps and factorisations, large states), method='rodas4' (batched, exact Jacobian; "
    "small states), method='ros34pw2' (reuses its Jacobian and LU across steps) or "
    "an implicit scipy method, e.g. 'scipy:LSODA' (or 'scipy:Radau', 'scipy:BDF')."
)


def describe(status: Status, stiff: bool = False, *, max_norm: float | None = None) -> str:
    """The message of one instance's ending: :attr:`Status.message`, plus the stiffness hint.

    ``max_norm``: the run stops a state whose norm passes this bound itself (as
    :func:`linfa.sgd` does) rather than through a condition in ``until``; a
    ``diverged`` ending then says so.
    """
    status = Status(status)
    if stiff and status == Status.max_steps:
        return f"{status.message} {STIFF_HINT}"
    if max_norm is not None and status == Status.diverged:
        return (f"The state diverged: its norm passed `max_norm` = {max_norm:g}. Later saved values are NaN; "
                "check the learning rate, the feedback or the task.")
    return status.message


class IntegrationError(RuntimeError):
    """Raised with ``throw=True`` when an instance ends with a failing :class:`Status`."""

    def __init__(self, status: Status, index: tuple[int, ...], t: float, *, stiff: bool = False,
                 max_norm: float | None = None) -> None:
        self.status = status
        self.index = index
        self.t = t
        where = f"instance {index}" if index else "the integration"
        super().__init__(f"{where} stopped at t = {t:.6g} with status {status.name}: "
                         f"{describe(status, stiff, max_norm=max_norm)}")


@dataclass(frozen=True, eq=False)
class Solution:
    """The result of :func:`linfa.integrate.integrate`, :func:`linfa.solve` or :func:`linfa.sgd`.

    ``batch`` below is the batch shape of the problem and ``S = len(ts)``.
    An instance that stops early (an event or a failure) has NaN in every
    saved entry after its stopping time; its ``status`` says why.

    Attributes
    ----------
    ts : ndarray, shape (S,)
        The save times.
    states : tuple of ndarray
        The state at each save time, each leaf of shape ``(*batch, S, *core)``.
    observed : dict of str to ndarray
        Each observable at each save time, shape ``(*batch, S, ...)``.
    status : ndarray of int, shape batch
        :class:`Status` code of each instance.
    t_final : ndarray, shape batch
        Where each instance stopped: ``t1``, the event time, or the time of failure.
    state_final : tuple of ndarray
        The state at ``t_final``, each leaf ``(*batch, *core)``.
    event : ndarray of int, shape batch
        Index into ``until`` of the condition that stopped each instance, ``-1`` if none.
    stats : dict of str to ndarray
        Per instance (shape ``batch``): ``num_steps`` (accepted + rejected),
        ``num_accepted``, ``num_rejected`` (``-1`` where the method does not
        report it) and ``num_flow_evals``; plus ``num_vf_calls`` (a scalar:
        batched calls of the vector field) and ``stiff`` (boolean per
        instance: it ended at ``max_steps`` with its steps at the explicit
        method's stability limit, see :data:`STIFF_HINT`); the explicit
        Runge–Kutta methods and ``bdf`` add ``kernel`` (``"compiled"`` or ``"numpy"``: the
        route that ran, see :func:`linfa.integrate.integrate`); :func:`linfa.sgd` adds
        ``max_norm`` (a float: the norm bound at which it stops an instance as ``diverged``).
    method : str
        The method used.
    """

    ts: np.ndarray
    states: tuple[np.ndarray, ...]
    observed: dict[str, np.ndarray]
    status: np.ndarray
    t_final: np.ndarray
    state_final: tuple[np.ndarray, ...]
    event: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    method: str = ""

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The batch shape of the problem."""
        return tuple(self.status.shape)

    @property
    def ok(self) -> np.ndarray:
        """Boolean, shape ``batch``: the instance ended by success or by an event."""
        return (self.status == Status.success) | (self.status == Status.event)

    @property
    def t_event(self) -> np.ndarray:
        """Event times, shape ``batch``; NaN where no condition stopped the instance."""
        return np.where(self.event >= 0, self.t_final, np.nan)

    @property
    def messages(self) -> np.ndarray:
        """The :attr:`Status.message` of each instance, an object array of shape ``batch``."""
        out = np.empty(self.status.shape, dtype=object)
        stiff = self._stiff
        for idx in np.ndindex(self.status.shape):
            out[idx] = describe(Status(int(self.status[idx])), bool(stiff[idx]), max_norm=self._max_norm)
        return out

    @property
    def _max_norm(self) -> float | None:
        bound = self.stats.get("max_norm")
        return None if bound is None else float(bound)

    @property
    def _stiff(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.stats.get("stiff", False), dtype=bool), self.status.shape)

    @property
    def message(self) -> str:
        """A one-paragraph summary: how many instances ended how, and what to do."""
        keys = [(int(s), bool(f)) for s, f in zip(self.status.ravel(), self._stiff.ravel(), strict=True)]
        n = self.status.size
        groups = sorted(set(keys))
        if n == 1:
            return describe(Status(groups[0][0]), groups[0][1], max_norm=self._max_norm)
        parts = [
            f"{keys.count(g)} of {n} instance(s): {Status(g[0]).name} — "
            f"{describe(Status(g[0]), g[1], max_norm=self._max_norm)}"
            for g in groups
        ]
        return "\n".join(parts)

    def raise_for_status(self) -> Solution:
        """Raise :class:`IntegrationError` for the first failing instance; else return self."""
        stiff = self._stiff
        for idx in np.ndindex(self.status.shape):
            status = Status(int(self.status[idx]))
            if status.failed:
                raise IntegrationError(status, idx, float(self.t_final[idx]), stiff=bool(stiff[idx]),
                                       max_norm=self._max_norm)
        return self

    def __repr__(self) -> str:
        codes, counts = np.unique(self.status, return_counts=True)
        summary = ", ".join(f"{Status(int(s)).name}={c}" for s, c in zip(codes, counts, strict=True))
        leaves = ", ".join(str(tuple(s.shape)) for s in self.states)
        return (
            f"Solution(method={self.method!r}, batch={self.batch_shape}, ts[{len(self.ts)}], "
            f"states=[{leaves}], observed={sorted(self.observed)}, status: {summary})"
        )
