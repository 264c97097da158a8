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

Functions
---------
* :func:`jvp` — ``(f(t, y), J v)`` for a state ``y`` and direction ``v``;
* :func:`jacobian` — the dense Jacobian, shape ``(*batch, N, N)`` with ``N``
  the number of state entries per instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Dual", "jacobian", "jvp"]

State = tuple[Any, ...]


def _parts(x: Any) -> tuple[Any, Any]:
    if isinstance(x, Dual):
        return x.primal, x.tangent
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
    tangent, ``@`` (also :func:`numpy.matmul`), :func:`numpy.sign`,
    :func:`numpy.swapaxes` / :func:`numpy.transpose` of the last two axes.
    Any other numpy function raises ``TypeError`` naming it, so a flow using
    it fails loudly instead of giving a wrong derivative.
    """

    __slots__ = ("primal", "tangent")

    def __init__(self, primal: Any, tangent: Any) -> None:
        self.primal = np.asarray(primal)
        self.tangent = np.asarray(tangent)

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
        return Dual(np.swapaxes(self.primal, a, b), np.swapaxes(self.tangent, a, b))

    def __repr__(self) -> str:
        return f"Dual(primal shape {self.primal.shape}, tangent shape {self.tangent.shape})"

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Dual:
        return _add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Dual:
        return _add(self, _neg(other))

    def __rsub__(self, other: Any) -> Dual:
        return _add(other, _neg(self))

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
        return Dual(self.primal / other, self.tangent / other)

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


def _add(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        tangent = np.broadcast_to(bt, np.broadcast_shapes(bt.shape, np.shape(ap)))
    elif bt is None:
        tangent = np.broadcast_to(at, np.broadcast_shapes(at.shape, np.shape(bp)))
    else:
        tangent = at + bt
    return Dual(ap + bp, tangent)


def _neg(a: Any) -> Any:
    if isinstance(a, Dual):
        return Dual(-a.primal, -a.tangent)
    return -a


def _mul(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        return Dual(ap * bp, ap * bt)
    if bt is None:
        return Dual(ap * bp, at * bp)
    return Dual(ap * bp, at * bp + ap * bt)


def _matmul(a: Any, b: Any) -> Dual:
    ap, at = _parts(a)
    bp, bt = _parts(b)
    if at is None:
        return Dual(ap @ bp, ap @ bt)
    if bt is None:
        return Dual(ap @ bp, at @ bp)
    return Dual(ap @ bp, at @ bp + ap @ bt)


def _sign(a: Dual) -> Dual:
    p = np.sign(a.primal)
    return Dual(p, np.zeros(np.broadcast_shapes(a.tangent.shape, p.shape)))


_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": _add,
    "subtract": lambda a, b: _add(a, _neg(b)),
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
        if any(a.ndim < batch_ndim for a in leaves):
            raise ValueError(f"{name}: expected {batch_ndim} batch axes, got shapes {[a.shape for a in leaves]}")
        cores = [a.shape[batch_ndim:] for a in leaves]
        heads = [a.shape[:batch_ndim] for a in leaves]
    try:
        batch = np.broadcast_shapes(*heads)
    except ValueError:
        raise ValueError(f"{name}: batch shapes {heads} do not broadcast") from None
    return tuple(np.broadcast_to(a, (*batch, *c)) for a, c in zip(leaves, cores, strict=True)), batch


def _tangents(out: Any, y: tuple[np.ndarray, ...], lead: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    if not isinstance(out, tuple | list) or len(out) != len(y):
        raise ValueError(f"f: expected a tuple of {len(y)} arrays like the state, got {type(out).__name__}")
    res = []
    for i, (o, leaf) in enumerate(zip(out, y, strict=True)):
        want = (*lead, *leaf.shape)
        if isinstance(o, Dual):
            t = o.tangent
        else:  # an output that does not depend on the state
            t = np.zeros(want)
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
        lead = np.broadcast_shapes(*(d.shape[: max(d.ndim - leaf.ndim, 0)] for d, leaf in pairs))
        tang = [np.broadcast_to(d, (*lead, *leaf.shape)) for d, leaf in zip(dirs, leaves, strict=True)]
    except ValueError:
        raise ValueError(
            f"v: direction shapes {[d.shape for d in dirs]} do not broadcast to the state {[a.shape for a in leaves]}"
        ) from None
    out = f(t, tuple(Dual(a, d) for a, d in zip(leaves, tang, strict=True)))
    derivative = _tangents(out, leaves, tuple(lead))
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
) -> np.ndarray:
    """Dense per-instance Jacobian of a batched flow, from exact JVPs.

    With the state of one instance flattened leaf by leaf (each leaf in C
    order) to a vector of ``N = Σ m_i n_i`` entries,

    .. math::

        J_{ij} = \\frac{\\partial f_i}{\\partial y_j}, \\qquad
        J e_j = \\text{jvp}(f, t, y, e_j),

    computed for all instances at once, ``chunk`` unit directions per flow
    evaluation.

    Parameters
    ----------
    f, t, y
        As for :func:`jvp`.
    chunk : int, optional
        Directions per evaluation (default: all ``N``; lower it to bound
        memory, which is about ``chunk`` times that of one flow evaluation).
    batch_ndim : int, optional
        Number of leading batch axes of every leaf (default: all but the last
        two, i.e. matrix leaves ``(*batch, m, n)``); the rest of a leaf is its
        per-instance core, of any shape.

    Returns
    -------
    ndarray, shape ``(*batch, N, N)``
    """
    leaves, batch = _state("y", y, batch_ndim)
    nb = len(batch)
    sizes = [int(np.prod(a.shape[nb:])) for a in leaves]
    n = sum(sizes)
    if chunk is None:
        chunk = n
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    offsets = np.cumsum([0, *sizes])
    jac = np.empty((*batch, n, n))
    for start in range(0, n, int(chunk)):
        stop = min(n, start + int(chunk))
        k = stop - start
        eye = np.zeros((k, n))
        eye[np.arange(k), np.arange(start, stop)] = 1.0
        dirs = []
        for i, a in enumerate(leaves):
            block = eye[:, offsets[i]:offsets[i + 1]].reshape((k,) + (1,) * nb + a.shape[nb:])
            dirs.append(block)
        _, der = jvp(f, t, leaves, dirs, batch_ndim=nb)
        flat = np.concatenate([d.reshape((k, *batch, -1)) for d in der], axis=-1)  # (k, *batch, N)
        jac[..., start:stop] = np.moveaxis(flat, 0, -1)
    return jac
