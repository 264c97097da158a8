"""Shared numerics of the catalogue checks: batched integration and bound verdicts.

The matrix helpers ``t``, ``sym`` and ``fro`` are :func:`linfa.linalg.transpose`,
:func:`linfa.linalg.sym` and :func:`linfa.linalg.frobenius` under the short names the checks use.
"""

from __future__ import annotations

from collections.abc import Mapping
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

__all__ = ["ATOL", "RTOL", "bound", "fro", "saveat", "solve", "sym", "t", "trajectory"]

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
