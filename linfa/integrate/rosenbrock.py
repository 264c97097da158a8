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

The tableau is data (:class:`Rodas4`); its classical coefficients
``(α_ij, γ_ij, b_i)`` follow from the transformed ones by
``Γ^{-1} = I/γ - C``, ``A = a Γ``, ``b = m Γ``, and are checked against the
Rosenbrock order conditions in the tests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.linalg as sla

from linfa import dual
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.solution import Status

__all__ = ["ROSENBROCK_METHODS", "AbstractRosenbrock", "Rodas4", "as_rosenbrock", "run"]


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


def run(p: Problem, method: type[AbstractRosenbrock]) -> Raw:
    """Integrate every instance of ``p`` with the Rosenbrock ``method``, batched.

    Raises
    ------
    ValueError
        If ``p`` has stopping conditions (not supported by this route yet).
    """
    if p.events:
        raise ValueError(f"until: stopping conditions are not supported with method {method.name!r} yet")
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
    with np.errstate(all="ignore"):
        args = args_all.take(active)
        f0 = vf(active, t, y, args)
        bad = ~np.all(np.isfinite(f0), axis=1)
        if p.t1 == p.t0:
            raw.finish(active, Status.success, p.t0, y)
            return raw
        if c.dt0 is None:
            h, overflow = c.initial_step(lambda tt, yy: vf(active, tt, yy, args), t, y, f0, p.t1 - p.t0,
                                         method.error_order)
            bad |= overflow
        else:
            h = np.full(K, float(c.dt0))
        rejected = np.zeros(K, dtype=bool)
        if bad.any():
            raw.finish(active[bad], Status.non_finite, p.t0, y[bad])
        keep = ~bad
        active, h, rejected = active[keep], h[keep], rejected[keep]
        while active.size:
            args = args_all.take(active)
            ya, ta = y[active], t[active]
            # shorten steps to hit the next save point (or t1) exactly
            target = np.where(nxt[active] < len(ts), ts[np.minimum(nxt[active], len(ts) - 1)], p.t1)
            target = np.minimum(target, p.t1)
            hit = ta + h >= target
            hs = np.where(hit, target - ta, h)
            jac = dual.jacobian(_at(p, ta, args), 0.0, layout.views(ya), batch_ndim=1)
            raw.n_calls += 1
            ft = _time_derivative(p, ta, ya, args)
            raw.n_calls += 1
            y_new, err = step(method, lambda dt, yy, rows=active, args=args, ta=ta: vf(rows, ta + dt, yy, args),
                              ya, jac, hs, ft)
            errn, finite = error_norm(c, ya, y_new, err)
            acc, _, fac = c.factor(errn, rejected, method.error_order)
            h_new = hs * fac
            keep = advance(raw, p.t1, p.max_steps, ts, nxt, y, t, active, acc, hit, target, ta, hs, h_new,
                           y_new, finite, errn)
            active, h, rejected = active[keep], h_new[keep], ~acc[keep]
    return raw


def error_norm(ctl: Any, ya: np.ndarray, y_new: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per instance, the RMS of ``err / (atol + rtol max(|y|, |y_new|))`` and whether ``y_new`` is finite.

    The norm is NaN where ``y_new`` is not finite.
    """
    scale = ctl.atol + ctl.rtol * np.maximum(np.abs(ya), np.abs(y_new))
    errn = np.sqrt(np.einsum("kd,kd->k", err / scale, err / scale) / ya.shape[1])
    finite = np.all(np.isfinite(y_new), axis=1)
    return np.where(finite, errn, np.nan), finite


def advance(raw: Any, t1: float, max_steps: int, ts: np.ndarray, nxt: np.ndarray, y: np.ndarray, t: np.ndarray,
            active: np.ndarray, acc: np.ndarray, hit: np.ndarray, target: np.ndarray, ta: np.ndarray,
            hs: np.ndarray, h_new: np.ndarray, y_new: np.ndarray, finite: np.ndarray, errn: np.ndarray) -> np.ndarray:
    """Take the accepted steps of the ``active`` rows, save the points they reached, finish the rows that are done.

    Shared by the Rosenbrock and Rosenbrock-W loops; returns the mask (over
    ``active``) of the rows that go on.
    """
    rows = active[acc]
    t_acc = np.where(hit, target, ta + hs)[acc]
    y[rows] = y_new[acc]
    t[rows] = t_acc
    raw.n_accepted[rows] += 1
    raw.n_rejected[active[~acc]] += 1
    # save points reached exactly
    landed = acc & hit
    for k in np.flatnonzero(landed):
        row = active[k]
        while nxt[row] < len(ts) and ts[nxt[row]] <= t[row]:
            raw.save[row, nxt[row]] = y[row]
            nxt[row] += 1
    done = acc & (t[active] >= t1)
    failed = ~finite & ~np.isfinite(errn) & (hs <= 16 * np.spacing(np.maximum(np.abs(ta), 1.0)))
    small = (h_new <= 16 * np.spacing(np.maximum(np.abs(t[active]), 1.0))) & ~done
    over = (raw.n_accepted[active] + raw.n_rejected[active] >= max_steps) & ~done
    if done.any():
        raw.finish(active[done], Status.success, t1, y[active[done]])
    stop = ~done & (failed | small)
    if stop.any():
        code = np.where(finite[stop], Status.stalled, Status.non_finite)
        raw.finish(active[stop], code, t[active[stop]], y[active[stop]])
    stop_max = over & ~stop
    if stop_max.any():
        raw.finish(active[stop_max], Status.max_steps, t[active[stop_max]], y[active[stop_max]])
    keep = ~(done | stop | stop_max)
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
    mat = np.eye(D)[None] / (h * method.gamma)[:, None, None] - jac
    lus = [sla.lu_factor(mat[k], check_finite=False) for k in range(K)]
    us = np.empty((s, K, D), dtype=np.result_type(y, jac))
    for i in range(s):
        yi = y + np.einsum("j,jkd->kd", a[i, :i], us[:i]) if i else y
        rhs = f(nodes[i] * h, yi)
        if i:
            rhs = rhs + np.einsum("j,jkd->kd", c[i, :i], us[:i]) / h[:, None]
        if ft is not None:
            rhs = rhs + (gammas[i] * h)[:, None] * ft
        for k in range(K):
            us[i, k] = sla.lu_solve(lus[k], rhs[k], check_finite=False)
    return y + np.einsum("j,jkd->kd", method.m, us), np.einsum("j,jkd->kd", method.e, us)
