"""The ``scipy:<METHOD>`` route: one :mod:`scipy.integrate` solver per instance.

A reference and a route for stiff problems (``LSODA``, ``BDF``, ``Radau``;
also ``RK45``, ``RK23``, ``DOP853``). The implicit methods get the exact
Jacobian of ``vf`` (dual numbers, :func:`linfa.dual.jacobian`) instead of
building one by finite differences, when ``vf`` is written with the
operations :class:`linfa.dual.Dual` supports (every rule's flow is). The instances are integrated one after
another by scipy's own step control, with the same semantics as the batched
engine for save points (scipy's dense output), stopping conditions (located
with :func:`scipy.optimize.brentq` on the dense output), ``max_steps`` and
statuses. scipy does not report rejected steps: ``num_rejected`` is ``-1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa import dual
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.solution import Status

__all__ = ["SCIPY_METHODS", "run"]

SCIPY_METHODS = ("RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA")
#: The methods that use a Jacobian: given the exact one (:func:`linfa.dual.jacobian`) when ``vf`` allows.
IMPLICIT = ("Radau", "BDF", "LSODA")


def run(p: Problem, name: str) -> Raw:
    """Integrate every instance of ``p`` with ``scipy.integrate.<name>``."""
    import scipy.integrate as si

    if name not in SCIPY_METHODS:
        raise ValueError(
            f"method: expected 'scipy:' followed by one of {', '.join(SCIPY_METHODS)}, got 'scipy:{name}'"
        )
    solver_cls = getattr(si, name)
    raw = Raw(p)
    args = p.make_args()
    with np.errstate(all="ignore"):
        for k in range(p.K):
            _one(p, raw, k, solver_cls, args.take(np.array([k])))
    raw.n_rejected[:] = -1
    return raw


def _one(p: Problem, raw: Raw, k: int, solver_cls: Any, args: tuple[Any, ...]) -> None:
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
    extra = {"jac": _exact_jacobian(p, args, y0)} if solver_cls.__name__ in IMPLICIT else {}
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


def _exact_jacobian(p: Problem, args: tuple[Any, ...], y0: np.ndarray) -> Any:
    """``jac(t, y)``, the exact ``(D, D)`` Jacobian of one instance, or None (scipy's finite differences).

    None when ``vf`` uses an operation :class:`linfa.dual.Dual` has no rule for.
    """
    layout = p.layout

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        def f(_: Any, leaves: tuple[Any, ...]) -> Any:
            return p.vf(np.array([t]), leaves, args)

        return dual.jacobian(f, t, layout.views(y[None, :]), batch_ndim=1)[0]

    try:
        with np.errstate(all="ignore"):
            jac(p.t0, y0)
    except (TypeError, ValueError):
        return None
    return jac


def _scalar_event(t: float, gs: Any, dense: Any, sigma: float, e: int) -> float:
    return float(sigma * gs(t, dense(t))[e])
