"""Shared helpers of the derivation builders: random instances and statement lambdification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from linfa.random_matrices import spd_with_condition
from linfa.symbolic.numeric import lambdify
from linfa.tasks import Task


def lambdified(fn: Callable[..., Any], names: str, *shapes: tuple[int, int]) -> Callable[..., Any]:
    """Build ``fn`` on matrix symbols ``names`` of ``shapes`` and lambdify it.

    This is how a symbolic statement is evaluated numerically at dimensions
    larger than those of the exact proof.
    """
    syms = [sp.MatrixSymbol(n, *s) for n, s in zip(names.split(), shapes, strict=True)]
    return lambdify(fn(*syms), syms)


def dims(rng: np.random.Generator, k: int, lo: int = 3, hi: int = 6) -> list[int]:
    """``k`` random widths in ``[lo, hi]``."""
    return [int(n) for n in rng.integers(lo, hi + 1, size=k)]


def random_task(rng: np.random.Generator, n_in: int, n_out: int, *, whitened: bool = False) -> Task:
    """A teacher task with noise and (unless ``whitened``) a non-identity ``Σxx``."""
    sxx = None if whitened else spd_with_condition(rng, n_in, 4.0)
    return Task.random_teacher(rng, n_in, n_out, sxx=sxx, noise=0.3)


def gaussian(rng: np.random.Generator, *shapes: tuple[int, int], scale: float = 0.5) -> list[np.ndarray]:
    """Independent Gaussian matrices of the given shapes, entries ``N(0, scale²/cols)``."""
    return [scale * rng.standard_normal(s) / np.sqrt(s[1]) for s in shapes]


def rel(a: Any, b: Any) -> float:
    """``max|a - b| / max(1, max|b|)``."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
