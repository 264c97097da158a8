"""Discrete-time online learning with sampled data: what the flow is the limit of.

Each step draws a fresh minibatch of ``(x, y)`` from the zero-mean Gaussian
with the task's second moments, forms its empirical moments
``Σ̂xx = X^T X / b``, ``Σ̂yx = Y^T X / b``, ``Σ̂yy = Y^T Y / b``, and moves
the state along the rule's flow on those moments:

.. math::

    \\theta_{k+1} = \\theta_k + \\eta\\, f_{\\text{rule}}(\\hat\\Sigma^{(k)}; \\theta_k).

As ``η → 0`` with ``t = η k`` fixed this converges to the flow of
:func:`linfa.solve` (the minibatch noise contributes ``O(\\sqrt{η / b})``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from linfa._validate import as_generator, count, observables, real
from linfa.dynamics.problem import observable, prepare, vector_field, warn_failures
from linfa.integrate import Solution, Status, StepSizeController
from linfa.integrate.problem import Problem, Raw
from linfa.observables import Observable
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["sgd"]

_CHUNK = 64  # steps of samples drawn at once per instance


def sgd(
    rule: AbstractRule,
    task: Task,
    state0: Sequence[Any],
    *,
    lr: float,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
    noise: float = 0.0,
    observe: Mapping[str, Observable] | None = None,
    every: int = 1,
    max_norm: float = 1e8,
    throw: bool = False,
) -> Solution:
    """Run ``steps`` steps of online minibatch learning with ``rule``.

    Parameters
    ----------
    rule : AbstractRule
    task : Task
        Population moments; samples are drawn from the Gaussian with
        covariance ``[[Σxx, Σyx^T], [Σyx, Σyy]]``.
    state0 : tuple of ndarray
        Initial state, as for :func:`linfa.solve`; batch axes of state, task
        and rule broadcast to one batch shape, which may be empty (then the
        result has empty arrays of the right shapes, as from :func:`linfa.solve`).
    lr : float
        Learning rate ``η > 0``; step ``k`` is at time ``t = η k``.
    steps : int
        Number of steps; ``0`` returns the initial state (and its
        observations) at ``t = 0``.
    batch_size : int
        Samples per step ``b``.
    rng : numpy.random.Generator
        The only source of randomness. Instance ``k`` (flat index) draws from
        the ``k``-th child of ``rng.spawn``, so an instance's trajectory does
        not depend on the batch it is in.
    noise : float
        Extra label noise: ``y ← y + noise · ξ`` with ``ξ ~ N(0, I)`` (on top
        of any noise already in ``Σyy``).
    observe : dict of str to callable, optional
        ``name -> obs(rule, task, state)`` on the population task, with the
        calling convention of :func:`linfa.solve`.
    every : int
        Observation interval in steps; step 0 and the last step are always observed.
    max_norm : float
        An instance whose state norm exceeds this (or turns non-finite)
        stops with status ``diverged`` (``non_finite``); its later
        observations are NaN.
    throw : bool
        Raise :class:`~linfa.integrate.IntegrationError` instead.

    Returns
    -------
    Solution
        ``ts = η · (observed steps)``; ``stats["num_steps"]`` per instance.
        Built like :func:`linfa.solve`'s (:class:`linfa.integrate.problem.Raw`),
        with the same observable checks and the same warning when some
        instances fail.

    Examples
    --------
    >>> import numpy as np, linfa
    >>> from linfa.dynamics import sgd
    >>> rng = np.random.default_rng(0)
    >>> task = linfa.Task.random_teacher(rng, 3, 2)
    >>> w0 = linfa.DeepLinear((3, 4, 2)).gaussian(rng, 0.1)
    >>> sol = sgd(linfa.BP(), task, w0, lr=0.05, steps=400, batch_size=16, rng=rng,
    ...           observe={"loss": linfa.observables.loss}, every=100)
    >>> sol.observed["loss"].shape
    (5,)
    """
    lr = real("lr", lr, positive=True)
    steps = count("steps", steps, minimum=0)
    batch_size = count("batch_size", batch_size, minimum=1)
    every = count("every", every, minimum=1)
    rng = as_generator("rng", rng)
    noise = real("noise", noise, minimum=0.0)
    max_norm = real("max_norm", max_norm, positive=True, finite=False)
    obs = observables(observe)

    y0, args, batch, unpack = prepare(rule, task, state0)
    obs_steps = sorted({*range(0, steps + 1, every), steps})
    ts = lr * np.array(obs_steps, dtype=np.float64)
    # the same problem as solve's (the population flow), recorded at the observed steps
    problem = Problem.build(
        vector_field(unpack), y0, lr * steps, t0=0.0, args=args, batch_shape=batch, saveat=ts,
        observe={name: observable(fn, unpack) for name, fn in obs.items()},
        controller=StepSizeController(dt0=lr), max_steps=max(steps, 1), until=None, throw=throw,
    )
    raw = Raw(problem)
    raw.max_norm = max_norm  # a diverged instance passed this bound (there is no `until`)
    layout = problem.layout
    K = math.prod(batch)
    flat_args = tuple(np.broadcast_to(a, (*batch, *a.shape[len(batch):])).reshape(K, *a.shape[len(batch):])
                      for a in args)
    rule_k, task_k = unpack(flat_args)
    state = [np.array(s).reshape(K, *s.shape[len(batch):]) for s in y0]
    n0, nL = task.n_in, task.n_out
    root = task_k.joint_root()  # (K, d, d)
    children = rng.spawn(K)

    S = len(obs_steps)
    alive = np.ones(K, dtype=bool)

    def record(j: int) -> None:
        raw.save[alive, j] = layout.flatten(state, K)[alive]

    record(0)
    j_obs = 1
    draws: np.ndarray | None = None
    n_run = steps if K else 0  # an empty batch has nothing to step (as in solve)
    with np.errstate(all="ignore"):
        for k in range(n_run):
            c = k % _CHUNK
            if c == 0:
                n = min(_CHUNK, steps - k)
                width = n0 + nL + (nL if noise else 0)
                draws = np.stack(
                    [g.standard_normal((n, batch_size, width)) for g in children]
                )  # (K, n, b, n0 + nL [+ nL])
            assert draws is not None
            z = draws[:, c, :, : n0 + nL] @ np.swapaxes(root, -1, -2)  # (K, b, n0 + nL)
            x, yv = z[..., :n0], z[..., n0:]
            if noise:
                yv = yv + noise * draws[:, c, :, n0 + nL :]
            xt = np.swapaxes(x, -1, -2)
            mb = Task.tree_unflatten(
                (xt @ x / batch_size, np.swapaxes(yv, -1, -2) @ x / batch_size,
                 np.swapaxes(yv, -1, -2) @ yv / batch_size)
            )
            d = rule_k.flow(mb)(k * lr, tuple(state))
            new = [s + lr * ds for s, ds in zip(state, d, strict=True)]
            sq = sum(np.einsum("kij,kij->k", s, s) for s in new)
            finite = np.isfinite(sq)
            bad = alive & ~(finite & (np.sqrt(np.where(finite, sq, 0.0)) <= max_norm))
            if bad.any():
                rows = np.flatnonzero(bad)
                codes = np.where(finite[rows], int(Status.diverged), int(Status.non_finite))
                raw.n_accepted[rows] = raw.n_fev[rows] = k
                raw.finish(rows, codes, k * lr, layout.flatten([s[rows] for s in state], rows.size))
                alive &= ~bad
            for s, ns in zip(state, new, strict=True):
                s[alive] = ns[alive]
            if j_obs < S and obs_steps[j_obs] == k + 1:
                record(j_obs)
                j_obs += 1
    rows = np.flatnonzero(alive)
    raw.n_accepted[rows] = raw.n_fev[rows] = steps
    raw.finish(rows, Status.success, steps * lr, layout.flatten([s[rows] for s in state], rows.size))
    raw.n_calls = n_run
    sol = raw.solution("sgd")
    warn_failures(sol)
    return sol
