"""The front end :func:`solve`: integrate a learning rule's flow on a task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from linfa._validate import observables
from linfa.integrate._events import Event
from linfa.integrate._integrate import integrate
from linfa.integrate._solution import Solution
from linfa.integrate.until import Condition
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["prepare", "solve"]

Observable = Callable[[AbstractRule, Task, tuple[np.ndarray, ...]], Any]


def prepare(
    rule: AbstractRule, task: Task, state0: Sequence[Any], *, name: str = "state0"
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[int, ...], Callable[..., Any]]:
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
    """
    if not isinstance(rule, AbstractRule):
        raise TypeError(f"rule: expected a linfa rule (BP, FA, ...), got {type(rule).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a linfa.Task, got {type(task).__name__}")
    rule.validate(task, tuple(state0) if isinstance(state0, list) else state0, name=name)  # type: ignore[arg-type]
    state = tuple(np.asarray(s, dtype=np.float64) for s in state0)
    rule_leaves, aux = rule.tree_flatten()
    for i, leaf in enumerate(rule_leaves):
        if not isinstance(leaf, np.ndarray) or leaf.dtype.kind != "f":
            raise TypeError(
                f"rule: leaf {i} must be a float array to integrate numerically, got {type(leaf).__name__}"
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


def solve(
    rule: AbstractRule,
    task: Task,
    state0: Sequence[Any],
    t1: float,
    *,
    t0: float = 0.0,
    saveat: Any = None,
    observe: Mapping[str, Observable] | None = None,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    dt0: float | None = None,
    max_steps: int = 100_000,
    until: Event | Condition | Sequence[Event | Condition] | None = None,
    throw: bool = False,
    threads: int = 1,
) -> Solution:
    """Integrate the learning dynamics ``d state/dt = rule.flow(task)(t, state)``.

    State, task and the rule's arrays (e.g. FA feedback) may each carry
    batch axes; they are broadcast to one batch shape and every instance is
    integrated with its own adaptive step size, exactly as if solved alone.

    Parameters
    ----------
    rule : AbstractRule
        :class:`~linfa.BP`, :class:`~linfa.FA`, :class:`~linfa.DFA`,
        :class:`~linfa.KolenPollack`, :class:`~linfa.SignSymmetry`.
    task : Task
        Population moments, shapes ``(*batch, n0, n0)``, ``(*batch, nL, n0)``,
        ``(*batch, nL, nL)``.
    state0 : tuple of ndarray
        Initial state ``(W_1, ..., W_L)`` (Kolen–Pollack: then ``B_2..B_L``),
        ``W_l`` of shape ``(*batch, n_l, n_{l-1})``.
    t1 : float
        Final time, ``t1 >= t0``.
    t0 : float
    saveat : array_like, shape (S,), optional
        Sorted times in ``[t0, t1]`` to record; default ``[t1]``.
    observe : dict of str to callable, optional
        ``name -> obs(rule, task, state)`` (e.g. from :mod:`linfa.observables`),
        evaluated at the save times only; ``observed[name]`` has shape
        ``(*batch, S, ...)``.
    method : str
        ``"dopri5"``, ``"tsit5"``, ``"dop853"``, ``"euler"`` (fixed step ``dt0``: one
        step is one step of full-batch learning with learning rate ``dt0``)
        or ``"scipy:LSODA"`` / ``"scipy:BDF"`` / ``"scipy:Radau"`` /
        ``"scipy:RK45"`` / ``"scipy:DOP853"``.
    rtol, atol : float
        Positive tolerances of each instance's error control.
    dt0 : float, optional
        First step (the step, for ``euler``).
    max_steps : int
        Steps (accepted and rejected) allowed per instance.
    until : Condition, Event or a sequence of them, optional
        Stopping conditions from :mod:`linfa.integrate.until`:
        ``loss_below(threshold)``, ``steady_state(tol)``,
        ``diverged(bound)``, ``when(observable, threshold)``.
    throw : bool
        Raise :class:`~linfa.integrate.IntegrationError` on the first
        failing instance instead of recording its status.
    threads : int
        Integrate the batch in this many shards, one thread each; on a
        machine with several cores this divides the wall time while the
        result stays bit-identical (the instances never interact).

    Returns
    -------
    Solution
        ``states`` are the state leaves ``(*batch, S, n_l, n_{l-1})``.

    Raises
    ------
    TypeError, ValueError
        On bad arguments, naming the argument, what was expected and what was given.

    Notes
    -----
    The flow of every rule is :math:`\\dot W_l = M_l E W_{<l}^T` with
    :math:`E = \\Sigma_{yx} - W\\Sigma_{xx}` (:mod:`linfa.rules`).

    Examples
    --------
    >>> import numpy as np, linfa
    >>> from linfa.integrate import solve
    >>> rng = np.random.default_rng(0)
    >>> task = linfa.Task.random_teacher(rng, 3, 2)
    >>> w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 1e-2)
    >>> sol = solve(linfa.BP(), task, w0, 50.0, observe={"loss": linfa.observables.loss})
    >>> bool(sol.observed["loss"][-1] < 1e-8)
    True
    """
    y0, args, batch, unpack = prepare(rule, task, state0)

    def vf(t: np.ndarray, y: tuple[np.ndarray, ...], a: tuple[Any, ...]) -> Any:
        r, tk = unpack(a)
        return r.flow(tk)(t, y)

    obs = {name: _wrap_observable(fn, unpack) for name, fn in observables(observe).items()}
    if until is None:
        items: list[Any] = []
    elif isinstance(until, Event | Condition):
        items = [until]
    elif isinstance(until, list | tuple):
        items = list(until)
    else:
        raise TypeError("until: expected a condition from linfa.integrate.until (or a list of them), "
                        f"got {type(until).__name__}")
    events = []
    for i, c in enumerate(items):
        if isinstance(c, Condition):
            events.append(c.event(unpack))
        elif isinstance(c, Event):
            events.append(c)
        else:
            raise TypeError(
                f"until[{i}]: expected a condition from linfa.integrate.until, got {type(c).__name__}"
            )
    return integrate(
        vf, y0, t1, t0=t0, args=args, batch_shape=batch, saveat=saveat, observe=obs,
        method=method, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps, until=events,
        throw=throw, threads=threads,
    )


def _wrap_observable(fn: Observable, unpack: Callable[[tuple[Any, ...]], tuple[Any, Any]]) -> Callable[..., Any]:
    def obs(t: np.ndarray, y: tuple[np.ndarray, ...], a: tuple[Any, ...]) -> Any:
        r, tk = unpack(a)
        return fn(r, tk, y)

    return obs
