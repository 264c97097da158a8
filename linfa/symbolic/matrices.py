r"""Generic symbolic matrices and small helpers for explicit sympy algebra.

Two kinds of symbolic operand evaluate a rule's flow (:mod:`linfa.rules`):

* explicit :class:`sympy.Matrix` objects whose entries are independent real
  symbols (:func:`matrix`, :func:`symmetric`, ...): every identity between
  them is a polynomial (or rational) identity in the entries, checked in the
  stated dimensions;
* :class:`sympy.MatrixSymbol` expressions (:func:`symbols`): the algebra is
  carried dimension-free where sympy can (sums, products, transposes,
  inverses; no traces or symmetry of scalars).

Entries are named ``A_ij`` (1-based), so ``sympy.latex`` prints
:math:`A_{ij}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from linfa.tasks import Task

__all__ = [
    "antisymmetric",
    "diagonal",
    "explicit",
    "frobenius",
    "matrix",
    "scalar",
    "sq_norm",
    "sym",
    "symbols",
    "symmetric",
    "task",
    "vector",
]


def _entry(name: str, i: int, j: int | None = None, **assumptions: Any) -> sp.Symbol:
    idx = f"{i + 1}" if j is None else f"{i + 1}{j + 1}"
    return sp.Symbol(f"{name}_{idx}", real=True, **assumptions)


def matrix(name: str, rows: int, cols: int, **assumptions: Any) -> sp.Matrix:
    """A ``rows × cols`` matrix of independent real symbols ``name_ij``.

    Parameters
    ----------
    name : str
        Base name; entry ``(i, j)`` is the symbol ``name_{i+1}{j+1}``.
    rows, cols : int
        Shape.
    **assumptions
        Extra sympy assumptions on every entry (e.g. ``positive=True``).

    Examples
    --------
    >>> matrix("A", 2, 2)
    Matrix([
    [A_11, A_12],
    [A_21, A_22]])
    """
    return sp.Matrix(rows, cols, lambda i, j: _entry(name, i, j, **assumptions))


def vector(name: str, n: int, **assumptions: Any) -> sp.Matrix:
    """A column ``n × 1`` of real symbols ``name_i``."""
    return sp.Matrix(n, 1, lambda i, j: _entry(name, i, None, **assumptions))


def symmetric(name: str, n: int) -> sp.Matrix:
    """A symmetric ``n × n`` matrix: entries ``name_ij`` with ``i <= j`` mirrored."""
    return sp.Matrix(n, n, lambda i, j: _entry(name, min(i, j), max(i, j)))


def antisymmetric(name: str, n: int) -> sp.Matrix:
    """An antisymmetric ``n × n`` matrix ``K = -K^T`` with entries ``name_ij``, ``i < j``."""
    def f(i: int, j: int) -> Any:
        if i == j:
            return sp.S.Zero
        return _entry(name, i, j) if i < j else -_entry(name, j, i)

    return sp.Matrix(n, n, f)


def diagonal(name: str, n: int, **assumptions: Any) -> sp.Matrix:
    """A diagonal ``n × n`` matrix ``diag(name_1, ..., name_n)``."""
    return sp.diag(*[_entry(name, i, None, **assumptions) for i in range(n)])


def symbols(spec: str, *shapes: tuple[int, int]) -> tuple[sp.MatrixSymbol, ...]:
    """Dimension-carrying matrix symbols, e.g. ``symbols("A W", (3, 2), (2, 3))``.

    Parameters
    ----------
    spec : str
        Whitespace-separated names.
    *shapes : tuple of int
        One ``(rows, cols)`` per name.

    Returns
    -------
    tuple of sympy.MatrixSymbol
    """
    names = spec.split()
    if len(names) != len(shapes):
        raise ValueError(f"shapes: expected {len(names)} shapes for names {names}, got {len(shapes)}")
    return tuple(sp.MatrixSymbol(n, *shp) for n, shp in zip(names, shapes, strict=True))


def task(sxx: Any, syx: Any, syy: Any = None) -> Task:
    """A :class:`~linfa.tasks.Task` holding sympy moments (no validation)."""
    return Task.tree_unflatten((sxx, syx, syy))


def explicit(expr: Any) -> Any:
    """An explicit ``Matrix`` for a matrix expression; other input unchanged."""
    if isinstance(expr, sp.MatrixExpr):
        return sp.Matrix(expr.as_explicit())
    return expr


def scalar(m: Any) -> Any:
    """The entry of a ``1 × 1`` explicit matrix (``x^T y`` as a scalar)."""
    m = explicit(m)
    if isinstance(m, sp.MatrixBase):
        if m.shape != (1, 1):
            raise ValueError(f"m: expected a 1 × 1 matrix, got shape {m.shape}")
        return m[0, 0]
    return m


def frobenius(a: Any, b: Any) -> Any:
    """Frobenius inner product ``tr(a^T b) = Σ_ij a_ij b_ij`` of explicit matrices."""
    a, b = explicit(a), explicit(b)
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} like a, got {b.shape}")
    return sp.Add(*[x * y for x, y in zip(a, b, strict=True)])


def sq_norm(a: Any) -> Any:
    """Squared Frobenius norm ``‖a‖² = Σ_ij a_ij²`` of an explicit matrix."""
    return frobenius(a, a)


def sym(x: Any) -> Any:
    """Symmetric part ``(x + x^T)/2``."""
    return (x + x.T) / 2


def free_matrix_symbols(exprs: Sequence[Any]) -> list[Any]:
    """Matrix symbols and scalar symbols occurring in ``exprs``, sorted by name."""
    out: set[Any] = set()
    for e in exprs:
        if isinstance(e, sp.Basic):
            out |= e.atoms(sp.MatrixSymbol)
            out |= {s for s in e.free_symbols if not isinstance(s, sp.MatrixSymbol)}
    return sorted(out, key=lambda s: str(s))
