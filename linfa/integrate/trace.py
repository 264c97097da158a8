"""Tracing a vector field into a *tape*: the flow's matrix program, recorded once.

A rule's flow is written once, with ``@``, transposes, sums, differences,
scalar multiples and :func:`numpy.sign` (:mod:`linfa._ops`). Called with
:class:`Tracer` operands standing for the state leaves, the per-instance
arguments and the time, that same definition *records* what it computes
instead of computing it: a :class:`Tape`, a straight-line program of matrix
operations over slots of one flat float workspace per instance. The compiled
integrator (:mod:`linfa.integrate.compiled`) interprets the tape inside its
own loop, so the field is specialised, not rewritten: nothing per rule is
written by hand and nothing generated is executed.

Workspace of one instance (``float64``, ``n_ws`` entries)::

    [ state (D) | arguments (A) | t (1) | constants | temporaries ]

The state leaves sit leaf after leaf as in a row of the engine's ``(K, D)``
state, each in C order; an argument leaf likewise (its per-instance core,
or the whole array when it is shared by all instances).

Operations recorded (one row of :attr:`Tape.code` each, ``[op, out, a, b,
m, k, n, flags]`` with ``out``, ``a``, ``b`` workspace offsets):

* ``MATMUL``: :math:`C_{m\\times n} = \\operatorname{op}(A)\\,\\operatorname{op}(B)`,
  ``op`` the identity or the transpose (``flags`` bits 0 and 1): a transpose
  is never copied when it only feeds a product;
* ``ADD``, ``SUB``, ``MUL``, ``DIV``: ``out[i] = a[i s_a] ∘ b[i s_b]`` over
  ``n`` entries, ``s_a, s_b ∈ {0, 1}`` (``flags`` bits 0 and 1: a scalar
  operand, per instance or constant, broadcast);
* ``NEG``, ``SIGN``: elementwise;
* ``TRANSPOSE``: an ``m × n`` matrix copied transposed (only when a
  transposed operand meets an elementwise operation or is returned).

Anything else a field does — a numpy function without a rule here, Python
control flow on values (``bool`` of a tracer), indexing across instances,
complex numbers, broadcasting that is not "same shape or a scalar" — raises
:class:`Untraceable`, and the caller integrates with the numpy engine
instead: the tape is an optimisation, never a change of semantics. A traced
tape is also checked once against the real field (:func:`validate`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OPS", "Tape", "Tracer", "Untraceable", "evaluate", "trace", "validate"]

#: Op codes of the tape (the first column of :attr:`Tape.code`).
OPS = {"MATMUL": 0, "ADD": 1, "SUB": 2, "MUL": 3, "DIV": 4, "NEG": 5, "SIGN": 6, "TRANSPOSE": 7}
MATMUL, ADD, SUB, MUL, DIV, NEG, SIGN, TRANSPOSE = (OPS[k] for k in OPS)
_BINARY = {"add": ADD, "subtract": SUB, "multiply": MUL, "divide": DIV}


class Untraceable(Exception):
    """The field does something the tracer cannot record (the message says what)."""


@dataclass(frozen=True)
class Tape:
    """A traced vector field (see the module docstring for the workspace and op codes).

    Attributes
    ----------
    code : ndarray of int64, shape (n_ops, 8)
        ``[op, out, a, b, m, k, n, flags]`` per operation, in order.
    template : ndarray of float64, shape (n_ws,)
        A workspace with the constants in place (state, arguments, ``t`` and
        temporaries are overwritten).
    D, A : int
        State and argument entries per instance; ``t`` is at offset ``D + A``.
    out_off : ndarray of int64, shape (n_leaves,)
        Workspace offset of each output leaf (C order, the leaf's core shape).
    arg_shapes : tuple of tuple of int
        The core shape of each argument as traced (to check a later call).
    """

    code: np.ndarray
    template: np.ndarray
    D: int
    A: int
    out_off: np.ndarray
    arg_shapes: tuple[tuple[int, ...], ...]

    @property
    def t_off(self) -> int:
        """Workspace offset of the time ``t``."""
        return self.D + self.A

    @property
    def n_ops(self) -> int:
        return int(self.code.shape[0])

    def matmul_flops(self) -> int:
        """Multiply–adds of the tape's matrix products (one evaluation, one instance)."""
        mm = self.code[self.code[:, 0] == MATMUL]
        return int(np.sum(mm[:, 4] * mm[:, 5] * mm[:, 6]))

    def max_product(self) -> int:
        """Multiply–adds ``m k n`` of the tape's largest matrix product (0 without one)."""
        mm = self.code[self.code[:, 0] == MATMUL]
        return int(np.max(mm[:, 4] * mm[:, 5] * mm[:, 6], initial=0))


class _Recorder:
    """Allocates workspace slots and records operations while a field runs on tracers."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.size = 0
        self.ops: list[tuple[int, ...]] = []
        self.consts: list[tuple[int, np.ndarray]] = []
        self._scalars: dict[float, int] = {}

    def alloc(self, n: int) -> int:
        off = self.size
        self.size += max(int(n), 1)
        return off

    def emit(self, op: int, core: tuple[int, ...], a: int, b: int = 0, m: int = 0, k: int = 0, n: int = 0,
             flags: int = 0) -> Tracer:
        out = self.alloc(math.prod(core))
        self.ops.append((op, out, a, b, m, k, n, flags))
        return Tracer(self, out, core)

    def constant(self, value: Any) -> Tracer:
        """A numpy array or number that does not depend on the instance, as a constant slot."""
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise Untraceable(f"a constant of dtype {a.dtype} (only real numbers are traced)")
        a = a.astype(np.float64)
        if a.ndim == 0:
            v = float(a)
            key = v if v == v else math.nan
            if key in self._scalars and not math.isnan(v):
                return Tracer(self, self._scalars[key], ())
            off = self.alloc(1)
            self._scalars[key] = off
            self.consts.append((off, a.reshape(1)))
            return Tracer(self, off, ())
        off = self.alloc(a.size)
        self.consts.append((off, np.ascontiguousarray(a).reshape(-1)))
        return Tracer(self, off, tuple(a.shape))

    def lift(self, x: Any) -> Tracer:
        if isinstance(x, Tracer):
            if x.rec is not self:
                raise Untraceable("a tracer of another trace")
            return x
        if isinstance(x, numbers.Real | np.ndarray | np.generic):
            return self.constant(x)
        raise Untraceable(f"an operand of type {type(x).__name__}")


class Tracer:
    """Stands for a batched array ``(Ka, *core)`` while a field is traced; records what is done to it.

    ``core`` is the per-instance shape; a transposed matrix shares its
    operand's slot (``trans``) until an elementwise operation needs it laid
    out in C order.
    """

    __slots__ = ("core", "off", "rec", "trans")
    __array_priority__ = 1000

    def __init__(self, rec: _Recorder, off: int, core: tuple[int, ...], trans: bool = False) -> None:
        self.rec, self.off, self.core, self.trans = rec, off, tuple(core), trans

    # ------------------------------------------------------------ array-like
    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rec.batch, *self.core)

    @property
    def ndim(self) -> int:
        return 1 + len(self.core)

    @property
    def dtype(self) -> Any:
        return np.dtype(np.float64)

    @property
    def size(self) -> int:
        return self.rec.batch * math.prod(self.core)

    def __repr__(self) -> str:
        return f"Tracer(core {self.core}{', transposed' if self.trans else ''})"

    def _untraceable(self, *_: Any, **__: Any) -> Any:
        raise Untraceable("a tracer's value was asked for (Python control flow or conversion on values)")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = __len__ = __iter__ = _untraceable

    def __array__(self, *_: Any, **__: Any) -> Any:
        raise Untraceable("a tracer was converted to a numpy array")

    @property
    def T(self) -> Any:
        raise Untraceable(".T of a batched array reverses the batch axis too")

    def swapaxes(self, a: int, b: int) -> Tracer:
        if len(self.core) == 2 and {a, b} in ({-1, -2}, {1, 2}):
            return self._transposed()
        raise Untraceable(f"swapaxes({a}, {b}) on a core of shape {self.core}")

    def transpose(self, *axes: Any) -> Tracer:
        ax = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        if len(self.core) == 2 and ax == (0, 2, 1):
            return self._transposed()
        raise Untraceable(f"transpose{ax} on a core of shape {self.core}")

    def _transposed(self) -> Tracer:
        return Tracer(self.rec, self.off, (self.core[1], self.core[0]), not self.trans)

    def __getitem__(self, key: Any) -> Tracer:
        # only new unit axes within the core, e.g. rates[:, None] (a view, no data movement)
        key = key if isinstance(key, tuple) else (key,)
        full = slice(None)
        if not key or not (isinstance(key[0], slice) and key[0] == full):
            raise Untraceable(f"indexing with {key!r} (only [:, None, ...] is traced)")
        core: list[int] = []
        dims = iter(self.core)
        for k in key[1:]:
            if k is None:
                core.append(1)
            elif isinstance(k, slice) and k == full:
                try:
                    core.append(next(dims))
                except StopIteration:
                    raise Untraceable(f"indexing with {key!r}") from None
            else:
                raise Untraceable(f"indexing with {key!r} (only [:, None, ...] is traced)")
        core.extend(dims)
        src = self._c_order()
        return Tracer(self.rec, src.off, tuple(core))

    # ------------------------------------------------------------ arithmetic
    def _c_order(self) -> Tracer:
        """This operand laid out in C order (a transpose is copied)."""
        if not self.trans:
            return self
        m, n = self.core
        return self.rec.emit(TRANSPOSE, self.core, self.off, 0, n, 0, m)  # stored (n, m), out (m, n)

    def __add__(self, o: Any) -> Tracer:
        return _binary(ADD, self, o)

    def __radd__(self, o: Any) -> Tracer:
        return _binary(ADD, o, self)

    def __sub__(self, o: Any) -> Tracer:
        return _binary(SUB, self, o)

    def __rsub__(self, o: Any) -> Tracer:
        return _binary(SUB, o, self)

    def __mul__(self, o: Any) -> Tracer:
        return _binary(MUL, self, o)

    def __rmul__(self, o: Any) -> Tracer:
        return _binary(MUL, o, self)

    def __truediv__(self, o: Any) -> Tracer:
        return _binary(DIV, self, o)

    def __rtruediv__(self, o: Any) -> Tracer:
        return _binary(DIV, o, self)

    def __neg__(self) -> Tracer:
        return _unary(NEG, self)

    def __pos__(self) -> Tracer:
        return self

    def __matmul__(self, o: Any) -> Tracer:
        return _matmul(self, o)

    def __rmatmul__(self, o: Any) -> Tracer:
        return _matmul(o, self)

    # ------------------------------------------------------- numpy protocols
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            raise Untraceable(f"numpy.{ufunc.__name__}.{method} with {sorted(kwargs)}")
        name = ufunc.__name__
        if name in _BINARY and len(inputs) == 2:
            return _binary(_BINARY[name], *inputs)
        if name == "matmul" and len(inputs) == 2:
            return _matmul(*inputs)
        if name == "negative":
            return _unary(NEG, inputs[0])
        if name == "positive":
            return inputs[0]
        if name == "sign":
            return _unary(SIGN, inputs[0])
        raise Untraceable(f"numpy.{name}")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.swapaxes:
            a, i, j = [*args, kwargs.get("axis1"), kwargs.get("axis2")][:3]
            return _lift_tracer(a).swapaxes(i, j)
        if func is np.transpose and len(args) == 2 and not kwargs:
            return _lift_tracer(args[0]).transpose(tuple(args[1]))
        if func is np.matmul and not kwargs:
            return _matmul(*args)
        if func is np.shape:
            return args[0].shape
        raise Untraceable(f"numpy.{func.__name__}")


def _lift_tracer(x: Any) -> Tracer:
    if not isinstance(x, Tracer):
        raise Untraceable(f"an operand of type {type(x).__name__}")
    return x


def _recorder(*xs: Any) -> _Recorder:
    for x in xs:
        if isinstance(x, Tracer):
            return x.rec
    raise Untraceable("an operation without a tracer")  # pragma: no cover (numpy dispatches only to tracers)


def _binary(op: int, a: Any, b: Any) -> Tracer:
    rec = _recorder(a, b)
    ta, tb = rec.lift(a)._c_order(), rec.lift(b)._c_order()
    for x, other in ((a, tb), (b, ta)):
        if isinstance(x, np.ndarray) and x.ndim > len(other.core):
            raise Untraceable(f"an array of shape {x.shape} with more axes than the operand's core {other.core}")
    try:
        core = tuple(np.broadcast_shapes(ta.core, tb.core))
    except ValueError:
        raise Untraceable(f"shapes {ta.core} and {tb.core} do not broadcast") from None
    n = math.prod(core)
    flags = 0
    for bit, x in ((1, ta), (2, tb)):
        if math.prod(x.core) == 1:
            flags |= bit if n != 1 else 0
        elif x.core != core:
            raise Untraceable(f"broadcasting {x.core} to {core} (only same shape or a scalar is traced)")
    if isinstance(a, Tracer) and isinstance(b, Tracer) and (len(a.core) != len(core) or len(b.core) != len(core)):
        raise Untraceable(f"tracers of cores {a.core} and {b.core} (batch axes would mix)")
    return rec.emit(op, core, ta.off, tb.off, 0, 0, n, flags)


def _unary(op: int, a: Any) -> Tracer:
    t = _lift_tracer(a)._c_order()
    return t.rec.emit(op, t.core, t.off, 0, 0, 0, math.prod(t.core))


def _matmul(a: Any, b: Any) -> Tracer:
    rec = _recorder(a, b)
    for x in (a, b):
        if isinstance(x, np.ndarray) and x.ndim != 2:
            raise Untraceable(f"a product with an array of shape {x.shape} (only matrices are traced)")
        if not isinstance(x, Tracer | np.ndarray):
            raise Untraceable(f"a product with {type(x).__name__}")
    ta, tb = rec.lift(a), rec.lift(b)
    if len(ta.core) != 2 or len(tb.core) != 2 or ta.core[1] != tb.core[0]:
        raise Untraceable(f"a product of cores {ta.core} and {tb.core}")
    m, k = ta.core
    n = tb.core[1]
    return rec.emit(MATMUL, (m, n), ta.off, tb.off, m, k, n, int(ta.trans) | (int(tb.trans) << 1))


# --------------------------------------------------------------------------- tracing
def trace(vf: Callable[..., Any], cores: Sequence[tuple[int, ...]], arg_shapes: Sequence[tuple[int, ...]],
          batch: int) -> Tape:
    """Record ``vf(t, y, args)`` as a :class:`Tape`.

    Parameters
    ----------
    vf : callable
        The vector field ``vf(t, y, args) -> dy`` of :func:`linfa.integrate.integrate`.
    cores : sequence of tuple of int
        Core shape of each state leaf.
    arg_shapes : sequence of tuple of int
        Per-instance core shape of each argument (the whole shape of a shared one).
    batch : int
        The batch size the tracers report in their ``shape``.

    Returns
    -------
    Tape

    Raises
    ------
    Untraceable
        The field does something the tape cannot hold; any exception the
        field raises on tracers is reported this way too (the numpy engine
        then runs it, and raises it for real if it is a bug).
    """
    rec = _Recorder(batch)
    D = sum(math.prod(c) for c in cores)
    A = sum(math.prod(s) for s in arg_shapes)
    y, off = [], 0
    for c in cores:
        y.append(Tracer(rec, off, tuple(c)))
        off += math.prod(c)
    args = []
    for s in arg_shapes:
        args.append(Tracer(rec, off, tuple(s)))
        off += math.prod(s)
    rec.alloc(D + A)
    t = Tracer(rec, rec.alloc(1), ())
    try:
        out = vf(t, tuple(y), tuple(args))
    except Untraceable:
        raise
    except Exception as exc:  # the field failed on tracers: let the engine run it
        raise Untraceable(f"the field raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, tuple | list) or len(out) != len(cores):
        raise Untraceable("the field did not return a tuple of leaves like the state")
    out_off = []
    for leaf, c in zip(out, cores, strict=True):
        c = tuple(c)
        if isinstance(leaf, Tracer):
            if leaf.rec is not rec:
                raise Untraceable("an output of another trace")
            leaf = leaf._c_order()
            if leaf.core != c:
                raise Untraceable(f"an output leaf of core {leaf.core}, expected {c}")
        else:
            a = np.asarray(leaf)
            try:
                a = np.broadcast_to(a, c)
            except ValueError:
                raise Untraceable(f"an output leaf of shape {a.shape}, expected core {c}") from None
            leaf = rec.constant(a)
        out_off.append(leaf.off)
    template = np.zeros(rec.size)
    for o, v in rec.consts:
        template[o : o + v.size] = v
    code = np.array(rec.ops, dtype=np.int64).reshape(-1, 8)
    return Tape(code=code, template=template, D=D, A=A, out_off=np.array(out_off, dtype=np.int64),
                arg_shapes=tuple(tuple(s) for s in arg_shapes))


# --------------------------------------------------------------------------- reference evaluation
def evaluate(tape: Tape, cores: Sequence[tuple[int, ...]], y: np.ndarray, args: np.ndarray,
             t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run the tape with numpy on a batch: the reference for the compiled interpreter.

    Parameters
    ----------
    tape : Tape
    cores : sequence of tuple of int
        Core shape of each state leaf.
    y : ndarray, shape (m, D)
    args : ndarray, shape (m, A)
        The arguments of each instance, flattened leaf after leaf.
    t : ndarray, shape (m,)

    Returns
    -------
    tuple of ndarray
        The output leaves, each ``(m, *core)``.
    """
    m = y.shape[0]
    ws = np.broadcast_to(tape.template, (m, tape.template.size)).copy()
    ws[:, : tape.D] = y
    ws[:, tape.D : tape.D + tape.A] = args
    ws[:, tape.t_off] = t

    def mat(off: int, r: int, c: int, trans: bool) -> np.ndarray:
        if trans:
            return ws[:, off : off + r * c].reshape(m, c, r).swapaxes(-1, -2)
        return ws[:, off : off + r * c].reshape(m, r, c)

    for op, out, a, b, mm, k, n, flags in tape.code.tolist():
        if op == MATMUL:
            ws[:, out : out + mm * n] = (mat(a, mm, k, bool(flags & 1)) @ mat(b, k, n, bool(flags & 2))).reshape(m, -1)
        elif op == TRANSPOSE:
            ws[:, out : out + mm * n] = ws[:, a : a + mm * n].reshape(m, mm, n).swapaxes(-1, -2).reshape(m, -1)
        elif op in (NEG, SIGN):
            x = ws[:, a : a + n]
            ws[:, out : out + n] = -x if op == NEG else np.sign(x)
        else:
            x = ws[:, a : a + 1] if flags & 1 else ws[:, a : a + n]
            z = ws[:, b : b + 1] if flags & 2 else ws[:, b : b + n]
            with np.errstate(all="ignore"):
                ws[:, out : out + n] = (x + z if op == ADD else x - z if op == SUB else x * z if op == MUL
                                        else x / z)
    return tuple(ws[:, o : o + math.prod(c)].reshape(m, *c) for o, c in zip(tape.out_off.tolist(), cores,
                                                                              strict=True))


def validate(got: Sequence[np.ndarray], want: Sequence[Any], *, rtol: float = 1e-12) -> bool:
    """Whether a tape's outputs ``got`` match the real field's ``want`` leaf by leaf.

    .. math::

        \\max_i |g_i - w_i| \\le \\text{rtol} \\max_i |w_i| + 10^{-300}

    per leaf (non-finite values must sit at the same places and be equal).
    """
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        w = np.asarray(w, dtype=np.float64)
        try:
            w = np.broadcast_to(w, g.shape)
        except ValueError:
            return False
        fin = np.isfinite(w)
        if not np.array_equal(fin, np.isfinite(g)) or not np.array_equal(g[~fin], w[~fin]):
            return False
        if fin.any():
            scale = float(np.max(np.abs(w[fin])))
            if float(np.max(np.abs(g[fin] - w[fin]))) > rtol * scale + 1e-300:
                return False
    return True
