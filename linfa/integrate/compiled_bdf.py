"""The compiled ``bdf``: each instance stepped by one numba loop, its Jacobian and LU kept in cache.

The batched NDF/BDF of :mod:`linfa.integrate.bdf` steps all instances in
lockstep, and between two uses of one instance's LU it visits every other
instance's: on W4 (``D = 800``, a 2.5 MB single-precision LU per instance) each
triangular solve then streams its LU from memory. Here each instance is
stepped by one compiled loop (:func:`_advance`) until it needs a new Jacobian
or ends, so its ``J`` and LU stay in cache while it steps, and no Python runs
per step.

**The same algorithm.** The loop runs :mod:`linfa.integrate.bdf`'s formulas
one for one (see that module for the mathematics): the predictor
``y⁽⁰⁾ = Σ_{j<=k} ∇^j y_n`` and ``ψ``; the simplified Newton iteration

.. math::

    δ = g\\,(I - c_{LU} J)^{-1}\\bigl(c f(t_{n+1}, y⁽⁰⁾ + d) - ψ - d\\bigr), \\qquad
    g = \\frac{2}{1 + c / c_{LU}}, \\qquad c = \\frac{h}{α_k},

with CVODE's rate (``ρ ← max(0.3 ρ, ‖δ_m‖/‖δ_{m-1}‖)``), converged when
``‖δ_m‖ min(1, ρ/(1 - ρ)) <= τ_k``, diverging when ``‖δ_m‖ > 2‖δ_{m-1}‖``, at most
``M`` iterations); the error test ``‖C_k d‖ <= 1``; the difference update;
the order and step choice after ``k + 1`` equal steps (kept below
``grow_above``); the rescaling ``Δ' = (R(ρ)U)^T Δ``; the refactorisation rule
``q(r) > q_max`` (``q(r) = |1 - r| / (1 + r)``, ``r = c / c_{LU}``) and the
rate's floor ``ρ ← max(ρ, q(r))`` with a kept LU; the Newton-failure ladder (a fresh
``J``, then double precision, then half the step); the last step landing on
``t1``; the save points from the interpolating polynomial; ``max_steps`` and
the ``stalled`` and ``non_finite`` endings; and the stats ``num_jacobians``,
``num_lu`` and ``num_newton_failures``. The flow is the traced tape of
:mod:`linfa.integrate.trace` (the one flow definition, recorded once and
checked against the field), interpreted as on the explicit compiled path
(:mod:`linfa.integrate.compiled`).

**Linear algebra.** LAPACK's ``sgetrf``/``sgetrs`` (``dgetrf``/``dgetrs`` after
a fallback to double precision), the very routines :func:`scipy.linalg.lu_factor`
and :func:`scipy.linalg.lu_solve` call, reached from numba through
:func:`numba.extending.get_cython_function_address` on
``scipy.linalg.cython_lapack`` and passed to the loop as ctypes function
pointers (so numba can cache it on disk). The iteration matrix is built
row-major over ``J`` as :func:`linfa.dual.jacobian` writes it,

.. math::

    M_{ij} = δ_{ij} - c\\, J_{ij}, \\qquad
    \\texttt{buffer}[i D + j] = M_{ij}
    \\quad\\text{(in single precision: } \\operatorname{fl}_{32}(J_{ij}) \\operatorname{fl}_{32}(-c) + 1 \\text{)},

which LAPACK, reading column-major, sees as ``M^T``: it factors ``M^T`` and
solves with its transpose (``getrs`` with ``"T"``), so no copy or transpose of
``J`` or ``M`` is ever made. The numpy route builds the same buffer and
factors it the same way, and a single-precision solve scales its
right-hand side ``r`` by ``2^{-e}``, ``e`` the binary exponent of ``max |r_i|``,
as :meth:`linfa.integrate.linsolve.InstanceLU.solve` does. So both routes
factor the same matrices with the same LAPACK, and their results differ only
by the rounding of the flow (the tape against numpy) and of the norms.

**Jacobians in Python.** ``J`` is :func:`linfa.dual.jacobian` of the flow, as
on the numpy route. The loop runs each instance until it needs a new ``J``
(at the start, or after a Newton failure with an old one) or ends, and
returns; its state lives in arrays (time, step, order, the differences,
``c_{LU}``, the rate, the precision, the next save point, the counters). The
driver (:func:`run`) computes the Jacobians of the instances that asked for
one, a few instances a call (:data:`JACOBIAN_ENTRIES`), and re-enters the
loop, which resumes each instance where it stopped: a few rounds (as many as
the most Jacobians an instance needs), each one compiled stretch per
instance.

**Memory.** An instance leaves the loop only for a new ``J`` (whose LU is then
rebuilt) or at its end, so its LU never outlives one call of the loop and its
``J`` only the call it was computed for. Each thread therefore has one
workspace, reused by every group it runs: the ``J`` of one group's instances
(:func:`linfa.dual.jacobian` writes them there) and one LU. A batch costs its
states, differences and save points, not ``K`` Jacobians and LUs (``2 D² x 8``
bytes per instance, 655 MB on W4's 64 instances). That matters beyond the
memory itself: the first write to a page costs about 9 ms per MB on the 2-core
virtual machines this project is measured on (an ``np.zeros`` of 80 MB filled
for the first time: 0.72 s, then 3.5 ms), and W4 spent 16% of its time there
before.

**Threads.** The instances are cut into contiguous groups, each as many as
one Jacobian call takes (at most ``K / threads``), handed to
:func:`threads_for` threads as they free up; a thread runs its group's rounds
(loop, then the group's Jacobians) on its own, with BLAS and LAPACK on one
thread each (``threadpoolctl``; the loop holds no GIL). Instances never
interact and each one's arithmetic does not depend on its group, so the
results are bit-identical for any number of threads and any batch.

**Agreement with the numpy route.** Every operation of the method is done
alike on both routes, the norms summed in index order and the step rules'
powers taken by the C library's ``pow`` on both (the numpy route calls
:func:`linfa.integrate._kernels.rms_rows` and :func:`~linfa.integrate._kernels.power`:
numpy's SIMD ``power`` differs from ``pow`` in the last bit for about 6% of
arguments on AVX-512 machines). So where the tape evaluates the flow exactly
as numpy does (elementwise operations: Robertson, Van der Pol) the two routes
are bit for bit identical over whole runs of thousands of steps. A flow with
matrix products rounds differently (the tape's loops against BLAS), and a
stiff BDF run amplifies rounding: its error estimate ``C_k d`` is a small
difference of large terms (``d = c f - ψ - …``), so the step sizes carry
rounding noise of about ``1e-8`` relative, and over many steps a decision (a
Newton iteration more or less, an order, a refactorisation) comes out
differently on the two routes, after which they agree to the tolerance only.
The numpy route does the same to itself: started from ``y0 (1 + 2^{-52})`` it
drifts as far (measured on W4 and on small FA, linear and Van der Pol
problems: the two distances are of the same size).

**Cost.** Per W4 instance (``D = 800``, one core, data in cache;
``bench_stiff.py`` prints this breakdown; 2026-12-02 02:46 UTC): 33.6 LUs of
5.5 ms (0.18 s, two thirds), 1024 triangular solves of 0.069 ms (0.07 s), 1024
flow evaluations of 4 µs, and 11.8 Jacobians of 1.7 ms (0.020 s,
:func:`linfa.dual.jacobian` in Python, one instance a call). On all 64 W4
instances (2 cores, ``bench_stiff.py``, one run, 03:12 UTC): 11.0 s against
31.2 s on the numpy route (2.8x), with about the same LUs (33.3 against 33.5)
and Jacobians (11.6 against 11.7) per instance and about the same steps (634
against 635: rounding steers some decisions, see above), final states within
1.5e-6 of ``rodas4`` at rtol 1e-8. Before the workspaces (see "Memory") the
same run took 13.3 s. Both routes pay the same LUs and Jacobians; the
compiled one saves the solves streaming each LU from memory and the Python of
each step. The first call on a machine compiles the loop (10–20 s on a loaded
2-core machine); numba caches it on disk next to this file, and later
processes load it in about 0.5 s.

What it takes: what the explicit compiled path takes of the problem
(:func:`linfa.integrate.compiled.plan_field`: no ``until`` events, float64
arguments, a field the tracer follows and whose tape reproduces it). Anything
else runs on the numpy ``bdf`` (``kernel="compiled"`` then raises, saying why).
"""

from __future__ import annotations

import functools
import math
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from linfa import dual
from linfa._validate import count
from linfa.integrate._kernels import _compiled
from linfa.integrate.bdf import BDF
from linfa.integrate.compiled import (
    Plan,
    _all_finite,
    _field,
    _initial_h,
    _initial_h0,
    _nmax,
    _nmin,
    _spacing,
    fortran_routine,
    plan_field,
)
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.rosenbrock import _at
from linfa.integrate.schedule import COMPILED_THREAD_WORK, cores
from linfa.integrate.solution import Solution, Status

__all__ = ["JACOBIAN_ENTRIES", "plan", "run", "threads_for"]


#: Jacobian entries (instances x D²) per call of :func:`linfa.dual.jacobian` at most (at least one instance):
#: its temporaries grow with the batch, and past the cache each call streams them. Measured on W4 (D = 800,
#: one BLAS thread): 2.4 ms per Jacobian one instance at a time, 4.4 two at a time, 7.3 by four, 10-13 by
#: eight or sixteen. Small states (D = 36: 809 instances) are still batched, saving the Python of each call.
JACOBIAN_ENTRIES = 2**20

# --------------------------------------------------------------------------- LAPACK
def _lapack(name: str, n_args: int) -> Any:
    """The Fortran LAPACK routine ``name`` of scipy (every argument a pointer), as a ctypes function."""
    return fortran_routine("scipy.linalg.cython_lapack", name, n_args)


@functools.cache
def _routines() -> tuple[Any, Any, Any, Any]:
    """``(sgetrf, sgetrs, dgetrf, dgetrs)``, passed to the loop as arguments (not globals: numba caches it)."""
    return _lapack("sgetrf", 6), _lapack("sgetrs", 9), _lapack("dgetrf", 6), _lapack("dgetrs", 9)


# --------------------------------------------------------------------------- state layout
# integer state, one row per instance
_PHASE, _ORDER, _N_EQUAL, _NXT, _N_JAC, _N_LU, _N_NF, _N_ACC, _N_REJ, _N_FEV, _SINGLE, _FRESH, _STATUS = range(13)
_N_INT = 13
# float state
_T, _H, _C_LU, _RATE, _T_FINAL = range(5)
_N_FLOAT = 5
# phases: not started, waiting for a Jacobian, Jacobian supplied, ended
_START, _NEED_J, _HAVE_J, _DONE = range(4)


@_compiled
def _factor(jac: np.ndarray, store: np.ndarray, pv: np.ndarray, c: float, single: bool, D: int, sgetrf: Any,
            dgetrf: Any, ib: np.ndarray) -> None:  # pragma: no cover
    """Factor ``M^T``, ``M = I - c J``, into ``store``, ``pv`` (``jac``: ``J`` row-major, flat).

    ``M`` is built row-major, entry for entry over ``J``: single precision
    ``M_ij = fl32(J_ij) fl32(-c)`` plus 1 on the diagonal, in ``float32``;
    double ``J_ij (-c)`` plus 1. LAPACK reads that buffer column-major, as
    ``M^T``, and factors it (:func:`_solve` then solves with ``M^T`` transposed).
    ``ib = [D, info, 1]``.
    """
    n = D * D
    if single:
        m32 = store[:n]
        mc = np.float32(-c)
        for i in range(n):
            m32[i] = np.float32(jac[i]) * mc
        one = np.float32(1.0)
        for i in range(D):
            m32[i * D + i] = m32[i * D + i] + one
        sgetrf(ib.ctypes, ib.ctypes, m32.ctypes, ib.ctypes, pv.ctypes, ib[1:].ctypes)
    else:
        m64 = store.view(np.float64)[:n]
        mc64 = -c
        for i in range(n):
            m64[i] = jac[i] * mc64
        for i in range(D):
            m64[i * D + i] = m64[i * D + i] + 1.0
        dgetrf(ib.ctypes, ib.ctypes, m64.ctypes, ib.ctypes, pv.ctypes, ib[1:].ctypes)


@_compiled
def _solve(store: np.ndarray, pv: np.ndarray, r: np.ndarray, single: bool, r32: np.ndarray, D: int, sgetrs: Any,
           dgetrs: Any, ib: np.ndarray, trans: np.ndarray) -> None:  # pragma: no cover
    """``r ← M^{-1} r`` with the factorisation of ``M^T`` in ``store``, ``pv`` (``trans``: "T"), in its precision.

    In single precision ``r`` is scaled by ``2^{-e}`` first (``e`` the binary
    exponent of ``max |r_i|``, 0 if that is 0 or not finite), rounded to
    ``float32``, solved, and scaled back.
    """
    n = D * D
    if single:
        top = 0.0
        for i in range(D):
            a = abs(r[i])
            if a != a:
                top = a
                break
            if a > top:
                top = a
        shift = 0
        if np.isfinite(top) and top > 0:
            shift = math.frexp(top)[1]
        for i in range(D):
            r32[i] = np.float32(math.ldexp(r[i], -shift))
        sgetrs(trans.ctypes, ib.ctypes, ib[2:].ctypes, store[:n].ctypes, ib.ctypes, pv.ctypes, r32.ctypes,
               ib.ctypes, ib[1:].ctypes)
        for i in range(D):
            r[i] = math.ldexp(np.float64(r32[i]), shift)
    else:
        dgetrs(trans.ctypes, ib.ctypes, ib[2:].ctypes, store.view(np.float64)[:n].ctypes, ib.ctypes, pv.ctypes,
               r.ctypes, ib.ctypes, ib[1:].ctypes)


@_compiled
def _rescale(dif: np.ndarray, k: int, rho: float, R: np.ndarray, U: np.ndarray, RU: np.ndarray,
             new: np.ndarray) -> None:  # pragma: no cover
    """Rows ``0 .. k`` of ``dif`` to the step ``ρ h``: ``Δ' = (R(ρ) U)^T Δ`` (the sums in the numpy route's order).

    ``R_ij(ρ) = Π_{m=1}^{i} (m - 1 - ρ j) / m`` (``R_{i0} = δ_{i0}``), ``U = R(1)``.
    """
    D = dif.shape[1]
    for j in range(k + 1):
        R[0, j] = 1.0
        U[0, j] = 1.0
    for i in range(1, k + 1):
        R[i, 0] = R[i - 1, 0] * ((i - 1) / i)
        U[i, 0] = U[i - 1, 0] * ((i - 1) / i)
        for j in range(1, k + 1):
            R[i, j] = R[i - 1, j] * ((i - 1 - rho * j) / i)
            U[i, j] = U[i - 1, j] * ((i - 1 - 1.0 * j) / i)
    for i in range(k + 1):
        for j in range(k + 1):
            acc = 0.0
            for m in range(k + 1):
                acc = acc + R[i, m] * U[m, j]
            RU[i, j] = acc
    for i in range(k + 1):
        for q in range(D):
            new[i, q] = 0.0
        for j in range(k + 1):
            w = RU[j, i]
            for q in range(D):
                new[i, q] = new[i, q] + w * dif[j, q]
    for i in range(k + 1):
        for q in range(D):
            dif[i, q] = new[i, q]


@_compiled
def _interpolate(dif: np.ndarray, k: int, t_n: float, h: float, t: float, out: np.ndarray) -> None:  # pragma: no cover
    """``p(t) = Σ_j ∇^j y_n Π_{m<j} (t - t_n + m h) / ((m + 1) h)``: the dense output."""
    D = dif.shape[1]
    x = t - t_n
    for q in range(D):
        out[q] = dif[0, q]
    prod = 1.0
    for j in range(1, k + 1):
        prod = prod * (x + (j - 1) * h) / (j * h)
        for q in range(D):
            out[q] = out[q] + prod * dif[j, q]


@_compiled
def _rms_ratio(coef: float, x: np.ndarray, scale: np.ndarray) -> float:  # pragma: no cover
    """``sqrt(Σ_i (coef x_i / scale_i)² / D)``."""
    D = x.shape[0]
    s = 0.0
    for i in range(D):
        v = coef * x[i] / scale[i]
        s += v * v
    return math.sqrt(s / D)


@_compiled
def _finish(kk: int, code: int, t: float, y: np.ndarray, ist: np.ndarray, fst: np.ndarray,
            y_final: np.ndarray) -> None:  # pragma: no cover
    """Record the end of instance ``kk``."""
    ist[kk, _PHASE] = _DONE
    ist[kk, _STATUS] = code
    fst[kk, _T_FINAL] = t
    for i in range(y.shape[0]):
        y_final[kk, i] = y[i]


@_compiled
def _advance(kk: int, sgetrf: Any, sgetrs: Any, dgetrf: Any, dgetrs: Any, code: np.ndarray, ws: np.ndarray,
             tmp: np.ndarray, out_off: np.ndarray, leaf_off: np.ndarray, leaf_size: np.ndarray, args: np.ndarray,
             iprm: np.ndarray, prm: np.ndarray, coef: np.ndarray, ts: np.ndarray, ist: np.ndarray, fst: np.ndarray,
             dif: np.ndarray, y: np.ndarray, jac: np.ndarray, store: np.ndarray, pv: np.ndarray, save: np.ndarray,
             y_final: np.ndarray, work: np.ndarray, r32: np.ndarray, small: np.ndarray, ib: np.ndarray,
             trans: np.ndarray) -> None:  # pragma: no cover
    """Step instance ``kk`` until it needs a new Jacobian (phase ``_NEED_J``) or ends (``_DONE``).

    ``iprm = [D, A, max_steps, max_order, M, success, max_steps, non_finite,
    stalled]`` (the last four: status codes); ``prm = [t0, t1, rtol, atol,
    safety, min_factor, max_factor, dt0 (NaN: chosen), q_max,
    grow_above, newton_tol]``; ``coef = [α, γ, C]`` by order (``3 x 6``).
    """
    D = iprm[0]
    A = iprm[1]
    max_steps = iprm[2]
    max_order = iprm[3]
    maxiter = iprm[4]
    st_success = iprm[5]
    st_max_steps = iprm[6]
    st_non_finite = iprm[7]
    st_stalled = iprm[8]
    t0 = prm[0]
    t1 = prm[1]
    rtol = prm[2]
    atol = prm[3]
    safety = prm[4]
    min_f = prm[5]
    max_f = prm[6]
    dt0 = prm[7]
    q_max = prm[8]
    grow_above = prm[9]
    newton_tol = prm[10]
    alpha = coef[0]
    gamma = coef[1]
    econst = coef[2]
    t_off = D + A
    nsave = ts.shape[0]
    yp = work[0]
    psi = work[1]
    d = work[2]
    yn = work[3]
    fp = work[4]
    r = work[5]
    sc = work[6]
    esc = work[7]
    R = small[0]
    U = small[1]
    RU = small[2]
    new = work[8:]  # rescaled rows (max_order + 1 of them)
    dk = dif[kk]
    yk = y[kk]
    for i in range(A):
        ws[D + i] = args[kk, i]

    phase = ist[kk, _PHASE]
    if phase == _START:
        _field(code, ws, tmp, D, t_off, out_off, leaf_off, leaf_size, t0, yk, fp)
        ist[kk, _N_FEV] += 1
        bad = not _all_finite(fp)
        if t1 == t0:
            _finish(kk, st_success, t0, yk, ist, fst, y_final)
            return
        interval = t1 - t0
        if dt0 == dt0:
            h = dt0
        else:  # StepSizeController.initial_step, error order 1
            h0, d1 = _initial_h0(yk, fp, atol, rtol, interval)
            for i in range(D):
                yn[i] = yk[i] + h0 * fp[i]
            _field(code, ws, tmp, D, t_off, out_off, leaf_off, leaf_size, t0 + h0, yn, r)
            ist[kk, _N_FEV] += 1
            h, fin = _initial_h(yk, fp, r, h0, d1, atol, rtol, 1, interval)
            if not fin:
                bad = True
        if bad:
            _finish(kk, st_non_finite, t0, yk, ist, fst, y_final)
            return
        fst[kk, _T] = t0
        fst[kk, _H] = h
        for i in range(D):
            dk[0, i] = yk[i]
            dk[1, i] = h * fp[i]
        ist[kk, _PHASE] = _NEED_J
        return
    if phase != _HAVE_J:  # waiting for a Jacobian, or ended
        return
    ist[kk, _FRESH] = 1  # the Jacobian just supplied is at the current state; the kept LU is stale
    fst[kk, _C_LU] = np.nan

    two_m = 2 * maxiter
    while True:
        t = fst[kk, _T]
        h = fst[kk, _H]
        k = ist[kk, _ORDER]
        # the last step lands on t1
        last = t + h >= t1 - 4 * _spacing(max(abs(t1), 1.0))
        if last:
            _rescale(dk, k, (t1 - t) / h, R, U, RU, new)
            h = t1 - t
            ist[kk, _N_EQUAL] = 0
        t_new = t1 if last else t + h
        c = h / alpha[k]
        c_lu = fst[kk, _C_LU]
        single = ist[kk, _SINGLE] != 0
        rr = c / c_lu
        contraction = abs(1 - rr) / (1 + rr)
        if not (contraction <= q_max):
            _factor(jac, store, pv, c, single, D, sgetrf, dgetrf, ib)
            c_lu = c
            fst[kk, _RATE] = 1.0
            ist[kk, _N_LU] += 1
            contraction = 0.0
        gain = 2 / (1 + c / c_lu)
        # predictor
        for i in range(D):
            yp[i] = dk[0, i]
            psi[i] = gamma[1] * dk[1, i]
        for i in range(D):
            yp[i] = yp[i] + dk[1, i]
        for j in range(2, k + 1):
            gj = gamma[j]
            for i in range(D):
                yp[i] = yp[i] + dk[j, i]
                psi[i] = psi[i] + gj * dk[j, i]
        ak = alpha[k]
        for i in range(D):
            psi[i] = psi[i] / ak
            sc[i] = atol + rtol * np.abs(yp[i])
            d[i] = 0.0
            yn[i] = yp[i]
        # the Newton iteration
        rate = _nmax(fst[kk, _RATE], contraction)  # the kept LU's contraction, at least
        tol = newton_tol / econst[k]
        conv = False
        finite = True
        iters = 0
        norm_old = np.nan
        for it in range(maxiter):
            _field(code, ws, tmp, D, t_off, out_off, leaf_off, leaf_size, t_new, yn, fp)
            ist[kk, _N_FEV] += 1
            if not _all_finite(fp):
                finite = False
                break
            for i in range(D):
                r[i] = c * fp[i] - psi[i] - d[i]
            _solve(store, pv, r, single, r32, D, sgetrs, dgetrs, ib, trans)
            for i in range(D):
                r[i] = r[i] * gain
            dy_norm = _rms_ratio(1.0, r, sc)
            iters += 1
            diverging = not np.isfinite(dy_norm)
            if it:
                rate = _nmax(0.3 * rate, dy_norm / norm_old)
                diverging = diverging or dy_norm > 2 * norm_old
            if diverging:
                break
            for i in range(D):
                yn[i] = yn[i] + r[i]
                d[i] = d[i] + r[i]
            left = rate / (1 - rate) if rate < 0.5 else 1.0  # min(1, ρ/(1 - ρ)); 1 for ρ >= 1 or NaN
            if dy_norm * left <= tol:
                conv = True
                break
            norm_old = dy_norm
        fst[kk, _RATE] = rate
        fst[kk, _C_LU] = c_lu
        # the error test
        for i in range(D):
            esc[i] = atol + rtol * np.abs(yn[i])
        errn = _rms_ratio(econst[k], d, esc) if conv else np.nan
        acc = conv and errn <= 1
        if acc:
            ist[kk, _N_ACC] += 1
        else:
            ist[kk, _N_REJ] += 1
        # Newton failures: a fresh J; with a fresh one, double precision; then half the step
        refresh = False
        if not conv:
            ist[kk, _N_NF] += 1
            if ist[kk, _FRESH] == 0:
                refresh = True
            elif single:
                ist[kk, _SINGLE] = 0
                fst[kk, _C_LU] = np.nan
            else:
                fst[kk, _C_LU] = np.nan
                _rescale(dk, k, 0.5 * h / h, R, U, RU, new)
                h = 0.5 * h
                ist[kk, _N_EQUAL] = 0
        sfty = safety * (two_m + 1) / (two_m + iters)
        if conv and not acc:  # the error test failed
            fac = _nmax(min_f, sfty * errn ** (-1.0 / (k + 1)))
            h_new = h * fac
            _rescale(dk, k, h_new / h, R, U, RU, new)
            h = h_new
            ist[kk, _N_EQUAL] = 0
        keep = True
        if acc:
            dk_k1 = dk[k + 1]
            dk_k2 = dk[k + 2]
            for i in range(D):
                dk_k2[i] = d[i] - dk_k1[i]
                dk_k1[i] = d[i]
            for j in range(k, -1, -1):
                for i in range(D):
                    dk[j, i] = dk[j, i] + dk[j + 1, i]
            t = t_new
            for i in range(D):
                yk[i] = yn[i]
            ist[kk, _FRESH] = 0
            fst[kk, _T] = t
            nxt = ist[kk, _NXT]
            while nxt < nsave and ts[nxt] <= t_new:
                tj = ts[nxt]
                if tj == t_new:
                    for i in range(D):
                        save[kk, nxt, i] = yk[i]
                else:
                    _interpolate(dk, k, t_new, h, tj, save[kk, nxt])
                nxt += 1
            ist[kk, _NXT] = nxt
            if t_new >= t1:
                _finish(kk, st_success, t1, yk, ist, fst, y_final)
                keep = False
            ist[kk, _N_EQUAL] += 1
            if keep and ist[kk, _N_EQUAL] >= k + 1:  # order and step
                e_low = _rms_ratio(econst[k - 1], dk[k], esc) if k > 1 else np.inf
                top = min(k + 2, max_order + 2)
                e_high = _rms_ratio(econst[min(k + 1, 5)], dk[top], esc) if k < max_order else np.inf
                f_low = e_low ** (-1.0 / k)
                f_here = errn ** (-1.0 / (k + 1))
                f_high = e_high ** (-1.0 / (k + 2))
                best = 0  # np.argmax: the first largest, or the first NaN
                f_best = f_low
                if f_best == f_best:
                    if f_here != f_here or f_here > f_best:
                        best = 1
                        f_best = f_here
                    if f_best == f_best and (f_high != f_high or f_high > f_best):
                        best = 2
                        f_best = f_high
                factor = _nmin(max_f, sfty * f_best)
                if best != 1 or factor >= grow_above:
                    k = k + best - 1
                    ist[kk, _ORDER] = k
                    h_new = h * factor
                    _rescale(dk, k, h_new / h, R, U, RU, new)
                    h = h_new
                    ist[kk, _N_EQUAL] = 0
        fst[kk, _H] = h
        if keep and not acc and h <= 16 * _spacing(max(abs(t), 1.0)):
            _finish(kk, st_stalled if finite else st_non_finite, t, yk, ist, fst, y_final)
            keep = False
        if keep and ist[kk, _N_ACC] + ist[kk, _N_REJ] >= max_steps:
            _finish(kk, st_max_steps, t, yk, ist, fst, y_final)
            keep = False
        if not keep:
            return
        if refresh:
            ist[kk, _PHASE] = _NEED_J
            return


@_compiled
def _advance_all(idx: np.ndarray, sgetrf: Any, sgetrs: Any, dgetrf: Any, dgetrs: Any,
                 code: np.ndarray, template: np.ndarray, tmp_size: int, out_off: np.ndarray, leaf_off: np.ndarray,
                 leaf_size: np.ndarray, args: np.ndarray, iprm: np.ndarray, prm: np.ndarray, coef: np.ndarray,
                 ts: np.ndarray, ist: np.ndarray, fst: np.ndarray, dif: np.ndarray, y: np.ndarray,
                 save: np.ndarray, y_final: np.ndarray, jac: np.ndarray, lu: np.ndarray,
                 piv: np.ndarray) -> None:  # pragma: no cover
    """:func:`_advance` for each instance ``idx[j]``, its ``J`` in ``jac[j]``, one LU buffer for all.

    An instance leaves :func:`_advance` only for a new ``J`` (whose LU is then
    rebuilt) or at its end, so its LU never outlives the call and one buffer
    (``lu``, ``piv``) serves the instances one after another.
    """
    D = iprm[0]
    max_order = iprm[3]
    ws = template.copy()
    tmp = np.empty(max(tmp_size, 1))
    work = np.empty((8 + max_order + 1, D))
    r32 = np.empty(D, dtype=np.float32)
    small = np.empty((3, max_order + 1, max_order + 1))
    ib = np.array([D, 0, 1], dtype=np.int32)
    trans = np.array([84], dtype=np.uint8)  # "T": the LU is of M^T
    for j in range(idx.shape[0]):
        _advance(idx[j], sgetrf, sgetrs, dgetrf, dgetrs, code, ws, tmp, out_off, leaf_off, leaf_size, args, iprm,
                 prm, coef, ts, ist, fst, dif, y, jac[j], lu, piv, save, y_final, work, r32, small, ib,
                 trans)


# --------------------------------------------------------------------------- the Python side
def plan(p: Problem, *, check: bool = True) -> tuple[Plan | None, str]:
    """Trace ``p``'s field for the compiled ``bdf``: ``(plan, "")`` or ``(None, reason)`` (see the module docstring)."""
    return plan_field(p, check=check)


def threads_for(K: int, D: int, total_flops: int, threads: int | None = None) -> int:
    """Threads for ``K`` instances: one per core once ``K (total_flops + D²)`` reaches ``COMPILED_THREAD_WORK``.

    A step's work is about one flow evaluation (``total_flops`` multiply–adds,
    :meth:`linfa.integrate.trace.Tape.matmul_flops`) and a triangular solve
    (``D²``) per Newton iteration; ``threads`` overrides (at most ``K``).
    """
    K = count("K", K)
    D = count("D", D)
    total_flops = count("total_flops", total_flops)
    if threads is None:
        threads = cores() if K * (total_flops + D * D) >= COMPILED_THREAD_WORK else 1
    else:
        threads = count("threads", threads, minimum=1)
    return max(1, min(threads, K))


def run(p: Problem, m: BDF, plan: Plan, threads: int = 1) -> Solution:
    """Integrate ``p`` with the NDF/BDF method ``m`` on the compiled path (see the module docstring).

    Parameters
    ----------
    p : Problem
    m : BDF
    plan : Plan
        From :func:`plan` (checked).
    threads : int
        Threads the instances are spread over (bit-identical results for any count).

    Returns
    -------
    Solution
        As :func:`linfa.integrate.bdf.run`'s (stats ``num_jacobians``,
        ``num_lu``, ``num_newton_failures``), with ``stats["kernel"] = "compiled"``.
    """
    threads = count("threads", threads, minimum=1)
    K, D = p.K, p.layout.D
    ctl = p.controller
    tp = plan.tape
    raw = Raw(p)
    raw.n_calls = 1  # the check of the tape against the field
    R = m.max_order + 3
    ist = np.zeros((K, _N_INT), dtype=np.int64)
    ist[:, _PHASE] = _START
    ist[:, _ORDER] = 1
    ist[:, _SINGLE] = int(m.single_lu)
    ist[:, _STATUS] = -1
    nxt0 = int(np.searchsorted(p.ts, p.t0, side="right"))
    ist[:, _NXT] = nxt0
    raw.save[:, :nxt0] = p.y0[:, None, :]
    fst = np.zeros((K, _N_FLOAT))
    fst[:, _C_LU] = np.nan
    fst[:, _RATE] = 1.0
    fst[:, _T_FINAL] = np.nan
    dif = np.zeros((K, R, D))
    y = p.y0.copy()
    y_final = np.full((K, D), np.nan)
    st = Status
    iprm = np.array([D, tp.A, p.max_steps, m.max_order, m.newton_maxiter, st.success, st.max_steps,
                     st.non_finite, st.stalled], dtype=np.int64)
    prm = np.array([p.t0, p.t1, ctl.rtol, ctl.atol, ctl.safety, ctl.min_factor, ctl.max_factor,
                    np.nan if ctl.dt0 is None else ctl.dt0, m.lu_contraction, m.grow_above, m.newton_tol])
    coef = np.ascontiguousarray(np.stack([m.alpha, m.gamma, m.error_const]))
    common: tuple[Any, ...] = (
        *_routines(), tp.code, tp.template, plan.tmp_size, tp.out_off, plan.leaf_off, plan.leaf_size, plan.args,
        iprm, prm, coef, np.ascontiguousarray(p.ts), ist, fst, dif, y, raw.save, y_final,
    )
    args_all = p.make_args()
    advance: Any = _advance_all

    per_call = max(1, JACOBIAN_ENTRIES // (D * D))
    n = max(1, min(int(threads), K))
    size = min(per_call, -(-K // n))  # a Jacobian call's worth of instances, at most an n-th of them
    blocks = [np.arange(lo, min(lo + size, K)) for lo in range(0, K, size)]
    # one workspace per thread, reused by its groups (see "Memory" in the module docstring): the
    # Jacobians of a group's instances (row-major, written there by dual.jacobian), and one LU
    # (float32, or float64 in the same bytes) with its pivots
    spaces: queue.SimpleQueue[tuple[np.ndarray, np.ndarray, np.ndarray]] = queue.SimpleQueue()
    for _ in range(min(n, len(blocks))):
        spaces.put((np.empty((size, D, D)), np.empty(2 * D * D, dtype=np.float32), np.empty(D, dtype=np.int32)))

    def block(rows: np.ndarray) -> int:
        """Integrate the group ``rows`` to their ends; returns the number of Jacobian calls."""
        jac, lu, piv = spaces.get()
        try:
            calls = 0
            active = np.ascontiguousarray(rows)
            while active.size:
                # each round: the instances that asked for a Jacobian get it in jac[:n], in order
                advance(active, *common, jac.reshape(size, D * D), lu, piv)
                active = np.ascontiguousarray(active[ist[active, _PHASE] == _NEED_J])
                if active.size:
                    with np.errstate(all="ignore"):
                        dual.jacobian(_at(p, fst[active, _T], args_all.take(active)), 0.0, p.layout.views(y[active]),
                                      batch_ndim=1, out=jac[: active.size])
                    calls += 1
                    ist[active, _N_JAC] += 1
                    ist[active, _PHASE] = _HAVE_J
        finally:
            spaces.put((jac, lu, piv))
        return calls

    with threadpool_limits(1, user_api="blas"):
        if n == 1:
            raw.n_calls += sum(block(b) for b in blocks)
        else:
            with ThreadPoolExecutor(n) as pool:
                raw.n_calls += sum(f.result() for f in [pool.submit(block, b) for b in blocks])
    raw.n_accepted[:] = ist[:, _N_ACC]
    raw.n_rejected[:] = ist[:, _N_REJ]
    raw.n_fev[:] = ist[:, _N_FEV]
    status = ist[:, _STATUS]
    # endings in the order the batched route meets them (fewer steps first, max_steps last within a step)
    order = np.lexsort((np.arange(K), status == int(Status.max_steps), raw.n_accepted + raw.n_rejected))
    raw.finish(order, status[order], fst[order, _T_FINAL], y_final[order])
    sol = raw.solution(m.name)
    for key, col in (("num_jacobians", _N_JAC), ("num_lu", _N_LU), ("num_newton_failures", _N_NF)):
        sol.stats[key] = ist[:, col].copy().reshape(p.batch_shape)
    sol.stats["kernel"] = "compiled"
    return sol
