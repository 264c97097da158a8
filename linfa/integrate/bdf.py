"""A batched stiff method of variable order: the numerical differentiation formulas (NDF/BDF 1–5).

The method is the quasi-constant step size NDF of Shampine & Reichelt (*The
MATLAB ODE Suite*, SIAM J. Sci. Comput. 18, 1997), the scheme of MATLAB's
``ode15s`` and scipy's ``BDF``, run for every instance of a batch with its own
time, step size, order and history, and its own Jacobian and LU, which are
kept across steps.

**The formula.** Each instance keeps the backward differences of its solution
on a grid of constant step ``h``,
``Δ_j = ∇^j y_n`` for ``j = 0 .. k + 2`` (the array ``dif``, shape
``(K, max_order + 3, D)``). The NDF of order ``k`` for ``y' = f(t, y)`` is

.. math::

    \\sum_{j=1}^{k} \\frac{1}{j} \\nabla^j y_{n+1}
        - κ_k γ_k \\bigl(y_{n+1} - y^{(0)}_{n+1}\\bigr) = h f(t_{n+1}, y_{n+1}),
    \\qquad γ_k = \\sum_{j=1}^{k} \\frac{1}{j},
    \\qquad y^{(0)}_{n+1} = \\sum_{j=0}^{k} \\nabla^j y_n ,

with ``κ = (-0.1850, -1/9, -0.0823, -0.0415, 0)`` for ``k = 1 .. 5``
(``κ = 0``: the BDF). With the correction ``d = y_{n+1} - y^{(0)}_{n+1}``
(which is ``∇^{k+1} y_{n+1}``) it reads

.. math::

    d = c\\, f\\bigl(t_{n+1}, y^{(0)}_{n+1} + d\\bigr) - ψ ,
    \\qquad c = \\frac{h}{α_k}, \\quad α_k = (1 - κ_k) γ_k ,
    \\quad ψ = \\frac{1}{α_k} \\sum_{j=1}^{k} γ_j ∇^j y_n ,

solved by a simplified Newton iteration with the matrix ``I - c_{LU} J``:

.. math::

    δ = g \\, (I - c_{LU} J)^{-1} \\bigl(c f(y^{(0)} + d) - ψ - d\\bigr), \\qquad
    d \\leftarrow d + δ, \\qquad g = \\frac{2}{1 + c / c_{LU}} .

``J = ∂f/∂y`` is exact (:func:`linfa.dual.jacobian` of the one flow
definition, at the instance's state when it was computed) and ``c_{LU}`` is
the ``c`` of the kept factorisation; ``g`` (CVODE's correction factor) is 1
when it is fresh and otherwise rescales the correction for the stiff
components, whose exact Newton step scales like ``c_{LU} / c``. With
``‖·‖`` the RMS norm scaled by ``atol + rtol |y^{(0)}|`` and CVODE's rate
``ρ ← max(0.3 ρ, ‖δ_m‖ / ‖δ_{m-1}‖)`` (carried from step to step, reset to 1
with each new factorisation), the iteration has converged when the error it
leaves, about ``ρ / (1 - ρ) ‖δ_m‖`` for a geometric contraction (Hairer &
Wanner's estimate, as in scipy's ``BDF``), is within ``τ_k = 0.1 / C_k`` (a
tenth of the error test below, ``C_k`` the error constant):
``‖δ_m‖ min(1, ρ / (1 - ρ)) <= τ_k`` (``‖δ_m‖ <= τ_k`` when ``ρ >= 1/2``); it
fails when ``‖δ_m‖ > 2 ‖δ_{m-1}‖`` or after ``M = 3`` iterations. CVODE's own
test, ``‖δ_m‖ min(1, ρ) <= τ_k``, counts half the error left at ``ρ = 1/2``:
with an LU kept across a change of ``c`` that leftover entered the error
estimate and rejected steps (``benchmarks/bench_bdf_bound.py``, ``q_max =
0.5``, CVODE's test against this one: W4 723 against 648 steps per instance,
a Brusselator on 400 points 374 against 300, a linear system of 600 825
against 681).

**Error and order.** The local error of order ``k`` is estimated by

.. math::

    \\text{err}_k = C_k d , \\qquad C_k = κ_k γ_k + \\frac{1}{k + 1} ,

in the RMS norm of ``err / (atol + rtol |y_{n+1}|)``; the step is accepted
when it is at most 1. (``C_k h^{k+1} y^{(k+1)}`` is the formula's residual; the
error of ``y_{n+1}`` is that over the leading coefficient ``α_k``, and
``d ≈ (1 + C_k / α_k) h^{k+1} y^{(k+1)}``, so the estimate is
``α_k + C_k = γ_{k+1}`` times the local error: conservative, as in ``ode15s``.)
After an accepted step the differences are updated,

.. math::

    ∇^{k+2} y_{n+1} = d - ∇^{k+1} y_n , \\qquad ∇^{k+1} y_{n+1} = d , \\qquad
    ∇^{j} y_{n+1} = ∇^{j} y_n + ∇^{j+1} y_{n+1} \\quad (j = k, \\dots, 0),

and once ``k + 1`` steps have been taken with the same ``h`` the estimates
of orders ``k - 1`` and ``k + 1`` (``err_{k-1}`` from ``∇^k y_{n+1}``,
``err_{k+1}`` from ``∇^{k+2} y_{n+1}``) choose the order whose predicted
step ``err_q^{-1/(q+1)}`` is largest; the step becomes ``h s`` times that
factor (``s`` the controller's safety, at most its ``max_factor``). A factor
below ``grow_above`` at the same order leaves ``h`` (and the factorisation)
as it is. A rejected step shrinks ``h`` by
``max(min_factor, s' err^{-1/(k+1)})``, ``s' = s (2M + 1)/(2M + m)`` with
``m`` the Newton iterations it took.

**A new step size.** The differences are those of the interpolating
polynomial through ``y_n, y_{n-1}, ...`` on the grid of step ``h``; for a step
``ρ h`` the differences of the same polynomial on the new grid are

.. math::

    Δ' = (R(ρ) U)^{T} Δ , \\qquad
    R_{ij}(ρ) = \\prod_{m=1}^{i} \\frac{m - 1 - ρ j}{m} , \\quad U = R(1),
    \\qquad i, j = 0 .. k

(rows ``0 .. k`` of ``dif``; Shampine & Reichelt's matrix form). The
polynomial itself,

.. math::

    p(t) = \\sum_{j=0}^{k} ∇^j y_{n} \\prod_{m=0}^{j-1} \\frac{t - t_{n} + m h}{(m + 1) h},

is the dense output: save points inside a step are read from it (steps are
not shortened to reach them), and stopping conditions are located on it by
:func:`~linfa.integrate.events.first_root`. Only ``t1`` is landed on exactly.

**Jacobian and LU reuse** (per instance, as in CVODE). ``J`` is computed at
the start and afterwards only when the Newton iteration fails with a ``J``
older than the current step (the step is then retried with a fresh ``J``);
a failure with a fresh ``J`` halves ``h``. The LU of ``I - c J`` is
recomputed with a new ``J``, after a Newton failure, and when an order or
step change moves ``c`` so far from the kept ``c_{LU}`` that the iteration
would contract too slowly. With ``r = c / c_{LU}`` and the gain ``g = 2 / (1 +
r)``, one iteration on a linear problem leaves the fraction

.. math::

    q(r) = \frac{|1 - r|}{1 + r}

of the error in the stiff (``|c λ| ≫ 1``) and the non-stiff (``|c λ| ≪ 1``)
components alike (in between, less for real ``λ``). The LU is kept while
``q(r) <= q_max`` (``BDF(lu_contraction=...)``, default 0.3: ``r`` in
``[0.54, 1.86]``), and the Newton test is told so: the rate it starts from
is ``max(ρ, q(r))``, not only a ``ρ`` measured with an earlier ``c`` (the
floored rate is then carried on like a measured one, as CVODE carries its
rate: at worst an iteration more on a later step). Without that
floor a kept LU passes the test an iteration early, the leftover iteration
error enters the error estimate ``C_k d``, and steps are rejected (measured
during development at ``q_max = 0.4``, without the floor and with it: 61
against 13 rejected steps per instance on the Brusselator of
``benchmarks/bench_bdf_bound.py``, 108 against 38 on its Allen–Cahn problem).

``q_max`` trades factorisations for Newton iterations, rejections and steps.
Measured (``benchmarks/bench_bdf_bound.py``, 2026-12-02 03:05 UTC, compiled
route, rtol 1e-6, eleven families, time against ``q_max = 0.2``, about
CVODE's ``|r - 1| <= 0.3``): 0.3 ran 1.15-1.29x faster on the five network
problems (FA, BP, DFA, a deep FA and a small FA), 1.01-1.04x on a
Brusselator of D = 400 and of D = 800 and on an Allen–Cahn problem, 0.92x on
a linear system of D = 600, and 0.76-0.77x on Van der Pol and Robertson
(D <= 3: 1.8 ms at 0.3 against 1.3 ms at 0.2 per instance, timings of
about a millisecond that also vary by some 30% from run to run). 0.5 ran 1.23-1.51x faster on the
four network problems with D = 800-1200 (two thirds of the LUs of 0.3, the
same steps) but 0.54x on the linear system and 0.66x on Allen–Cahn (more
rejections, Newton failures and Jacobians: a spread spectrum makes a kept
LU's slow contraction cost steps), and 0.43-0.62x on the smallest problems.
So the default is 0.3, the bound that lost little anywhere;
``BDF(lu_contraction=0.5)`` is an option for network problems with large
states. These ratios move between runs by more than timing noise: the step
sequence of a stiff run turns on discrete decisions that a last-bit change
can flip (an earlier run, before the LUs were taken of ``M^T``, had the
linear system at 1.11x and Van der Pol at 1.18x for 0.3). Every run of every
family ended successfully, with final states within 6e-4 of tight solves
(within 1.5e-5 but for the linear system, whose states decay by 1e4). The stats count
Jacobians (``num_jacobians``), factorisations (``num_lu``) and Newton
failures (``num_newton_failures``, also counted in ``num_rejected``) per
instance.

The iteration matrix only steers the Newton iteration (its residual is
evaluated in double precision), so by default (``single_lu``) it is factored
and solved in single precision: on W4's 800 x 800 matrices that saves a
quarter of the time for the same steps and results (the triangular solves
stream half the memory). An instance whose Newton iteration fails with a
fresh ``J`` in single precision moves to double precision for good and
retries the step (a badly conditioned ``I - c J``).

Linear algebra is per instance (:mod:`linfa.integrate.linsolve`: LAPACK on
one BLAS thread, the instances spread over threads), and every other
operation acts on each instance's rows alone, so a batched solve is
bit-identical to solving each instance by itself.

**Two routes.** This module is the batched numpy route (``kernel="numpy"``)
and the home of the method's formulas. By default ``method="bdf"`` runs the
same algorithm compiled, one numba loop per instance that keeps the
instance's ``J`` and LU in cache (:mod:`linfa.integrate.compiled_bdf`),
wherever the flow can be traced; ``Solution.stats["kernel"]`` says which ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from linfa import dual
from linfa._validate import count, real
from linfa.integrate._kernels import power
from linfa.integrate.controller import rms
from linfa.integrate.linsolve import InstanceLU, instance_lu
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.rosenbrock import _at, start
from linfa.integrate.solution import Solution, Status

__all__ = ["BDF", "as_bdf", "interpolate", "kept_lu_contraction", "newton", "predict", "rescale", "run"]

#: The highest order.
MAX_ORDER = 5


@dataclass(frozen=True)
class BDF:
    """The variable-order NDF/BDF method ``"bdf"`` (see the module docstring); its options.

    Parameters
    ----------
    max_order : int
        Highest order used, 1 to 5.
    ndf : bool
        The NDF coefficients ``κ`` (default), or ``κ = 0``: the classical BDF.
    newton_maxiter : int
        Newton iterations ``M`` per step attempt at most.
    newton_tol : float
        The Newton iteration stops when its estimated error is below this
        fraction of the error test: ``τ_k = newton_tol / (κ_k γ_k + 1/(k+1))``.
    lu_contraction : float
        ``q_max``: a kept LU of ``I - c_{LU} J`` serves a step with ``c = r
        c_{LU}`` while ``|1 - r| / (1 + r) <= q_max`` (the fraction of the
        Newton error one iteration leaves, see the module docstring), and is
        refactored otherwise; in ``(0, 1)`` (as ``q_max → 1`` a kept LU would
        serve ``c → 0``, where the iteration stalls). 0.5 suits network
        problems with large states (see the module docstring).
    grow_above : float
        A proposed step factor below this (at the same order) keeps the step size.
    single_lu : bool
        Factor ``I - c J`` in single precision (see the module docstring);
        False: always in double.

    Examples
    --------
    >>> import numpy as np
    >>> from linfa.integrate import integrate, BDF
    >>> lam = np.array([[-1.0], [-1e6]])
    >>> sol = integrate(lambda t, y, a: (a[0] * y[0],), (np.ones((2, 1)),), 1.0, args=(lam,),
    ...                 batch_shape=(2,), method=BDF(), rtol=1e-8, atol=1e-12)
    >>> bool(np.allclose(sol.state_final[0][:, 0], np.exp(lam[:, 0]), rtol=1e-6, atol=1e-12))
    True
    """

    max_order: int = MAX_ORDER
    ndf: bool = True
    newton_maxiter: int = 3
    newton_tol: float = 0.1
    lu_contraction: float = 0.3
    grow_above: float = 1.5
    single_lu: bool = True

    name: ClassVar[str] = "bdf"
    #: Shampine & Reichelt's NDF coefficients κ_k, k = 0 .. 5 (κ_0 unused).
    ndf_kappa: ClassVar[np.ndarray] = np.array([0.0, -0.1850, -1 / 9, -0.0823, -0.0415, 0.0])

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_order", count("max_order", self.max_order, minimum=1))
        if self.max_order > MAX_ORDER:
            raise ValueError(f"max_order: expected an order from 1 to {MAX_ORDER}, got {self.max_order}")
        object.__setattr__(self, "newton_maxiter", count("newton_maxiter", self.newton_maxiter, minimum=1))
        object.__setattr__(self, "newton_tol", real("newton_tol", self.newton_tol, positive=True))
        bound = real("lu_contraction", self.lu_contraction, positive=True)
        if bound >= 1:
            raise ValueError(f"lu_contraction: expected a bound in (0, 1) (at 1 a kept LU would serve any smaller "
                             f"c, where the Newton iteration cannot converge), got {bound}")
        object.__setattr__(self, "lu_contraction", bound)
        object.__setattr__(self, "grow_above", real("grow_above", self.grow_above, positive=True))
        if self.grow_above < 1:
            raise ValueError(f"grow_above: expected a factor of at least 1, got {self.grow_above}")

    @property
    def kappa(self) -> np.ndarray:
        """``κ_k``, ``k = 0 .. 5``."""
        return self.ndf_kappa.copy() if self.ndf else np.zeros(MAX_ORDER + 1)

    @property
    def gamma(self) -> np.ndarray:
        """``γ_k = Σ_{j<=k} 1/j``, ``k = 0 .. 5``."""
        return np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, MAX_ORDER + 1))))

    @property
    def alpha(self) -> np.ndarray:
        """``α_k = (1 - κ_k) γ_k``: the step's ``c = h / α_k``."""
        return (1 - self.kappa) * self.gamma

    @property
    def error_const(self) -> np.ndarray:
        """``κ_k γ_k + 1/(k + 1)``, ``k = 0 .. 5``: the local error is this times ``d``."""
        return self.kappa * self.gamma + 1.0 / np.arange(1, MAX_ORDER + 2)


def as_bdf(method: Any) -> BDF | None:
    """The :class:`BDF` method ``method`` names or is (``"bdf"``, the class or an instance); None otherwise."""
    if isinstance(method, str):
        return BDF() if method == BDF.name else None
    if method is BDF:
        return BDF()
    if isinstance(method, BDF):
        return method
    return None


# ------------------------------------------------------------- the formulas
def _by_order(order: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(k, positions)`` for each order present: every formula runs on one order's rows at a time."""
    return [(int(k), np.flatnonzero(order == k)) for k in np.unique(order)]


def predict(m: BDF, dif: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The predictor ``y⁽⁰⁾ = Σ_{j<=k} ∇^j y_n`` and ``ψ = Σ_{1<=j<=k} γ_j ∇^j y_n / α_k``.

    Parameters
    ----------
    m : BDF
    dif : ndarray, shape (n, max_order + 3, D)
    order : ndarray of int, shape (n,)

    Returns
    -------
    y_pred, psi : ndarray, shape (n, D)
    """
    gamma, alpha = m.gamma, m.alpha
    y_pred = np.empty(dif.shape[::2])
    psi = np.empty_like(y_pred)
    for k, pos in _by_order(order):
        d = dif[pos]
        yp = d[:, 0].copy()
        ps = gamma[1] * d[:, 1]
        yp += d[:, 1]
        for j in range(2, k + 1):
            yp += d[:, j]
            ps += gamma[j] * d[:, j]
        y_pred[pos] = yp
        psi[pos] = ps / alpha[k]
    return y_pred, psi


def _r_matrix(k: int, rho: np.ndarray) -> np.ndarray:
    """``R(ρ)`` of the module docstring, shape ``(n, k + 1, k + 1)``."""
    i = np.arange(1, k + 1)[:, None]
    j = np.arange(1, k + 1)[None, :]
    factors = np.ones((rho.size, k + 1, k + 1))
    factors[:, 1:, 1:] = (i - 1 - rho[:, None, None] * j) / i
    factors[:, 1:, 0] = (i[:, 0] - 1) / i[:, 0]  # j = 0: R_i0 = δ_i0
    return np.cumprod(factors, axis=1)


def rescale(dif: np.ndarray, order: np.ndarray, rho: np.ndarray) -> None:
    """Change the step of each row's differences by the factor ``ρ``, in place: ``Δ' = (R(ρ) U)^T Δ``.

    Parameters
    ----------
    dif : ndarray, shape (n, max_order + 3, D)
        Rows ``0 .. k`` of each instance change (``k`` its order).
    order : ndarray of int, shape (n,)
    rho : ndarray, shape (n,)
        New step over old.
    """
    for k, pos in _by_order(order):
        u = _r_matrix(k, np.ones(1))[0]
        r = _r_matrix(k, rho[pos])
        ru = np.zeros_like(r)
        for l_ in range(k + 1):
            ru += r[:, :, l_, None] * u[None, l_, None, :]
        old = dif[pos, : k + 1]
        new = np.zeros_like(old)
        for i in range(k + 1):
            for j in range(k + 1):
                new[:, i] += ru[:, j, i, None] * old[:, j]
        dif[pos, : k + 1] = new


def interpolate(dif: np.ndarray, order: np.ndarray, t_n: np.ndarray, h: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The interpolating polynomial ``p(t)`` of each row's differences (the dense output).

    Parameters
    ----------
    dif : ndarray, shape (n, max_order + 3, D)
        Differences at ``t_n`` on the grid of step ``h``.
    order : ndarray of int, shape (n,)
    t_n, h, t : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n, D)
    """
    out = np.empty(dif.shape[::2])
    for k, pos in _by_order(order):
        d = dif[pos]
        hh = h[pos]
        x = t[pos] - t_n[pos]
        y = d[:, 0].copy()
        prod = np.ones(pos.size)
        for j in range(1, k + 1):
            prod = prod * (x + (j - 1) * hh) / (j * hh)
            y += prod[:, None] * d[:, j]
        out[pos] = y
    return out


def kept_lu_contraction(c: np.ndarray, c_lu: np.ndarray) -> np.ndarray:
    """``q(r) = |1 - r| / (1 + r)``, ``r = c / c_{LU}``: the fraction of the Newton error one iteration with the LU
    of ``I - c_{LU} J`` (and the gain ``2 / (1 + r)``) leaves at ``c`` (see the module docstring).

    Parameters
    ----------
    c, c_lu : ndarray, shape (n,)
        The step's ``c = h / α_k`` and the kept LU's (NaN: none).

    Returns
    -------
    ndarray, shape (n,)
        NaN where there is no kept LU.
    """
    r = c / c_lu
    return np.abs(1 - r) / (1 + r)


def newton(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
    y_pred: np.ndarray,
    psi: np.ndarray,
    c: np.ndarray,
    gain: np.ndarray,
    scale: np.ndarray,
    tol: np.ndarray,
    rate: np.ndarray,
    maxiter: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``d = c f(y⁽⁰⁾ + d) - ψ`` for every row by the simplified Newton iteration.

    Parameters
    ----------
    f : callable
        ``f(pos, y) -> ndarray (len(pos), D)``: the flow at the step's end for the rows ``pos``.
    solve : callable
        ``solve(pos, r) -> u`` with ``(I - c_{LU} J) u = r`` for the rows ``pos``.
    y_pred, psi : ndarray, shape (n, D)
    c, gain : ndarray, shape (n,)
        ``h / α_k`` and the correction factor ``g``.
    scale : ndarray, shape (n, D)
        ``atol + rtol |y⁽⁰⁾|``: the norm of the convergence test.
    tol : ndarray, shape (n,)
        ``τ``.
    rate : ndarray, shape (n,)
        The convergence rate ``ρ`` carried from the last attempt; updated in place.
    maxiter : int
        ``M``.

    Returns
    -------
    converged : ndarray of bool, shape (n,)
    d, y : ndarray, shape (n, D)
        The correction and ``y⁽⁰⁾ + d``.
    iterations : ndarray of int, shape (n,)
    finite : ndarray of bool, shape (n,)
        False where the flow turned non-finite during the iteration.

    Notes
    -----
    With ``‖δ_m‖`` the scaled RMS norm of the ``m``-th correction, CVODE's
    rate ``ρ ← max(0.3 ρ, ‖δ_m‖ / ‖δ_{m-1}‖)`` for ``m >= 1``; converged when the
    error left, ``ρ / (1 - ρ) ‖δ_m‖``, is within the tolerance:
    ``‖δ_m‖ min(1, ρ / (1 - ρ)) <= τ`` (``‖δ_m‖ <= τ`` for ``ρ >= 1/2``);
    diverging when ``‖δ_m‖ > 2 ‖δ_{m-1}‖``.
    """
    n = y_pred.shape[0]
    d = np.zeros_like(y_pred)
    y = y_pred.copy()
    converged = np.zeros(n, dtype=bool)
    finite = np.ones(n, dtype=bool)
    iterations = np.zeros(n, dtype=np.int64)
    norm_old = np.full(n, np.nan)
    pos = np.arange(n)
    for it in range(maxiter):
        if not pos.size:
            break
        fp = f(pos, y[pos])
        ok = np.all(np.isfinite(fp), axis=1)
        if not ok.all():
            finite[pos[~ok]] = False
            pos, fp = pos[ok], fp[ok]
        dy = solve(pos, c[pos, None] * fp - psi[pos] - d[pos]) * gain[pos, None]
        dy_norm = rms(dy / scale[pos])
        iterations[pos] += 1
        diverging = ~np.isfinite(dy_norm)
        if it:
            old = norm_old[pos]
            rate[pos] = np.maximum(0.3 * rate[pos], dy_norm / old)
            diverging |= dy_norm > 2 * old
        go = ~diverging
        pos, dy, dy_norm = pos[go], dy[go], dy_norm[go]
        y[pos] += dy
        d[pos] += dy
        rp = rate[pos]  # the error left is about ρ/(1 - ρ) ‖δ_m‖ (a geometric tail), counted at most ‖δ_m‖
        left = np.where(rp < 0.5, rp / (1 - np.minimum(rp, 0.5)), 1.0)
        done = dy_norm * left <= tol[pos]
        converged[pos[done]] = True
        norm_old[pos] = dy_norm
        pos = pos[~done]
    return converged, d, y, iterations, finite


# ----------------------------------------------------------------- the loop
def run(p: Problem, m: BDF, threads: int | None = None) -> Solution:
    """Integrate every instance of ``p`` with the NDF/BDF method ``m``, batched (see the module docstring).

    Returns the :class:`~linfa.integrate.Solution`, whose stats add
    ``num_jacobians``, ``num_lu`` and ``num_newton_failures`` (per instance,
    shaped by the batch). ``threads``: for the per-instance linear algebra
    (:func:`~linfa.integrate.linsolve.instance_lu`; default: one per core).
    """
    loop = _Loop(p, m)
    with instance_lu(p.K, p.layout.D, threads) as lu:
        loop.run(lu)
    sol = loop.raw.solution(m.name)
    for key, val in (("num_jacobians", loop.n_jac), ("num_lu", loop.n_lu),
                     ("num_newton_failures", loop.n_newton_fail)):
        sol.stats[key] = val.reshape(p.batch_shape)
    return sol


class _Loop:
    """The per-instance state of one batched NDF/BDF integration, indexed by the flat instance number."""

    def __init__(self, p: Problem, m: BDF) -> None:
        self.p, self.m = p, m
        self.raw = Raw(p)
        K, D = p.K, p.layout.D
        self.t = np.full(K, p.t0)
        self.y = p.y0.copy()
        self.h = np.zeros(K)
        self.order = np.ones(K, dtype=np.int64)
        self.n_equal = np.zeros(K, dtype=np.int64)  # accepted steps since the last change of h or order
        self.dif = np.zeros((K, m.max_order + 3, D))
        self.jac = np.zeros((K, D, D)) if K else np.zeros((0, D, D))
        self.jac_fresh = np.zeros(K, dtype=bool)  # J was computed at the current state
        self.c_lu = np.full(K, np.nan)  # c of the kept factorisation (NaN: none)
        self.rate = np.ones(K)  # Newton's convergence rate estimate (1 after a new factorisation)
        self.single = np.full(K, m.single_lu)  # factor in single precision
        self.nxt = np.full(K, int(np.searchsorted(p.ts, p.t0, side="right")))
        self.raw.save[:, : int(self.nxt[0] if K else 0)] = self.y[:, None, :]
        self.n_jac = np.zeros(K, dtype=np.int64)
        self.n_lu = np.zeros(K, dtype=np.int64)
        self.n_newton_fail = np.zeros(K, dtype=np.int64)
        self.args_all = p.make_args()
        self.tol = m.newton_tol / m.error_const  # by order

    def vf(self, rows: np.ndarray, tt: np.ndarray, yy: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        raw, layout = self.raw, self.p.layout
        raw.n_calls += 1
        raw.n_fev[rows] += 1
        return layout.flatten(self.p.vf(tt, layout.views(yy), args), len(rows))

    def jacobian(self, rows: np.ndarray, lu: InstanceLU) -> None:
        """``J`` at the current state of ``rows`` (slices of them on ``lu``'s threads); their LUs become stale."""
        if not rows.size:
            return
        p = self.p

        def work(pos: np.ndarray) -> None:
            r = rows[pos]
            with np.errstate(all="ignore"):
                self.jac[r] = dual.jacobian(_at(p, self.t[r], self.args_all.take(r)), 0.0,
                                            p.layout.views(self.y[r]), batch_ndim=1)

        lu.each(rows.size, work)
        self.raw.n_calls += 1
        self.n_jac[rows] += 1
        self.jac_fresh[rows] = True
        self.c_lu[rows] = np.nan

    def set_step(self, rows: np.ndarray, h_new: np.ndarray) -> None:
        """Move ``rows`` to the step sizes ``h_new`` (rescaling their differences)."""
        if not rows.size:
            return
        dif = self.dif[rows]
        rescale(dif, self.order[rows], h_new / self.h[rows])
        self.dif[rows] = dif
        self.h[rows] = h_new
        self.n_equal[rows] = 0

    def run(self, lu: InstanceLU) -> None:
        p, raw = self.p, self.raw
        K = p.K
        if K == 0:
            return
        with np.errstate(all="ignore"):
            active = np.arange(K)
            events, active, h0, _, f0 = start(p, raw, self.vf, 1, active, self.t, self.y,
                                              self.args_all.take(active))
            self.events = events
            self.h[active] = h0
            self.dif[active, 0] = self.y[active]
            self.dif[active, 1] = h0[:, None] * f0
            self.jacobian(active, lu)
            while active.size:
                keep = self.attempt(active, lu)
                lu.drop(active[~keep])
                active = active[keep]

    def attempt(self, active: np.ndarray, lu: InstanceLU) -> np.ndarray:
        """One step attempt of every active instance; returns the mask of those that go on."""
        p, m, raw = self.p, self.m, self.raw
        ctl = p.controller
        D = p.layout.D
        ta = self.t[active]
        # the last step lands on t1
        last = self.t[active] + self.h[active] >= p.t1 - 4 * np.spacing(max(abs(p.t1), 1.0))
        if last.any():
            self.set_step(active[last], p.t1 - ta[last])
        ha, ka = self.h[active], self.order[active]
        t_new = np.where(last, p.t1, ta + ha)
        c = ha / m.alpha[ka]
        # factorisations: a new J, or c so far from the kept c_LU that the iteration would contract too slowly
        contraction = kept_lu_contraction(c, self.c_lu[active])
        stale = ~(contraction <= m.lu_contraction)
        if stale.any():
            rows, cs = active[stale], c[stale]
            single = self.single[rows]

            def matrix(i: int) -> np.ndarray:  # I - c J, in the instance's precision, in one pass over J
                out = np.multiply(self.jac[rows[i]], -cs[i], dtype=np.float32 if single[i] else np.float64)
                out.flat[:: D + 1] += 1
                return out

            lu.factor(rows, matrix)
            self.c_lu[rows] = cs
            self.rate[rows] = 1.0
            self.n_lu[rows] += 1
            contraction[stale] = 0.0
        gain = 2 / (1 + c / self.c_lu[active])
        args = self.args_all.take(active)
        y_pred, psi = predict(m, self.dif[active], ka)
        scale = ctl.atol + ctl.rtol * np.abs(y_pred)

        def f(pos: np.ndarray, yy: np.ndarray) -> np.ndarray:
            return self.vf(active[pos], t_new[pos], yy, tuple(a[pos] for a in args))

        def solve(pos: np.ndarray, r: np.ndarray) -> np.ndarray:
            return lu.solve(active[pos], r)  # in the factorisation's precision, returned in double

        rate = np.maximum(self.rate[active], contraction)  # the kept LU's contraction, at least
        conv, d, y_new, iters, finite = newton(f, solve, y_pred, psi, c, gain, scale, self.tol[ka], rate,
                                               m.newton_maxiter)
        self.rate[active] = rate
        # the error test
        err_scale = ctl.atol + ctl.rtol * np.abs(y_new)
        errn = np.where(conv, rms(m.error_const[ka][:, None] * d / err_scale), np.nan)
        acc = conv & (errn <= 1)
        raw.n_accepted[active[acc]] += 1
        raw.n_rejected[active[~acc]] += 1
        # Newton failures: a fresh J, or half the step with the fresh one
        nf = ~conv
        self.n_newton_fail[active[nf]] += 1
        refresh = nf & ~self.jac_fresh[active]  # computed below, for the instances that go on
        to_double = nf & ~refresh & self.single[active]  # a fresh J in single precision: retry in double
        self.single[active[to_double]] = False
        self.c_lu[active[to_double]] = np.nan
        halve = nf & ~refresh & ~to_double
        self.c_lu[active[halve]] = np.nan
        self.set_step(active[halve], 0.5 * ha[halve])
        # error test failures
        safety = ctl.safety * (2 * m.newton_maxiter + 1) / (2 * m.newton_maxiter + iters)
        bad = conv & ~acc
        if bad.any():
            fac = np.maximum(ctl.min_factor, safety[bad] * power(errn[bad], -1.0 / (ka[bad] + 1)))
            self.set_step(active[bad], ha[bad] * fac)
        keep = np.ones(active.size, dtype=bool)
        if acc.any():
            keep[acc] = self.accept(active, acc, ta, t_new, y_new, d, err_scale, errn, safety, args)
        # instances that cannot go on
        live = keep & ~acc
        if live.any():
            pos = np.flatnonzero(live)
            rows = active[pos]
            tiny = self.h[rows] <= 16 * np.spacing(np.maximum(np.abs(self.t[rows]), 1.0))
            if tiny.any():
                code = np.where(finite[pos[tiny]], Status.stalled, Status.non_finite)
                raw.finish(rows[tiny], code, self.t[rows[tiny]], self.y[rows[tiny]])
                keep[pos[tiny]] = False
        over = keep & (raw.n_accepted[active] + raw.n_rejected[active] >= p.max_steps)
        if over.any():
            raw.finish(active[over], Status.max_steps, self.t[active[over]], self.y[active[over]])
            keep &= ~over
        self.jacobian(active[refresh & keep], lu)  # J at the unchanged state, for the retry
        return keep

    def accept(self, active: np.ndarray, acc: np.ndarray, ta: np.ndarray, t_new: np.ndarray, y_new: np.ndarray,
               d: np.ndarray, err_scale: np.ndarray, errn: np.ndarray, safety: np.ndarray,
               args: tuple[Any, ...]) -> np.ndarray:
        """Take the accepted steps: differences, save points, events, the end; then order and step.

        Returns the mask (over the accepted ones) of the instances that go on.
        """
        p, m, raw = self.p, self.m, self.raw
        ctl = p.controller
        pos = np.flatnonzero(acc)
        rows = active[pos]
        k = self.order[rows]
        dif = self.dif[rows]
        dn = d[pos]
        ar = np.arange(rows.size)
        dif[ar, k + 2] = dn - dif[ar, k + 1]
        dif[ar, k + 1] = dn
        for i in range(int(k.max()), -1, -1):
            on = k >= i
            dif[on, i] += dif[on, i + 1]
        self.dif[rows] = dif
        self.t[rows] = t_new[pos]
        self.y[rows] = y_new[pos]
        self.jac_fresh[rows] = False
        h = self.h[rows]

        def dense(i: np.ndarray, theta: np.ndarray) -> np.ndarray:
            # i: positions into `active`; the polynomial of the accepted step
            j = np.searchsorted(pos, i)
            tt = ta[i] + theta * (t_new[i] - ta[i])
            return interpolate(dif[j], k[j], t_new[i], h[j], tt)

        stopped = self.events.check(active, acc, t_new, ta, y_new, y_new, args, dense=dense)
        t_end = t_new[pos].copy()
        ev = np.zeros(rows.size, dtype=bool)
        if stopped is not None:
            mask, t_ev, y_ev, which = stopped
            ev = mask[pos]
            t_end[ev] = t_ev
        self._save(rows, dif, k, t_new[pos], h, t_end)
        if ev.any():
            status = np.array([int(p.events[e].status) for e in which])
            raw.finish(rows[ev], status, t_ev, y_ev, which)
        done = ~ev & (t_new[pos] >= p.t1)
        if done.any():
            raw.finish(rows[done], Status.success, p.t1, self.y[rows[done]])
        go = ~ev & ~done
        # order and step: after k + 1 steps of the same size
        self.n_equal[rows] += 1
        sel = np.flatnonzero(go & (self.n_equal[rows] >= k + 1))
        if sel.size:
            r, ks, dd = rows[sel], k[sel], dif[sel]
            sc = err_scale[pos[sel]]
            ec = m.error_const
            with np.errstate(divide="ignore"):
                e_here = errn[pos[sel]]
                e_low = np.where(ks > 1, rms(ec[ks - 1][:, None] * dd[np.arange(sel.size), ks] / sc), np.inf)
                top = np.minimum(ks + 2, m.max_order + 2)
                e_high = np.where(ks < m.max_order,
                                  rms(ec[np.minimum(ks + 1, MAX_ORDER)][:, None] * dd[np.arange(sel.size), top] / sc),
                                  np.inf)
                factors = np.stack([power(e_low, -1.0 / ks), power(e_here, -1.0 / (ks + 1)),
                                    power(e_high, -1.0 / (ks + 2))])
            best = np.argmax(factors, axis=0)
            factor = np.minimum(ctl.max_factor, safety[pos[sel]] * factors[best, np.arange(sel.size)])
            change = (best != 1) | (factor >= m.grow_above)
            if change.any():
                rc = r[change]
                self.order[rc] = ks[change] + best[change] - 1
                self.set_step(rc, self.h[rc] * factor[change])
        return go

    def _save(self, rows: np.ndarray, dif: np.ndarray, k: np.ndarray, t_new: np.ndarray, h: np.ndarray,
              t_end: np.ndarray) -> None:
        """Record the save points ``t <= t_end`` passed by the accepted steps of ``rows`` (from the polynomial)."""
        ts, nxt, save = self.p.ts, self.nxt, self.raw.save
        n_ts = len(ts)
        pos = np.arange(rows.size)
        while pos.size:
            j = nxt[rows[pos]]
            tj = ts[np.minimum(j, n_ts - 1)]
            need = (j < n_ts) & (tj <= t_end[pos])
            pos, j, tj = pos[need], j[need], tj[need]
            if not pos.size:
                return
            val = interpolate(dif[pos], k[pos], t_new[pos], h[pos], tj)
            at_end = tj == t_new[pos]
            val[at_end] = self.y[rows[pos[at_end]]]
            save[rows[pos], j] = val
            nxt[rows[pos]] += 1
