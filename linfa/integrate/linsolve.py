"""Per-instance dense LU factorisations for the stiff methods: :class:`InstanceLU`, :func:`instance_lu`.

Every stiff method solves, per instance ``k``, linear systems with a dense
``D x D`` matrix ``M_k`` (``I/(hγ) - J_k`` for the Rosenbrock methods,
``I - c_k J_k`` for BDF), factored once and solved many times. The matrices
are built row-major (C order), which LAPACK reads column-major as ``M_k^T``,
so ``M_k^T`` is what gets factored, in place, and the solves use its
transpose (``getrs`` with ``"T"``):

.. math::

    M_k^T = P_k L_k U_k , \\qquad M_k u_k = r_k \\;\\Leftrightarrow\\;
    u_k = P_k L_k^{-T} U_k^{-T} r_k ,

by LAPACK's ``getrf``/``getrs`` (:func:`scipy.linalg.lu_factor`,
:func:`scipy.linalg.lu_solve` with ``trans=1``), one instance at a time; the
kept factors (:attr:`InstanceLU.lus`) are those of ``M_k^T``. Factoring
``M_k`` itself would first copy it to column-major order (2.5 MB per
factorisation on W4), and the compiled ``bdf``
(:mod:`linfa.integrate.compiled_bdf`) factors the same buffer the same way.

How the work runs: inside :func:`instance_lu` OpenBLAS is limited to one
thread (``threadpoolctl``) and the instances are spread over
:func:`linfa.integrate.schedule.cores` threads instead (contiguous slices of the
instances that need a factorisation or a solve, one slice a thread). Measured
on the 800 x 800 matrices of W4 on 2 shared cores (the machine also running
another job): one LU took 90-215 ms with OpenBLAS's own two threads, 18-35 ms
on one thread, and 16-27 ms per LU with two instances at a time on two
threads; a pair of triangular solves 0.45-0.8 ms against 0.4-0.6 ms (one
thread) and 0.4-0.5 ms (two). OpenBLAS's threads contend on a busy machine
and gain little on a quiet one at this size. Whole W4 runs (t up to 1e6) in
the same process: ``bdf`` on 8 instances 2.2x and ``ros34pw2`` on 2 instances
3.6x faster than with OpenBLAS's own threads and the instances in series.

A matrix may be factored in single precision (``float32``; :mod:`linfa.integrate.bdf`
does, for its Newton iteration matrix): it is then solved in single precision,
with each right-hand side scaled by a power of two first.

Every factorisation and solve runs on a single BLAS thread, whatever thread
runs it, so results are bit-identical for any number of threads and any
batch (and do not depend on OpenBLAS's own thread count). The limit is
process-wide while the context is open: other code running BLAS in other
threads at the same time runs single-threaded too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_limits

from linfa.integrate.schedule import cores

__all__ = ["SERIAL_BLAS", "THREAD_DIM", "InstanceLU", "instance_lu"]

#: Matrices smaller than this (D) are factored and solved in the calling thread: hand-offs to a pool
#: cost more than they save (measured: ros34pw2 on 16 FA (6, 4, 3) instances, D = 36, ran 1.3-1.6x
#: slower with two threads; bdf 1.1-1.3x).
THREAD_DIM = 256

#: Limit BLAS to one thread inside :func:`instance_lu` (set False to leave OpenBLAS its own threads, to measure).
SERIAL_BLAS = True


class InstanceLU:
    """The LU factorisation of one dense matrix per instance, kept until replaced or dropped.

    Parameters
    ----------
    K : int
        Instances (flat numbers ``0 .. K-1``).
    pool : ThreadPoolExecutor, optional
        Threads to spread the instances over (None: the calling thread).
    threads : int
        Slices the instances are cut into (the pool's size).
    """

    def __init__(self, K: int, pool: ThreadPoolExecutor | None = None, threads: int = 1) -> None:
        self.lus: list[Any] = [None] * K
        self.pool = pool
        self.threads = max(1, threads) if pool is not None else 1

    def each(self, n: int, work: Callable[[np.ndarray], None]) -> None:
        """Run ``work(positions)`` over ``0 .. n-1`` cut into contiguous slices, one a thread.

        ``work`` must write only its own positions' results (as :meth:`factor`
        and :meth:`solve` do); the stiff methods also compute their Jacobians this way.
        """
        if self.pool is None or n < 2 or self.threads < 2:
            work(np.arange(n))
            return
        parts = [s for s in np.array_split(np.arange(n), min(self.threads, n)) if s.size]
        for future in [self.pool.submit(work, s) for s in parts]:
            future.result()

    def factor(self, rows: np.ndarray, matrix: Callable[[int], np.ndarray]) -> None:
        """Factor (the transpose of) ``matrix(i)``, the matrix of instance ``rows[i]``, for every ``i``.

        Parameters
        ----------
        rows : ndarray of int, shape (n,)
            Flat instance numbers.
        matrix : callable
            ``matrix(i) -> ndarray (D, D)``, in the precision to factor in;
            called from the worker threads (so building the matrix is spread
            too). It must return a new array that nothing else reads: a
            C-order array is overwritten by its factors (a view of stored
            data would be destroyed).
        """
        def work(pos: np.ndarray) -> None:
            with np.errstate(all="ignore"):
                for i in pos:  # M^T: the transpose of a C-order array is a Fortran-order view, factored in place
                    self.lus[int(rows[i])] = sla.lu_factor(matrix(int(i)).T, overwrite_a=True, check_finite=False)

        self.each(len(rows), work)

    def solve(self, rows: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``u`` with ``M_k u_k = rhs_k`` for each instance ``k = rows[i]``.

        Parameters
        ----------
        rows : ndarray of int, shape (n,)
        rhs : ndarray, shape (n, D)

        Returns
        -------
        ndarray, shape (n, D)
            Like ``rhs``. An instance factored in single precision is solved in
            single precision, with ``rhs_k`` scaled by a power of two that
            brings its largest entry near 1 (no overflow or underflow in the
            cast), and the solution scaled back.
        """
        out = np.empty_like(rhs)

        def work(pos: np.ndarray) -> None:
            with np.errstate(all="ignore"):  # thread-local: NaN/inf rows come out non-finite, not as warnings
                for i in pos:
                    lu = self.lus[int(rows[i])]
                    r = rhs[i]
                    if lu[0].dtype == r.dtype:
                        out[i] = sla.lu_solve(lu, r, trans=1, check_finite=False)
                        continue
                    top = np.max(np.abs(r))
                    shift = int(np.frexp(top)[1]) if np.isfinite(top) and top > 0 else 0
                    u = sla.lu_solve(lu, np.ldexp(r, -shift).astype(lu[0].dtype), trans=1, check_finite=False)
                    out[i] = np.ldexp(u.astype(r.dtype), shift)

        self.each(len(rows), work)
        return out

    def drop(self, rows: np.ndarray) -> None:
        """Free the factorisations of ``rows`` (instances that finished)."""
        for row in rows:
            self.lus[int(row)] = None


@contextmanager
def instance_lu(K: int, D: int, threads: int | None = None) -> Iterator[InstanceLU]:
    """An :class:`InstanceLU` for ``K`` instances, with BLAS on one thread and the instances on threads.

    Parameters
    ----------
    K : int
    D : int
        The matrices' size: below :data:`THREAD_DIM`, one thread.
    threads : int, optional
        Threads for the instances (default :func:`~linfa.integrate.schedule.cores`,
        at most ``K``; 1 for matrices smaller than :data:`THREAD_DIM`).

    Notes
    -----
    With :data:`SERIAL_BLAS` set to False, BLAS keeps its own threads (the
    results then depend on OpenBLAS's thread count; for measuring the rule).
    """
    n = max(1, min(cores() if threads is None else threads, K, K if D >= THREAD_DIM else 1))
    with threadpool_limits(1, user_api="blas") if SERIAL_BLAS else nullcontext():
        if n == 1:
            yield InstanceLU(K)
        else:
            with ThreadPoolExecutor(n) as pool:
                yield InstanceLU(K, pool, n)
