"""The compiled path: a whole adaptive Runge–Kutta integration per instance in one numba function.

For small problems the batched numpy engine (:mod:`linfa.integrate._engine`)
is bound by the Python of each step (about 0.15 ms), not by arithmetic. Here
the vector field is traced once into a :class:`~linfa.integrate.trace.Tape`
(the one flow definition, recorded, not rewritten), and a static compiled
function — :func:`_solve_range`, part of the package source, so that numba's
disk cache keeps it across processes — integrates each instance from ``t0``
to ``t1``, interpreting the tape for every flow evaluation.

It runs the engine's algorithm, formula for formula: the stage inputs
``y + Σ_j a_ij hk_j``, the scaled error ``Σ_j e_j hk_j / max(atol + rtol|y|,
atol + rtol|y_new|)`` and its RMS norm, the step-size rule and the initial
step of :class:`~linfa.integrate.StepSizeController`, the last-step rule
(a remainder within four ulps of the step ends the integration), the save
points from the method's polynomial dense output, ``max_steps`` with the
stiffness flag (``h ρ`` at the stability limit), and the ``non_finite`` and
``stalled`` endings. The stage inputs, new state and scaled error are the
engine's own kernels (:func:`linfa.integrate._kernels.lincomb_nz`,
:func:`~linfa.integrate._kernels.scaled_error`: four interleaved partial
sums per instance) over the same rows ``[y, hk_0, ..., hk_S]``, and the
step factor is the C library's ``pow`` on both routes; only the order of
additions inside a matrix product differs (and, for a large product, where
``h`` and the sum it feeds are applied: :func:`fuse`). So a field of elementwise operations gives bit for bit the
engine's steps, final and saved states (tested), and one with matrix
products agrees to rounding: on a well-conditioned problem the same steps
and states to about ``1e-12`` relative; where a decision sits on
the edge (a trajectory that amplifies rounding, a field with jumps such as
``sign``) the two may take different, equally valid steps. Results do not
depend on how the instances are split over threads.

Large flows. The loop allocates its buffers once per call, nothing per step
or per flow evaluation (the engine allocates the flow's temporaries at every
evaluation, and on these VMs fresh pages cost page faults: at FA 1 x 512 its
runs took 0.2–0.4 s of system time each when JAX ran in the same process).
Products of more than :data:`BLAS_IN_PLACE_FLOPS` multiply–adds call BLAS's
``dgemm`` with the use of the product folded into its ``α`` and ``β``
(:func:`fuse`): ``Σyx − W Σxx`` is one call on a copy of ``Σyx``, and a weight
flow that is a product is written into the stage row already times ``h``.
A stored transpose is read in place. When the products are that large,
OpenBLAS runs each of them on all cores, and the loop runs on one thread
(:func:`linfa.integrate.schedule.compiled_threads`). Measured (FA ``n-n-n``,
tsit5, t in [0, 20], 2 cores shared with other work, medians of interleaved
runs): 1 x 128 compiled 0.08–0.11 s against the engine's 0.11–0.12 s; 1 x 512
3.5–3.6 s against 3.9–4.7 s; 16 x 128 1.2–1.35 s against 1.5–1.8 s. The
folding itself was within the noise of these machines: at 1 x 512 and
16 x 128 the fastest of ten runs 7–8% faster with it, the medians 1% and 9%.

Cost: the first call on a machine compiles the functions below (10–20 s on
a loaded 2-core machine); numba caches them on disk next to this file, and
later processes load them in about 0.2–0.5 s.

What it takes (:func:`plan_compiled` says why not, otherwise): an adaptive
:class:`~linfa.integrate.AbstractRungeKutta` with one error estimate, the
default error norm and a polynomial dense output without extra stages
(``tsit5``, ``dopri5``, your own tableau of that kind); no ``until`` events;
float64 arguments; a field the tracer can follow, whose tape reproduces the
field on the first instance (relative ``1e-12``). Anything else goes to the
numpy engine.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np
from numba.extending import get_cython_function_address
from threadpoolctl import threadpool_limits

from linfa.integrate._engine import STIFF_FRACTION
from linfa.integrate._kernels import _compiled, _scale, lincomb_nz, scaled_error, sum_squares
from linfa.integrate.methods import AbstractRungeKutta, _PolynomialDense
from linfa.integrate.problem import Problem, Raw
from linfa.integrate.schedule import BLAS_THREADED_FLOPS
from linfa.integrate.solution import Status
from linfa.integrate.trace import ADD, DIV, MATMUL, SUB, TRANSPOSE, Tape, Untraceable, trace, validate

__all__ = ["ACCUMULATE", "BLAS_IN_PLACE_FLOPS", "BLAS_MIN_FLOPS", "COPY", "GEMM", "NEGATE", "SMALL_STATE", "TO_LEAF",
           "Plan", "check_plan", "fortran_routine", "fuse", "method_support", "plan_compiled", "plan_field", "run"]


# --------------------------------------------------------------------------- the interpreter
#: Matrix products with at least this many multiply–adds go to BLAS (``np.dot``), smaller ones to loops.
BLAS_MIN_FLOPS = 512
#: Products with more multiply–adds than this read a stored transpose in place (no copy into ``tmp``), and
#: the explicit loop calls ``dgemm`` for them with its α and β (:func:`fuse`).
BLAS_IN_PLACE_FLOPS = 2**18
#: States of at most this many entries form their combinations in the loop itself, one term a pass
#: (:func:`_combine_rows`): a call of the engine's kernels costs more than such a pass (about 0.3 µs a step
#: for the five stage inputs of ``tsit5`` at 32 entries, against 0.06 µs). Larger states take the kernels
#: (:func:`~linfa.integrate._kernels.lincomb_nz`, four terms a pass). Same arithmetic, same bits either way.
SMALL_STATE = 2048
#: Op codes of a fused tape (:func:`fuse`), besides the tape's own (:data:`linfa.integrate.trace.OPS`).
GEMM, COPY = 8, 9
#: Flags of a ``GEMM`` row (bits 0 and 1 as ``MATMUL``'s): ``β = 1`` (add to what ``out`` holds), ``α = -1``,
#: and "write output leaf ``code[r, 8]`` of ``f``, times ``h``" instead of the workspace.
ACCUMULATE, NEGATE, TO_LEAF = 4, 8, 16


# --------------------------------------------------------------------------- fusing products with their use
def fuse(tape: Tape, leaf_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tape as the explicit loop runs it: large products call BLAS with their use folded in.

    A product of more than :data:`BLAS_IN_PLACE_FLOPS` multiply–adds ``P = op(A) op(B)`` costs
    BLAS a pass over ``P`` to zero it, and each use of ``P`` another pass. Where ``P`` is read
    by one operation only, ``dgemm``'s ``α`` and ``β`` do that operation instead:

    * ``X - P`` and ``X + P`` / ``P + X`` (same shapes): ``X`` is copied into the result
      (``COPY``) and ``dgemm`` adds ``∓P`` to it (``β = 1``, ``α = ∓1``), at the place of the
      sum (the tape writes every slot once, so ``A`` and ``B`` are unchanged there);
    * an output leaf: ``dgemm`` writes ``h P`` straight into the stage row (``α = h``), and the
      loop does not copy that leaf.

    Each entry is then summed in another order than ``P`` then the sum (BLAS adds its blocks
    of the inner dimension into the output one after another), so the results agree with the
    plain tape to rounding; :func:`check_plan` checks the fused tape against the field too.

    Parameters
    ----------
    tape : Tape
    leaf_size : ndarray of int64, shape (n_leaves,)

    Returns
    -------
    code : ndarray of int64, shape (n_ops', 9)
        ``[op, out, a, b, m, k, n, flags, leaf]`` per operation (``leaf``: -1 but for ``TO_LEAF``).
    direct : ndarray of bool, shape (n_leaves,)
        The leaves the products write themselves.
    """
    n_leaves = len(leaf_size)
    mm = tape.code[tape.code[:, 0] == MATMUL]
    if not (mm[:, 4] * mm[:, 5] * mm[:, 6] > BLAS_IN_PLACE_FLOPS).any():  # nothing to fuse: the tape as it is
        plain = np.concatenate([tape.code, np.full((tape.code.shape[0], 1), -1, dtype=np.int64)], axis=1)
        return plain, np.zeros(n_leaves, dtype=np.bool_)
    rows = tape.code.tolist()
    leaves = [(int(o), int(o) + int(z)) for o, z in zip(tape.out_off.tolist(), leaf_size.tolist(), strict=True)]

    def reads(row: list[int]) -> list[tuple[int, int]]:
        op, _, a, b, m, k, n, fl = row
        if op == MATMUL:
            return [(a, a + m * k), (b, b + k * n)]
        if ADD <= op <= DIV:
            return [(a, a + (1 if fl & 1 else n)), (b, b + (1 if fl & 2 else n))]
        return [(a, a + (m * n if op == TRANSPOSE else n))]

    def overlaps(lo: int, hi: int, spans: list[tuple[int, int]]) -> bool:
        return any(lo < e and s < hi for s, e in spans)

    def large(row: list[int]) -> bool:
        return row[0] == MATMUL and row[4] * row[5] * row[6] > BLAS_IN_PLACE_FLOPS

    def readers(lo: int, hi: int) -> int:
        return sum(overlaps(lo, hi, reads(r)) for r in rows) + sum(overlaps(lo, hi, [sp]) for sp in leaves)

    producer = {row[1]: q for q, row in enumerate(rows) if large(row)}
    folded: dict[int, tuple[int, int, int]] = {}  # sum row -> (product row, the other operand, flags)
    for r, (op, _, a, b, _, _, n, fl) in enumerate(rows):
        if op not in (ADD, SUB) or fl:
            continue
        for p, x in ((b, a),) if op == SUB else ((b, a), (a, b)):
            q = producer.get(p)
            if q is None or q in {v[0] for v in folded.values()}:
                continue
            mm, nn = rows[q][4], rows[q][6]
            if mm * nn == n and readers(p, p + n) == 1 and not overlaps(x, x + n, [(p, p + n)]):
                folded[r] = (q, x, ACCUMULATE | (NEGATE if op == SUB else 0))
                break
    moved = {v[0] for v in folded.values()}
    direct = np.zeros(len(leaves), dtype=np.bool_)
    code: list[list[int]] = []
    for r, row in enumerate(rows):
        op, out, a, b, m, k, n, fl = row
        if r in moved:
            continue
        if r in folded:
            q, x, extra = folded[r]
            pa, pb, pm, pk, pn, pfl = rows[q][2], rows[q][3], rows[q][4], rows[q][5], rows[q][6], rows[q][7]
            code.append([COPY, out, x, 0, 0, 0, n, 0, -1])
            code.append([GEMM, out, pa, pb, pm, pk, pn, pfl | extra, -1])
        elif large(row):
            hit = [i for i, sp in enumerate(leaves) if overlaps(out, out + m * n, [sp])]
            if len(hit) == 1 and leaves[hit[0]] == (out, out + m * n) and readers(out, out + m * n) == 1:
                direct[hit[0]] = True
                code.append([GEMM, out, a, b, m, k, n, fl | TO_LEAF, hit[0]])
            else:
                code.append([GEMM, out, a, b, m, k, n, fl, -1])
        else:
            code.append([*row, -1])
    return np.array(code, dtype=np.int64).reshape(-1, 9), direct


@functools.cache
def _dgemm() -> Any:
    """BLAS's ``dgemm`` of scipy (every argument a pointer), as a ctypes function: passed to the loops as an
    argument (not a global: numba caches them)."""
    return fortran_routine("scipy.linalg.cython_blas", "dgemm", 13)


def fortran_routine(module: str, name: str, n_args: int) -> Any:
    """The Fortran routine ``name`` of scipy's Cython ``module`` (every argument a pointer), as a ctypes function."""
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n_args))(get_cython_function_address(module, name))


@_compiled
def _matmul(ws: np.ndarray, out: int, a: int, b: int, m: int, k: int, n: int, fl: int,
            tmp: np.ndarray) -> None:  # pragma: no cover
    """``ws[out] (m, n) = op(A) (m, k) @ op(B) (k, n)``; ``fl`` bit 0 (1): ``A`` (``B``) stored transposed.

    Large products call BLAS (``np.dot``) with ``B`` laid out ``(k, n)``: a stored transpose is copied
    into ``tmp`` first (OpenBLAS's small-matrix kernels are slower on it), unless the product has more
    than :data:`BLAS_IN_PLACE_FLOPS` multiply–adds (then the copy would be a pass over memory for
    nothing: BLAS reads it transposed at full speed). Small products run as loops.
    """
    if m * k * n >= BLAS_MIN_FLOPS:
        O2 = ws[out : out + m * n].reshape((m, n))
        if fl & 2 and m * k * n > BLAS_IN_PLACE_FLOPS:  # BLAS reads the stored transpose as it is
            Bt = ws[b : b + k * n].reshape((n, k)).T
            if fl & 1:
                np.dot(ws[a : a + m * k].reshape((k, m)).T, Bt, O2)
            else:
                np.dot(ws[a : a + m * k].reshape((m, k)), Bt, O2)
        elif fl & 2:
            for j in range(n):
                for p in range(k):
                    tmp[p * n + j] = ws[b + j * k + p]
            Bm = tmp[: k * n].reshape((k, n))
            if fl & 1:
                np.dot(ws[a : a + m * k].reshape((k, m)).T, Bm, O2)
            else:
                np.dot(ws[a : a + m * k].reshape((m, k)), Bm, O2)
        elif fl & 1:
            np.dot(ws[a : a + m * k].reshape((k, m)).T, ws[b : b + k * n].reshape((k, n)), O2)
        else:
            np.dot(ws[a : a + m * k].reshape((m, k)), ws[b : b + k * n].reshape((k, n)), O2)
        return
    Av = ws[a : a + m * k]
    Bv = ws[b : b + k * n]
    O = ws[out : out + m * n]
    # entry (i, p) of op(A) is Av[i * si + p * sp]: A stored (m, k), or (k, m) when transposed
    si, sp = (1, m) if fl & 1 else (k, 1)
    if fl & 2 == 0:  # rows of the output accumulate rows of B
        for i in range(m):
            Oi = O[i * n : i * n + n]
            for j in range(n):
                Oi[j] = 0.0
            for p in range(k):
                aip = Av[i * si + p * sp]
                Bp = Bv[p * n : p * n + n]
                for j in range(n):
                    Oi[j] += aip * Bp[j]
    else:  # B stored transposed: rows of op(A) against rows of the stored B, as dot products
        for i in range(m):
            for j in range(n):
                Bj = Bv[j * k : j * k + k]
                acc = 0.0
                for p in range(k):
                    acc += Av[i * si + p * sp] * Bj[p]
                O[i * n + j] = acc


@_compiled
def _eval_tape(code: np.ndarray, ws: np.ndarray, tmp: np.ndarray) -> None:  # pragma: no cover
    """Run the tape's operations on one instance's workspace ``ws`` (``tmp``: scratch for a transpose)."""
    for r in range(code.shape[0]):
        op = code[r, 0]
        out = code[r, 1]
        a = code[r, 2]
        b = code[r, 3]
        m = code[r, 4]
        k = code[r, 5]
        n = code[r, 6]
        fl = code[r, 7]
        if op == 0:
            _matmul(ws, out, a, b, m, k, n, fl, tmp)
        elif op <= 4:  # ADD, SUB, MUL, DIV with a scalar operand broadcast (stride 0)
            O = ws[out : out + n]
            if fl == 0:
                X = ws[a : a + n]
                Y = ws[b : b + n]
                if op == 1:
                    for i in range(n):
                        O[i] = X[i] + Y[i]
                elif op == 2:
                    for i in range(n):
                        O[i] = X[i] - Y[i]
                elif op == 3:
                    for i in range(n):
                        O[i] = X[i] * Y[i]
                else:
                    for i in range(n):
                        O[i] = X[i] / Y[i]
            elif fl == 1:  # a scalar first operand
                x = ws[a]
                Y = ws[b : b + n]
                if op == 1:
                    for i in range(n):
                        O[i] = x + Y[i]
                elif op == 2:
                    for i in range(n):
                        O[i] = x - Y[i]
                elif op == 3:
                    for i in range(n):
                        O[i] = x * Y[i]
                else:
                    for i in range(n):
                        O[i] = x / Y[i]
            else:  # a scalar second operand (or both scalars)
                X = ws[a : a + (1 if fl & 1 else n)]
                y = ws[b]
                sa = 0 if fl & 1 else 1
                if op == 1:
                    for i in range(n):
                        O[i] = X[i * sa] + y
                elif op == 2:
                    for i in range(n):
                        O[i] = X[i * sa] - y
                elif op == 3:
                    for i in range(n):
                        O[i] = X[i * sa] * y
                else:
                    for i in range(n):
                        O[i] = X[i * sa] / y
        elif op == 5:  # NEG
            O = ws[out : out + n]
            X = ws[a : a + n]
            for i in range(n):
                O[i] = -X[i]
        elif op == 6:  # SIGN (NaN stays NaN, as numpy's)
            O = ws[out : out + n]
            X = ws[a : a + n]
            for i in range(n):
                x = X[i]
                O[i] = 1.0 if x > 0 else (-1.0 if x < 0 else (0.0 if x == 0 else x))
        else:  # TRANSPOSE: stored (m, n) -> (n, m)
            O = ws[out : out + m * n]
            X = ws[a : a + m * n]
            for i in range(m):
                for j in range(n):
                    O[j * m + i] = X[i * n + j]


@_compiled
def _gemm(ws: np.ndarray, C: np.ndarray, a: int, b: int, m: int, k: int, n: int, fl: int, alpha: float,
          beta: float, dgemm: Any, isc: np.ndarray, dsc: np.ndarray, csc: np.ndarray) -> None:  # pragma: no cover
    """``C (m, n) ← α op(A) op(B) + β C`` by BLAS's ``dgemm``, all row-major (``fl`` as :func:`_matmul`).

    A row-major ``C`` is the column-major ``C^T = op(B)^T op(A)^T``, so ``dgemm`` gets ``B``
    first: a stored ``(k, n)`` ``B`` is, column-major, ``op(B)^T`` already ("N", leading
    dimension ``n``), a stored transpose ``(n, k)`` is ``op(B)`` ("T", ``k``); likewise ``A``
    ("N", ``k``, or "T", ``m``). ``isc`` (int32, 6), ``dsc`` (2), ``csc`` (uint8, 2): scratch
    for the arguments, which Fortran takes by reference.
    """
    csc[0] = 84 if fl & 2 else 78
    csc[1] = 84 if fl & 1 else 78
    isc[0] = n
    isc[1] = m
    isc[2] = k
    isc[3] = k if fl & 2 else n
    isc[4] = m if fl & 1 else k
    isc[5] = n
    dsc[0] = alpha
    dsc[1] = beta
    dgemm(csc.ctypes, csc[1:].ctypes, isc.ctypes, isc[1:].ctypes, isc[2:].ctypes, dsc.ctypes, ws[b:].ctypes,
          isc[3:].ctypes, ws[a:].ctypes, isc[4:].ctypes, dsc[1:].ctypes, C.ctypes, isc[5:].ctypes)


@_compiled
def _eval_fused(code: np.ndarray, ws: np.ndarray, tmp: np.ndarray, h: float, f: np.ndarray,
                leaf_off: np.ndarray, dgemm: Any, isc: np.ndarray, dsc: np.ndarray,
                csc: np.ndarray) -> None:  # pragma: no cover
    """Run a fused tape (:func:`fuse`) on ``ws``; a product flagged as output leaf ``q`` goes to ``f``, times ``h``.

    The tape's own operations run in stretches by :func:`_eval_tape` (one call for a tape with nothing fused).
    """
    r0 = 0
    n_rows = code.shape[0]
    for r in range(n_rows):
        op = code[r, 0]
        if op < GEMM:
            continue
        if r > r0:
            _eval_tape(code[r0:r], ws, tmp)
        r0 = r + 1
        if op == GEMM:
            out = code[r, 1]
            m = code[r, 4]
            n = code[r, 6]
            fl = code[r, 7]
            alpha = -1.0 if fl & NEGATE else 1.0
            beta = 1.0 if fl & ACCUMULATE else 0.0
            if fl & TO_LEAF:
                lo = leaf_off[code[r, 8]]
                _gemm(ws, f[lo : lo + m * n], code[r, 2], code[r, 3], m, code[r, 5], n, fl, alpha * h, beta, dgemm,
                      isc, dsc, csc)
            else:
                _gemm(ws, ws[out : out + m * n], code[r, 2], code[r, 3], m, code[r, 5], n, fl, alpha, beta, dgemm,
                      isc, dsc, csc)
        else:  # COPY
            out = code[r, 1]
            a = code[r, 2]
            for i in range(code[r, 6]):
                ws[out + i] = ws[a + i]
    if r0 < n_rows:
        _eval_tape(code[r0:], ws, tmp)


@_compiled
def _field(code: np.ndarray, ws: np.ndarray, tmp: np.ndarray, D: int, t_off: int, out_off: np.ndarray,
           leaf_off: np.ndarray, leaf_size: np.ndarray, t: float, x: np.ndarray,
           f: np.ndarray) -> None:  # pragma: no cover
    """``f = vf(t, x)`` for one instance: load ``x`` and ``t`` into the workspace, run the tape, gather."""
    for i in range(D):
        ws[i] = x[i]
    ws[t_off] = t
    _eval_tape(code, ws, tmp)
    for q in range(out_off.shape[0]):
        o = out_off[q]
        lo = leaf_off[q]
        for i in range(leaf_size[q]):
            f[lo + i] = ws[o + i]


@_compiled
def _field_scaled(code: np.ndarray, ws: np.ndarray, tmp: np.ndarray, t_off: int, out_off: np.ndarray,
                  leaf_off: np.ndarray, leaf_size: np.ndarray, direct: np.ndarray, t: float, h: float,
                  f: np.ndarray, dgemm: Any, isc: np.ndarray, dsc: np.ndarray,
                  csc: np.ndarray) -> None:  # pragma: no cover
    """``f = vf(t, x) · h`` for one instance whose state ``x`` is already in the workspace (``ws[:D]``).

    ``code`` is a fused tape (:func:`fuse`): the leaves marked in ``direct`` are written into ``f``
    by their products, already times ``h``; the others are copied from the workspace times ``h``.
    """
    ws[t_off] = t
    _eval_fused(code, ws, tmp, h, f, leaf_off, dgemm, isc, dsc, csc)
    for q in range(out_off.shape[0]):
        if direct[q]:
            continue
        n = leaf_size[q]
        src = ws[out_off[q] : out_off[q] + n]
        dst = f[leaf_off[q] : leaf_off[q] + n]
        for i in range(n):
            dst[i] = src[i] * h


@_compiled
def _evaluate(code: np.ndarray, template: np.ndarray, tmp_size: int, D: int, A: int, out_off: np.ndarray,
              leaf_off: np.ndarray, leaf_size: np.ndarray, y: np.ndarray, args: np.ndarray,
              t: np.ndarray) -> np.ndarray:  # pragma: no cover
    """The compiled interpreter on a batch ``y (m, D)``, ``args (m, A)``, ``t (m,)``: ``(m, D)``."""
    m = y.shape[0]
    out = np.empty((m, D))
    ws = template.copy()
    tmp = np.empty(max(tmp_size, 1))
    for r in range(m):
        for i in range(A):
            ws[D + i] = args[r, i]
        _field(code, ws, tmp, D, D + A, out_off, leaf_off, leaf_size, t[r], y[r], out[r])
    return out


@_compiled
def _evaluate_fused(code: np.ndarray, template: np.ndarray, tmp_size: int, D: int, A: int, out_off: np.ndarray,
                    leaf_off: np.ndarray, leaf_size: np.ndarray, direct: np.ndarray, y: np.ndarray,
                    args: np.ndarray, t: np.ndarray, dgemm: Any) -> np.ndarray:  # pragma: no cover
    """:func:`_evaluate` with a fused tape, as the explicit loop evaluates it (:func:`_field_scaled`, ``h = 1``)."""
    m = y.shape[0]
    out = np.empty((m, D))
    ws = template.copy()
    tmp = np.empty(max(tmp_size, 1))
    isc = np.empty(6, dtype=np.int32)
    dsc = np.empty(2)
    csc = np.empty(2, dtype=np.uint8)
    for r in range(m):
        for i in range(A):
            ws[D + i] = args[r, i]
        for i in range(D):
            ws[i] = y[r, i]
        _field_scaled(code, ws, tmp, D + A, out_off, leaf_off, leaf_size, direct, t[r], 1.0, out[r], dgemm, isc,
                      dsc, csc)
    return out


# --------------------------------------------------------------------------- elementwise helpers
@_compiled
def _nmin(a: float, b: float) -> float:  # pragma: no cover
    """``np.minimum`` of two numbers (NaN propagates)."""
    if a != a or b != b:
        return np.nan
    return a if a <= b else b


@_compiled
def _nmax(a: float, b: float) -> float:  # pragma: no cover
    """``np.maximum`` of two numbers (NaN propagates)."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@_compiled
def _all_finite(x: np.ndarray) -> bool:  # pragma: no cover
    """Whether every entry of the vector ``x`` is finite."""
    for i in range(x.shape[0]):
        if not np.isfinite(x[i]):
            return False
    return True


@_compiled
def _initial_h0(y: np.ndarray, f0: np.ndarray, atol: float, rtol: float,
                interval: float) -> tuple[float, float]:  # pragma: no cover
    """The first guess of :meth:`~linfa.integrate.StepSizeController.initial_step`: ``(h0, d1)``.

    With ``s_i = atol + rtol |y_i|``, ``d0 = rms(y / s)``, ``d1 = rms(f0 / s)``:
    ``h0 = 0.01 d0 / d1`` (``1e-6`` when either is below ``1e-5``), at most ``interval``.
    """
    D = y.shape[0]
    s0 = 0.0
    s1 = 0.0
    for i in range(D):
        sc = atol + abs(y[i]) * rtol
        u = y[i] / sc
        v = f0[i] / sc
        s0 += u * u
        s1 += v * v
    d0 = math.sqrt(s0 / D)
    d1 = math.sqrt(s1 / D)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / (d1 if d1 > 0 else 1.0)
    return _nmin(h0, interval), d1


@_compiled
def _initial_h(y: np.ndarray, f0: np.ndarray, f1: np.ndarray, h0: float, d1: float, atol: float, rtol: float,
               q_err: int, interval: float) -> tuple[float, bool]:  # pragma: no cover
    """The initial step from the first guess ``h0`` and ``f1 = f(t0 + h0, y + h0 f0)``: ``(h, finite)``.

    ``d2 = rms((f1 - f0) / s) / h0``; ``h1 = (0.01 / max(d1, d2))^{1/(q_err + 1)}``
    (``max(1e-6, 1e-3 h0)`` when both are below ``1e-15``, ``h0`` when not
    finite); ``h = min(100 h0, h1, interval)``. ``finite``: ``d1`` and ``d2`` are.
    """
    D = y.shape[0]
    s2 = 0.0
    for i in range(D):
        sc = atol + abs(y[i]) * rtol
        u = (f1[i] - f0[i]) / sc
        s2 += u * u
    d2 = math.sqrt(s2 / D) / h0
    dmax = _nmax(d1, d2)
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = _nmax(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / dmax) ** (1.0 / (q_err + 1))
    if not np.isfinite(h1):
        h1 = h0
    return _nmin(_nmin(100 * h0, h1), interval), bool(np.isfinite(d1) and np.isfinite(d2))


@_compiled
def _spacing(x: float) -> float:  # pragma: no cover
    """``np.spacing`` of a non-negative number."""
    return np.nextafter(x, np.inf) - x


@_compiled
def _combine(coef: np.ndarray, rows: np.ndarray, n_rows: int, out: np.ndarray) -> bool:  # pragma: no cover
    """``out = Σ_j coef[j] rows[j]`` over the non-zero ``coef[:n_rows]``, in order; False if all are zero."""
    first = True
    D = out.shape[0]
    for j in range(n_rows):
        c = coef[j]
        if c == 0.0:
            continue
        if first:
            for i in range(D):
                out[i] = rows[j, i] * c
            first = False
        else:
            for i in range(D):
                out[i] = out[i] + rows[j, i] * c
    return not first


@_compiled
def _combine_rows(nz_idx: np.ndarray, nz_coef: np.ndarray, nz_n: np.ndarray, r: int, R: np.ndarray,
                  out: np.ndarray) -> None:  # pragma: no cover
    """``out = Σ_t nz_coef[r, t] R[nz_idx[r, t]]`` over ``t < nz_n[r]`` (at least one), one term a pass,
    each element summed left to right: what :func:`~linfa.integrate._kernels.lincomb_nz` computes."""
    D = out.shape[0]
    j = nz_idx[r, 0]
    c = nz_coef[r, 0]
    for i in range(D):
        out[i] = R[j, i] * c
    for t in range(1, nz_n[r]):
        j = nz_idx[r, t]
        c = nz_coef[r, t]
        for i in range(D):
            out[i] = out[i] + R[j, i] * c


# --------------------------------------------------------------------------- the integration
@_compiled
def _solve_range(lo: int, hi: int, code: np.ndarray, template: np.ndarray, tmp_size: int, iprm: np.ndarray,
                 prm: np.ndarray, out_off: np.ndarray, leaf_off: np.ndarray, leaf_size: np.ndarray,
                 y0: np.ndarray, args: np.ndarray, ts: np.ndarray, nz_idx: np.ndarray, nz_coef: np.ndarray,
                 nz_n: np.ndarray, Bm: np.ndarray, Cm: np.ndarray, Pm: np.ndarray, save: np.ndarray,
                 t_final: np.ndarray, y_final: np.ndarray, status: np.ndarray, n_acc: np.ndarray,
                 n_rej: np.ndarray, n_fev: np.ndarray, stiff: np.ndarray, direct: np.ndarray,
                 dgemm: Any) -> None:  # pragma: no cover
    """Integrate the instances ``lo..hi-1`` (see the module docstring; outputs written in their rows).

    ``iprm = [D, A, max_steps, error_order, stiff_check, small_state]``; ``prm = [t0, t1,
    rtol, atol, safety, min_factor, max_factor, dt0 (NaN: chosen), stiff
    threshold h ρ]``; ``Bm (S,)``, ``Cm (S,)``, ``Pm (S + 1, q)``. The state and the scaled
    stages are the rows ``[y, hk_0, ..., hk_S]`` of one ``(S + 2, D)`` buffer, as in the engine,
    and the combinations of them are ``nz_idx[r, :nz_n[r]]``, ``nz_coef[r, :nz_n[r]]`` (rows and
    non-zero weights, for :func:`~linfa.integrate._kernels.lincomb_nz`): ``r = s`` the input of
    stage ``s`` (``1 <= s < S``), ``r = S`` the new state, ``r = 0`` the error estimate.
    ``code`` is the fused tape (:func:`fuse`), ``direct`` its leaves written by their products,
    ``dgemm`` BLAS's (:func:`_dgemm`).
    """
    D = iprm[0]
    A = iprm[1]
    max_steps = iprm[2]
    q_err = iprm[3]
    stiff_check = iprm[4] != 0
    small = D <= iprm[5]  # combinations in the loop (else the engine's kernels): see SMALL_STATE
    t0 = prm[0]
    t1 = prm[1]
    rtol = prm[2]
    atol = prm[3]
    safety = prm[4]
    min_f = prm[5]
    max_f = prm[6]
    dt0 = prm[7]
    stiff_hrho = prm[8]
    S = Bm.shape[0]
    nq = Pm.shape[1]
    nsave = ts.shape[0]
    expo = -1.0 / (q_err + 1)
    t_off = D + A

    ws = template.copy()
    tmp = np.empty(max(tmp_size, 1))
    R = np.empty((S + 2, D))  # [y, hk_0, ..., hk_S]
    y = R[0]
    hk = R[1:]
    ytmp = np.empty(D)
    f = np.empty(D)
    sq1 = np.empty(1)
    isc = np.empty(6, dtype=np.int32)  # dgemm's arguments by reference
    dsc = np.empty(2)
    csc = np.empty(2, dtype=np.uint8)
    F = np.empty((nq, D))
    X = ws[:D]  # the state the tape reads: each stage input is built here
    ynew = X  # the new state too (the tape never writes its input), until the next step's first stage
    PT = np.ascontiguousarray(Pm.T)  # (q, S + 1)
    n0 = 0
    while n0 < nsave and ts[n0] <= t0:
        n0 += 1

    for kk in range(lo, hi):
        for i in range(A):
            ws[D + i] = args[kk, i]
        for i in range(D):
            y[i] = y0[kk, i]
        t = t0
        nacc = 0
        nrej = 0
        nfev = 0
        saw_nf = False
        rejected = False
        done = False
        code_k = -1
        t_end = t0
        stiff_k = False
        # ---- start: f0, saves at t0, the initial step
        for i in range(D):
            X[i] = y[i]
        _field_scaled(code, ws, tmp, t_off, out_off, leaf_off, leaf_size, direct, t, 1.0, hk[0],
                      dgemm, isc, dsc, csc)
        nfev += 1
        for j in range(n0):
            for i in range(D):
                save[kk, j, i] = y[i]
        nxt = n0
        finite0 = _all_finite(hk[0])
        if not finite0:
            done = True
            code_k = 4
            for i in range(D):
                y_final[kk, i] = y[i]
        if t1 == t0 and not done:
            done = True
            code_k = 0
            for i in range(D):
                y_final[kk, i] = y[i]
        interval = t1 - t0
        if dt0 == dt0:
            h = dt0
        elif interval == 0:
            h = 1.0
        else:
            h0, d1 = _initial_h0(y, hk[0], atol, rtol, interval)
            for i in range(D):
                X[i] = y[i] + h0 * hk[0, i]
            _field_scaled(code, ws, tmp, t_off, out_off, leaf_off, leaf_size, direct, t0 + h0, 1.0, f,
                          dgemm, isc, dsc, csc)
            nfev += 1
            h, fin = _initial_h(y, hk[0], f, h0, d1, atol, rtol, q_err, interval)
            if not fin:
                saw_nf = True
        if t1 > t0:
            h = _nmin(h, t1 - t0)
        for i in range(D):
            hk[0, i] = hk[0, i] * h
        # ---- the steps
        while not done:
            remaining = t1 - t
            last = h >= remaining - 4 * _spacing(max(abs(t), abs(t1)))
            if last:
                hs = remaining
                ratio = hs / h
                for i in range(D):
                    hk[0, i] = hk[0, i] * ratio
            else:
                hs = h
            for s in range(1, S):  # each stage input is built in the workspace, where the tape reads it
                if small:
                    _combine_rows(nz_idx, nz_coef, nz_n, s, R, X)
                else:
                    lincomb_nz(nz_idx[s, : nz_n[s]], nz_coef[s, : nz_n[s]], R, X)
                _field_scaled(code, ws, tmp, t_off, out_off, leaf_off, leaf_size, direct, t + Cm[s] * hs, hs, hk[s],
                              dgemm, isc, dsc, csc)
            if stiff_check and nacc + nrej + 1 >= max_steps:  # the last stage input, for the stiffness test
                for i in range(D):
                    ytmp[i] = X[i]
            if small:
                _combine_rows(nz_idx, nz_coef, nz_n, S, R, ynew)
            else:
                lincomb_nz(nz_idx[S, : nz_n[S]], nz_coef[S, : nz_n[S]], R, ynew)
            t_new = t1 if last else t + hs
            _field_scaled(code, ws, tmp, t_off, out_off, leaf_off, leaf_size, direct, t_new, hs, hk[S],
                          dgemm, isc, dsc, csc)
            nfev += S
            # scaled error and its RMS norm
            if nz_n[0] and small:  # scaled_error's arithmetic, in the loop
                _combine_rows(nz_idx, nz_coef, nz_n, 0, R, f)
                for i in range(D):
                    f[i] = f[i] / _scale(y[i], ynew[i], rtol, atol)
                sq = sum_squares(f)
            elif nz_n[0]:  # as the engine: the estimate over the scale, in one pass, and its sum of squares
                scaled_error(nz_idx[0, : nz_n[0]], nz_coef[0, : nz_n[0]], R, y, ynew, rtol, atol, f, sq1)
                sq = sq1[0]
            else:
                sq = 0.0
            errn = math.sqrt(sq / D)
            finite = np.isfinite(errn)
            acc = errn <= 1.0
            fac = safety * errn ** expo
            if errn == 0:
                fac = max_f
            if acc:
                factor = _nmin(1.0 if rejected else max_f, fac)
            elif finite:
                factor = _nmax(min_f, fac)
            else:
                factor = min_f
            if not finite:
                saw_nf = True
            if acc:
                nacc += 1
            else:
                nrej += 1
            # save points passed by an accepted step: the new state, or the interpolant inside the step
            if acc:
                have_F = False
                while nxt < nsave and ts[nxt] <= t_new:
                    tj = ts[nxt]
                    if tj == t_new:
                        for i in range(D):
                            save[kk, nxt, i] = ynew[i]
                    else:
                        if not have_F:
                            for qq in range(nq):
                                if not _combine(PT[qq], hk, S + 1, F[qq]):
                                    for i in range(D):
                                        F[qq, i] = 0.0
                            have_F = True
                        th = (tj - t) / hs
                        for i in range(D):
                            v = F[nq - 1, i] * th
                            for qq in range(nq - 2, -1, -1):
                                v = (v + F[qq, i]) * th
                            save[kk, nxt, i] = v + y[i]
                    nxt += 1
                if last:
                    done = True
                    code_k = 0
                    t_end = t1
                    for i in range(D):
                        y_final[kk, i] = ynew[i]
                    break
            # move on
            h_next = hs * factor
            if acc:
                for i in range(D):
                    hk[0, i] = hk[S, i] * factor
                    y[i] = ynew[i]
                t = t_new
            else:
                for i in range(D):
                    hk[0, i] = hk[0, i] * factor
            h = h_next
            rejected = not acc
            if h_next < 10 * _spacing(abs(t)):
                done = True
                code_k = 5 if (finite and not saw_nf) else 4
            elif nacc + nrej >= max_steps:
                done = True
                code_k = 2
                if stiff_check:
                    dk = 0.0
                    dy = 0.0
                    for i in range(D):
                        u = hk[S, i] - hk[S - 1, i]
                        v = ynew[i] - ytmp[i]
                        dk += u * u
                        dy += v * v
                    dk = math.sqrt(dk)
                    dy = math.sqrt(dy)
                    h_rho = dk / (dy if dy > 0 else np.inf)
                    stiff_k = np.isfinite(h_rho) and h_rho >= stiff_hrho
            if done:
                t_end = t
                for i in range(D):
                    y_final[kk, i] = y[i]
        status[kk] = code_k
        t_final[kk] = t_end
        n_acc[kk] = nacc
        n_rej[kk] = nrej
        n_fev[kk] = nfev
        stiff[kk] = stiff_k


# --------------------------------------------------------------------------- the Python side
class Plan:
    """A problem ready for the compiled path: its tape and the flat arrays the kernel reads.

    Parameters
    ----------
    tape : Tape
        The traced field.
    args : ndarray, shape (K, A)
        Each instance's arguments, flattened leaf after leaf (shared ones repeated).
    leaf_off, leaf_size : ndarray of int64, shape (n_leaves,)
        Where each state leaf sits in a row of the ``(K, D)`` state, and its size.
    """

    def __init__(self, tape: Tape, args: np.ndarray, leaf_off: np.ndarray, leaf_size: np.ndarray) -> None:
        self.tape = tape
        self.args = args
        self.leaf_off = leaf_off
        self.leaf_size = leaf_size
        mm = tape.code[tape.code[:, 0] == 0]
        self.tmp_size = int(np.max(mm[:, 5] * mm[:, 6], initial=1))
        self.fused, self.direct = fuse(tape, leaf_size)
        #: Whether the fused tape differs from the tape (it does only where a product is large).
        self.fuses = bool((self.fused[:, 0] >= GEMM).any())

    def evaluate(self, y: np.ndarray, args: np.ndarray, t: np.ndarray, *, fused: bool = False) -> np.ndarray:
        """The compiled interpreter on ``y (m, D)``, ``args (m, A)``, ``t (m,)``: the flow ``(m, D)``.

        ``fused``: run the fused tape (:func:`fuse`), as the explicit loop does, instead of the tape.
        """
        tp = self.tape
        y, args, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (y, args, t))
        if fused:
            return _evaluate_fused(self.fused, tp.template, self.tmp_size, tp.D, tp.A, tp.out_off, self.leaf_off,
                                   self.leaf_size, self.direct, y, args, t, _dgemm())
        return _evaluate(tp.code, tp.template, self.tmp_size, tp.D, tp.A, tp.out_off, self.leaf_off,
                         self.leaf_size, y, args, t)


def method_support(m: AbstractRungeKutta) -> str | None:
    """Why the method ``m`` cannot run compiled (``None``: it can)."""
    cls = type(m)
    if not m.adaptive:
        return f"{m.name} is a fixed-step method"
    if len(m.C_extra):
        return f"{m.name} needs extra stages for its dense output"
    if len(m.error_weights) != 1 or cls.error_norm is not AbstractRungeKutta.error_norm:
        return f"{m.name} combines several error estimates"
    if not isinstance(m, _PolynomialDense) or cls.dense_coefficients is not _PolynomialDense.dense_coefficients \
            or cls.dense_eval is not _PolynomialDense.dense_eval:
        return f"{m.name} has its own dense output"
    S = m.n_stages
    if np.shape(m.A) != (S, S) or np.shape(m.C) != (S,) or np.shape(m.error_weights[0]) != (S + 1,) \
            or np.ndim(m.P) != 2 or np.shape(m.P)[0] > S + 1:
        return f"{m.name}: tableau shapes the compiled path does not read"
    return None


def plan_compiled(p: Problem, m: AbstractRungeKutta, *, check: bool = True) -> tuple[Plan | None, str]:
    """Trace ``p``'s field for the compiled path: ``(plan, "")`` or ``(None, reason)``.

    With ``check`` the tape is also validated (:func:`check_plan`); without,
    nothing is compiled yet (the tape alone tells the cost of the field).
    """
    why = method_support(m)
    if why is not None:
        return None, why
    return plan_field(p, check=check, fused=True)


def plan_field(p: Problem, *, check: bool = True, fused: bool = False) -> tuple[Plan | None, str]:
    """Trace ``p``'s field into a :class:`Plan` for a compiled integrator: ``(plan, "")`` or ``(None, reason)``.

    What every compiled integrator needs of the problem, whatever its method
    (:func:`plan_compiled` adds the method's checks; the compiled ``bdf``,
    :mod:`linfa.integrate.compiled_bdf`, uses it as it is): no ``until``
    events, at least one instance, float64 arguments, a traceable field and,
    with ``check``, a tape that reproduces the field (:func:`check_plan`; with
    ``fused``, the fused tape the explicit loop runs too).
    """
    if p.events:
        return None, "stopping conditions (until=) are located by the numpy route"
    if p.K == 0:
        return None, "no instances"
    for i, a in enumerate(p.args):
        if a.dtype != np.float64:
            return None, f"args[{i}] has dtype {a.dtype}, not float64"
    arg_shapes = [tuple(a.shape) if s else tuple(a.shape[1:]) for a, s in zip(p.args, p.args_shared, strict=True)]
    try:
        tape = trace(p.vf, p.layout.cores, arg_shapes, p.K)
    except Untraceable as exc:
        return None, f"the field cannot be traced: {exc}"
    K = p.K
    flat = [np.broadcast_to(a.reshape(1, -1), (K, a.size)) if s else a.reshape(K, -1)
            for a, s in zip(p.args, p.args_shared, strict=True)]
    args = np.ascontiguousarray(np.concatenate(flat, axis=1) if flat else np.zeros((K, 0)))
    layout = p.layout
    plan = Plan(tape, args, np.array(layout.offsets, dtype=np.int64), np.array(layout.sizes, dtype=np.int64))
    if check:
        why = check_plan(p, plan, fused=fused)
        if why:
            return None, why
    return plan, ""


def check_plan(p: Problem, plan: Plan, *, fused: bool = False) -> str:
    """Check a tape once against the real field: ``""`` when it passes, else why not.

    The compiled interpreter (on the tape and, with ``fused``, on the fused
    tape the explicit loop runs, :func:`fuse`; ``bdf`` runs the tape itself)
    and ``p.vf`` are evaluated on the first instance's initial state at
    ``t0`` and must agree to relative ``1e-12`` leaf by leaf
    (:func:`linfa.integrate.trace.validate`).
    """
    layout = p.layout
    t = np.full(1, p.t0)
    # On one BLAS thread when the products are large enough for OpenBLAS to thread them: numpy's
    # OpenBLAS would leave its workers spinning for a while after the check, on the cores the
    # integration's own BLAS calls (scipy's OpenBLAS, through numba) are about to use.
    serial = threadpool_limits(1, user_api="blas") if plan.tape.max_product() > BLAS_THREADED_FLOPS else nullcontext()
    with serial:
        got = plan.evaluate(p.y0[:1], plan.args[:1], t)
        got_fused = plan.evaluate(p.y0[:1], plan.args[:1], t, fused=True) if fused and plan.fuses else None
        with np.errstate(all="ignore"):
            want = p.vf(t, layout.views(p.y0[:1]), p.make_args(np.arange(1)).current())
    want = want if isinstance(want, tuple | list) else ()
    if not validate(layout.views(got), want):
        return "the traced tape does not reproduce the field on the first instance"
    if got_fused is not None and not validate(layout.views(got_fused), want):
        return "the fused tape does not reproduce the field on the first instance"
    return ""


@functools.lru_cache(maxsize=64)
def _combinations(m: AbstractRungeKutta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loop's combinations of the rows ``[y, hk_0, ..., hk_S]``: ``(nz_idx, nz_coef, nz_n)``.

    Row ``r`` of ``nz_idx`` and ``nz_coef`` (``(S + 1, S + 2)``, the first
    ``nz_n[r]`` entries) holds the rows and non-zero weights of: the error
    estimate ``Σ_j e_j hk_j`` (``r = 0``), the input ``y + Σ_{j<s} a_sj hk_j``
    of stage ``s`` (``r = s``, ``1 <= s < S``), and the new state
    ``y + Σ_j b_j hk_j`` (``r = S``): the engine's combinations, term for term.
    Cached per method object (the loop only reads them).
    """
    S = m.n_stages
    weights = [np.concatenate(([0.0], np.asarray(m.error_weights[0], dtype=np.float64)))]
    weights += [np.concatenate(([1.0], np.asarray(m.A[s, :s], dtype=np.float64))) for s in range(1, S)]
    weights.append(np.concatenate(([1.0], np.asarray(m.B, dtype=np.float64))))
    nz_idx = np.zeros((S + 1, S + 2), dtype=np.int64)
    nz_coef = np.zeros((S + 1, S + 2))
    nz_n = np.zeros(S + 1, dtype=np.int64)
    for r, w in enumerate(weights):
        nz = np.flatnonzero(w)
        nz_idx[r, : nz.size] = nz
        nz_coef[r, : nz.size] = w[nz]
        nz_n[r] = nz.size
    return nz_idx, nz_coef, nz_n


def run(p: Problem, m: AbstractRungeKutta, plan: Plan, threads: int = 1) -> Raw:
    """Integrate ``p`` with ``m`` on the compiled path; the instances split over ``threads`` threads.

    Each thread integrates a contiguous range of instances with its own
    workspace; the instances never interact and each one's arithmetic does
    not depend on the range it is in, so the result is bit-identical for any
    number of threads.
    """
    assert isinstance(m, _PolynomialDense), "checked by plan_compiled"
    raw = Raw(p)
    raw.n_calls = 1  # the check of the tape against the field
    K, S = p.K, m.n_stages
    c = p.controller
    tp = plan.tape
    P = np.zeros((S + 1, np.shape(m.P)[1]))
    P[: np.shape(m.P)[0]] = m.P
    stiff_check = S >= 2 and float(m.C[S - 1]) == 1.0
    iprm = np.array([tp.D, tp.A, p.max_steps, m.error_order, int(stiff_check), SMALL_STATE], dtype=np.int64)
    prm = np.array([p.t0, p.t1, c.rtol, c.atol, c.safety, c.min_factor, c.max_factor,
                    np.nan if c.dt0 is None else c.dt0, STIFF_FRACTION * m.stability_limit])
    t_final = np.empty(K)
    y_final = np.empty((K, tp.D))
    status = np.empty(K, dtype=np.int64)
    stiff = np.zeros(K, dtype=np.bool_)
    fl = np.float64
    common: tuple[Any, ...] = (
        plan.fused, tp.template, plan.tmp_size, iprm, prm, tp.out_off, plan.leaf_off, plan.leaf_size, p.y0, plan.args,
        p.ts, *_combinations(m), np.ascontiguousarray(m.B, dtype=fl), np.ascontiguousarray(m.C, dtype=fl), P,
        raw.save, t_final, y_final, status, raw.n_accepted, raw.n_rejected, raw.n_fev, stiff, plan.direct, _dgemm(),
    )
    threads = max(1, min(int(threads), K))
    bounds = np.linspace(0, K, threads + 1).round().astype(int)
    solve: Any = _solve_range
    if threads == 1:
        solve(0, K, *common)
    else:
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(solve, int(lo), int(hi), *common)
                       for lo, hi in itertools.pairwise(bounds) if hi > lo]
            for fut in futures:
                fut.result()
    raw.stiff[:] = stiff
    # Record the endings in the order the engine meets them (it steps all instances in lockstep: fewer
    # steps first, a vanished step before max_steps), so that throw=True raises for the same instance.
    order = np.lexsort((np.arange(K), status == int(Status.max_steps), raw.n_accepted + raw.n_rejected))
    raw.finish(order, status[order], t_final[order], y_final[order])
    return raw
