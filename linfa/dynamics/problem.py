"""A ``(rule, task, state)`` problem in the form of the generic integrator, and what the front end reports.

:func:`prepare` packs a learning problem into the state, arguments and batch
shape of :func:`linfa.integrate.integrate`; :func:`vector_field` and
:func:`observable` turn a rule's flow and an observable ``obs(rule, task,
state)`` into functions of ``(t, y, args)``. :func:`solve` and :func:`sgd`
both go through them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linfa.integrate import Solution, Status
from linfa.integrate.solution import describe
from linfa.observables import Observable
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["FailedInstancesWarning", "Unpack", "observable", "prepare", "vector_field", "warn_failures"]

Unpack = Callable[[tuple[Any, ...]], tuple[AbstractRule, Task]]


class FailedInstancesWarning(UserWarning):
    """Some instances of a batched :func:`linfa.solve` or :func:`linfa.sgd` failed (their observables are NaN)."""


def prepare(
    rule: AbstractRule, task: Task, state0: Sequence[Any], *, name: str = "state0"
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[int, ...], Unpack]:
    """Validate and pack a ``(rule, task, state)`` problem for :func:`linfa.integrate.integrate`.

    Returns
    -------
    y0 : tuple of ndarray
        The state broadcast to the common batch shape, each ``(*batch, n, m)``.
    args : tuple of ndarray
        ``(sxx, syx, syy, *rule leaves)``, each with ``len(batch)`` leading axes.
    batch : tuple of int
        The broadcast batch shape of state, task and rule.
    unpack : callable
        ``unpack(args) -> (rule, task)``, rebuilding both without validation.

    Raises
    ------
    TypeError
        A rule or task of the wrong type, complex entries (naming the argument).
    ValueError
        A state that does not fit the task and rule, or a zero-size weight matrix.
    """
    if not isinstance(rule, AbstractRule):
        raise TypeError(f"rule: expected a linfa rule (BP, FA, ...), got {type(rule).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a linfa.Task, got {type(task).__name__}")
    if isinstance(state0, tuple | list):
        for i, s in enumerate(state0):
            if np.iscomplexobj(s):
                raise TypeError(f"{name}[{i}]: expected real numbers, got complex dtype {np.asarray(s).dtype}")
    for label, m in zip(("sxx", "syx", "syy"), task.tree_flatten(), strict=True):
        if np.iscomplexobj(m):
            raise TypeError(f"task: expected real moments, got complex {label} ({np.asarray(m).dtype})")
    rule.validate(task, tuple(state0) if isinstance(state0, list) else state0, name=name)  # type: ignore[arg-type]
    state = tuple(np.asarray(s, dtype=np.float64) for s in state0)
    for i, s in enumerate(state):
        if 0 in s.shape[-2:]:
            raise ValueError(
                f"{name}[{i}]: expected a matrix with at least one entry, got shape {s.shape} "
                "(a layer of width 0 has nothing to learn)"
            )
    rule_leaves, aux = rule.tree_flatten()
    for i, leaf in enumerate(rule_leaves):
        if not isinstance(leaf, np.ndarray) or leaf.dtype.kind != "f":
            raise TypeError(
                f"rule: leaf {i} must be a float array to integrate numerically, got "
                f"{type(leaf).__name__}{'' if not isinstance(leaf, np.ndarray) else f' of dtype {leaf.dtype}'}"
            )
    leaves = (*task.tree_flatten(), *rule_leaves)
    batch = tuple(np.broadcast_shapes(*(a.shape[:-2] for a in (*state, *leaves))))
    nb = len(batch)
    y0 = tuple(np.broadcast_to(s, (*batch, *s.shape[-2:])) for s in state)
    args = tuple(np.reshape(a, (1,) * (nb + 2 - a.ndim) + a.shape) for a in leaves)
    rule_cls = type(rule)
    whitened = task.whitened  # invariant under slicing the batch

    def unpack(a: tuple[Any, ...]) -> tuple[AbstractRule, Task]:
        return rule_cls.tree_unflatten(aux, a[3:]), Task.tree_unflatten(a[:3], whitened=whitened)

    return y0, args, batch, unpack


def vector_field(unpack: Unpack) -> Callable[..., Any]:
    """The rule's flow as ``vf(t, y, args)`` of the generic integrator."""

    def vf(t: np.ndarray, y: tuple[np.ndarray, ...], a: tuple[Any, ...]) -> Any:
        r, tk = unpack(a)
        return r.flow(tk)(t, y)

    return vf


def observable(fn: Observable, unpack: Unpack) -> Callable[..., Any]:
    """An observable ``fn(rule, task, state)`` as ``obs(t, y, args)`` of the generic integrator."""

    def obs(t: np.ndarray, y: tuple[np.ndarray, ...], a: tuple[Any, ...]) -> Any:
        r, tk = unpack(a)
        return fn(r, tk, y)

    obs.__name__ = getattr(fn, "__name__", "observable")
    return obs


def warn_failures(sol: Solution, *, stacklevel: int = 3) -> None:
    """Warn once when some instances of ``sol`` failed: how many, with which status, and what to try."""
    status = sol.status.ravel()
    stiff = np.broadcast_to(np.asarray(sol.stats.get("stiff", False), dtype=bool), sol.status.shape).ravel()
    failed = [st for st in map(Status, np.unique(status).tolist()) if st.failed]
    if not failed:
        return
    counts = {st: int(np.sum(status == st)) for st in failed}
    how = ", ".join(f"{n} {st.name}" for st, n in counts.items())
    bound = sol.stats.get("max_norm")
    max_norm = None if bound is None else float(bound)
    advice = " ".join(
        f"{st.name}: {describe(st, bool(np.any(stiff[status == st])), max_norm=max_norm)}" for st in failed
    )
    warnings.warn(
        f"{sum(counts.values())} of {status.size} instance(s) failed ({how}); their saved values after "
        f"the failure are NaN (see Solution.status and Solution.message). {advice}",
        FailedInstancesWarning,
        stacklevel=stacklevel,
    )
