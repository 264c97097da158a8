"""Per-instance stopping conditions for the generic integrator.

An :class:`Event` is a function ``g(t, y, args) -> (K,)`` that measures the
distance to a stopping region. With ``direction=-1`` (the default) an
instance stops at the first time ``g <= 0``; with ``+1`` at the first time
``g >= 0``; with ``0`` at the first sign change. The time is located on the
method's dense-output interpolant by a bracketing root finder, so it is
accurate to the interpolant, not to the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import real
from linfa.integrate.solution import Status

__all__ = ["Event", "first_root", "flow_below", "norm_above"]

EventFn = Callable[..., np.ndarray]
#: Iterations of :func:`first_root` at most.
ROOT_MAXITER = 100


@dataclass(frozen=True)
class Event:
    """A stopping condition, evaluated for every instance after every step.

    Parameters
    ----------
    fn : callable
        ``fn(t, y, args) -> ndarray (K,)`` with ``t`` of shape ``(K,)``,
        ``y`` the tuple of state leaves ``(K, *core)`` and ``args`` the
        tuple of arguments ``(K, ...)``. With ``flow=True`` it is called as
        ``fn(t, y, args, dy)`` with ``dy`` the vector field at ``(t, y)``.
    direction : {-1, 0, 1}
        ``-1``: stop when ``g`` falls to ``<= 0``; ``+1``: when it rises to
        ``>= 0``; ``0``: at any sign change. For ``±1`` an instance already
        in the stopping region at ``t0`` stops at ``t0``.
    status : Status
        Status given to an instance this event stops (``event`` or ``diverged``).
    flow : bool
        Whether ``fn`` needs the vector field.
    name : str
        For messages.
    """

    fn: EventFn
    direction: int = -1
    status: Status = Status.event
    flow: bool = False
    name: str = "event"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn: expected a callable g(t, y, args), got {type(self.fn).__name__}")
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction: expected -1, 0 or 1, got {self.direction!r}")
        if Status(self.status) not in (Status.event, Status.diverged):
            raise ValueError(f"status: expected Status.event or Status.diverged, got {self.status!r}")

    def __call__(self, t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...],
                 dy: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        if self.flow:
            g = np.asarray(self.fn(t, y, args, dy), dtype=np.float64)
        else:
            g = np.asarray(self.fn(t, y, args), dtype=np.float64)
        if g.shape != np.shape(t):
            raise ValueError(
                f"until ({self.name}): expected one value per instance, shape {np.shape(t)}, got shape {g.shape}; "
                "reduce a per-layer observable to one number first, e.g. "
                "when(lambda rule, task, state: update_angles(rule, task, state)[..., 0], 60)"
            )
        return g

    def orientation(self, g0: np.ndarray) -> np.ndarray:
        """The sign ``σ`` that makes ``σ g ≤ 0`` mean "stop", from the values ``g0`` at ``t0``.

        ``-direction`` for a one-sided event; for ``direction = 0``, ``-1`` where
        ``g0 < 0`` and ``+1`` elsewhere (any later sign change then stops).
        """
        if self.direction == 0:
            return np.where(np.asarray(g0) < 0, -1.0, 1.0)
        return np.full(np.shape(g0), float(-self.direction))


def _sq_norm(leaves: tuple[np.ndarray, ...]) -> np.ndarray:
    total: Any = 0.0
    for a in leaves:
        flat = a.reshape(a.shape[0], -1)
        total = total + np.einsum("ij,ij->i", flat, flat)
    return np.asarray(total)


def norm_above(bound: float) -> Event:
    """Divergence: stop with status ``diverged`` once ``‖y‖ >= bound``.

    ``‖y‖`` is the Euclidean norm of the whole state (all leaves).

    .. math:: g = \\text{bound} - \\lVert y \\rVert
    """
    bound = real("bound", bound, positive=True)

    def g(t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...]) -> np.ndarray:
        return bound - np.sqrt(_sq_norm(y))

    return Event(g, direction=-1, status=Status.diverged, name=f"norm_above({bound:g})")


def flow_below(tol: float) -> Event:
    """Steady state: stop once the vector field's norm ``‖f(t, y)‖ <= tol``.

    .. math:: g = \\lVert f(t, y) \\rVert - \\text{tol}
    """
    tol = real("tol", tol, positive=True)

    def g(t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...],
          dy: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.sqrt(_sq_norm(dy)) - tol

    return Event(g, direction=-1, flow=True, name=f"flow_below({tol:g})")


def first_root(g_at: Callable[[np.ndarray, np.ndarray], np.ndarray], g_lo: np.ndarray, g_hi: np.ndarray,
               tol: np.ndarray) -> np.ndarray:
    """The first ``θ`` in ``(0, 1]`` with ``g(θ) <= 0``, per row, by Illinois false position.

    Shared by every route that locates stopping conditions on a step's
    interpolant (the explicit engine's dense output, the stiff methods'
    Hermite cubic).

    Parameters
    ----------
    g_at : callable
        ``g_at(θ, open) -> g`` for all rows at once, ``θ`` and ``open`` of
        shape ``(n,)`` (``open``: the rows still searching; the others may be
        evaluated too but their values are ignored). ``g`` is oriented: ``g <= 0``
        means "stopped".
    g_lo, g_hi : ndarray, shape (n,)
        ``g`` at ``θ = 0`` (positive) and at ``θ = 1`` (``<= 0``).
    tol : ndarray, shape (n,)
        Bracket width, in ``θ``, at which to stop (at least ``1e-14``).

    Returns
    -------
    ndarray, shape (n,)
        The upper end of the final bracket (``g <= 0`` there).

    Notes
    -----
    The false-position point of the bracket ``[lo, hi]``,

    .. math:: θ = hi - g_{hi} \frac{hi - lo}{g_{hi} - g_{lo}},

    clipped to ``1e-3`` of the bracket's width from its ends; the end that
    stays twice in a row has its ``g`` halved (Illinois).
    """
    n = g_lo.size
    lo, hi = np.zeros(n), np.ones(n)
    glo, ghi = g_lo.copy(), g_hi.copy()
    side = np.zeros(n)
    for _ in range(ROOT_MAXITER):
        open_ = (hi - lo > np.maximum(tol, 1e-14)) & (ghi < 0)
        if not open_.any():
            break
        w = hi - lo
        denom = np.where(ghi != glo, ghi - glo, -1.0)
        th = hi - ghi * w / denom
        th = np.clip(th, lo + 1e-3 * w, hi - 1e-3 * w)
        th = np.where(np.isfinite(th), th, 0.5 * (lo + hi))
        g = g_at(th, open_)
        inside = (g <= 0) & open_
        outside = ~(g <= 0) & open_
        ghi = np.where(inside, g, np.where(outside & (side > 0), 0.5 * ghi, ghi))
        glo = np.where(outside, g, np.where(inside & (side < 0), 0.5 * glo, glo))
        hi = np.where(inside, th, hi)
        lo = np.where(outside, th, lo)
        side = np.where(inside, -1.0, np.where(outside, 1.0, side))
    return hi
