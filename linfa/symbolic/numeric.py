r"""Numbers for symbolic statements: lambdify, random points, cross-checks.

A derivation is proved in small (or symbolic) dimensions; its statement is
then cross-checked against linfa's *numerical* flows and observables at
random points of larger dimension. The helpers here:

* :func:`lambdify` turns a sympy expression in matrix symbols into a numpy
  function;
* :func:`random_values` draws a point for every free symbol (respecting
  ``positive``/``nonnegative`` assumptions);
* :func:`sample_relation` tests a relation at random points (the
  ``"numeric"`` method of :class:`~linfa.symbolic.derivation.Step`);
* :func:`flow_derivative` differentiates a numpy quantity along a numerical
  flow by the complex step,
  :math:`\frac{d}{dt}Q = \operatorname{Im} Q(W + i h \dot W)/h` (exact to
  rounding for the polynomial quantities here);
* :func:`rk4` is a small fixed-step integrator for cross-checks;
* :class:`CheckResult` is what a cross-check returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

__all__ = [
    "CheckResult",
    "compare",
    "flow_derivative",
    "lambdify",
    "random_values",
    "rk4",
    "sample_relation",
]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a numerical cross-check.

    Attributes
    ----------
    name : str
    ok : bool
    error : float
        The quantity compared against ``tol`` (a relative error, or a
        worst violation of an inequality).
    tol : float
    detail : str
    """

    name: str
    ok: bool
    error: float
    tol: float
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        tail = f"; {self.detail}" if self.detail else ""
        return f"[{mark}] {self.name}: error {self.error:.3g} (tol {self.tol:.1g}){tail}"


def compare(name: str, got: Any, want: Any, *, tol: float = 1e-8, detail: str = "") -> CheckResult:
    """Relative error ``max|got - want| / max(1, max|want|)`` against ``tol``."""
    got = np.asarray(got, dtype=complex if np.iscomplexobj(got) else float)
    want = np.asarray(want, dtype=complex if np.iscomplexobj(want) else float)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
    err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    return CheckResult(name, bool(np.isfinite(err) and err <= tol), err, tol, detail)


def lambdify(expr: Any, args: Sequence[Any]) -> Callable[..., Any]:
    """A numpy function of ``args`` (matrix or scalar symbols) evaluating ``expr``.

    Matrix-valued results come back as ndarrays; a list or tuple of
    expressions gives a list of results.
    """
    if isinstance(expr, list | tuple):
        fs = [lambdify(e, args) for e in expr]
        return lambda *vals: [f(*vals) for f in fs]
    if isinstance(expr, sp.Basic) and expr.has(sp.Trace):
        expr = expr.replace(lambda e: isinstance(e, sp.Trace), lambda e: _np_trace(e.arg))
    f = sp.lambdify(list(args), expr, modules=[{"_np_trace": np.trace}, "numpy"])

    def g(*vals: Any) -> Any:
        out = f(*vals)
        return np.asarray(out) if isinstance(out, np.ndarray | list) else out

    return g


_np_trace = sp.Function("_np_trace")


def _draw_scalar(s: sp.Symbol, rng: np.random.Generator) -> float:
    if s.is_positive or s.is_nonnegative:
        return float(rng.uniform(0.3, 2.0))
    if s.is_negative or s.is_nonpositive:
        return -float(rng.uniform(0.3, 2.0))
    return float(rng.standard_normal())


def random_values(exprs: Sequence[Any], rng: np.random.Generator) -> dict[Any, Any]:
    """A random value for every free scalar and matrix symbol of ``exprs``."""
    from linfa.symbolic.matrices import free_matrix_symbols

    out: dict[Any, Any] = {}
    for s in free_matrix_symbols(exprs):
        if isinstance(s, sp.MatrixSymbol):
            out[s] = rng.standard_normal(tuple(int(n) for n in s.shape))
        else:
            out[s] = _draw_scalar(s, rng)
    return out


def _value(expr: Any, point: dict[Any, Any]) -> np.ndarray:
    args = list(point)
    return np.asarray(lambdify(expr, args)(*point.values()), dtype=float)


def sample_relation(
    lhs: Any, rhs: Any, relation: str, rng: np.random.Generator, *, points: int = 8, tol: float = 1e-8
) -> tuple[bool, float]:
    """Test ``lhs <relation> rhs`` at random points; return (ok, worst violation).

    Equalities use the relative error; ``"psd"`` the most negative eigenvalue
    of the symmetrised difference.
    """
    worst = 0.0
    for _ in range(points):
        point = random_values([lhs, rhs], rng)
        a = _value(lhs, point) if isinstance(lhs, sp.Basic | sp.MatrixBase) else np.asarray(lhs, float)
        b = _value(rhs, point) if isinstance(rhs, sp.Basic | sp.MatrixBase) else np.asarray(rhs, float)
        a, b = np.broadcast_arrays(a, b)
        scale = max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
        if relation == "=":
            v = float(np.max(np.abs(a - b))) / scale
        elif relation == "psd":
            d = a - b
            v = max(0.0, -float(np.linalg.eigvalsh(0.5 * (d + d.T)).min())) / scale
        else:
            diff = (a - b) if relation in (">=", ">") else (b - a)
            v = max(0.0, -float(np.min(diff))) / scale
            if relation in (">", "<") and float(np.min(diff)) <= 0:
                v = max(v, tol * 10)
        worst = max(worst, v)
    return worst <= tol, worst


def flow_derivative(
    quantity: Callable[..., Any], state: Sequence[np.ndarray], rates: Sequence[np.ndarray], *, h: float = 1e-20
) -> np.ndarray:
    """``d/dt quantity(*state)`` when the state moves at ``rates``, by the complex step.

    ``quantity`` must be real-analytic and built without conjugation (matrix
    products, transposes, sums: what :func:`lambdify` produces).
    """
    from linfa._validate import trusted

    moved = [np.asarray(s, dtype=complex) + 1j * h * np.asarray(r) for s, r in zip(state, rates, strict=True)]
    # complex on purpose: linfa's own observables would refuse a complex state from a caller
    return np.asarray(trusted(quantity)(*moved)).imag / h


def rk4(
    flow: Callable[[float, tuple[np.ndarray, ...]], tuple[np.ndarray, ...]],
    state: Sequence[np.ndarray], t1: float, steps: int, *, t0: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """Integrate ``dstate/dt = flow(t, state)`` from ``t0`` to ``t1`` by classical RK4.

    Parameters
    ----------
    flow : callable
        ``flow(t, state) -> dstate``, tuples of arrays (e.g. ``rule.flow(task)``).
    state : tuple of ndarray
    t1 : float
    steps : int
        Number of equal steps.

    Returns
    -------
    tuple of ndarray
        The state at ``t1``.
    """
    y = tuple(np.asarray(s, dtype=float) for s in state)
    h = (t1 - t0) / steps
    t = t0

    def axpy(a: float, k: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return tuple(yi + a * ki for yi, ki in zip(y, k, strict=True))

    for _ in range(steps):
        k1 = flow(t, y)
        k2 = flow(t + h / 2, axpy(h / 2, k1))
        k3 = flow(t + h / 2, axpy(h / 2, k2))
        k4 = flow(t + h, axpy(h, k3))
        y = tuple(
            yi + h / 6 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4, strict=True)
        )
        t += h
    return y
