"""Exact per-instance Jacobians (:func:`linfa.dual.jacobian`): the current implementation against the old one.

The old implementation (dual numbers whose tangent carries the ``N`` unit
directions as a leading axis, ``(N, K, m, n)`` in C order, so that every
product of a tangent with a primal is numpy's stacked small-matmul loop over
``N * K`` tiny matrices, all ``N`` directions in one flow evaluation) is kept
below as :func:`reference_jacobian`, a verbatim copy of ``linfa/dual.py``
before the change (docstrings dropped), and timed in the same process.

Problems: FA on W4's widths (30, 20, 10) (``N = 800`` state entries per
instance; built as ``w4_problem`` of ``bench_stiff.py``) with ``K = 1, 8, 64``
instances, and a small FA problem, widths (6, 4, 3) (``N = 36``), ``K = 16``.
Printed per problem: the best of ``--repeat`` timings of each route (ms per
call and per instance), their ratio old/new, and the largest relative
difference of the two Jacobians; then the same for :func:`linfa.dual.jvp` on
W4 with ``K = 8``, one direction per instance and 64 directions at once.
BLAS runs on ``--blas-threads`` threads (default 1, as the stiff methods
compute Jacobians: one BLAS thread per slice of instances).

Old and new run in turn ``--repeat`` times (default 10) and the best of each
is kept, so that load from other processes hits both alike. The reference
converts its inputs as :func:`linfa.dual.jvp` does but skips its checks (a
few microseconds a call, visible only in the one-direction ``jvp`` row).

Measured on 2026-12-01 (2 shared cores, one busy with another job; 1 BLAS
thread), old/new: W4 K=1 5.8x (17.4 -> 3.0 ms), K=8 5.0x (8.4 -> 1.7 ms
per instance), K=64 4.1x (8.0 -> 1.9 ms per instance), the small FA
problem 1.1x (0.31 -> 0.28 ms); jvp about even (0.8x for one direction,
0.95x for 64). End to end, ``rodas4`` (a Jacobian every step) on 8 W4
instances to t = 1e4 went from 59 s to 30 s.

Run: ``python benchmarks/bench_jacobian.py [--repeat 10]`` on a quiet machine.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from bench_stiff import fa_small, w4_problem  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from linfa.dual import jacobian, jvp  # noqa: E402


# --------------------------------------------------------------------------- the old implementation (reference)
def _parts(x: Any) -> tuple[Any, Any]:
    if isinstance(x, _OldDual):
        return x.primal, x.tangent
    return x, None


class _OldDual:
    __slots__ = ("primal", "tangent")

    def __init__(self, primal: Any, tangent: Any) -> None:
        self.primal = np.asarray(primal)
        self.tangent = np.asarray(tangent)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.primal.shape)

    @property
    def ndim(self) -> int:
        return int(self.primal.ndim)

    def swapaxes(self, a: int, b: int) -> _OldDual:
        return _OldDual(np.swapaxes(self.primal, a, b), np.swapaxes(self.tangent, a, b))

    def __add__(self, other: Any) -> _OldDual:
        return _add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> _OldDual:
        return _add(self, _neg(other))

    def __rsub__(self, other: Any) -> _OldDual:
        return _add(other, _neg(self))

    def __neg__(self) -> _OldDual:
        return _neg(self)

    def __mul__(self, other: Any) -> _OldDual:
        return _mul(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> _OldDual:
        return _OldDual(self.primal / other, self.tangent / other)

    def __matmul__(self, other: Any) -> _OldDual:
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> _OldDual:
        return _matmul(other, self)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _UFUNCS[ufunc.__name__](*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.swapaxes:
            a, i, j = [*args, kwargs.get("axis1"), kwargs.get("axis2")][:3]
            return a.swapaxes(i, j)
        if func is np.shape:
            return args[0].shape
        if func is np.matmul:
            return _matmul(*args)
        raise TypeError(f"numpy.{func.__name__}")


def _add(a: Any, b: Any) -> _OldDual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        tangent = np.broadcast_to(bt, np.broadcast_shapes(bt.shape, np.shape(ap)))
    elif bt is None:
        tangent = np.broadcast_to(at, np.broadcast_shapes(at.shape, np.shape(bp)))
    else:
        tangent = at + bt
    return _OldDual(ap + bp, tangent)


def _neg(a: Any) -> Any:
    if isinstance(a, _OldDual):
        return _OldDual(-a.primal, -a.tangent)
    return -a


def _mul(a: Any, b: Any) -> _OldDual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        return _OldDual(ap * bp, ap * bt)
    if bt is None:
        return _OldDual(ap * bp, at * bp)
    return _OldDual(ap * bp, at * bp + ap * bt)


def _matmul(a: Any, b: Any) -> _OldDual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        return _OldDual(ap @ bp, ap @ bt)
    if bt is None:
        return _OldDual(ap @ bp, at @ bp)
    return _OldDual(ap @ bp, at @ bp + ap @ bt)


def _sign(a: _OldDual) -> _OldDual:
    p = np.sign(a.primal)
    return _OldDual(p, np.zeros(np.broadcast_shapes(a.tangent.shape, p.shape)))


_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": _add, "subtract": lambda a, b: _add(a, _neg(b)), "negative": _neg, "positive": lambda a: a,
    "multiply": _mul, "matmul": _matmul, "sign": _sign,
}


def _reference_jvp(f: Any, t: Any, leaves: tuple[np.ndarray, ...], dirs: list[np.ndarray], nb: int) -> Any:
    # the input handling of jvp (its checks aside): leaves and directions as float arrays, one batch shape
    leaves = tuple(np.asarray(a, dtype=float) for a in leaves)
    batch = np.broadcast_shapes(*(a.shape[:-2] for a in leaves))
    leaves = tuple(np.broadcast_to(a, (*batch, *a.shape[-2:])) for a in leaves)
    dirs = [np.asarray(d, dtype=float) for d in dirs]
    pairs = list(zip(dirs, leaves, strict=True))
    lead = np.broadcast_shapes(*(d.shape[: max(d.ndim - leaf.ndim, 0)] for d, leaf in pairs))
    tang = [np.broadcast_to(d, (*lead, *leaf.shape)) for d, leaf in pairs]
    out = f(t, tuple(_OldDual(a, d) for a, d in zip(leaves, tang, strict=True)))
    res = []
    for o, leaf in zip(out, leaves, strict=True):
        want = (*lead, *leaf.shape)
        tt = o.tangent if isinstance(o, _OldDual) else np.zeros(want)
        res.append(np.broadcast_to(tt, want))
    return res


def reference_jacobian(f: Any, t: Any, y: tuple[np.ndarray, ...], chunk: int | None = None) -> np.ndarray:
    """``linfa.dual.jacobian`` as it was (matrix leaves ``(*batch, m, n)``)."""
    leaves = tuple(np.asarray(a, dtype=float) for a in y)
    batch = np.broadcast_shapes(*(a.shape[:-2] for a in leaves))
    leaves = tuple(np.broadcast_to(a, (*batch, *a.shape[-2:])) for a in leaves)
    nb = len(batch)
    sizes = [int(np.prod(a.shape[nb:])) for a in leaves]
    n = sum(sizes)
    chunk = n if chunk is None else chunk
    offsets = np.cumsum([0, *sizes])
    jac = np.empty((*batch, n, n))
    for start in range(0, n, int(chunk)):
        stop = min(n, start + int(chunk))
        k = stop - start
        eye = np.zeros((k, n))
        eye[np.arange(k), np.arange(start, stop)] = 1.0
        dirs = [eye[:, offsets[i]:offsets[i + 1]].reshape((k,) + (1,) * nb + a.shape[nb:])
                for i, a in enumerate(leaves)]
        der = _reference_jvp(f, t, leaves, dirs, nb)
        flat = np.concatenate([d.reshape((k, *batch, -1)) for d in der], axis=-1)
        jac[..., start:stop] = np.moveaxis(flat, 0, -1)
    return jac


# --------------------------------------------------------------------------- timing
def best_of(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The best of ``repeat`` timings of each of ``fns``, run in turn (so that load changes hit them alike)."""
    for fn in fns:
        fn()
    best = [np.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads (default 1: the stiff methods compute Jacobians with 1 BLAS thread per slice)")
    ap.add_argument("--only", default="", help="comma-separated problem numbers (0-3) to run; default all")
    args = ap.parse_args()
    with threadpool_limits(args.blas_threads, user_api="blas"):
        run(args.repeat, [int(i) for i in args.only.split(",") if i])


def run(repeat: int, only: list[int]) -> None:
    print(_blas_env.describe())
    problems: list[tuple[str, Any]] = [(f"W4 K={k} N=800", w4_problem(k)) for k in (1, 8, 64)]
    problems.append(("FA (6,4,3) K=16 N=36", fa_small(16, (6, 4, 3))))
    print(f"{'problem':<22} {'old ms':>9} {'new ms':>9} {'old ms/inst':>12} {'new ms/inst':>12} "
          f"{'old/new':>8} {'max rel diff':>13}")
    for label, (rule, task, w0) in [pr for i, pr in enumerate(problems) if not only or i in only]:
        f = rule.flow(task)
        k = w0[0].shape[0]
        j_old = reference_jacobian(f, 0.0, w0)
        j_new = jacobian(f, 0.0, w0)
        diff = float(np.max(np.abs(j_new - j_old)) / np.max(np.abs(j_old)))
        t_old, t_new = best_of([lambda f=f, w0=w0: reference_jacobian(f, 0.0, w0),
                                lambda f=f, w0=w0: jacobian(f, 0.0, w0)], repeat)
        print(f"{label:<22} {t_old * 1e3:9.2f} {t_new * 1e3:9.2f} {t_old / k * 1e3:12.3f} {t_new / k * 1e3:12.3f} "
              f"{t_old / t_new:8.2f} {diff:13.1e}")
    if only:
        return
    print("jvp (W4, K=8): one direction per instance, and 64 random directions at once")
    rule, task, w0 = w4_problem(8)
    f = rule.flow(task)
    rng = np.random.default_rng(0)
    for lead in ((), (64,)):
        v = tuple(rng.standard_normal((*lead, *w.shape)) for w in w0)
        d_old = _reference_jvp(f, 0.0, w0, list(v), 1)
        d_new = jvp(f, 0.0, w0, v)[1]
        diff = max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in zip(d_old, d_new, strict=True))
        t_old, t_new = best_of([lambda v=v: _reference_jvp(f, 0.0, w0, list(v), 1),
                                lambda v=v: jvp(f, 0.0, w0, v)], repeat)
        print(f"{'jvp dirs=' + str(lead or 1):<22} {t_old * 1e3:9.2f} {t_new * 1e3:9.2f} {t_old / 8 * 1e3:12.3f} "
              f"{t_new / 8 * 1e3:12.3f} {t_old / t_new:8.2f} {diff:13.1e}")


if __name__ == "__main__":
    main()
