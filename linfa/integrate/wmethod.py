"""A batched stiff method that reuses its Jacobian and LU across steps: Rosenbrock-W methods.

A Rosenbrock-W method (Steihaug & Wolfbrandt 1979; Hairer & Wanner, Solving
ODEs II, §IV.7) is a Rosenbrock method whose order conditions hold for *any*
matrix ``W`` in place of the Jacobian ``J = ∂f/∂y``. One step, in the
transformed form of :mod:`linfa.integrate.rosenbrock`:

.. math::

    \\Bigl(\\tfrac{1}{hγ} I - W\\Bigr) u_i
        = f\\Bigl(y + \\sum_{j<i} a_{ij} u_j\\Bigr) + \\sum_{j<i} \\frac{c_{ij}}{h} u_j ,
    \\qquad
    y_{new} = y + \\sum_i m_i u_i , \\qquad \\text{err} = \\sum_i e_i u_i .

So ``W`` may be a Jacobian from some earlier step, and the LU of
``I/(hγ) - W`` may be kept while ``h`` stays put. Per instance, this route

* keeps ``W`` (the exact Jacobian, by :func:`linfa.dual.jacobian`, at the
  step where it was last computed) and the LU of ``I/(h_f γ) - W``;
* keeps the step size ``h_f`` of the factorisation while the controller's
  proposal ``h'`` stays in the band ``band[0] <= h'/h_f <= band[1]`` (the
  step taken is then ``h_f``, a little shorter or longer than proposed);
  outside the band, or after a rejection, it steps with ``h'`` and refactors;
* recomputes ``W`` every ``jac_every`` accepted steps, and at once after a
  rejected step made with a ``W`` older than that step (a stale ``W`` can
  spoil the stability of the step; the error estimate sees it).

Accuracy is that of the tableau whatever ``W`` is; stability for stiff modes
needs ``W`` close to ``J`` on them, which the refresh rule provides. Step
control (:class:`~linfa.integrate.StepSizeController`), save points (landed
on exactly), stopping conditions (on a Hermite cubic), statuses and stats are as for
:mod:`~linfa.integrate.rosenbrock`.
The stats count Jacobians (``num_jacobians``) and factorisations
(``num_lu``) per instance.

The tableau :class:`Ros34PW2` (Rang & Angermann 2005) is given in the
classical form ``(α, Γ, b, b̂)``; the transformed coefficients follow by
``C = I/γ - Γ^{-1}``, ``a = α Γ^{-1}``, ``m = b Γ^{-1}``,
``e = (b - b̂) Γ^{-1}``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np

from linfa import dual
from linfa.integrate.linsolve import InstanceLU, instance_lu
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.rosenbrock import (
    AbstractRosenbrock,
    _at,
    _time_derivative,
    advance,
    error_norm,
    start,
    step_to_target,
)
from linfa.integrate.solution import Solution

__all__ = ["W_METHODS", "AbstractRosenbrockW", "Ros34PW2", "as_w_method", "run", "transformed"]


def transformed(
    alpha: np.ndarray, big_gamma: np.ndarray, b: np.ndarray, b_hat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Transformed coefficients ``(a, c, m, e)`` from the classical ``(α, Γ, b, b̂)``.

    Parameters
    ----------
    alpha : ndarray, shape (s, s)
        Strictly lower triangular ``α_ij``.
    big_gamma : ndarray, shape (s, s)
        Lower triangular ``Γ`` with the constant diagonal ``γ``.
    b, b_hat : ndarray, shape (s,)
        Weights of the solution and of the embedded solution.

    Returns
    -------
    a, c : ndarray, shape (s, s)
    m, e : ndarray, shape (s,)

    Notes
    -----
    .. math::

        C = \\frac{I}{γ} - Γ^{-1}, \\quad a = α Γ^{-1}, \\quad m = b Γ^{-1},
        \\quad e = (b - \\hat b) Γ^{-1} .
    """
    inv = np.linalg.inv(big_gamma)
    g = big_gamma[0, 0]
    c = np.tril(np.eye(len(b)) / g - inv, -1)
    return np.tril(alpha @ inv, -1), c, b @ inv, (b - b_hat) @ inv


class AbstractRosenbrockW(AbstractRosenbrock):
    """A Rosenbrock-W method: its order conditions hold for any ``W`` (see the module docstring)."""


class Ros34PW2(AbstractRosenbrockW):
    """ROS34PW2 (Rang & Angermann 2005): 4 stages, order 3(2) for any ``W``, L-stable, stiffly accurate.

    ``γ = 0.435866521508459`` (the L-stable SDIRK value); the last stage
    is evaluated at the solution (``α_4j = b_j - Γ_4j``), so the method is
    stiffly accurate. Coefficients as published (and as in PETSc's
    ``TSROSWRA34PW2``), classical form.
    """

    name = "ros34pw2"
    gamma = 4.3586652150845900e-01
    order = 3
    error_order = 2
    alpha_classical: ClassVar[np.ndarray] = np.array([
        [0.0, 0.0, 0.0, 0.0],
        [8.7173304301691801e-01, 0.0, 0.0, 0.0],
        [8.4457060015369423e-01, -1.1299064236484185e-01, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
    ])
    gamma_classical: ClassVar[np.ndarray] = np.array([
        [4.3586652150845900e-01, 0.0, 0.0, 0.0],
        [-8.7173304301691801e-01, 4.3586652150845900e-01, 0.0, 0.0],
        [-9.0338057013044082e-01, 5.4180672388095326e-02, 4.3586652150845900e-01, 0.0],
        [2.4212380706095346e-01, -1.2232505839045147e00, 5.4526025533510214e-01, 4.3586652150845900e-01],
    ])
    b_classical: ClassVar[np.ndarray] = np.array(
        [2.4212380706095346e-01, -1.2232505839045147e00, 1.5452602553351020e00, 4.3586652150845900e-01])
    b_hat_classical: ClassVar[np.ndarray] = np.array(
        [3.7810903145819369e-01, -9.6042292212423178e-02, 0.5, 2.1793326075422950e-01])
    a, c, m, e = transformed(alpha_classical, gamma_classical, b_classical, b_hat_classical)


W_METHODS: dict[str, type[AbstractRosenbrockW]] = {"ros34pw2": Ros34PW2}


def as_w_method(method: Any) -> type[AbstractRosenbrockW] | None:
    """The Rosenbrock-W method ``method`` names or is (a name, class or instance); None for any other method."""
    if isinstance(method, str):
        return W_METHODS.get(method)
    if isinstance(method, type) and issubclass(method, AbstractRosenbrockW):
        return method
    if isinstance(method, AbstractRosenbrockW):
        return type(method)
    return None


def run(
    p: Problem,
    method: type[AbstractRosenbrockW],
    *,
    band: tuple[float, float] = (0.9, 3.0),
    jac_every: int = 50,
    refresh_above: float = 1.0,
    threads: int | None = None,
) -> Solution:
    """Integrate every instance of ``p`` with the Rosenbrock-W ``method``, batched, reusing ``W`` and its LU.

    Returns the :class:`~linfa.integrate.Solution`, whose stats add
    ``num_jacobians`` and ``num_lu`` (per instance, shaped by the batch).

    Parameters
    ----------
    p : Problem
    method : subclass of AbstractRosenbrockW
    band : (float, float)
        The step size of the factorisation is kept while the controller's
        proposal over it lies in ``[band[0], band[1]]``. The default's wide
        upper end trades steps for factorisations, which cost far more on large
        states: on 2 W4 instances (D = 800, t ≤ 1e4) ``(0.9, 3)`` took 1334
        steps and 67 LUs against ``(0.9, 1.5)``'s 930 and 119, 1.3-1.5x less
        time; ``(0.9, 5)`` took more steps for no fewer LUs.
    jac_every : int
        Accepted steps after which ``W`` is recomputed.
    refresh_above : float
        A rejected step whose scaled error exceeds this, made with a ``W``
        older than the step, recomputes ``W``.
    threads : int, optional
        Threads for the per-instance linear algebra
        (:func:`~linfa.integrate.linsolve.instance_lu`; default: one per core).
    """
    with instance_lu(p.K, p.layout.D, threads) as lu:
        raw, n_jac, n_lu = _run(p, method, band, jac_every, refresh_above, lu)
    sol = raw.solution(method.name)
    sol.stats["num_jacobians"] = n_jac.reshape(p.batch_shape)
    sol.stats["num_lu"] = n_lu.reshape(p.batch_shape)
    return sol


def _run(p: Problem, method: type[AbstractRosenbrockW], band: tuple[float, float],
         jac_every: int, refresh_above: float, lu: InstanceLU) -> tuple[Raw, np.ndarray, np.ndarray]:
    raw = Raw(p)
    layout, D, K = p.layout, p.layout.D, p.K
    ts = p.ts
    ctl = p.controller
    args_all = p.make_args()
    y = p.y0.copy()
    t = np.full(K, p.t0)
    nxt = np.full(K, int(np.searchsorted(ts, p.t0, side="right")))
    raw.save[:, : int(nxt[0] if K else 0)] = y[:, None, :]
    active = np.arange(K)
    n_jac, n_lu = np.zeros(K, dtype=np.int64), np.zeros(K, dtype=np.int64)

    def vf(rows: np.ndarray, tt: np.ndarray, yy: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        raw.n_calls += 1
        raw.n_fev[rows] += 1
        return layout.flatten(p.vf(tt, layout.views(yy), args), len(rows))

    if K == 0:
        return raw, n_jac, n_lu
    W = np.zeros((K, D, D))
    ft_all = np.zeros((K, D))
    has_ft = False
    h_fact = np.full(K, np.nan)
    age = np.zeros(K, dtype=np.int64)  # accepted steps since W was computed
    need_jac = np.ones(K, dtype=bool)
    with np.errstate(all="ignore"):
        args = args_all.take(active)
        events, active, h, rejected, _ = start(p, raw, vf, method.error_order, active, t, y, args)
        while active.size:
            args = args_all.take(active)
            ya, ta = y[active], t[active]
            hit, hs, target = step_to_target(ts, nxt[active], p.t1, ta, h)
            # refresh W where due
            jr = need_jac[active]
            if jr.any():
                sub = np.flatnonzero(jr)
                rows = active[sub]
                sub_args = args_all.take(rows)
                W[rows] = dual.jacobian(_at(p, ta[sub], sub_args), 0.0, layout.views(ya[sub]), batch_ndim=1)
                raw.n_calls += 1
                ft = _time_derivative(p, ta[sub], ya[sub], sub_args)
                raw.n_calls += 1
                if ft is not None:
                    ft_all[rows] = ft
                    has_ft = True
                need_jac[rows] = False
                age[rows] = 0
                n_jac[rows] += 1
                h_fact[rows] = np.nan
            # refactor where the step differs from the factored one
            new = np.flatnonzero(hs != h_fact[active])
            if new.size:
                rows, h_new_lu = active[new], hs[new]
                lu.factor(rows, partial(_w_matrix, np.eye(D), W, rows, h_new_lu * method.gamma))
                h_fact[rows] = h_new_lu
                n_lu[rows] += 1

            def solve(rhs: np.ndarray, rows: np.ndarray = active) -> np.ndarray:
                return lu.solve(rows, rhs)

            y_new, err = w_step(method, lambda dt, yy, rows=active, args=args, ta=ta: vf(rows, ta + dt, yy, args),
                                ya, solve, hs, ft_all[active] if has_ft else None, f0=events.flow(active))
            errn, finite = error_norm(ctl, ya, y_new, err)
            acc, _, fac = ctl.factor(errn, rejected, method.error_order)
            h_prop = hs * fac
            # keep the factored step size while the proposal stays in the band
            ratio = h_prop / hs
            h_new = np.where(acc & ~hit & (ratio >= band[0]) & (ratio <= band[1]), hs, h_prop)
            stopped_now = events.check(active, acc, np.where(hit, target, ta + hs), ta, ya, y_new, args)
            keep = advance(raw, p.t1, p.max_steps, ts, nxt, y, t, active, acc, hit, target, ta, hs, h_new,
                           y_new, finite, errn, stopped_now)
            rows = active[acc]
            age[rows] += 1
            need_jac[rows[age[rows] >= jac_every]] = True
            stale = ~acc & ~(errn <= refresh_above) & (age[active] > 0)
            need_jac[active[stale]] = True
            lu.drop(active[~keep])  # free the finished instances' factorisations
            active, h, rejected = active[keep], h_new[keep], ~acc[keep]
    return raw, n_jac, n_lu


def _w_matrix(eye: np.ndarray, W: np.ndarray, rows: np.ndarray, h_gamma: np.ndarray, i: int) -> np.ndarray:
    """``I/(hγ) - W`` of instance ``rows[i]``."""
    return eye / h_gamma[i] - W[rows[i]]


def w_step(
    method: type[AbstractRosenbrock],
    f: Any,
    y: np.ndarray,
    solve: Any,
    h: np.ndarray,
    ft: np.ndarray | None = None,
    f0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of ``method`` for every instance, with a given solver of ``(I/(hγ) - W) u = r``.

    Parameters
    ----------
    method : subclass of AbstractRosenbrock
    f : callable
        ``f(dt, y) -> y'`` on ``(K, D)`` arrays, ``dt`` (shape ``(K,)``) the
        time since the step's start.
    y : ndarray, shape (K, D)
    solve : callable
        ``solve(r) -> u`` with ``(I/(h_k γ) - W_k) u_k = r_k`` for every
        instance ``k``, on ``(K, D)`` arrays.
    h : ndarray, shape (K,)
    ft : ndarray, shape (K, D), optional
        ``∂f/∂t`` (omitted: 0); enters stage ``i`` as ``γ_i h f_t``.
    f0 : ndarray, shape (K, D), optional
        ``f(0, y)`` when already known (the first stage); evaluated otherwise.

    Returns
    -------
    y_new, err : ndarray, shape (K, D)
    """
    s = len(method.m)
    a, c = method.a, method.c
    alpha, big_gamma, _ = method.classical()
    nodes, gammas = alpha.sum(axis=1), big_gamma.sum(axis=1)
    us = np.empty((s, *y.shape), dtype=y.dtype)
    for i in range(s):
        yi = y + np.einsum("j,jkd->kd", a[i, :i], us[:i]) if i else y
        rhs = f0 if i == 0 and f0 is not None else f(nodes[i] * h, yi)
        if i:
            rhs = rhs + np.einsum("j,jkd->kd", c[i, :i], us[:i]) / h[:, None]
        if ft is not None:
            rhs = rhs + (gammas[i] * h)[:, None] * ft
        us[i] = solve(rhs)
    return y + np.einsum("j,jkd->kd", method.m, us), np.einsum("j,jkd->kd", method.e, us)
