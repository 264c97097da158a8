"""Order parameters of a shallow teacher–student network and their validation.

With student weights ``w`` (K × N) and teacher weights ``w*`` (M × N),

.. math::

    Q = \\frac{w w^T}{N},\\qquad R = \\frac{w\\, {w^*}^T}{N},\\qquad T = \\frac{w^* {w^*}^T}{N},

so the local fields :math:`\\lambda = w x/\\sqrt N`, :math:`\\nu = w^* x/\\sqrt N` of a
standard Gaussian input have covariance :math:`\\Omega = \\begin{pmatrix} Q & R \\\\ R^T & T\\end{pmatrix}`.
Together with the second layers ``v`` (K) and ``v*`` (M) they determine the
generalisation error and, as N → ∞, follow the ODEs of :mod:`.ode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from linfa._validate import as_generator, check_symmetric_psd, count, real, real_array, shape_str

__all__ = ["OrderParameters", "Problem", "covariance", "initial_weights", "order_parameters"]

RULES = ("BP", "DFA")


class OrderParameters(NamedTuple):
    """The macroscopic state read by observables; every array has leading batch axes.

    ``Q (..., K, K)``, ``R (..., K, M)``, ``T (..., M, M)``, ``v (..., K)``,
    ``vstar (..., M)``, ``b (..., K)`` (the DFA feedback; may be NaN when none was given).
    """

    Q: np.ndarray
    R: np.ndarray
    T: np.ndarray
    v: np.ndarray
    vstar: np.ndarray
    b: np.ndarray


def covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Covariance :math:`\\Omega` of the fields ``(λ_1..λ_K, ν_1..ν_M)``, shape ``(..., K+M, K+M)``."""
    Q = _array("Q", Q, None, 2, finite=False)
    T = _array("T", T, None, 2, finite=False)
    k, m = Q.shape[-1], T.shape[-1]
    Q = _array("Q", Q, (k, k), 2, finite=False)
    T = _array("T", T, (m, m), 2, finite=False)
    R = _array("R", R, (k, m), 2, finite=False)
    try:
        np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    except ValueError:
        raise ValueError(f"Q, R, T: batch axes do not broadcast: {shape_str(Q.shape)}, {shape_str(R.shape)}, "
                         f"{shape_str(T.shape)}") from None
    lead = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    return field_covariance(np.broadcast_to(Q, (*lead, k, k)), np.broadcast_to(R, (*lead, k, m)), T)


def field_covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """:func:`covariance` of arrays already checked (Q and R with the same leading axes): the flow's inner loop."""
    top = np.concatenate([Q, R], axis=-1)
    bottom = np.concatenate([np.swapaxes(R, -1, -2), np.broadcast_to(T, (*R.shape[:-2], *T.shape[-2:]))], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def order_parameters(w: Any, wstar: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, T)`` of weights ``w`` (..., K, N) and ``wstar`` (..., M, N)."""
    w = _array("w", w, None, 2)
    wstar = _array("wstar", wstar, None, 2)
    if w.ndim < 2 or wstar.ndim < 2 or w.shape[-1] != wstar.shape[-1]:
        raise ValueError(f"w, wstar: expected shapes (..., K, N) and (..., M, N), got {shape_str(w.shape)} "
                         f"and {shape_str(wstar.shape)}")
    n = w.shape[-1]
    wt = np.swapaxes(w, -1, -2)
    return w @ wt / n, w @ np.swapaxes(wstar, -1, -2) / n, wstar @ np.swapaxes(wstar, -1, -2) / n


def initial_weights(
    rng: np.random.Generator, n: int, k: int, m: int, *, size: int = 1, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian weights ``w`` (size, K, N) with entries of std ``scale`` and a teacher ``wstar`` (size, M, N).

    ``Q ≈ scale² I``, ``R ≈ 0``, ``T ≈ I`` up to :math:`O(1/\\sqrt N)`. The teacher is drawn
    first, so the same ``rng`` state gives the same teacher whatever ``scale``.
    """
    rng = as_generator("rng", rng)
    n, k, m, size = count("n", n, minimum=1), count("K", k, minimum=1), count("M", m, minimum=1), count(
        "size", size, minimum=1)
    scale = real("scale", scale, minimum=0.0)
    wstar = rng.standard_normal((size, m, n))
    w = scale * rng.standard_normal((size, k, n))
    return w, wstar


def _array(name: str, a: Any, core: tuple[int, ...] | None, ndim: int, *, finite: bool = True) -> np.ndarray:
    """``a`` as a float64 array of shape ``(*batch, *core)`` (``ndim`` core axes), finite unless told otherwise."""
    arr = real_array(name, a)
    want = shape_str(["*batch", *(core if core is not None else ["?"] * ndim)])
    if arr.ndim < ndim or (core is not None and arr.shape[arr.ndim - ndim:] != core):
        raise ValueError(f"{name}: expected shape {want}, got {shape_str(arr.shape)}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite entries")
    return arr


@dataclass(frozen=True, eq=False)
class Problem:
    """A batch of teacher–student learning problems, validated and broadcast to one batch shape.

    Parameters
    ----------
    Q : array_like, shape (*batch, K, K)
        Student–student overlaps, symmetric PSD.
    R : array_like, shape (*batch, K, M)
        Student–teacher overlaps (the full field covariance must be PSD).
    T : array_like, shape (*batch, M, M)
        Teacher–teacher overlaps, symmetric PSD.
    v : array_like, shape (*batch, K)
        Student second layer.
    vstar : array_like, shape (*batch, M)
        Teacher second layer.
    rule : {"BP", "DFA"}
        First-layer feedback ``f_k = v_k`` (BP) or ``f_k = b_k`` (DFA).
    b : array_like, shape (*batch, K), optional
        DFA feedback (required for DFA; for BP only read by observables).
    eta : float or array_like, shape (*batch,)
        Learning rate, ``> 0``.
    sigma : float or array_like, shape (*batch,)
        Teacher's output-noise standard deviation, ``>= 0``.
    activation : str, Activation or (g, dg)
        See :func:`~linfa.teacher_student.activation`.
    train_second_layer : bool
        False freezes ``v``.
    second_order : bool
        Keep the :math:`\\eta^2` terms (False: the small-η, gradient-flow limit).
    """

    Q: Any
    R: Any
    T: Any
    v: Any
    vstar: Any
    rule: str = "BP"
    b: Any = None
    eta: Any = 1.0
    sigma: Any = 0.0
    activation: Any = "erf"
    train_second_layer: bool = True
    second_order: bool = True

    def __post_init__(self) -> None:
        from linfa.teacher_student.activations import activation as _activation

        if self.rule not in RULES:
            raise ValueError(f"rule: expected one of {RULES}, got {self.rule!r}")
        act = _activation(self.activation)
        R = _array("R", self.R, None, 2)
        k, m = R.shape[-2:]
        count("K", k, minimum=1)
        count("M", m, minimum=1)
        Q = _array("Q", self.Q, (k, k), 2)
        T = _array("T", self.T, (m, m), 2)
        v = _array("v", self.v, (k,), 1)
        vstar = _array("vstar", self.vstar, (m,), 1)
        if self.b is None:
            if self.rule == "DFA":
                raise ValueError("b: DFA needs a feedback vector of shape (*batch, K)")
            b = np.full((k,), np.nan)
        else:
            b = _array("b", self.b, (k,), 1)
        eta = _array("eta", self.eta, (), 0)
        sigma = _array("sigma", self.sigma, (), 0)
        if not np.all(eta > 0):
            raise ValueError(f"eta: expected a learning rate > 0, got {np.min(eta)!r}")
        if not np.all(sigma >= 0):
            raise ValueError(f"sigma: expected a noise level >= 0, got {np.min(sigma)!r}")
        for name in ("train_second_layer", "second_order"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected a bool, got {type(getattr(self, name)).__name__}")
        check_symmetric_psd("Q", Q)
        check_symmetric_psd("T", T)
        try:
            batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2], v.shape[:-1], vstar.shape[:-1],
                                        b.shape[:-1], eta.shape, sigma.shape)
        except ValueError:
            raise ValueError(
                f"Q, R, T, v, vstar, b, eta, sigma: batch axes do not broadcast: {shape_str(Q.shape)}, "
                f"{shape_str(R.shape)}, {shape_str(T.shape)}, {shape_str(v.shape)}, {shape_str(vstar.shape)}, "
                f"{shape_str(b.shape)}, {shape_str(eta.shape)}, {shape_str(sigma.shape)}"
            ) from None
        arrays = {
            "Q": np.broadcast_to(Q, (*batch, k, k)), "R": np.broadcast_to(R, (*batch, k, m)),
            "T": np.broadcast_to(T, (*batch, m, m)), "v": np.broadcast_to(v, (*batch, k)),
            "vstar": np.broadcast_to(vstar, (*batch, m)), "b": np.broadcast_to(b, (*batch, k)),
            "eta": np.broadcast_to(eta, batch), "sigma": np.broadcast_to(sigma, batch),
        }
        check_symmetric_psd("Q, R, T (the field covariance [[Q, R], [R^T, T]])",
                            field_covariance(arrays["Q"], arrays["R"], arrays["T"]))
        for key, arr in arrays.items():
            object.__setattr__(self, key, np.array(arr))
        object.__setattr__(self, "activation", act)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.eta.shape)

    @property
    def K(self) -> int:
        return int(self.R.shape[-2])

    @property
    def M(self) -> int:
        return int(self.R.shape[-1])

    def order_parameters(self) -> OrderParameters:
        """The initial :class:`OrderParameters`."""
        return OrderParameters(self.Q, self.R, self.T, self.v, self.vstar, self.b)

    @classmethod
    def from_weights(cls, w: Any, wstar: Any, v: Any, vstar: Any, **kw: Any) -> Problem:
        """The problem whose order parameters are those of weights ``w`` (..., K, N), ``wstar`` (..., M, N)."""
        Q, R, T = order_parameters(w, wstar)
        return cls(Q, R, T, v, vstar, **kw)
