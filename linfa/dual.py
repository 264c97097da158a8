"""Exact directional derivatives of flows: dual-number arrays.

A flow of :mod:`linfa.rules` is written once, with ``@`` (:func:`linfa._ops.matmul`),
:func:`~linfa._ops.transpose`, :func:`~linfa._ops.sign`, sums, differences and
scalar multiples. Evaluated on :class:`Dual` arrays ``x + ε v`` (``ε² = 0``), that
same definition returns ``f(x) + ε J_f(x) v``: the Jacobian–vector product,
exact to rounding (no step size), because every operation propagates its own
derivative:

.. math::

    (A + εȦ)(B + εḂ) = AB + ε(ȦB + AḂ), \\qquad
    \\operatorname{sign}(A + εȦ) = \\operatorname{sign}(A) + ε\\,0 .

(``sign`` is piecewise constant; its derivative is taken as 0, exact away
from zero entries.) The tangent may carry extra *leading* axes, so that many
directions go through one evaluation; :func:`jacobian` uses this to build the
dense per-instance Jacobian of a batched flow in batched passes.

Layout. With ``N`` directions the tangent of a leaf ``(*batch, m, n)`` is
``(N, *batch, m, n)``. A tangent with its direction axis *last in memory* (a
view of an array ``D`` of shape ``(*batch, m, n, N)``; those formed inside
:func:`jacobian` are) is multiplied by a matrix ``P`` without tangent in a
few large BLAS products per instance instead of ``N`` tiny ones: ``P Ṫ`` is
``P @ D.reshape(m, n N)`` (the directions in the columns of one product),
``Ṫ P`` is ``m`` products ``P^T (n, k) @ D_i (k, N)``; sums run along ``N``
with unit stride, and transposes are views. Other layouts (e.g. the
directions given to :func:`jvp`) go through numpy's broadcasting matmul.

Low rank. The unit directions of :func:`jacobian` are of rank 1,
:math:`e_a e_b^T`, and are held as their factors. A flow made of products and
sums keeps the tangent of every direction a sum of a few outer products,

.. math::

    Ṫ_d = \\sum_s u_{sd} v_{sd}^T, \\qquad
    P Ṫ_d = \\sum_s (P u_{sd}) v_{sd}^T, \\qquad
    Ṫ_d P = \\sum_s u_{sd} (P^T v_{sd})^T, \\qquad
    Ṫ_d^T = \\sum_s v_{sd} u_{sd}^T,

so a product costs ``O((m + n) r k N)`` instead of ``O(m n k N)`` and the
tangent is formed only where it is needed: for an operation without a
low-rank rule (``*`` by an array), past rank 8, on reading
:attr:`Dual.tangent`, and at the end, written into the Jacobian.

Functions
---------
* :func:`jvp` — ``(f(t, y), J v)`` for a state ``y`` and direction ``v``;
* :func:`jacobian` — the dense Jacobian, shape ``(*batch, N, N)`` with ``N``
  the number of state entries per instance.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linfa._validate import count

__all__ = ["Dual", "jacobian", "jvp"]

State = tuple[Any, ...]


def _parts(x: Any) -> tuple[Any, Any]:
    """``(primal, tangent)``; the tangent as held (an array or a :class:`_LowRank`), None for a constant."""
    if isinstance(x, Dual):
        return x.primal, x._tangent
    return x, None


class Dual:
    """An array ``primal + ε tangent`` with ``ε² = 0``.

    Parameters
    ----------
    primal : ndarray, shape ``(*batch, m, n)``
    tangent : ndarray, shape ``(*dirs, *batch, m, n)``
        ``dirs`` are extra leading axes (several directions at once); they
        must not be mixed with batch axes of the other operands, so every
        operand's batch shape must be ``batch`` or broadcast to it from the
        right without adding axes.

    Notes
    -----
    Supported: ``+``, ``-``, unary ``-``, ``*`` and ``/`` by arrays without
    tangent, ``@`` (also :func:`numpy.matmul`), :func:`numpy.sign` (which
    returns a plain array: its derivative is 0),
    :func:`numpy.swapaxes` / :func:`numpy.transpose` of the last two axes.
    Any other numpy function raises ``TypeError`` naming it, so a flow using
    it fails loudly instead of giving a wrong derivative.

    Any memory layout of ``tangent`` gives the same results (see the module
    docstring for the one :func:`jacobian` uses). Inside :func:`jacobian`
    the tangent may be held as low-rank factors; :attr:`tangent` forms the
    array on first access.
    """

    __slots__ = ("_tangent", "primal")

    def __init__(self, primal: Any, tangent: Any) -> None:
        self.primal = np.asarray(primal)
        self._tangent = tangent if isinstance(tangent, _LowRank) else np.asarray(tangent)

    @property
    def tangent(self) -> np.ndarray:
        """The tangent as an array ``(*dirs, *batch, m, n)`` (formed on first access if held factored)."""
        t = self._tangent
        if isinstance(t, _LowRank):
            t = self._tangent = _dense(t)
        return t

    @tangent.setter
    def tangent(self, value: Any) -> None:
        self._tangent = np.asarray(value)

    # ----------------------------------------------------------- array-like
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the primal."""
        return tuple(self.primal.shape)

    @property
    def ndim(self) -> int:
        """Number of axes of the primal."""
        return int(self.primal.ndim)

    @property
    def dtype(self) -> Any:
        """dtype of the primal."""
        return self.primal.dtype

    def swapaxes(self, a: int, b: int) -> Dual:
        """Swap two axes counted from the end (negative ``a``, ``b``)."""
        if a >= 0 or b >= 0:
            raise ValueError(f"axes: Dual.swapaxes needs axes counted from the end, got ({a}, {b})")
        t = self._tangent
        if isinstance(t, _LowRank) and {a, b} == {-1, -2}:
            return Dual(np.swapaxes(self.primal, a, b), _LowRank(t.v, t.u))
        return Dual(np.swapaxes(self.primal, a, b), np.swapaxes(self.tangent, a, b))

    def __repr__(self) -> str:
        return f"Dual(primal shape {self.primal.shape}, tangent shape {self._tangent.shape})"

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Dual:
        return _add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Dual:
        return _sub(self, other)

    def __rsub__(self, other: Any) -> Dual:
        return _sub(other, self)

    def __neg__(self) -> Dual:
        return _neg(self)

    def __pos__(self) -> Dual:
        return self

    def __mul__(self, other: Any) -> Dual:
        return _mul(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Dual:
        if isinstance(other, Dual):
            raise TypeError("Dual: division by a Dual is not supported (flows are polynomial)")
        t = self._tangent
        if isinstance(t, _LowRank) and np.ndim(other) == 0:
            return Dual(self.primal / other, _LowRank(t.u / other, t.v))
        return Dual(self.primal / other, _binary(np.true_divide, self.tangent, other, self.tangent))

    def __matmul__(self, other: Any) -> Dual:
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> Dual:
        return _matmul(other, self)

    # ------------------------------------------------------- numpy protocols
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            raise TypeError(f"Dual: numpy.{ufunc.__name__}.{method} with {sorted(kwargs)} is not supported")
        op = _UFUNCS.get(ufunc.__name__)
        if op is None:
            raise TypeError(f"Dual: numpy.{ufunc.__name__} has no derivative rule here")
        return op(*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.swapaxes:
            a, i, j = [*args, kwargs.get("axis1"), kwargs.get("axis2")][:3]
            return a.swapaxes(i, j)
        if func is np.transpose and len(args) == 1 and not kwargs:
            a = args[0]
            if a.ndim != 2:
                raise TypeError("Dual: numpy.transpose without axes only for a single matrix")
            return a.swapaxes(-1, -2)
        if func is np.shape:
            return args[0].shape
        if func is np.matmul:
            return _matmul(*args)
        raise TypeError(f"Dual: numpy.{func.__name__} has no derivative rule here")


# --------------------------------------------------------------------------- tangent arithmetic
# The layout of the module docstring: with one direction axis, ``D`` below is a
# tangent ``(N, *batch, m, n)`` seen as ``(*batch, m, n, N)``, its last axis
# contiguous; every function here returns tangents that keep that layout.


class _Workspace:
    """Buffers replayed across the flow evaluations of one :func:`jacobian` call.

    Every chunk of directions runs the same flow on tangents of the same
    shapes, so the ``i``-th array allocated in one evaluation can be the
    ``i``-th of the previous one: the previous evaluation's tangents are dead
    once its columns are copied into the Jacobian. This spares the allocator's
    fresh pages (and keeps the buffers warm in cache).
    """

    __slots__ = ("buffers", "count")

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []
        self.count = 0

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """The ``count``-th buffer, as a C-ordered array of ``shape`` (a new one if it is too small).

        Only the first :data:`_WORKSPACE_BYTES` of an evaluation's arrays are
        kept: a kept buffer lives until the call ends, where numpy would free a
        dead temporary at once, so beyond that budget (a flow of many dense
        operations) the arrays are numpy's own and the peak memory stays
        numpy's plus the budget.
        """
        i = self.count
        self.count += 1
        size = math.prod(shape)
        if i >= len(self.buffers):
            need = size * np.dtype(dtype).itemsize
            if i > len(self.buffers) or self.nbytes() + need > _WORKSPACE_BYTES:
                return np.empty(shape, dtype)
            self.buffers.append(np.empty(size, dtype))
        b = self.buffers[i]
        if b.size < size or b.dtype != dtype:  # chunks differ by a direction or two: keep the larger
            b = self.buffers[i] = np.empty(max(size, b.size if b.dtype == dtype else 0), dtype)
        return b[:size].reshape(shape)

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(b.nbytes for b in self.buffers)


_local = threading.local()  # .workspace: the _Workspace of the jacobian running in this thread, if any


def _empty(shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
    ws = getattr(_local, "workspace", None)
    return np.empty(shape, dtype) if ws is None else ws.empty(tuple(shape), np.dtype(dtype))


def _like(t: np.ndarray, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` with ``t``'s order of axes in memory (C order if the ranks differ)."""
    if t.ndim != len(shape):
        return _empty(shape, dtype)
    # outermost axis first; broadcast (stride 0) axes outermost, so that they do not end up innermost
    order = sorted(range(t.ndim), key=lambda ax: (t.strides[ax] != 0, -abs(t.strides[ax])))
    buf = _empty(tuple(shape[ax] for ax in order), dtype)
    return buf.transpose(np.argsort(order))


def _binary(ufunc: Any, x: Any, y: Any, lead: np.ndarray) -> np.ndarray:
    """``ufunc(x, y)`` into a new array laid out like ``lead`` (one of ``x``, ``y``)."""
    if getattr(_local, "workspace", None) is None:
        return ufunc(x, y)  # numpy's own output (order "K") follows the tangent's layout
    out = _like(lead, np.broadcast_shapes(np.shape(x), np.shape(y)), np.result_type(x, y))
    return ufunc(x, y, out=out)


def _unary(ufunc: Any, x: np.ndarray) -> np.ndarray:
    if getattr(_local, "workspace", None) is None:
        return ufunc(x)
    return ufunc(x, out=_like(x, x.shape, x.dtype))


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (stacked, broadcasting) into a new C-ordered array."""
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    return np.matmul(a, b, out=_empty(shape, np.result_type(a, b)))


def _add(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        tangent = _with_constant(bt, ap)
    elif bt is None:
        tangent = _with_constant(at, bp)
    else:
        tangent = _sum(at, bt)
    return Dual(ap + bp, tangent)


def _sub(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        tangent = _with_constant(_negative(bt), ap)
    elif bt is None:
        tangent = _with_constant(at, bp)
    else:
        tangent = _sum(at, _negative(bt))
    return Dual(ap - bp, tangent)


def _neg(a: Any) -> Any:
    if isinstance(a, Dual):
        return Dual(-a.primal, _negative(a._tangent))
    return -a


def _negative(t: Any) -> Any:
    if isinstance(t, _LowRank):
        return _LowRank(-t.u, t.v)
    return _unary(np.negative, t)


def _with_constant(t: Any, c: Any) -> Any:
    """The tangent of ``x + c`` (``t`` that of ``x``): ``t``, broadcast to the shape of the sum."""
    shape = np.broadcast_shapes(t.shape, np.shape(c))
    if isinstance(t, _LowRank):
        if len(shape) == len(t.shape) and shape[-2:] == t.shape[-2:]:
            return t  # batch axes broadcast where it is used
        t = _dense(t)
    return np.broadcast_to(t, shape)


def _sum(at: Any, bt: Any) -> Any:
    """The sum of two tangents; low rank if both are and the ranks add up to at most :data:`_RANK_MAX`."""
    if isinstance(at, _LowRank) and isinstance(bt, _LowRank):
        both = at.concatenate(bt)
        if both is not None:
            return both
    at, bt = _dense(at), _dense(bt)
    return _binary(np.add, at, bt, at)


def _mul(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None and isinstance(bt, _LowRank) and np.ndim(ap) == 0:
        return Dual(ap * bp, _LowRank(ap * bt.u, bt.v))
    if bt is None and isinstance(at, _LowRank) and np.ndim(bp) == 0:
        return Dual(ap * bp, _LowRank(at.u * bp, at.v))
    at, bt = _dense(at), _dense(bt)
    if at is None:
        return Dual(ap * bp, _binary(np.multiply, ap, bt, bt))
    if bt is None:
        return Dual(ap * bp, _binary(np.multiply, at, bp, at))
    return Dual(ap * bp, _accumulate(_binary(np.multiply, at, bp, at), _binary(np.multiply, ap, bt, bt)))


def _accumulate(acc: np.ndarray, term: np.ndarray) -> np.ndarray:
    """``acc + term``, in place in ``acc`` (a new array of this module) when the shapes agree."""
    if acc.shape == term.shape:
        acc += term
        return acc
    return acc + term


def _last(t: np.ndarray) -> np.ndarray:
    """Move axis 0 to the end (a view)."""
    return t.transpose((*range(1, t.ndim), 0))


def _first(d: np.ndarray) -> np.ndarray:
    """Move the last axis to the front (a view)."""
    return d.transpose((d.ndim - 1, *range(d.ndim - 1)))


def _directions_last(t: np.ndarray) -> np.ndarray:
    """The tangent ``(N, *batch, m, n)`` as ``D``, shape ``(*batch, m, n, N)``, last axis contiguous (copied if not)."""
    d = _last(t)
    if d.shape[-1] > 1 and d.strides[-1] != d.itemsize:
        d = np.ascontiguousarray(d)
    return d


def _fold(d: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``d`` reshaped to ``shape`` if that is a view, else None."""
    try:
        return np.reshape(d, shape, copy=False)
    except ValueError:
        return None


def _left(p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``P T`` for every direction: ``p`` ``(*b, q, m)``, ``d`` ``(*b, m, n, N)`` → ``(*b, q, n, N)``."""
    m, n, nd = d.shape[-3:]
    flat = _fold(d, (*d.shape[:-3], m, n * nd))
    if flat is not None:  # one product per instance, the directions in its columns
        r = _product(p, flat)
        return r.reshape((*r.shape[:-1], n, nd))
    # n products (q, m) @ (m, N) per instance
    r = _product(p[..., None, :, :], np.swapaxes(d, -3, -2))
    return np.swapaxes(r, -3, -2)


def _right(d: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``T P`` for every direction: ``d`` ``(*b, m, k, N)``, ``p`` ``(*b, k, n)`` → ``(*b, m, n, N)``."""
    m, k, nd = d.shape[-3:]
    pt = np.swapaxes(p, -1, -2)
    flat = _fold(np.swapaxes(d, -3, -2), (*d.shape[:-3], k, m * nd))
    if flat is not None:  # one product per instance: P^T (n, k) @ (k, m N)
        r = _product(pt, flat)
        return np.swapaxes(r.reshape((*r.shape[:-1], m, nd)), -3, -2)
    # m products (n, k) @ (k, N) per instance
    return _product(pt[..., None, :, :], d)


def _matmul(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    primal = ap @ bp
    matrices = np.ndim(ap) >= 2 and np.ndim(bp) >= 2
    if isinstance(at, _LowRank) or isinstance(bt, _LowRank):
        if matrices:
            terms = []
            if at is not None:
                terms.append(_right_product(at, np.asarray(bp)))
            if bt is not None:
                terms.append(_left_product(np.asarray(ap), bt))
            return Dual(primal, terms[0] if len(terms) == 1 else _sum(*terms))
        at, bt = _dense(at), _dense(bt)
    if not (matrices and _directions_last_layout(at, primal.ndim) and _directions_last_layout(bt, primal.ndim)):
        # numpy's broadcasting matmul
        if at is None:
            return Dual(primal, ap @ bt)
        if bt is None:
            return Dual(primal, at @ bp)
        return Dual(primal, at @ bp + ap @ bt)
    acc = None
    if at is not None:
        acc = _right(_directions_last(at), np.asarray(bp))
    if bt is not None:
        term = _left(np.asarray(ap), _directions_last(bt))
        acc = term if acc is None else _accumulate(acc, term)
    assert acc is not None
    return Dual(primal, _first(acc))


def _directions_last_layout(t: np.ndarray | None, ndim: int) -> bool:
    """Whether ``t`` (None: no tangent) has one direction axis over ``ndim`` axes, last in memory."""
    return t is None or (t.ndim == ndim + 1 and (t.shape[0] == 1 or t.strides[0] == t.itemsize))


# --------------------------------------------------------------------------- low-rank tangents
_RANK_MAX = 8  # a sum of higher rank is formed densely


class _LowRank:
    """A tangent ``(N, *batch, m, n)`` held as factors: direction ``d`` is ``Σ_s u_{:sd} v_{:sd}^T``.

    ``u`` has shape ``(*batch_u, m, r, N)``, ``v`` ``(*batch_v, n, r, N)``
    (batch shapes broadcasting to ``batch``; directions last). The unit
    directions of :func:`jacobian` are of rank 1, ``e_a e_b^T``; products
    with matrices without tangent keep the rank (they act on one factor,
    ``O((m + n) r k N)`` instead of ``O(m n k N)``), sums add ranks, anything
    else (or a rank above :data:`_RANK_MAX`) forms the array.
    """

    __slots__ = ("u", "v")

    def __init__(self, u: np.ndarray, v: np.ndarray) -> None:
        self.u, self.v = u, v

    @property
    def shape(self) -> tuple[int, ...]:
        batch = np.broadcast_shapes(self.u.shape[:-3], self.v.shape[:-3])
        return (self.u.shape[-1], *batch, self.u.shape[-3], self.v.shape[-3])

    def concatenate(self, other: _LowRank) -> _LowRank | None:
        """The sum ``self + other`` (ranks added), or None if the shapes or the rank do not allow it."""
        (m, r1, nd), (n, _, _) = self.u.shape[-3:], self.v.shape[-3:]
        if other.u.shape[-3] != m or other.v.shape[-3] != n or other.u.shape[-1] != nd:
            return None
        r = r1 + other.u.shape[-2]
        if r > _RANK_MAX:
            return None
        return _LowRank(_stack(self.u, other.u), _stack(self.v, other.v))


def _stack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x`` and ``y`` ``(*batch, m, r_i, N)`` joined along ``r`` (batch shapes broadcast)."""
    batch = np.broadcast_shapes(x.shape[:-3], y.shape[:-3])
    m, r1, nd = x.shape[-3:]
    out = _empty((*batch, m, r1 + y.shape[-2], nd), np.result_type(x, y))
    out[..., :r1, :] = x
    out[..., r1:, :] = y
    return out


def _times(p: Any, x: np.ndarray) -> np.ndarray:
    """``P X_s`` for each factor column: ``p`` ``(*b, q, m)``, ``x`` ``(*b, m, r, N)`` → ``(*b, q, r, N)``."""
    p = np.asarray(p)
    m, r, nd = x.shape[-3:]
    flat = _fold(x, (*x.shape[:-3], m, r * nd))
    if flat is None:
        flat = np.ascontiguousarray(x).reshape((*x.shape[:-3], m, r * nd))
    out = _product(p, flat)
    return out.reshape((*out.shape[:-1], r, nd))


def _right_product(t: Any, p: np.ndarray) -> Any:
    """The tangent ``T P``: ``Σ u (P^T v)^T`` for a low-rank ``T`` (the rank kept)."""
    if isinstance(t, _LowRank):
        return _LowRank(t.u, _times(np.swapaxes(p, -1, -2), t.v))
    return _first(_right(_directions_last(t), p))


def _left_product(p: np.ndarray, t: Any) -> Any:
    """The tangent ``P T``: ``Σ (P u) v^T`` for a low-rank ``T`` (the rank kept)."""
    if isinstance(t, _LowRank):
        return _LowRank(_times(p, t.u), t.v)
    return _first(_left(p, _directions_last(t)))


def _dense(t: Any) -> Any:
    """A tangent as an array ``(N, *batch, m, n)`` (directions last in memory); arrays and None as they are."""
    if not isinstance(t, _LowRank):
        return t
    u, v = t.u, t.v
    batch = np.broadcast_shapes(u.shape[:-3], v.shape[:-3])
    (m, r, nd), n = u.shape[-3:], v.shape[-3]
    out = _empty((*batch, m, n, nd), np.result_type(u, v))
    np.multiply(u[..., :, None, 0, :], v[..., None, :, 0, :], out=out)
    if r > 1:
        term = _empty(out.shape, out.dtype)
        for s in range(1, r):
            out += np.multiply(u[..., :, None, s, :], v[..., None, :, s, :], out=term)
    return _first(out)


def _sign(a: Dual) -> np.ndarray:
    """``sign`` is piecewise constant: its derivative is 0, so the result is a constant (a plain array)."""
    return np.sign(a.primal)


_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": _add,
    "subtract": _sub,
    "negative": _neg,
    "positive": lambda a: a,
    "multiply": _mul,
    "matmul": _matmul,
    "sign": _sign,
}


# --------------------------------------------------------------------------- derivatives
def _state(
    name: str, y: Sequence[Any], batch_ndim: int | None = None
) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    if not isinstance(y, tuple | list) or not y:
        raise TypeError(f"{name}: expected a non-empty tuple of arrays, got {type(y).__name__}")
    leaves = tuple(np.asarray(a, dtype=float) for a in y)
    if batch_ndim is None:
        if any(a.ndim < 2 for a in leaves):
            raise ValueError(f"{name}: expected arrays of shape (*batch, m, n), got shapes {[a.shape for a in leaves]}")
        cores = [a.shape[-2:] for a in leaves]
        heads = [a.shape[:-2] for a in leaves]
    else:
        batch_ndim = count("batch_ndim", batch_ndim)
        if any(a.ndim < batch_ndim for a in leaves):
            raise ValueError(f"{name}: expected {batch_ndim} batch axes, got shapes {[a.shape for a in leaves]}")
        cores = [a.shape[batch_ndim:] for a in leaves]
        heads = [a.shape[:batch_ndim] for a in leaves]
    try:
        batch = np.broadcast_shapes(*heads)
    except ValueError:
        raise ValueError(f"{name}: batch shapes {heads} do not broadcast") from None
    return tuple(np.broadcast_to(a, (*batch, *c)) for a, c in zip(leaves, cores, strict=True)), batch


def _tangents(out: Any, y: tuple[np.ndarray, ...], lead: tuple[int, ...], rank1: bool = False) -> tuple[Any, ...]:
    """The tangents of the outputs ``out`` of a flow on ``y``, each ``(*lead, *leaf.shape)``.

    With ``rank1``, a tangent held as rank-1 factors is returned as such.
    """
    if not isinstance(out, tuple | list) or len(out) != len(y):
        raise ValueError(f"f: expected a tuple of {len(y)} arrays like the state, got {type(out).__name__}")
    res: list[Any] = []
    for i, (o, leaf) in enumerate(zip(out, y, strict=True)):
        want = (*lead, *leaf.shape)
        shape = np.shape(o.primal if isinstance(o, Dual) else o)
        try:
            fits = np.broadcast_shapes(shape, leaf.shape) == leaf.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"f: output {i} has shape {shape}, expected {leaf.shape} (its leaf's); constants of the flow "
                "must not add batch axes the state does not have"
            )
        if rank1 and isinstance(o, Dual) and isinstance(o._tangent, _LowRank) and o._tangent.u.shape[-2] == 1:
            factored = o._tangent
            if len(factored.shape) == len(want) and np.broadcast_shapes(factored.shape, want) == want:
                res.append(factored)
                continue
        t: np.ndarray
        if isinstance(o, Dual):
            t = o.tangent
        else:  # an output that does not depend on the state
            t = np.broadcast_to(0.0, want)
        if t.shape != want:
            try:
                t = np.broadcast_to(t, want)
            except ValueError:
                raise ValueError(
                    f"f: output {i} has tangent shape {t.shape}, expected {want}; constants of the flow "
                    "must not add batch axes the state does not have"
                ) from None
        res.append(t)
    return tuple(res)


def jvp(
    f: Callable[[Any, State], Sequence[Any]],
    t: Any,
    y: Sequence[Any],
    v: Sequence[Any],
    *,
    batch_ndim: int | None = None,
) -> tuple[State, State]:
    """Value and exact directional derivative of a flow.

    .. math::

        \\bigl(f(t, y),\\; J_f(t, y)\\,v\\bigr), \\qquad
        J_f(t, y)\\,v = \\frac{d}{ds} f(t, y + s v)\\Big|_{s=0}.

    Parameters
    ----------
    f : callable
        ``f(t, state) -> dstate``, a tuple like ``state`` (e.g.
        ``rule.flow(task)``), written with the operations :class:`Dual` supports.
    t : float
    y : tuple of ndarray
        The state, leaves ``(*batch, m_i, n_i)``; leaves are broadcast to one
        batch shape, which must be the batch shape of the problem.
    v : tuple of ndarray
        The direction, leaves broadcastable to ``y``'s (batched: one direction
        per instance), or with extra leading axes ``(*dirs, *batch, m_i, n_i)``
        for several directions at once.
    batch_ndim : int, optional
        As for :func:`jacobian`.

    Returns
    -------
    value : tuple of ndarray
        ``f(t, y)``, leaves ``(*batch, m_i, n_i)``.
    derivative : tuple of ndarray
        ``J v``, leaves ``(*dirs, *batch, m_i, n_i)``.

    Raises
    ------
    TypeError, ValueError
        On a malformed state or direction, or a flow using an operation with
        no derivative rule.
    """
    leaves, _ = _state("y", y, batch_ndim)
    if not isinstance(v, tuple | list) or len(v) != len(leaves):
        raise TypeError(f"v: expected a tuple of {len(leaves)} arrays like y, got {type(v).__name__}")
    dirs = [np.asarray(d, dtype=float) for d in v]
    try:
        pairs = list(zip(dirs, leaves, strict=True))
        lead = tuple(np.broadcast_shapes(*(d.shape[: max(d.ndim - leaf.ndim, 0)] for d, leaf in pairs)))
        tang = [np.broadcast_to(d, (*lead, *leaf.shape)) for d, leaf in pairs]
    except ValueError:
        raise ValueError(
            f"v: direction shapes {[d.shape for d in dirs]} do not broadcast to the state {[a.shape for a in leaves]}"
        ) from None
    out = f(t, tuple(Dual(a, d) for a, d in zip(leaves, tang, strict=True)))
    derivative = _tangents(out, leaves, lead)
    value = tuple(np.broadcast_to(o.primal if isinstance(o, Dual) else o, leaf.shape)
                  for o, leaf in zip(out, leaves, strict=True))
    return value, derivative


def jacobian(
    f: Callable[[Any, State], Sequence[Any]],
    t: Any,
    y: Sequence[Any],
    *,
    chunk: int | None = None,
    batch_ndim: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Dense per-instance Jacobian of a batched flow, from exact JVPs.

    With the state of one instance flattened leaf by leaf (each leaf in C
    order) to a vector of ``N = Σ m_i n_i`` entries,

    .. math::

        J_{ij} = \\frac{\\partial f_i}{\\partial y_j}, \\qquad
        J e_j = \\text{jvp}(f, t, y, e_j),

    computed for all instances at once, at most ``chunk`` unit directions per
    flow evaluation. Unless all ``N`` go in one evaluation, each evaluation
    takes directions of one leaf only, and the other leaves enter it as
    constants (no tangent). The unit directions of a matrix leaf are held as
    rank-1 factors (see the module docstring).

    Parameters
    ----------
    f, t, y
        As for :func:`jvp`.
    chunk : int, optional
        Directions per evaluation at most; memory is at most about ``chunk``
        times that of one flow evaluation (much less while the tangents stay
        of low rank). Default: about ``2**24 / (K N)`` (``K`` instances), at
        least 32; all ``N`` at once only if ``N <= 128``, else at most each
        leaf's directions.
    batch_ndim : int, optional
        Number of leading batch axes of every leaf (default: all but the last
        two, i.e. matrix leaves ``(*batch, m, n)``); the rest of a leaf is its
        per-instance core, of any shape.
    out : ndarray, optional
        Where to write the Jacobians: ``float64``, C-contiguous, of shape
        ``(*batch, N, N)`` (an integrator's workspace, reused from call to
        call instead of a new array each time); returned.

    Returns
    -------
    ndarray, shape ``(*batch, N, N)``

    Notes
    -----
    The evaluations reuse one set of buffers (the same shapes come back in
    every chunk): the first 256 MiB of arrays an evaluation allocates
    (``_WORKSPACE_BYTES``), which live until the call ends, so the peak memory
    is at most that much above the flow's own; the buffers are kept per
    thread for the next call if they take at most 64 MiB. ``f`` must not
    keep the tangents it is given or computes beyond its call. Calls from
    several threads at once are safe. ``f`` is called once per chunk (and
    leaf), so it must be a function of its arguments.
    """
    leaves, batch = _state("y", y, batch_ndim)
    nb = len(batch)
    cores = [a.shape[nb:] for a in leaves]
    sizes = [math.prod(c) for c in cores]
    n = sum(sizes)
    whole = chunk is not None or n <= _WHOLE_MAX  # all directions in one evaluation if chunk allows
    if chunk is None:
        chunk = min(n, max(_CHUNK_MIN, _CHUNK_ENTRIES // max(1, math.prod(batch) * n)))
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    offsets = [int(o) for o in np.cumsum([0, *sizes])]
    expected = f"out: expected a writeable C-contiguous float64 array of shape {(*batch, n, n)}"
    if out is None:
        jac = np.empty((*batch, n, n))
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"{expected}, got {type(out).__name__}")
    elif out.dtype != np.float64 or out.shape != (*batch, n, n) or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(f"{expected}, got a {out.dtype} array of shape {out.shape}"
                         f"{'' if out.flags.c_contiguous else ', not C-contiguous'}"
                         f"{'' if out.flags.writeable else ', read-only'}")
    else:
        jac = out
    outer = getattr(_local, "workspace", None)
    workspace = getattr(_local, "spare", None) or _Workspace()  # the buffers of this thread's last call
    _local.spare = None
    _local.workspace = workspace
    try:
        for start, stop in _plan(sizes, int(chunk), whole):
            k = stop - start
            state: list[Any] = []
            for i, a in enumerate(leaves):
                lo, hi = max(start, offsets[i]), min(stop, offsets[i + 1])
                if lo >= hi:  # no direction in this leaf: a constant
                    state.append(a)
                    continue
                entries, cols = np.arange(lo - offsets[i], hi - offsets[i]), np.arange(lo - start, hi - start)
                state.append(Dual(a, _unit_directions(cores[i], nb, entries, cols, k)))
            workspace.count = 0
            der = _tangents(f(t, tuple(state)), leaves, (k,), rank1=True)
            for j, d in enumerate(der):
                block = jac[..., offsets[j]:offsets[j + 1], start:stop].reshape((*batch, *cores[j], k))
                if isinstance(d, _LowRank):  # u v^T straight into the Jacobian
                    np.multiply(d.u[..., :, None, 0, :], d.v[..., None, :, 0, :], out=block)
                else:
                    np.copyto(block, _last(d))
    finally:
        _local.workspace = outer
        if workspace.nbytes() <= _SPARE_BYTES:
            _local.spare = workspace
    return jac


# Directions per flow evaluation by default: about this many Jacobian entries
# (all instances) per evaluation, at least _CHUNK_MIN (for BLAS and the Python
# overhead of an evaluation), all at once only for N <= _WHOLE_MAX (else each
# leaf apart: the other leaves are constants, and the ranks stay low). Long
# chunks write long runs of each Jacobian row; measured on W4 (2026-12-01),
# whole leaves beat chunks of 32..300 directions at K = 1, 8 and 64.
_CHUNK_ENTRIES = 2**24
_CHUNK_MIN = 32
_WHOLE_MAX = 128


# A thread keeps the buffers of its last jacobian call (for the next call, of the
# same shapes in an integrator) if they take at most this many bytes.
_SPARE_BYTES = 2**26

# The arrays of one flow evaluation kept for the next (see _Workspace.empty), at most this many bytes.
_WORKSPACE_BYTES = 2**28


def _unit_directions(core: tuple[int, ...], nb: int, entries: np.ndarray, cols: np.ndarray, k: int) -> Any:
    """Tangent ``(k, *ones(nb), *core)``: direction ``cols[i]`` is the unit vector of entry ``entries[i]``.

    Of rank 1 for a matrix core (``e_a e_b^T``), else an array (directions
    last in memory); the other directions are 0.
    """
    if len(core) == 2:
        a, b = np.divmod(entries, core[1])
        u, v = np.zeros((1,) * nb + (core[0], 1, k)), np.zeros((1,) * nb + (core[1], 1, k))
        u[..., a, 0, cols] = 1.0
        v[..., b, 0, cols] = 1.0
        return _LowRank(u, v)
    seed = np.zeros((1,) * nb + (math.prod(core), k))
    seed[..., entries, cols] = 1.0
    return _first(seed.reshape((1,) * nb + (*core, k)))


def _plan(sizes: list[int], chunk: int, whole: bool = True) -> list[tuple[int, int]]:
    """Ranges ``[start, stop)`` of directions, one per flow evaluation.

    All ``N`` at once if ``whole`` and ``chunk >= N``; else each leaf's
    directions apart (the other leaves are then constants of that
    evaluation), in near-equal parts of at most ``chunk``.
    """
    n = sum(sizes)
    if whole and chunk >= n:
        return [(0, n)]
    plan, off = [], 0
    for size in sizes:
        parts = -(-size // chunk)
        bounds = [off + (size * p) // parts for p in range(parts + 1)]
        plan += [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
        off += size
    return plan
