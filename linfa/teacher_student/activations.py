"""Activation functions of a shallow teacher–student network: ``g`` and its derivative ``g'``.

Two activations have closed-form Gaussian averages (:mod:`.averages`):

* ``"erf"``: :math:`g(x) = \\operatorname{erf}(x/\\sqrt2)`, :math:`g'(x) = \\sqrt{2/\\pi}\\,e^{-x^2/2}`
  (Saad & Solla 1995; Goldt et al. 2019);
* ``"linear"``: :math:`g(x) = x`, :math:`g'(x) = 1`.

Any other activation, given as a pair ``(g, dg)`` of vectorised callables or
by name (``"relu"``, ``"tanh"``), is averaged by Gauss–Hermite cubature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

__all__ = ["ACTIVATIONS", "Activation", "activation"]

Fn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation ``g`` with its derivative ``dg``.

    Parameters
    ----------
    name : str
        ``"erf"`` and ``"linear"`` select the closed-form Gaussian averages;
        any other name uses cubature.
    g, dg : callable
        Vectorised ``ndarray -> ndarray`` (same shape), ``dg = g'``.
    """

    name: str
    g: Fn
    dg: Fn

    @property
    def closed_form(self) -> bool:
        """Whether :mod:`.averages` has closed forms for this activation."""
        return self.name in ("erf", "linear")

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(erf(x / np.sqrt(2.0)))


def _derf(x: np.ndarray) -> np.ndarray:
    return np.sqrt(2.0 / np.pi) * np.exp(-0.5 * x * x)


def _linear(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _one(x: np.ndarray) -> np.ndarray:
    return np.ones_like(x, dtype=float)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _step(x: np.ndarray) -> np.ndarray:
    return (x > 0).astype(float)


def _dtanh(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


#: The activations known by name.
ACTIVATIONS: dict[str, Activation] = {
    "erf": Activation("erf", _erf, _derf),
    "linear": Activation("linear", _linear, _one),
    "relu": Activation("relu", _relu, _step),
    "tanh": Activation("tanh", np.tanh, _dtanh),
}


def activation(spec: Any) -> Activation:
    """The :class:`Activation` named or given by ``spec``.

    Parameters
    ----------
    spec : str, Activation or (callable, callable)
        A name in :data:`ACTIVATIONS`, an :class:`Activation`, or a pair
        ``(g, dg)`` of vectorised callables (averaged by cubature).

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        Anything else.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)} or a pair (g, dg), got {spec!r}")
        return ACTIVATIONS[spec]
    if isinstance(spec, tuple) and len(spec) == 2 and all(callable(f) for f in spec):
        g, dg = spec
        # never a closed-form name: a user's "erf" need not be erf(x/√2)
        return Activation(f"custom:{getattr(g, '__name__', 'g')}", g, dg)
    raise TypeError(
        f"activation: expected a name in {sorted(ACTIVATIONS)}, an Activation or a pair of callables (g, dg), "
        f"got {type(spec).__name__}"
    )
