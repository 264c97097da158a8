"""Argument checks shared by the public constructors.

Every failure raises ``ValueError`` or ``TypeError`` whose message names the
argument, what was expected and what was given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from linfa._ops import is_symbolic

__all__ = [
    "as_generator",
    "as_matrix",
    "batch",
    "check_symmetric_psd",
    "count",
    "observables",
    "real",
    "shape_str",
]


def shape_str(shape: Sequence[Any]) -> str:
    """Render a shape such as ``(*batch, 3, 4)`` or ``(K, 3, 'n1')``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_matrix(
    name: str,
    a: Any,
    rows: int | None = None,
    cols: int | None = None,
    *,
    allow_symbolic: bool = False,
) -> Any:
    """Return ``a`` as a float64 array of shape ``(*batch, rows, cols)``.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    a : array_like, shape (*batch, rows, cols)
        The matrix (or batch of matrices).
    rows, cols : int, optional
        Required trailing dimensions; ``None`` accepts any.
    allow_symbolic : bool
        Pass sympy matrices through unchanged (shape still checked).

    Raises
    ------
    TypeError
        If ``a`` is not numeric.
    ValueError
        If ``a`` has fewer than two axes, the wrong trailing shape, or
        non-finite entries.
    """
    want = shape_str(["*batch", rows if rows is not None else "m", cols if cols is not None else "n"])
    if is_symbolic(a):
        if not allow_symbolic:
            raise TypeError(f"{name}: expected a numeric array, got a sympy {type(a).__name__}")
        shape = tuple(a.shape)
        if (rows is not None and shape[0] != rows) or (cols is not None and shape[1] != cols):
            raise ValueError(f"{name}: expected shape {want}, got {shape_str(shape)}")
        return a
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a real numeric array, got {type(a).__name__}") from exc
    if arr.ndim < 2:
        raise ValueError(
            f"{name}: expected a matrix of shape {want}, got shape {shape_str(arr.shape)}"
        )
    if (rows is not None and arr.shape[-2] != rows) or (cols is not None and arr.shape[-1] != cols):
        raise ValueError(f"{name}: expected shape {want}, got {shape_str(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite entries, got {bad} NaN or infinite value(s)")
    return arr


def check_symmetric_psd(name: str, a: np.ndarray, *, rtol: float = 1e-10) -> None:
    """Raise ``ValueError`` unless each matrix in ``a`` is symmetric PSD.

    Both tests are relative to the largest absolute entry, so that
    rounding in a matrix built as ``X.T @ X / n`` passes.
    """
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: expected a square matrix, got shape {shape_str(a.shape)}")
    scale = max(float(np.max(np.abs(a), initial=0.0)), np.finfo(float).tiny)
    asym = float(np.max(np.abs(a - np.swapaxes(a, -1, -2)), initial=0.0))
    if asym > rtol * scale * 10:
        raise ValueError(
            f"{name}: expected a symmetric matrix, got max |a - a^T| = {asym:.3g} "
            f"(relative {asym / scale:.3g})"
        )
    lam = np.linalg.eigvalsh(0.5 * (a + np.swapaxes(a, -1, -2)))
    lo = float(np.min(lam, initial=np.inf))
    if lo < -rtol * scale * max(a.shape[-1], 1) * 100:
        raise ValueError(
            f"{name}: expected a positive semi-definite matrix, got smallest eigenvalue {lo:.3g}"
        )


def as_generator(name: str, rng: Any) -> np.random.Generator:
    """Require a ``numpy.random.Generator`` (no global or implicit randomness)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: expected a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def real(
    name: str, x: Any, *, positive: bool = False, minimum: float | None = None, finite: bool = True
) -> float:
    """A real scalar argument, or a ``TypeError``/``ValueError`` naming ``name``.

    Parameters
    ----------
    positive : bool
        Require ``x > 0``.
    minimum : float, optional
        Require ``x >= minimum``.
    finite : bool
        Require a finite value.
    """
    if isinstance(x, bool) or x is None:
        raise TypeError(f"{name}: expected a real number, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__} {x!r}") from None
    if finite and not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {x!r}")
    if positive and not v > 0:
        raise ValueError(f"{name}: expected a positive number, got {x!r}")
    if minimum is not None and not v >= minimum:
        raise ValueError(f"{name}: expected a number >= {minimum:g}, got {x!r}")
    return v


def count(name: str, x: Any, *, minimum: int = 0) -> int:
    """An integer argument ``>= minimum`` (``2.0`` is accepted, ``2.5`` and ``True`` are not)."""
    if isinstance(x, bool) or x is None:
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    try:
        v = int(x)
        exact = v == x
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(x).__name__} {x!r}") from None
    if not exact or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    return v


def batch(name: str, x: Any) -> tuple[int, ...]:
    """A batch shape: a tuple of non-negative integers such as ``(K,)`` or ``()``."""
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        raise TypeError(f"{name}: expected a tuple of sizes such as ({x},), got the integer {x!r}")
    try:
        items = tuple(x)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of sizes such as (K,), got {type(x).__name__}") from None
    return tuple(count(f"{name}[{i}]", k, minimum=0) for i, k in enumerate(items))


def observables(observe: Any, *, what: str = "a callable obs(rule, task, state)") -> dict[str, Callable[..., Any]]:
    """The ``observe`` argument: ``None`` or a mapping name -> callable (``what`` in the error)."""
    if observe is not None and not isinstance(observe, Mapping):
        raise TypeError(
            f"observe: expected a dict name -> observable, e.g. {{'loss': loss}}, got {type(observe).__name__}"
        )
    obs = dict(observe or {})
    for key, fn in obs.items():
        if not callable(fn):
            raise TypeError(f"observe[{key!r}]: expected {what}, got {type(fn).__name__}")
    return obs
