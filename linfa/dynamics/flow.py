"""The front end :func:`solve`: integrate a learning rule's flow on a task with :func:`linfa.integrate.integrate`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from linfa._validate import observables
from linfa.dynamics.problem import observable, prepare, vector_field, warn_failures
from linfa.dynamics.until import Condition
from linfa.integrate import MAX_STEPS, AbstractRungeKutta, Event, Solution, StepSizeController, integrate
from linfa.observables import Observable
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["solve"]


def solve(
    rule: AbstractRule,
    task: Task,
    state0: Sequence[Any],
    t1: float,
    *,
    t0: float = 0.0,
    saveat: Any = None,
    observe: Mapping[str, Observable] | None = None,
    method: str | AbstractRungeKutta = "dopri5",
    stepsize: StepSizeController | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dt0: float | None = None,
    max_steps: int = MAX_STEPS,
    until: Event | Condition | Sequence[Event | Condition] | None = None,
    throw: bool = False,
    threads: int | None = None,
    kernel: str | None = None,
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
        ``(*batch, S, ...)``. See *Observables* below for what ``obs`` is
        given and must return.
    method : str or AbstractRungeKutta
        ``"dopri5"``, ``"tsit5"``, ``"dop853"``, ``"euler"`` (fixed step ``dt0``: one
        step is one step of full-batch learning with learning rate ``dt0``),
        the stiff methods ``"rodas4"``, ``"ros34pw2"`` and ``"bdf"`` (ill-conditioned
        Σxx, long horizons; ``"bdf"`` for large states), or ``"scipy:LSODA"`` /
        ``"scipy:BDF"`` / ``"scipy:Radau"`` / ``"scipy:RK45"`` / ``"scipy:DOP853"``; or a method object
        (:mod:`linfa.integrate.methods`).
    stepsize : StepSizeController, optional
        Tolerances and step-size rule (:class:`linfa.integrate.StepSizeController`).
    rtol, atol, dt0 : float, optional
        Shortcuts for ``stepsize=StepSizeController(rtol=..., atol=..., dt0=...)``
        (defaults ``1e-8``, ``1e-10``, chosen per instance); ``dt0`` is the
        first step (every step, for ``euler``).
    max_steps : int
        Steps (accepted and rejected) allowed per instance.
    until : Condition, Event or a sequence of them, optional
        Stopping conditions from :mod:`linfa.dynamics.until`:
        ``loss_below(threshold)``, ``steady_state(tol)``,
        ``diverged(bound)``, ``when(observable, threshold)``.
    throw : bool
        Raise :class:`~linfa.integrate.IntegrationError` on the first
        failing instance instead of recording its status.
    threads : int, optional
        Integrate the batch on this many threads (in contiguous chunks); the
        result stays bit-identical (the instances never interact). Default:
        chosen from the batch size and state size
        (:func:`linfa.integrate.schedule.plan`).
    kernel : {"compiled", "numpy"}, optional
        Force the compiled path (the flow traced once and integrated by one
        compiled loop per instance; explicit methods and ``bdf``) or the
        batched numpy route; by default chosen from the problem (see
        :func:`linfa.integrate.integrate`).

    Returns
    -------
    Solution
        ``states`` are the state leaves ``(*batch, S, n_l, n_{l-1})``. When
        some instances fail (``max_steps``, ``non_finite``, ...) a
        :class:`~linfa.dynamics.FailedInstancesWarning` says how many and why
        (once per call); their saved values after the failure are NaN.

    Raises
    ------
    TypeError, ValueError
        On bad arguments, naming the argument, what was expected and what was
        given; also when an observable returns something of the wrong shape.

    Notes
    -----
    **Observables.** An observable is called once per solve, after the integration, on all
    the saved states at once: ``obs(rule, task, state)`` where ``rule`` and
    ``task`` carry two leading batch axes ``(K, S)`` (``K`` instances, flat;
    ``S`` save times; a shared array has size-1 axes there) and each state
    leaf has shape ``(K, S, n_l, n_{l-1})``. It must return an array whose
    leading axes are ``(K, S)``: shape ``(K, S)`` for one number per state,
    ``(K, S, ...)`` for more (e.g. one per layer); ``observed[name]`` is that
    array reshaped to ``(*batch, S, ...)``. When some saved states are NaN
    (an instance stopped early) the observable is called on the finite ones
    only, flattened to one batch axis ``(N,)``, and must return ``(N, ...)``.
    Anything else (a scalar for the whole batch, ``None``, a wrongly shaped
    array) raises a ``ValueError``/``TypeError`` naming the observable.

    **The flow.** The flow of every rule is :math:`\\dot W_l = M_l E W_{<l}^T` with
    :math:`E = \\Sigma_{yx} - W\\Sigma_{xx}` (:mod:`linfa.rules`).

    Examples
    --------
    >>> import numpy as np, linfa
    >>> rng = np.random.default_rng(0)
    >>> task = linfa.Task.random_teacher(rng, 3, 2)
    >>> w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 1e-2, batch=(4,))
    >>> def product_norm(rule, task, state):  # state leaves (K, S, n_l, n_{l-1})
    ...     w1, w2 = state
    ...     return np.linalg.norm(w2 @ w1, axis=(-2, -1))  # one number per state: (K, S)
    >>> sol = linfa.solve(linfa.BP(), task, w0, 50.0, saveat=[0.0, 25.0, 50.0],
    ...                   observe={"loss": linfa.observables.loss, "norm": product_norm})
    >>> sol.observed["norm"].shape  # (*batch, S)
    (4, 3)
    >>> bool(np.all(sol.observed["loss"][:, -1] < 1e-8))
    True
    """
    y0, args, batch, unpack = prepare(rule, task, state0)
    obs = {name: observable(fn, unpack) for name, fn in observables(observe).items()}
    if until is None:
        items: list[Any] = []
    elif isinstance(until, Event | Condition):
        items = [until]
    elif isinstance(until, Sequence) and not isinstance(until, str):
        items = list(until)
    else:
        raise TypeError(
            f"until: expected a condition from linfa.dynamics.until or a list of them, got {type(until).__name__}"
        )
    events = []
    for i, c in enumerate(items):
        if isinstance(c, Condition):
            events.append(c.event(unpack))
        elif isinstance(c, Event):
            events.append(c)
        else:
            raise TypeError(
                f"until[{i}]: expected a condition from linfa.dynamics.until, got {type(c).__name__}"
            )
    sol = integrate(
        vector_field(unpack), y0, t1, t0=t0, args=args, batch_shape=batch, saveat=saveat, observe=obs,
        method=method, stepsize=stepsize, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps,
        until=events, throw=throw, threads=threads, kernel=kernel,
    )
    warn_failures(sol)
    return sol
