"""Compiled loops for the engine's elementwise work (numba, released GIL).

A step of an explicit Runge–Kutta method spends, outside the vector field,
most of its time streaming the stage buffer through memory: each stage input
``y + Σ_j a_ij hk_j`` and each write of ``h k_i``. As chains of numpy calls
these make one pass over memory per operation and a temporary for each
product; the loops here make one pass (a stage combination one per four
terms) and no temporaries.

Every loop does the same floating-point operations, in the same order, as
the numpy reference next to it in :mod:`linfa.integrate.methods`
(:func:`~linfa.integrate.methods.lincomb`), with no reassociation and no
fused multiply-add (numba's default, no ``fastmath``): the results are
bit-identical to the reference and to any split of the batch, which
``tests/test_integrate_kernels.py`` checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

__all__ = ["lincomb_nz", "power", "rms_rows", "scale_rows", "scaled_error", "sum_squares"]


def _compiled(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` without the GIL, cached on disk when numba finds a writable place for it.

    ``error_model="numpy"``: a division by zero gives inf/NaN, as numpy would, never an exception.
    """
    try:
        return njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location (read-only install, no home): compile per process
        return njit(cache=False, nogil=True, error_model="numpy")(fn)


@_compiled
def _terms(rows: np.ndarray, idx: np.ndarray, coeffs: np.ndarray, j: int, g: int, out: np.ndarray,
           first: bool) -> None:  # pragma: no cover
    """Add the ``g`` (1 to 4) terms ``j .. j + g - 1`` into ``out`` in one pass (``first``: ``out`` starts at 0).

    Each element is summed left to right, ``((out + r_j c_j) + r_{j+1} c_{j+1}) + ...``,
    with no ``out +`` when ``first``: the order of a term-by-term loop.
    """
    N = out.shape[0]
    a = rows[idx[j]]
    ca = coeffs[j]
    if g == 1:
        if first:
            for i in range(N):
                out[i] = a[i] * ca
        else:
            for i in range(N):
                out[i] = out[i] + a[i] * ca
        return
    b = rows[idx[j + 1]]
    cb = coeffs[j + 1]
    if g == 2:
        if first:
            for i in range(N):
                out[i] = a[i] * ca + b[i] * cb
        else:
            for i in range(N):
                out[i] = (out[i] + a[i] * ca) + b[i] * cb
        return
    c = rows[idx[j + 2]]
    cc = coeffs[j + 2]
    if g == 3:
        if first:
            for i in range(N):
                out[i] = (a[i] * ca + b[i] * cb) + c[i] * cc
        else:
            for i in range(N):
                out[i] = ((out[i] + a[i] * ca) + b[i] * cb) + c[i] * cc
        return
    d = rows[idx[j + 3]]
    cd = coeffs[j + 3]
    if first:
        for i in range(N):
            out[i] = ((a[i] * ca + b[i] * cb) + c[i] * cc) + d[i] * cd
    else:
        for i in range(N):
            out[i] = (((out[i] + a[i] * ca) + b[i] * cb) + c[i] * cc) + d[i] * cd


@_compiled
def lincomb_nz(idx: np.ndarray, coeffs: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out = Σ_j coeffs[j] rows[idx[j]]`` in the order of ``j``; ``coeffs`` non-zero.

    Up to four terms per pass over memory (:func:`_terms`), each element
    summed left to right as a term-by-term loop would: ``n`` terms stream
    ``n`` rows and write ``out`` ``ceil(n / 4)`` times (against ``n`` writes
    and ``n - 1`` reads of ``out`` one term a pass).

    Parameters
    ----------
    idx : ndarray of int64, shape (n,), n >= 1
    coeffs : ndarray of float64, shape (n,)
        The first is applied as ``rows[idx[0]] * coeffs[0]`` (exact when 1).
    rows : ndarray, shape (m, N), C-contiguous
    out : ndarray, shape (N,), C-contiguous
    """
    n = idx.shape[0]
    for j in range(0, n, 4):
        _terms(rows, idx, coeffs, j, min(4, n - j), out, j == 0)


@_compiled
def scale_rows(src: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out[k, i] = src[k, i] * h[k]``: a vector field's output times each instance's step.

    Parameters
    ----------
    src : ndarray, shape (K, n)
    h : ndarray, shape (K,)
    out : ndarray, shape (K, n); may be a strided view (a leaf of the stage buffer)
    """
    for k in range(src.shape[0]):
        hk = h[k]
        for i in range(src.shape[1]):
            out[k, i] = src[k, i] * hk


@_compiled
def scaled_error(idx: np.ndarray, coeffs: np.ndarray, rows: np.ndarray, y: np.ndarray, y_new: np.ndarray,
                 rtol: float, atol: float, out: np.ndarray, sq: np.ndarray) -> None:  # pragma: no cover
    """``out = (Σ_j coeffs[j] rows[idx[j]]) / max(|y| rtol + atol, |y_new| rtol + atol)`` and each row's ``Σ out²``.

    The error estimate of a step divided by the error scale of each component
    (as ``lincomb`` then ``np.maximum`` and a division, bit for bit; a NaN in
    ``y_new`` gives a NaN scale, as ``np.maximum`` would), and the sum of its
    squares over each instance's ``D = N / len(sq)`` components by
    :func:`sum_squares`, as the compiled path sums them, so that both routes
    compute the same norm.

    Parameters
    ----------
    idx, coeffs : ndarray, shape (n,)
        Rows and non-zero weights of the estimate.
    rows : ndarray, shape (m, N)
    y, y_new : ndarray, shape (N,)
        The states before and after the step (``K`` instances of ``D`` components).
    out : ndarray, shape (N,)
    sq : ndarray, shape (K,)
        The sums of squares, per instance.
    """
    lincomb_nz(idx, coeffs, rows, out)
    for i in range(out.shape[0]):
        out[i] = out[i] / _scale(y[i], y_new[i], rtol, atol)
    K = sq.shape[0]
    D = out.shape[0] // K if K else 0
    for k in range(K):
        sq[k] = sum_squares(out[k * D:(k + 1) * D])


@_compiled
def sum_squares(x: np.ndarray) -> float:  # pragma: no cover
    """``Σ x_i²`` in four interleaved partial sums ``((s_0 + s_1) + (s_2 + s_3))`` (so that the loop
    vectorises), ``s_r`` over ``i ≡ r (mod 4)`` but the last ``n mod 4`` terms, which go to ``s_0``.

    The explicit methods' error norm on both routes (the compiled loop and :func:`scaled_error`).
    """
    n = x.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += x[i] * x[i]
        s1 += x[i + 1] * x[i + 1]
        s2 += x[i + 2] * x[i + 2]
        s3 += x[i + 3] * x[i + 3]
        i += 4
    while i < n:
        s0 += x[i] * x[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@_compiled
def _scale(a: float, b: float, rtol: float, atol: float) -> float:  # pragma: no cover
    """``max(|a| rtol + atol, |b| rtol + atol)``, NaN if either is NaN (as ``np.maximum``)."""
    sa = abs(a) * rtol + atol
    sb = abs(b) * rtol + atol
    if sa != sa or sb != sb:
        return np.nan
    return sa if sa >= sb else sb


@_compiled
def rms_rows(x: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out[k] = sqrt(Σ_d x[k, d]² / D)``, each sum in index order (no pairwise or SIMD reordering, no FMA).

    The order the compiled ``bdf`` loop sums its norms in, so that the numpy
    route computes them bit for bit alike (:func:`linfa.integrate.controller.rms`).
    """
    K, D = x.shape
    for k in range(K):
        s = 0.0
        for d in range(D):
            v = x[k, d]
            s += v * v
        out[k] = np.sqrt(s / D)


@_compiled
def _power(x: np.ndarray, e: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for i in range(x.shape[0]):
        out[i] = x[i] ** e[i]


def power(x: Any, e: Any) -> np.ndarray:
    """``x ** e`` elementwise, by the C library's ``pow``: what the compiled loops compute.

    numpy's own ``power`` on arrays uses SIMD code on AVX-512 machines that
    differs from ``pow`` in the last bit for about 6% of arguments; the step
    size rules of the two ``bdf`` routes call this instead, so that they take
    the same steps.

    Parameters
    ----------
    x, e : array_like
        Broadcast together.

    Returns
    -------
    ndarray of float64
    """
    xb, eb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(e, dtype=np.float64))
    out = np.empty(xb.shape)
    _power(np.array(xb, copy=True).reshape(-1), np.array(eb, copy=True).reshape(-1), out.reshape(-1))
    return out
