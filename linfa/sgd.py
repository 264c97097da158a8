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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from linfa._validate import as_generator, count, observables, real
from linfa.integrate._solution import IntegrationError, Solution, Status
from linfa.integrate.solve import prepare
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["sgd"]

Observable = Callable[[AbstractRule, Task, tuple[np.ndarray, ...]], Any]

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
        and rule broadcast to one batch shape.
    lr : float
        Learning rate ``η > 0``; step ``k`` is at time ``t = η k``.
    steps : int
        Number of steps.
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
        ``name -> obs(rule, task, state)`` on the population task.
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

    Examples
    --------
    >>> import numpy as np, linfa
    >>> from linfa.sgd import sgd
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
    K = math.prod(batch)
    flat_args = tuple(np.broadcast_to(a, (*batch, *a.shape[len(batch):])).reshape(K, *a.shape[len(batch):])
                      for a in args)
    rule_k, task_k = unpack(flat_args)
    state = [np.array(s).reshape(K, *s.shape[len(batch):]) for s in y0]
    n0, nL = task.n_in, task.n_out
    root = task_k.joint_root()  # (K, d, d)
    children = rng.spawn(K)

    obs_steps = sorted({*range(0, steps + 1, every), steps})
    S = len(obs_steps)
    saved = [np.full((K, S, *s.shape[1:]), np.nan) for s in state]
    status = np.zeros(K, dtype=np.int64)
    alive = np.ones(K, dtype=bool)
    t_final = np.full(K, steps * lr)
    n_steps = np.full(K, steps, dtype=np.int64)
    final = [s.copy() for s in state]

    def record(j: int) -> None:
        for buf, s in zip(saved, state, strict=True):
            buf[alive, j] = s[alive]

    record(0)
    j_obs = 1
    draws: np.ndarray | None = None
    with np.errstate(all="ignore"):
        for k in range(steps):
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
                status[rows] = codes
                t_final[rows] = k * lr
                n_steps[rows] = k
                for f, s in zip(final, state, strict=True):
                    f[rows] = s[rows]
                alive &= ~bad
                if throw:
                    r = int(rows[0])
                    idx = tuple(int(i) for i in np.unravel_index(r, batch)) if batch else ()
                    raise IntegrationError(Status(int(codes[0])), idx, k * lr)
            for s, ns in zip(state, new, strict=True):
                s[alive] = ns[alive]
            if j_obs < S and obs_steps[j_obs] == k + 1:
                record(j_obs)
                j_obs += 1
    for f, s in zip(final, state, strict=True):
        f[alive] = s[alive]

    ts = lr * np.array(obs_steps, dtype=np.float64)
    observed = {}
    for name, fn in obs.items():
        v = _observe(fn, unpack, flat_args, saved, K, S)
        observed[name] = v.reshape(*batch, *v.shape[1:])
    states = tuple(buf.reshape(*batch, S, *buf.shape[2:]) for buf in saved)
    return Solution(
        ts=ts,
        states=states,
        observed=observed,
        status=status.reshape(batch),
        t_final=t_final.reshape(batch),
        state_final=tuple(f.reshape(*batch, *f.shape[1:]) for f in final),
        event=np.full(batch, -1, dtype=np.int64),
        stats={"num_steps": n_steps.reshape(batch), "num_flow_evals": n_steps.reshape(batch)},
        method="sgd",
    )


def _observe(fn: Observable, unpack: Callable[[tuple[Any, ...]], tuple[AbstractRule, Task]],
             flat_args: tuple[np.ndarray, ...], saved: list[np.ndarray], K: int, S: int) -> np.ndarray:
    """``fn`` at every saved state (batch ``(K, S)``), NaN where the state is NaN."""
    valid = np.ones((K, S), dtype=bool)
    for buf in saved:
        valid &= np.isfinite(buf.reshape(K, S, -1)).all(axis=-1)
    kk, jj = np.nonzero(valid)
    sub_rule, sub_task = unpack(tuple(a[kk] for a in flat_args))
    vals = np.asarray(fn(sub_rule, sub_task, tuple(buf[kk, jj] for buf in saved)), dtype=np.float64)
    out = np.full((K, S, *vals.shape[1:]), np.nan)
    out[kk, jj] = vals
    return out


