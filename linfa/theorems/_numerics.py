"""Shared numerics of the catalogue checks: batched integration and bound verdicts.

The matrix helpers ``t``, ``sym`` and ``fro`` are :func:`linfa.linalg.transpose`,
:func:`linfa.linalg.sym` and :func:`linfa.linalg.frobenius` under the short names the checks use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from linfa.linalg import frobenius as fro
from linfa.linalg import sym
from linfa.linalg import transpose as t
from linfa.observables import Observable
from linfa.rules import AbstractRule
from linfa.tasks import Task
from linfa.theorems._core import Verdict

if TYPE_CHECKING:
    from linfa.instances import Instance
    from linfa.integrate import Solution

__all__ = [
    "ATOL",
    "RTOL",
    "bound",
    "fro",
    "saveat",
    "solve",
    "sym",
    "t",
    "tightened",
    "tighter_reexamine",
    "trajectory",
]

#: Integrator tolerances of every catalogue trajectory (``dopri5``).
RTOL = 1e-9
ATOL = 1e-11


def saveat(inst: Instance, *, skip_zero: bool = False) -> tuple[float, np.ndarray]:
    """``(t1, ts)``: the instance's ``t1`` and ``n_save + 1`` equally spaced times on ``[0, t1]``.

    With ``skip_zero`` the first time (``0``) is left out.
    """
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    n = int(inst.params["n_save"])  # type: ignore[arg-type]
    ts = np.linspace(0.0, t1, n + 1)
    return t1, (ts[1:] if skip_zero else ts)


def trajectory(
    rule: AbstractRule,
    task: Task,
    state0: tuple[np.ndarray, ...],
    t1: float,
    *,
    saveat: np.ndarray,
    observe: Mapping[str, Observable],
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Integrate a batch with :func:`linfa.solve` and return ``(ts, observed, ok)``.

    ``observed[name]`` has shape ``(K, S, ...)``; ``ok`` (shape ``(K,)``) is
    false for instances whose integration failed (their values are NaN).
    """
    sol = solve(rule, task, state0, t1, saveat=np.asarray(saveat, dtype=float), observe=dict(observe))
    ok = sol.ok
    return np.asarray(sol.ts), dict(sol.observed), ok


def solve(
    rule: AbstractRule,
    task: Task,
    state0: tuple[np.ndarray, ...],
    t1: float,
    *,
    saveat: np.ndarray | None = None,
    observe: Mapping[str, Observable] | None = None,
    until: Any = None,
) -> Solution:
    """:func:`linfa.solve` at the catalogue's tolerances (:data:`RTOL`, :data:`ATOL`)."""
    from linfa.dynamics import solve as _solve

    return _solve(rule, task, state0, t1, saveat=saveat, observe=observe, rtol=RTOL, atol=ATOL, until=until)


def bound(err: np.ndarray, tol: float, valid: np.ndarray, details: Mapping[str, Any]) -> Verdict:
    """Verdict of the bound ``err <= tol`` with margin ``tol - err``.

    Instances that are not ``valid`` (failed integration, failed validity
    checks) and those whose ``err`` is NaN do not hold and get margin ``-1``.
    """
    margin = np.where(valid, tol - err, -1.0)
    return Verdict(margin >= 0, np.nan_to_num(margin, nan=-1.0), dict(details))


@contextlib.contextmanager
def tightened(factor: float = 1e-3) -> Iterator[None]:
    """Within the block, :func:`solve` integrates at ``factor`` times the catalogue's tolerances.

    ``RTOL`` and ``ATOL`` become ``max(RTOL·factor, 1e-13)`` and ``max(ATOL·factor, 1e-15)``.
    """
    global RTOL, ATOL
    old = RTOL, ATOL
    RTOL, ATOL = max(old[0] * factor, 1e-13), max(old[1] * factor, 1e-15)
    try:
        yield
    finally:
        RTOL, ATOL = old


def tighter_reexamine(check: Callable[[Instance], Verdict], tol: float) -> Callable[[Instance], Verdict]:
    """A :attr:`Theorem.reexamine` for a bound ``err <= tol`` whose error is integration error.

    The failing instances are checked again with the integrator's tolerances 1000 times tighter
    (:func:`tightened`): an instance that now holds holds; one whose error ``tol − margin`` fell at
    least tenfold (so it is the integration's, not the claim's) is inconclusive; one whose error did
    not move is a counterexample.
    """

    def reexamine(inst: Instance) -> Verdict:
        first = check(inst)
        with tightened():
            second = check(inst)
        err0, err1 = tol - first.margin, tol - second.margin
        shrinks = second.margin > -1.0  # valid instances (invalid ones get margin −1)
        undecided = ~second.holds & shrinks & (err1 <= 0.1 * err0)
        return Verdict(second.holds, second.margin, second.details, undecided,
                       "the error shrinks with the integrator's tolerance (integration error, not the claim's): "
                       "undecided at rtol 1e-12")

    return reexamine
