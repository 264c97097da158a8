"""The ``scipy:<METHOD>`` route: :mod:`scipy.integrate` solvers on the batch.

A reference and a route for stiff problems (``LSODA``, ``BDF``, ``Radau``;
also ``RK45``, ``RK23``, ``DOP853``). The implicit methods get the exact
Jacobian of ``vf`` (dual numbers, :func:`linfa.dual.jacobian`) instead of
building one by finite differences, when ``vf`` is written with the
operations :class:`linfa.dual.Dual` supports (every rule's flow is).

Two ways to run a batch of ``K`` instances with ``D`` state entries each:

* **one by one** — one scipy solver per instance, each with its own step
  control, with the same semantics as the batched engine for save points
  (scipy's dense output), stopping conditions (located with
  :func:`scipy.optimize.brentq` on the dense output), ``max_steps`` and
  statuses;
* **as one system** (``BDF`` and ``Radau`` only) — the ``K D`` entries of the
  whole batch as one ODE, whose Jacobian is block diagonal (one exact
  ``D x D`` block per instance) and is handed to scipy as a sparse matrix
  (``scipy.sparse.csc_array``; scipy then factors it with a sparse LU, whose
  fill stays inside the blocks). One flow evaluation serves the whole batch,
  which removes the per-instance Python overhead that dominates small states.
  All instances share the steps. So that each instance still meets its own
  tolerance, the system is solved with ``rtol / sqrt(K)`` and
  ``atol / sqrt(K)``: a scaled RMS error at most 1 over the ``K D`` entries
  then bounds each instance's own scaled RMS error by 1,

  .. math::

      \\frac{1}{KD} \\sum_{k, d} \\Bigl(\\frac{\\sqrt{K} e_{kd}}{s_{kd}}\\Bigr)^2 \\le 1
      \\;\\Rightarrow\\;
      \\frac{1}{D} \\sum_d \\Bigl(\\frac{e_{kd}}{s_{kd}}\\Bigr)^2 \\le 1 \\quad \\text{for every } k .

  Each instance's step count is the system's. When the joint solve fails
  (a non-finite state, a failed step, ``max_steps``) the batch is solved
  again one by one, so that each instance gets its own status.

The rule (:func:`joint_size`): as one system when the method is ``BDF`` or
``Radau`` and there are no stopping conditions, in groups of
``min(K, JOINT_ENTRIES // D²)`` instances (the group's Jacobian blocks hold
at most ``JOINT_ENTRIES`` numbers, which bounds memory and the extra steps a
shared step size costs); a group of one is the one-by-one route. Measured
(``benchmarks/bench_stiff.py --scipy-grid`` and W4 with ``--bdf``; FA with
ill-conditioned Σxx, ``BDF``, rtol 1e-6, on 2 loaded cores), one system
against one by one: 4.6x faster at K = 16, D = 18; 4.1x at K = 64, D = 36;
4.8x at K = 16, D = 210; 1.6x at K = 4, D = 800 (t ≤ 1e3); 0.8x at K = 4,
D = 120, the one slower case seen. scipy
does not report rejected steps: ``num_rejected`` is ``-1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from linfa import dual
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.solution import Status

__all__ = ["JOINT_ENTRIES", "SCIPY_METHODS", "block_diagonal", "joint_size", "run"]

SCIPY_METHODS = ("RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA")
#: The methods that use a Jacobian: given the exact one (:func:`linfa.dual.jacobian`) when ``vf`` allows.
IMPLICIT = ("Radau", "BDF", "LSODA")
#: The methods that take a sparse Jacobian, so can solve the batch as one block-diagonal system.
JOINT = ("Radau", "BDF")
#: Jacobian entries (``group size x D²``) of one jointly solved group at most (see the module docstring).
JOINT_ENTRIES = 2**22


def joint_size(p: Problem, name: str) -> int:
    """How many instances :func:`run` solves as one block-diagonal system (1: one by one); the module's rule."""
    if name not in JOINT or p.events or p.K < 2:
        return 1
    return max(1, min(p.K, JOINT_ENTRIES // p.layout.D**2))


def run(p: Problem, name: str, *, joint: int | None = None, exact_jacobian: bool = True) -> Raw:
    """Integrate every instance of ``p`` with ``scipy.integrate.<name>``.

    Parameters
    ----------
    p : Problem
    name : str
        One of :data:`SCIPY_METHODS`.
    joint : int, optional
        Solve the batch in groups of this many instances, each as one
        block-diagonal system (``BDF`` and ``Radau`` without stopping
        conditions); 1 is one instance at a time; default :func:`joint_size`.
    exact_jacobian : bool
        Give the implicit methods the exact Jacobian (dual numbers); ``False``
        leaves them scipy's finite differences (for comparisons).
    """
    import scipy.integrate as si

    if name not in SCIPY_METHODS:
        raise ValueError(
            f"method: expected 'scipy:' followed by one of {', '.join(SCIPY_METHODS)}, got 'scipy:{name}'"
        )
    if joint is None:
        joint = joint_size(p, name)
    elif joint > 1 and (name not in JOINT or p.events):
        raise ValueError(f"joint: the batch is solved as one system only by {' or '.join(JOINT)} without "
                         f"stopping conditions, got {name!r} with {len(p.events)} condition(s)")
    solver_cls = getattr(si, name)
    raw = Raw(p)
    args = p.make_args()
    with np.errstate(all="ignore"):
        for start in range(0, p.K, max(1, joint)):
            rows = np.arange(start, min(p.K, start + max(1, joint)))
            if rows.size > 1 and _joint(p, raw, rows, solver_cls, args.take(rows), exact_jacobian):
                continue
            for k in rows:
                _one(p, raw, int(k), solver_cls, args.take(np.array([k])), exact_jacobian)
    raw.n_rejected[:] = -1
    return raw


def block_diagonal(blocks: np.ndarray) -> Any:
    """The block-diagonal sparse matrix ``diag(B_1, ..., B_K)`` of ``blocks`` ``(K, D, D)``, as a ``csc_array``.

    Column ``j`` of block ``k`` holds the rows ``kD .. kD + D - 1``; every
    entry of every block is stored (the blocks are dense).
    """
    from scipy import sparse

    K, D, _ = blocks.shape
    indices = (np.arange(D)[None, None, :] + D * np.arange(K)[:, None, None]) * np.ones((1, D, 1), dtype=np.int64)
    indptr = np.arange(0, K * D * D + 1, D)
    data = np.ascontiguousarray(np.swapaxes(blocks, 1, 2)).reshape(-1)  # (K, D columns, D rows)
    return sparse.csc_array((data, indices.reshape(-1), indptr), shape=(K * D, K * D))


def _joint(p: Problem, raw: Raw, rows: np.ndarray, solver_cls: Any, args: tuple[Any, ...], exact: bool) -> bool:
    """Solve the instances ``rows`` as one system; False (and nothing recorded but calls) when it fails."""
    layout, K, D = p.layout, rows.size, p.layout.D
    ts, nsave = p.ts, len(p.ts)
    y0_rows = p.y0[rows]
    y0 = y0_rows.reshape(-1).copy()
    n0 = int(np.searchsorted(ts, p.t0, side="right"))
    save = np.full((K, nsave, D), np.nan)
    save[:, :n0] = y0_rows[:, None, :]
    calls = [0]

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        calls[0] += 1
        dy = p.vf(np.full(K, t), layout.views(y.reshape(K, D)), args)
        return layout.flatten(dy, K).reshape(-1)

    jac = _exact_jacobian(p, args, y0_rows, batched=True) if exact else None
    c = p.controller
    shrink = 1.0 / math.sqrt(K)
    extra: dict[str, Any] = {}
    if jac is not None:
        extra["jac"] = lambda t, y: block_diagonal(jac(t, y.reshape(K, D)))
    else:
        extra["jac_sparsity"] = block_diagonal(np.ones((K, D, D)))
    f0 = fun(p.t0, y0)
    if not np.all(np.isfinite(f0)):
        return False
    if p.t1 == p.t0:
        raw.save[rows] = save
        raw.finish(rows, Status.success, p.t0, y0_rows)
        return True
    solver = solver_cls(fun, p.t0, y0, p.t1, rtol=c.rtol * shrink, atol=c.atol * shrink, first_step=c.dt0,
                        **extra)
    nxt, steps = n0, 0
    while True:
        solver.step()
        steps += 1
        if solver.status == "failed" or not np.all(np.isfinite(solver.y)) or steps >= p.max_steps:
            if solver.status != "finished":
                raw.n_calls += calls[0]
                return False
        t_new, y_new = solver.t, solver.y
        dense = None
        while nxt < nsave and ts[nxt] <= t_new:
            if ts[nxt] == t_new:
                save[:, nxt] = y_new.reshape(K, D)
            else:
                if dense is None:
                    dense = solver.dense_output()
                save[:, nxt] = dense(ts[nxt]).reshape(K, D)
            nxt += 1
        if solver.status == "finished":
            break
    raw.save[rows] = save
    raw.n_accepted[rows] = steps
    raw.n_fev[rows] = calls[0]  # each call evaluates every instance once (finite differences included)
    raw.n_calls += calls[0]
    raw.finish(rows, Status.success, p.t1, solver.y.reshape(K, D))
    return True


def _one(p: Problem, raw: Raw, k: int, solver_cls: Any, args: tuple[Any, ...], exact: bool = True) -> None:
    from scipy.optimize import brentq

    layout = p.layout
    ts, nsave = p.ts, len(p.ts)
    nfev = [0]

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        nfev[0] += 1
        raw.n_calls += 1
        dy = p.vf(np.array([t]), layout.views(y[None, :]), args)
        return layout.flatten(dy, 1)[0]

    def gs(t: float, y: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(len(p.events))
        views = layout.views(y[None, :])
        for e, ev in enumerate(p.events):
            dy = None
            if ev.flow:
                dy = layout.views((fun(t, y) if f is None else f)[None, :])
            out[e] = ev(np.array([t]), views, args, dy)[0]
        return out

    def finish(status: Any, t: float, y: np.ndarray, event: int = -1) -> None:
        raw.n_fev[k] = nfev[0]
        raw.finish(np.array([k]), status, t, y[None, :], event)

    y0 = p.y0[k].copy()
    n0 = int(np.searchsorted(ts, p.t0, side="right"))
    raw.save[k, :n0] = y0
    f0 = fun(p.t0, y0)
    if not np.all(np.isfinite(f0)):
        finish(Status.non_finite, p.t0, y0)
        return
    sigma = np.ones(len(p.events))
    g_old = np.zeros(len(p.events))
    if p.events:
        g0 = gs(p.t0, y0, f0)
        sigma = np.array([ev.orientation(g) for ev, g in zip(p.events, g0, strict=True)])
        g_old = sigma * g0
        hit = np.flatnonzero(g_old <= 0)
        if hit.size:
            finish(p.events[hit[0]].status, p.t0, y0, int(hit[0]))
            return
    if p.t1 == p.t0:
        finish(Status.success, p.t0, y0)
        return
    c = p.controller
    extra = {"jac": _exact_jacobian(p, args, y0[None, :])} if exact and solver_cls.__name__ in IMPLICIT else {}
    solver = solver_cls(fun, p.t0, y0, p.t1, rtol=c.rtol, atol=c.atol, first_step=c.dt0, **extra)
    nxt, steps = n0, 0
    while True:
        t_old, y_old = solver.t, solver.y.copy()
        solver.step()
        steps += 1
        raw.n_accepted[k] = steps
        if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
            code = Status.non_finite if not np.all(np.isfinite(solver.y)) else Status.stalled
            finish(code, t_old, y_old)
            return
        t_new, y_new = solver.t, solver.y
        t_end, event = t_new, -1
        dense = None
        if p.events:
            g_new = sigma * gs(t_new, y_new)
            if np.any(g_new <= 0):
                dense = solver.dense_output()
                best = np.inf
                for e in np.flatnonzero(g_new <= 0):
                    if g_new[e] == 0:
                        root = t_new
                    else:
                        root = brentq(_scalar_event, t_old, t_new, args=(gs, dense, sigma[e], int(e)),
                                      xtol=4 * np.spacing(abs(t_new)), rtol=1e-15)
                    if root < best:
                        best, event = root, int(e)
                t_end = best
        while nxt < nsave and ts[nxt] <= t_end:
            if ts[nxt] == t_new:
                raw.save[k, nxt] = y_new
            else:
                if dense is None:
                    dense = solver.dense_output()
                raw.save[k, nxt] = dense(ts[nxt])
            nxt += 1
        if event >= 0:
            assert dense is not None
            y_ev = y_new if t_end == t_new else dense(t_end)
            finish(p.events[event].status, t_end, y_ev, event)
            return
        if solver.status == "finished":
            finish(Status.success, p.t1, y_new)
            return
        if steps >= p.max_steps:
            finish(Status.max_steps, t_new, y_new)
            return


def _exact_jacobian(p: Problem, args: tuple[Any, ...], y0: np.ndarray, *, batched: bool = False) -> Any:
    """The exact Jacobian of ``vf`` by dual numbers, or None (scipy's finite differences).

    ``batched=False``: ``jac(t, y)`` of one instance, ``y`` of shape ``(D,)``,
    returning ``(D, D)``. ``batched=True``: ``jac(t, y)`` of the instances of
    ``args``, ``y`` of shape ``(K, D)``, returning ``(K, D, D)``. ``y0``
    (shape ``(K, D)``) is a state to try it on. None when ``vf`` uses an
    operation :class:`linfa.dual.Dual` has no rule for.
    """
    layout = p.layout

    def jac_batch(t: float, y: np.ndarray) -> np.ndarray:
        def f(_: Any, leaves: tuple[Any, ...]) -> Any:
            return p.vf(np.full(len(y), t), leaves, args)

        return dual.jacobian(f, t, layout.views(y), batch_ndim=1)

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return jac_batch(t, y[None, :])[0]

    try:
        with np.errstate(all="ignore"):
            jac_batch(p.t0, y0)
    except (TypeError, ValueError):
        return None
    return jac_batch if batched else jac


def _scalar_event(t: float, gs: Any, dense: Any, sigma: float, e: int) -> float:
    return float(sigma * gs(t, dense(t))[e])
