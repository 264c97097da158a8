"""Argument checks shared by the public constructors.

Every failure raises ``ValueError`` or ``TypeError`` whose message names the
argument, what was expected and what was given.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from linfa._ops import is_symbolic

__all__ = [
    "as_generator",
    "as_matrix",
    "batch",
    "check_symmetric_psd",
    "checked_problem",
    "count",
    "flag",
    "instance_of",
    "is_symbolic_problem",
    "is_trusted",
    "observables",
    "path",
    "problem_state",
    "real",
    "real_array",
    "shape_str",
    "times",
    "trusted",
    "widths",
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
    arr = real_array(name, a)
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


def real_array(name: str, a: Any, *, finite: bool = False) -> np.ndarray:
    """``a`` as a float64 array, refusing what would convert silently or wrongly.

    Complex values (whose imaginary part ``float`` would drop), strings (even
    numeric ones), booleans-as-objects, ``None``, ragged lists and datetimes
    raise ``TypeError`` naming ``name``; with ``finite`` NaN/inf raise ``ValueError``.
    """
    if a is None or isinstance(a, str | bytes):
        raise TypeError(f"{name}: expected a real numeric array, got {type(a).__name__} {a!r}"[:200])
    kind = getattr(getattr(a, "dtype", None), "kind", None)
    if kind is None:
        try:
            kind = np.asarray(a).dtype.kind
        except ValueError:  # ragged nested lists
            raise TypeError(f"{name}: expected a real numeric array, got a ragged {type(a).__name__}") from None
    if kind not in "iuf":
        what = {"b": "boolean", "c": "complex", "U": "string", "S": "bytes", "O": "object", "M": "datetime",
                "m": "timedelta"}
        raise TypeError(f"{name}: expected a real numeric array, got {what.get(kind, kind)} entries")
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a real numeric array, got {type(a).__name__}") from exc
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite entries, got {bad} NaN or infinite value(s)")
    return arr


def instance_of(name: str, x: Any, cls: type | tuple[type, ...], what: str) -> Any:
    """Return ``x`` if it is an instance of ``cls``, else a ``TypeError`` saying ``what`` was expected."""
    if not isinstance(x, cls):
        raise TypeError(f"{name}: expected {what}, got {type(x).__name__}")
    return x


def times(name: str, t: Any, *, minimum: float | None = 0.0, min_size: int = 1) -> np.ndarray:
    """A 1-D array of finite real times (``>= minimum`` if given), at least ``min_size`` of them."""
    arr = real_array(name, t, finite=True)
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a time or a 1-D array of times, got shape {shape_str(arr.shape)}")
    if arr.size < min_size:
        raise ValueError(f"{name}: expected at least {min_size} time(s), got {arr.size}")
    if minimum is not None and arr.size and float(arr.min()) < minimum:
        raise ValueError(f"{name}: expected times >= {minimum:g}, got {float(arr.min())!r}")
    return arr


def widths(name: str, w: Any, *, minimum_length: int = 2) -> tuple[int, ...]:
    """Layer widths ``(n0, ..., nL)``: a sequence of at least ``minimum_length`` positive integers."""
    if isinstance(w, str | bytes) or w is None or np.ndim(w) != 1:
        raise TypeError(f"{name}: expected a sequence of layer widths such as (3, 4, 2), got {w!r}")
    items = tuple(w)
    if len(items) < minimum_length:
        raise ValueError(f"{name}: expected at least {minimum_length} widths (n0, ..., nL), got {items!r}")
    return tuple(count(f"{name}[{i}]", n, minimum=1) for i, n in enumerate(items))


# ---------------------------------------------------------------- (rule, task, state) checks
#: True while a caller that has validated its arguments (or the integrator, whose state is
#: validated once at the start) evaluates flows and observables: skips the per-call checks.
_TRUSTED: ContextVar[bool] = ContextVar("linfa_validated", default=False)


def is_symbolic_problem(state: Any, task: Any = None) -> bool:
    """Whether ``state`` (or ``task``) holds sympy matrices (checked by the symbolic layer, not here)."""
    if isinstance(state, tuple | list) and state and is_symbolic(state[0]):
        return True
    return task is not None and is_symbolic(getattr(task, "sxx", None))


def problem_state(rule: Any, task: Any, state: Any, *, name: str = "state",
                  needs_task: bool = True) -> tuple[np.ndarray, ...]:
    """Check ``rule``, ``task`` (unless ``needs_task`` is false and it is ``None``) and the shapes of ``state``.

    Checks types, dtypes and the chain of weight shapes ``W_l: (n_l, n_{l-1})``
    with ``n_0``/``n_L`` from the task, and that batch shapes broadcast. Entries
    are not required to be finite: a NaN state gives NaN observables (as a
    diverging run does), it is not a malformed argument.

    Returns
    -------
    tuple of ndarray
        ``state`` as float64 arrays.
    """
    from linfa.rules import AbstractRule
    from linfa.tasks import Task

    instance_of("rule", rule, AbstractRule, "a linfa rule such as linfa.FA(feedback)")
    if task is not None or needs_task:
        instance_of("task", task, Task, "a linfa.Task")
    if not isinstance(state, tuple | list):
        raise TypeError(f"{name}: expected a tuple of weight matrices (W_1, ..., W_L), got {type(state).__name__}")
    if not state:
        raise ValueError(f"{name}: expected at least one weight matrix, got an empty tuple")
    arrays = tuple(real_array(f"{name}[{i}]", a) for i, a in enumerate(state))
    for i, a in enumerate(arrays):
        if a.ndim < 2:
            raise ValueError(f"{name}[{i}]: expected a matrix of shape (*batch, m, n), got shape {shape_str(a.shape)}")
    weights = rule.weights(arrays)
    prev = task.n_in if task is not None else weights[0].shape[-1]
    for l, w in enumerate(weights, start=1):
        if w.shape[-1] != prev:
            whose = "the task's inputs" if l == 1 and task is not None else f"the rows of W_{l - 1}"
            raise ValueError(f"{name}[{l - 1}] (W_{l}): expected {prev} columns ({whose}; task and state must "
                             f"agree), got shape {shape_str(w.shape)}")
        prev = w.shape[-2]
    if task is not None and prev != task.n_out:
        raise ValueError(f"{name}[{len(weights) - 1}] (W_{len(weights)}): expected {task.n_out} rows (the task's "
                         f"outputs), got shape {shape_str(weights[-1].shape)}")
    try:
        np.broadcast_shapes(*(a.shape[:-2] for a in arrays), *(() if task is None else (task.batch_shape,)))
    except ValueError:
        raise ValueError(f"{name}: batch shapes {[shape_str(a.shape[:-2]) for a in arrays]} do not broadcast"
                         + ("" if task is None else f" with the task's {shape_str(task.batch_shape)}")) from None
    return arrays


def checked_problem(fn: Callable[..., Any] | None = None, *, needs_task: bool = True) -> Any:
    """Decorate ``fn(rule, task, state, ...)``: validate the three (see :func:`problem_state`) unless trusted.

    ``@checked_problem(needs_task=False)`` for an observable that does not read
    the task (``None`` is then accepted for it).
    """
    if fn is None:
        return functools.partial(checked_problem, needs_task=needs_task)

    @functools.wraps(fn)
    def wrapper(rule: Any, task: Any, state: Any, *args: Any, **kwargs: Any) -> Any:
        if _TRUSTED.get() or is_symbolic_problem(state, task):
            return fn(rule, task, state, *args, **kwargs)
        state = problem_state(rule, task, state, needs_task=needs_task)
        token = _TRUSTED.set(True)
        try:
            return fn(rule, task, state, *args, **kwargs)
        finally:
            _TRUSTED.reset(token)

    return wrapper


def trusted(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a flow or observable so that the per-call checks inside it are skipped (already validated)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _TRUSTED.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _TRUSTED.reset(token)

    return wrapper


def is_trusted() -> bool:
    """Whether the current call runs inside a validated caller (see :func:`checked_problem`)."""
    return _TRUSTED.get()


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
    if isinstance(x, bool | np.bool_ | str | bytes | complex | np.complexfloating) or x is None:
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__} {x!r}")
    if np.ndim(x) != 0:
        raise TypeError(f"{name}: expected a real number, got an array of shape {shape_str(np.shape(x))}")
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
    if isinstance(x, bool | np.bool_ | str | bytes | complex | np.complexfloating) or x is None:
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(x).__name__} {x!r}")
    if np.ndim(x) != 0:
        raise TypeError(f"{name}: expected an integer >= {minimum}, got an array of shape {shape_str(np.shape(x))}")
    try:
        v = int(x)
        exact = v == x
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf); ValueError: int(nan)
        if isinstance(x, float | np.floating):
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}") from None
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(x).__name__} {x!r}") from None
    if not exact or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    return v


def flag(name: str, x: Any) -> bool:
    """A ``bool`` argument (``numpy.bool_`` too); anything else (``"no"``, ``None``, ``2``) is a ``TypeError``."""
    if not isinstance(x, bool | np.bool_):
        raise TypeError(f"{name}: expected True or False, got {type(x).__name__} {x!r}"[:200])
    return bool(x)


def path(name: str, x: Any) -> str:
    """A file path argument: a ``str`` or ``os.PathLike`` (not bytes, not empty), returned as ``str``."""
    import os

    if not isinstance(x, str | os.PathLike):
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got {type(x).__name__} {x!r}"[:200])
    p = os.fspath(x)
    if not isinstance(p, str) or not p:
        raise ValueError(f"{name}: expected a non-empty file path, got {x!r}")
    return p


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
    # the integrators validate the state once; observables then skip their per-call checks
    return {key: trusted(fn) for key, fn in obs.items()}


def output_parent_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the file ``path`` cannot be created in its directory, or ``None`` if its directory exists.

    linfa writes an output file only into an existing directory (it creates
    none): the message says which directory is missing, or which part of the
    path is a regular file rather than a directory. Every command that writes
    a file (``linfa check --json``, ``linfa sweep --out``) uses it.
    """
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if os.path.isdir(parent):
        return None
    existing = parent
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{os.fspath(path)}: {existing} is a file, not a directory"
    return f"{os.fspath(path)}: the directory {parent} does not exist (linfa creates no directories; make it first)"
