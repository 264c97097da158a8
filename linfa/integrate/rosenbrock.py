"""A batched stiff method: Rosenbrock methods with the exact Jacobian of the flow.

One step of an ``s``-stage Rosenbrock method in the transformed form of
Hairer & Wanner (Solving ODEs II, §IV.7), for ``y' = f(t, y)`` with Jacobian
``J = ∂f/∂y`` at the step's start:

.. math::

    \\Bigl(\\tfrac{1}{hγ} I - J\\Bigr) u_i
        = f\\Bigl(y + \\sum_{j<i} a_{ij} u_j\\Bigr) + \\sum_{j<i} \\frac{c_{ij}}{h} u_j ,
    \\qquad
    y_{new} = y + \\sum_i m_i u_i , \\qquad \\text{err} = \\sum_i e_i u_i .

The linear systems share one matrix per instance: it is factored once per step
(batched dense LU, one per instance) and each stage is a pair of triangular
solves. ``J`` is the exact Jacobian of the one flow definition, from
dual-number Jacobian–vector products (:func:`linfa.dual.jacobian`): the vector
field must be written, in ``y``, with the operations :class:`linfa.dual.Dual`
supports (every rule's flow is). A field that depends on ``t`` gets the
stage times ``t + α_i h`` and the term ``γ_i h ∂f/∂t`` (``∂f/∂t`` by a dual
``t``, or a central difference when ``t`` enters through another operation).

Step control is per instance and the same as for the explicit methods (the
problem's :class:`~linfa.integrate.StepSizeController`): the scaled RMS error
``‖err / (atol + rtol max(|y|, |y_new|))‖`` decides acceptance and the next
step is ``h · safety · err^{-1/(q+1)}`` within the controller's factors, with
``q`` the order of the embedded estimate. Steps are shortened to land on save points exactly (no
dense output), so saving many points costs steps.

Stopping conditions (``until``) are checked after every accepted step and
located (:func:`~linfa.integrate.events.first_root`) on the step's cubic
Hermite interpolant (:func:`hermite`) through ``y, f(t, y)`` and
``y_new, f(t + h, y_new)``; the flow at ``y_new`` is then carried into the
next step as its first stage (:class:`StepEvents`).

The tableau is data (:class:`Rodas4`); its classical coefficients
``(α_ij, γ_ij, b_i)`` follow from the transformed ones by
``Γ^{-1} = I/γ - C``, ``A = a Γ``, ``b = m Γ``, and are checked against the
Rosenbrock order conditions in the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import numpy as np

from linfa import dual
from linfa.integrate.controller import rms
from linfa.integrate.events import Event, first_root
from linfa.integrate.linsolve import InstanceLU, instance_lu
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.solution import Status

__all__ = ["ROSENBROCK_METHODS", "AbstractRosenbrock", "Rodas4", "StepEvents", "as_rosenbrock", "hermite", "run"]


class AbstractRosenbrock:
    """A Rosenbrock method in transformed form (see the module docstring).

    Attributes
    ----------
    a, c : ndarray, shape (s, s)
        Strictly lower triangular ``a_ij`` and ``c_ij``.
    m, e : ndarray, shape (s,)
        Solution and error weights.
    gamma : float
        The diagonal ``γ``.
    order, error_order : int
        Orders of ``y_new`` and of the embedded solution ``y_new - err``.
    """

    name: ClassVar[str]
    a: ClassVar[np.ndarray]
    c: ClassVar[np.ndarray]
    m: ClassVar[np.ndarray]
    e: ClassVar[np.ndarray]
    gamma: ClassVar[float]
    order: ClassVar[int]
    error_order: ClassVar[int]

    @classmethod
    def classical(cls) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(α, Γ, b)`` of the classical form ``(I - hγ_ii J) k_i = h f(y + Σ α_ij k_j) + h J Σ γ_ij k_j``.

        Returns
        -------
        alpha : ndarray, shape (s, s)
            Strictly lower triangular ``α_ij``.
        Gamma : ndarray, shape (s, s)
            Lower triangular ``γ_ij`` with ``γ_ii = γ``.
        b : ndarray, shape (s,)
        """
        s = len(cls.m)
        gamma_inv = np.eye(s) / cls.gamma - cls.c
        big_gamma = np.linalg.inv(gamma_inv)
        return cls.a @ big_gamma, big_gamma, cls.m @ big_gamma

    @classmethod
    def embedded_weights(cls) -> np.ndarray:
        """Classical weights ``b̂ = (m - e) Γ`` of the embedded solution ``y_new - err``."""
        _, big_gamma, _ = cls.classical()
        return (cls.m - cls.e) @ big_gamma


def _lower(rows: list[list[float]]) -> np.ndarray:
    s = len(rows) + 1
    out = np.zeros((s, s))
    for i, row in enumerate(rows, start=1):
        out[i, : len(row)] = row
    return out


class Rodas4(AbstractRosenbrock):
    """RODAS: Hairer & Wanner's 6-stage Rosenbrock method of order 4(3), L-stable and stiffly accurate.

    ``γ = 1/4``; the last two stages evaluate at the solution itself, so
    ``y_new`` is the argument of stage 6 plus ``u_6`` and the error estimate
    is ``u_6``. Coefficients of Hairer & Wanner's code ``rodas.f`` (Solving
    ODEs II, 2nd ed., §IV.7), in its transformed form.
    """

    name = "rodas4"
    gamma = 0.25
    order = 4
    error_order = 3
    _a5: ClassVar[list[float]] = [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950]
    a = _lower([
        [1.544],
        [0.9466785280815826, 0.2557011698983284],
        [3.314825187068521, 2.896124015972201, 0.9986419139977817],
        _a5,
        [*_a5, 1.0],
    ])
    c = _lower([
        [-5.6688],
        [-2.430093356833875, -0.2063599157091915],
        [-0.1073529058151375, -9.594562251023355, -20.47028614809616],
        [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160],
        [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054],
    ])
    m = np.array([*_a5, 1.0, 1.0])
    e = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])


ROSENBROCK_METHODS: dict[str, type[AbstractRosenbrock]] = {"rodas4": Rodas4}


def as_rosenbrock(method: Any) -> type[AbstractRosenbrock] | None:
    """The Rosenbrock method ``method`` names or is (a name, class or instance); None for any other method."""
    if isinstance(method, str):
        return ROSENBROCK_METHODS.get(method)
    if isinstance(method, type) and issubclass(method, AbstractRosenbrock):
        return method
    if isinstance(method, AbstractRosenbrock):
        return type(method)
    return None


def run(p: Problem, method: type[AbstractRosenbrock], threads: int | None = None) -> Raw:
    """Integrate every instance of ``p`` with the Rosenbrock ``method``, batched.

    ``threads``: for the per-instance linear algebra
    (:func:`~linfa.integrate.linsolve.instance_lu`; default: one per core).
    """
    raw = Raw(p)
    layout, K = p.layout, p.K
    ts = p.ts
    c = p.controller
    args_all = p.make_args()
    y = p.y0.copy()
    t = np.full(K, p.t0)
    nxt = np.full(K, int(np.searchsorted(ts, p.t0, side="right")))
    raw.save[:, : int(nxt[0] if K else 0)] = y[:, None, :]
    active = np.arange(K)

    def vf(rows: np.ndarray, tt: np.ndarray, yy: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        raw.n_calls += 1
        raw.n_fev[rows] += 1
        return layout.flatten(p.vf(tt, layout.views(yy), args), len(rows))

    if K == 0:
        return raw
    with np.errstate(all="ignore"), instance_lu(K, layout.D, threads) as lu:
        args = args_all.take(active)
        events, active, h, rejected, _ = start(p, raw, vf, method.error_order, active, t, y, args)
        while active.size:
            args = args_all.take(active)
            ya, ta = y[active], t[active]
            hit, hs, target = step_to_target(ts, nxt[active], p.t1, ta, h)
            jac = dual.jacobian(_at(p, ta, args), 0.0, layout.views(ya), batch_ndim=1)
            raw.n_calls += 1
            ft = _time_derivative(p, ta, ya, args)
            raw.n_calls += 1
            y_new, err = step(method, lambda dt, yy, rows=active, args=args, ta=ta: vf(rows, ta + dt, yy, args),
                              ya, jac, hs, ft, f0=events.flow(active), lu=lu)
            errn, finite = error_norm(c, ya, y_new, err)
            acc, _, fac = c.factor(errn, rejected, method.error_order)
            h_new = hs * fac
            met = events.check(active, acc, np.where(hit, target, ta + hs), ta, ya, y_new, args)
            keep = advance(raw, p.t1, p.max_steps, ts, nxt, y, t, active, acc, hit, target, ta, hs, h_new,
                           y_new, finite, errn, met)
            active, h, rejected = active[keep], h_new[keep], ~acc[keep]
    return raw


class StepEvents:
    """The stopping conditions of a stiff loop (one step at a time).

    Per instance ``k`` (flat index) it keeps the orientation ``σ`` and the
    oriented value ``σ g`` at the instance's current time, and, when there
    are conditions, the flow ``f(t, y)`` there (the next step's first stage).
    After each step, the conditions are evaluated at the accepted instances'
    new states, and for those with ``σ g <= 0`` the first root on the step is
    located by :func:`~linfa.integrate.events.first_root` on an interpolant:
    the method's own when :meth:`check` is given one (``dense``, as BDF's
    polynomial), else the cubic Hermite interpolant (:func:`hermite`), which
    needs the flow at ``y_new`` (evaluated once, batched, and carried into
    the next step as its first stage).

    With no conditions every method is a no-op (``flow`` returns None: the
    step evaluates its first stage itself).
    """

    def __init__(self, p: Problem, raw: Raw, f0: np.ndarray, vf: Any) -> None:
        self.p, self.raw = p, raw
        self.events: tuple[Event, ...] = p.events
        self.n = len(p.events)
        self.vf = vf
        K = p.K
        self.sigma = np.ones((self.n, K))
        self.g_old = np.zeros((self.n, K))
        self.reads_flow = any(ev.flow for ev in self.events)
        self.f = f0.copy() if self.n else None

    def flow(self, rows: np.ndarray) -> np.ndarray | None:
        """``f(t, y)`` of the instances ``rows`` at their current state (None without conditions)."""
        return None if self.f is None else self.f[rows]

    def _values(self, t: np.ndarray, y: np.ndarray, args: tuple[Any, ...], f: np.ndarray | None) -> np.ndarray:
        layout = self.p.layout
        views = layout.views(y)
        dy = layout.views(f) if self.reads_flow and f is not None else None
        out = np.empty((self.n, len(t)))
        for e, ev in enumerate(self.events):
            out[e] = ev(t, views, args, dy)
        return out

    def start(self, raw: Raw, rows: np.ndarray, t: np.ndarray, y: np.ndarray, args: tuple[Any, ...],
              skip: np.ndarray) -> np.ndarray:
        """Orient the conditions at ``t0``; finish the instances already in a stopping region.

        Returns the mask (over ``rows``) of the instances finished here.
        """
        stopped = np.zeros(rows.size, dtype=bool)
        if not self.n:
            return stopped
        assert self.f is not None
        g0 = self._values(t[rows], y[rows], args, self.f[rows])
        for e, ev in enumerate(self.events):
            self.sigma[e, rows] = ev.orientation(g0[e])
        self.g_old[:, rows] = self.sigma[:, rows] * g0
        for e in range(self.n):
            hit = ~skip & ~stopped & (self.g_old[e, rows] <= 0)
            if hit.any():
                raw.finish(rows[hit], self.events[e].status, t[rows[hit]], y[rows[hit]], e)
                stopped |= hit
        return stopped

    def check(self, rows: np.ndarray, acc: np.ndarray, t_new: np.ndarray, ta: np.ndarray, ya: np.ndarray,
              y_new: np.ndarray, args: tuple[Any, ...],
              dense: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> tuple[Any, ...] | None:
        """After a step of the instances ``rows``: the accepted ones that met a condition on it.

        Parameters
        ----------
        rows : ndarray of int, shape (Ka,)
            Flat instance numbers of the step's instances.
        acc : ndarray of bool, shape (Ka,)
        t_new, ta : ndarray, shape (Ka,)
            The step's end and start.
        ya, y_new : ndarray, shape (Ka, D)
        args : tuple
            The arguments of ``rows``.
        dense : callable, optional
            The step's interpolant: ``dense(i, θ) -> y`` at ``ta[i] + θ (t_new[i] - ta[i])``
            for positions ``i`` (shape ``(n,)``, into ``rows``) and ``θ`` (shape ``(n,)``),
            returning ``(n, D)``. Default: the Hermite cubic; with ``dense`` the flow at
            ``y_new`` is evaluated only for conditions that read it, and not carried.

        Returns
        -------
        None, or ``(mask, t_event, y_event, which)``
            ``mask`` over ``rows``; for the masked rows the event's time,
            state ``(n, D)`` and index.
        """
        if not self.n or not acc.any():
            return None
        assert self.f is not None
        sel = np.flatnonzero(acc)
        r = rows[sel]
        sub = tuple(a[sel] for a in args)
        h = t_new[sel] - ta[sel]
        f_new = None
        if dense is None or self.reads_flow:
            f_new = self.vf(r, t_new[sel], y_new[sel], sub)
        g_new = self.sigma[:, r] * self._values(t_new[sel], y_new[sel], sub, f_new)
        met = (g_new <= 0).any(axis=0)
        theta = np.full(sel.size, np.inf)
        which = np.full(sel.size, -1, dtype=np.int64)
        if dense is None:
            assert f_new is not None
            f_old, y0s, y1s, f1 = self.f[r], ya[sel], y_new[sel], f_new

            def interp(on: np.ndarray, th: np.ndarray) -> np.ndarray:
                return hermite(y0s[on], f_old[on], y1s[on], f1[on], h[on], th)

            self.f[r] = f_new
        else:
            def interp(on: np.ndarray, th: np.ndarray) -> np.ndarray:
                return dense(sel[on], th)

        for e in range(self.n):
            on = np.flatnonzero(g_new[e] <= 0)
            if not on.size:
                continue
            th = self._root(e, r[on], ta[sel][on], h[on], partial(interp, on), tuple(a[on] for a in sub),
                            g_new[e, on])
            better = th < theta[on]
            theta[on[better]] = th[better]
            which[on[better]] = e
        self.g_old[:, r] = g_new
        if not met.any():
            return None
        m = np.flatnonzero(met)
        th, hm = theta[m], h[m]
        y_ev = interp(m, th)
        at_end = th >= 1.0
        y_ev[at_end] = y_new[sel][m][at_end]
        t_ev = np.where(at_end, t_new[sel][m], ta[sel][m] + th * hm)
        mask = np.zeros(rows.size, dtype=bool)
        mask[sel[m]] = True
        return mask, t_ev, y_ev, which[m]

    def _root(self, e: int, r: np.ndarray, t0: np.ndarray, h: np.ndarray,
              interp: Callable[[np.ndarray], np.ndarray], sub: tuple[Any, ...], g_hi: np.ndarray) -> np.ndarray:
        ev, layout, sig = self.events[e], self.p.layout, self.sigma[e, r]

        def g_at(th: np.ndarray, open_: np.ndarray) -> np.ndarray:
            yv = interp(th)
            tv = t0 + th * h
            views = layout.views(yv)
            dy = None
            if ev.flow:
                raw = self.raw
                raw.n_calls += 1
                raw.n_fev[r[open_]] += 1  # only the rows still searching (independent of the batch)
                dy = layout.views(layout.flatten(self.p.vf(tv, views, sub), len(r)))
            return sig * ev(tv, views, sub, dy)

        tol = 4 * np.spacing(np.abs(t0) + h) / h
        return first_root(g_at, self.g_old[e, r], g_hi, tol)


def hermite(y0: np.ndarray, f0: np.ndarray, y1: np.ndarray, f1: np.ndarray, h: np.ndarray,
            theta: np.ndarray) -> np.ndarray:
    """The cubic Hermite interpolant of a step, at ``t0 + θ h``.

    Parameters
    ----------
    y0, f0, y1, f1 : ndarray, shape (n, D)
        State and flow at the step's start and end.
    h, theta : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n, D)

    Notes
    -----
    .. math::

        y(θ) = (1 - θ) y_0 + θ y_1
            + θ (θ - 1) \bigl[(1 - 2θ)(y_1 - y_0) + (θ - 1) h f_0 + θ h f_1\bigr] ,

    which matches ``y`` and ``h f`` at both ends; its error is ``O(h⁴)``.
    """
    th = theta[:, None]
    hh = h[:, None]
    dy = y1 - y0
    return y0 + th * dy + th * (th - 1) * ((1 - 2 * th) * dy + (th - 1) * hh * f0 + th * hh * f1)


def start(p: Problem, raw: Raw, vf: Any, error_order: int, active: np.ndarray, t: np.ndarray, y: np.ndarray,
          args: tuple[Any, ...]) -> tuple[StepEvents, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first flow evaluation, stop conditions at ``t0`` and the first step size (the stiff loops).

    Instances stopped at ``t0``, or whose flow or first step is not finite, are finished in ``raw``;
    when ``t1 == t0`` every instance is. Returns the event tracker and the still active instances with
    their step sizes, rejection flags and flows at ``t0`` (``(Ka, D)``).
    """
    ctl = p.controller
    K = len(active)
    f0 = vf(active, t, y, args)
    bad = ~np.all(np.isfinite(f0), axis=1)
    events = StepEvents(p, raw, f0, vf)
    stopped = events.start(raw, active, t, y, args, skip=bad)
    none = np.zeros(0, dtype=active.dtype)
    if p.t1 == p.t0:
        raw.finish(active[~stopped], Status.success, p.t0, y[~stopped])
        return events, none, np.zeros(0), np.zeros(0, dtype=bool), np.zeros((0, f0.shape[1]))
    if ctl.dt0 is None:
        h, overflow = ctl.initial_step(lambda tt, yy: vf(active, tt, yy, args), t, y, f0, p.t1 - p.t0, error_order)
        bad |= overflow
    else:
        h = np.full(K, float(ctl.dt0))
    rejected = np.zeros(K, dtype=bool)
    bad &= ~stopped
    if bad.any():
        raw.finish(active[bad], Status.non_finite, p.t0, y[bad])
    keep = ~bad & ~stopped
    return events, active[keep], h[keep], rejected[keep], f0[keep]


def step_to_target(ts: np.ndarray, nxt: np.ndarray, t1: float, ta: np.ndarray,
                   h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shorten steps to land exactly on the next save point (or ``t1``): ``(hit, step, target)``, each ``(K,)``."""
    target = np.where(nxt < len(ts), ts[np.minimum(nxt, len(ts) - 1)], t1)
    target = np.minimum(target, t1)
    hit = ta + h >= target
    return hit, np.where(hit, target - ta, h), target


def error_norm(ctl: Any, ya: np.ndarray, y_new: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per instance, the RMS of ``err / (atol + rtol max(|y|, |y_new|))`` and whether ``y_new`` is finite.

    The norm is NaN where ``y_new`` is not finite.
    """
    scale = ctl.atol + ctl.rtol * np.maximum(np.abs(ya), np.abs(y_new))
    errn = rms(err / scale)
    finite = np.all(np.isfinite(y_new), axis=1)
    return np.where(finite, errn, np.nan), finite


def advance(raw: Any, t1: float, max_steps: int, ts: np.ndarray, nxt: np.ndarray, y: np.ndarray, t: np.ndarray,
            active: np.ndarray, acc: np.ndarray, hit: np.ndarray, target: np.ndarray, ta: np.ndarray,
            hs: np.ndarray, h_new: np.ndarray, y_new: np.ndarray, finite: np.ndarray, errn: np.ndarray,
            stopped: tuple[Any, ...] | None = None) -> np.ndarray:
    """Take the accepted steps of the ``active`` rows, save the points they reached, finish the rows that are done.

    Shared by the Rosenbrock and Rosenbrock-W loops; returns the mask (over
    ``active``) of the rows that go on. ``stopped`` is what
    :meth:`StepEvents.check` returned: the rows that met a stopping condition
    on this step end there (at the event's time and state, with its status),
    and record a save point at the step's end only if the event is at the end.
    """
    rows = active[acc]
    t_end = np.where(hit, target, ta + hs)
    t_acc = t_end[acc]
    y[rows] = y_new[acc]
    t[rows] = t_acc
    raw.n_accepted[rows] += 1
    raw.n_rejected[active[~acc]] += 1
    ev = np.zeros(active.size, dtype=bool)
    early = np.zeros(active.size, dtype=bool)  # an event before the step's end: no save point there
    if stopped is not None:
        ev, t_ev, y_ev, which = stopped
        early[ev] = t_ev < t_end[ev]
    # save points reached exactly
    landed = acc & hit & ~early
    for k in np.flatnonzero(landed):
        row = active[k]
        while nxt[row] < len(ts) and ts[nxt[row]] <= t[row]:
            raw.save[row, nxt[row]] = y[row]
            nxt[row] += 1
    if ev.any():
        status = np.array([int(raw.problem.events[e].status) for e in which])
        raw.finish(active[ev], status, t_ev, y_ev, which)
    done = acc & (t[active] >= t1) & ~ev
    failed = ~finite & ~np.isfinite(errn) & (hs <= 16 * np.spacing(np.maximum(np.abs(ta), 1.0)))
    small = (h_new <= 16 * np.spacing(np.maximum(np.abs(t[active]), 1.0))) & ~done & ~ev
    over = (raw.n_accepted[active] + raw.n_rejected[active] >= max_steps) & ~done & ~ev
    if done.any():
        raw.finish(active[done], Status.success, t1, y[active[done]])
    stop = ~done & ~ev & (failed | small)
    if stop.any():
        code = np.where(finite[stop], Status.stalled, Status.non_finite)
        raw.finish(active[stop], code, t[active[stop]], y[active[stop]])
    stop_max = over & ~stop
    if stop_max.any():
        raw.finish(active[stop_max], Status.max_steps, t[active[stop_max]], y[active[stop_max]])
    keep = ~(done | stop | stop_max | ev)
    return keep


def _time_derivative(p: Problem, ta: np.ndarray, ya: np.ndarray, args: tuple[Any, ...]) -> np.ndarray | None:
    """``∂vf/∂t`` at ``(ta, ya)``, shape ``(K, D)``: exact by a dual ``t`` (None when vf ignores ``t``).

    A vf using ``t`` in an operation :class:`linfa.dual.Dual` has no rule for
    (e.g. ``np.cos(t)``) gets a central difference in ``t`` instead.
    """
    views = p.layout.views(ya)
    t_dual: Any = dual.Dual(ta, np.ones_like(ta))
    try:
        out = p.vf(t_dual, views, args)
    except (TypeError, AttributeError, IndexError, ValueError):
        d = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(ta))
        hi = p.layout.flatten(p.vf(ta + d, views, args), len(ta))
        lo = p.layout.flatten(p.vf(ta - d, views, args), len(ta))
        return (hi - lo) / (2 * d)[:, None]
    if not any(isinstance(o, dual.Dual) for o in out):
        return None
    return p.layout.flatten([o.tangent if isinstance(o, dual.Dual) else 0.0 for o in out], len(ta))


def _at(p: Problem, ta: np.ndarray, args: tuple[Any, ...]) -> Any:
    def f(t: Any, yy: tuple[Any, ...]) -> Any:
        return p.vf(ta, yy, args)

    return f


def step(
    method: type[AbstractRosenbrock],
    f: Any,
    y: np.ndarray,
    jac: np.ndarray,
    h: np.ndarray,
    ft: np.ndarray | None = None,
    f0: np.ndarray | None = None,
    lu: InstanceLU | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of ``method`` for every instance, with step sizes ``h``.

    Parameters
    ----------
    method : subclass of AbstractRosenbrock
    f : callable
        ``f(dt, y) -> y'`` on ``(K, D)`` arrays, ``dt`` (shape ``(K,)``) the
        time since the step's start.
    y : ndarray, shape (K, D)
    jac : ndarray, shape (K, D, D)
        ``∂f/∂y`` at ``y``, per instance.
    h : ndarray, shape (K,)
    ft : ndarray, shape (K, D), optional
        ``∂f/∂t`` at the step's start (omitted: 0, an autonomous field); it
        enters stage ``i`` as ``γ_i h f_t`` with ``γ_i = Σ_j Γ_ij``.
    f0 : ndarray, shape (K, D), optional
        ``f(0, y)`` when already known (the first stage); evaluated otherwise.
    lu : InstanceLU, optional
        Where to factor and solve, instance ``k`` in slot ``k`` (default: a
        new one, in the calling thread).

    Returns
    -------
    y_new, err : ndarray, shape (K, D)
        The step's result and its error estimate ``Σ e_i u_i``.
    """
    K, D = y.shape
    s = len(method.m)
    a, c = method.a, method.c
    alpha, big_gamma, _ = method.classical()
    nodes, gammas = alpha.sum(axis=1), big_gamma.sum(axis=1)
    dtype = np.result_type(y, jac)
    if lu is None:
        lu = InstanceLU(K)
    slots = np.arange(K)
    eye = np.eye(D, dtype=dtype)
    lu.factor(slots, lambda k: eye / (h[k] * method.gamma) - jac[k])
    us = np.empty((s, K, D), dtype=dtype)
    for i in range(s):
        yi = y + np.einsum("j,jkd->kd", a[i, :i], us[:i]) if i else y
        rhs = f0 if i == 0 and f0 is not None else f(nodes[i] * h, yi)
        if i:
            rhs = rhs + np.einsum("j,jkd->kd", c[i, :i], us[:i]) / h[:, None]
        if ft is not None:
            rhs = rhs + (gammas[i] * h)[:, None] * ft
        us[i] = lu.solve(slots, np.asarray(rhs, dtype=dtype))
    return y + np.einsum("j,jkd->kd", method.m, us), np.einsum("j,jkd->kd", method.e, us)
