"""Gaussian averages of the local fields that drive the teacher–student ODEs.

For jointly Gaussian fields :math:`z \\sim \\mathcal N(0, C)` with ``C`` of size
2, 3 or 4 (any entries of the student fields :math:`\\lambda` and teacher fields
:math:`\\nu`):

.. math::

    I_2 = \\langle g(z_1) g(z_2) \\rangle,\\quad
    I_3 = \\langle g'(z_1)\\, z_2\\, g(z_3) \\rangle,\\quad
    I_4 = \\langle g'(z_1) g'(z_2) g(z_3) g(z_4) \\rangle,\\quad
    J_2 = \\langle g'(z_1) g'(z_2) \\rangle .

Closed forms (``g = erf(·/√2)``, Saad & Solla 1995; Goldt et al. 2019), with
:math:`\\Lambda_4 = (1+C_{11})(1+C_{22}) - C_{12}^2`:

.. math::

    I_2 = \\tfrac{2}{\\pi}\\arcsin\\frac{C_{12}}{\\sqrt{(1+C_{11})(1+C_{22})}},\\qquad
    I_3 = \\tfrac{2}{\\pi}\\,\\frac{C_{23}(1+C_{11}) - C_{12}C_{13}}{(1+C_{11})\\sqrt{\\Lambda_3}},\\quad
    \\Lambda_3 = (1+C_{11})(1+C_{33}) - C_{13}^2,

.. math::

    I_4 = \\tfrac{4}{\\pi^2}\\frac{1}{\\sqrt{\\Lambda_4}}\\arcsin\\frac{\\Lambda_0}{\\sqrt{\\Lambda_1\\Lambda_2}},
    J_2 = \\tfrac{2}{\\pi}\\big(1 + C_{11} + C_{22} + C_{11}C_{22} - C_{12}^2\\big)^{-1/2},

with :math:`\\Lambda_0 = \\Lambda_4 C_{34} - C_{23}C_{24}(1+C_{11}) - C_{13}C_{14}(1+C_{22})
+ C_{12}C_{13}C_{24} + C_{12}C_{14}C_{23}` and
:math:`\\Lambda_{1} = \\Lambda_4(1+C_{33}) - C_{23}^2(1+C_{11}) - C_{13}^2(1+C_{22}) + 2C_{12}C_{13}C_{23}`
(:math:`\\Lambda_2` the same with 4 for 3). For linear ``g``:
:math:`I_2 = C_{12}`, :math:`I_3 = C_{23}`, :math:`I_4 = C_{34}`, :math:`J_2 = 1`.

Any other activation is averaged by tensor-product Gauss–Hermite cubature:
:math:`z = L\\xi`, :math:`LL^T = C` (from the eigendecomposition, so singular
``C`` — e.g. the same field twice — is fine), :math:`\\xi` on the product grid.
The cubature is exact to rounding for polynomials of degree ``< 2 points`` in
each direction and converges exponentially for entire ``g`` (erf, tanh near
the origin); for ReLU (a kink) only algebraically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linfa._validate import check_symmetric_psd, count, real_array, shape_str
from linfa.teacher_student.activations import Activation, activation

__all__ = ["average", "i2", "i3", "i4", "j2"]

_ORDER = {"i2": 2, "i3": 3, "i4": 4, "j2": 2}
#: Default Gauss–Hermite points per dimension, by dimension.
POINTS = {2: 64, 3: 44, 4: 36}


# ----------------------------------------------------------------- closed forms on entries
# c[i][j] is the (i, j) entry of the covariance (1-based in the docstrings, 0-based here).
def erf_i2(c11: Any, c12: Any, c22: Any) -> np.ndarray:
    return np.asarray(2.0 / np.pi * np.arcsin(c12 / np.sqrt((1.0 + c11) * (1.0 + c22))))


def erf_i3(c11: Any, c12: Any, c13: Any, c23: Any, c33: Any) -> np.ndarray:
    lam3 = (1.0 + c11) * (1.0 + c33) - c13 * c13
    return np.asarray(2.0 / np.pi / np.sqrt(lam3) * (c23 * (1.0 + c11) - c12 * c13) / (1.0 + c11))


def erf_i4(c11: Any, c12: Any, c13: Any, c14: Any, c22: Any, c23: Any, c24: Any, c33: Any, c34: Any,
           c44: Any) -> np.ndarray:
    a1 = 1.0 + c11
    a2 = 1.0 + c22
    lam4 = a1 * a2 - c12 * c12
    lam0 = lam4 * c34 - c23 * c24 * a1 - c13 * c14 * a2 + c12 * c13 * c24 + c12 * c14 * c23
    lam1 = lam4 * (1.0 + c33) - c23 * c23 * a1 - c13 * c13 * a2 + 2.0 * c12 * c13 * c23
    lam2 = lam4 * (1.0 + c44) - c24 * c24 * a1 - c14 * c14 * a2 + 2.0 * c12 * c14 * c24
    ratio = np.clip(lam0 / np.sqrt(lam1 * lam2), -1.0, 1.0)
    return np.asarray(4.0 / np.pi**2 / np.sqrt(lam4) * np.arcsin(ratio))


def erf_j2(c11: Any, c12: Any, c22: Any) -> np.ndarray:
    return np.asarray(2.0 / np.pi / np.sqrt(1.0 + c11 + c22 + c11 * c22 - c12 * c12))


# ----------------------------------------------------------------- cubature
def _grid(dim: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / np.sqrt(2.0 * np.pi)
    mesh = np.stack(np.meshgrid(*([x] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    weights = np.prod(np.stack(np.meshgrid(*([w] * dim), indexing="ij"), axis=-1).reshape(-1, dim), axis=-1)
    return mesh, weights


def _integrand(kind: str, act: Activation) -> Callable[[np.ndarray], np.ndarray]:
    g, dg = act.g, act.dg
    if kind == "i2":
        return lambda z: g(z[..., 0]) * g(z[..., 1])
    if kind == "i3":
        return lambda z: dg(z[..., 0]) * z[..., 1] * g(z[..., 2])
    if kind == "i4":
        return lambda z: dg(z[..., 0]) * dg(z[..., 1]) * g(z[..., 2]) * g(z[..., 3])
    return lambda z: dg(z[..., 0]) * dg(z[..., 1])


def cubature(kind: str, act: Activation, cov: np.ndarray, points: int | None = None) -> np.ndarray:
    """Gauss–Hermite cubature of the average ``kind`` over fields of covariance ``cov`` (..., n, n)."""
    dim = cov.shape[-1]
    mesh, weights = _grid(dim, POINTS[dim] if points is None else points)
    lam, vec = np.linalg.eigh(cov)
    root = vec * np.sqrt(np.maximum(lam, 0.0))[..., None, :]  # root @ root^T = cov
    flat = root.reshape(-1, dim, dim)
    fn = _integrand(kind, act)
    out = np.empty(flat.shape[0])
    chunk = max(1, 2_000_000 // mesh.shape[0])
    for s in range(0, flat.shape[0], chunk):
        z = np.einsum("pj,bij->bpi", mesh, flat[s:s + chunk])
        out[s:s + chunk] = fn(z) @ weights
    return out.reshape(cov.shape[:-2])


# ----------------------------------------------------------------- public
def _closed(kind: str, name: str, c: np.ndarray) -> np.ndarray:
    e = lambda i, j: c[..., i, j]
    if name == "linear":
        if kind == "j2":
            return np.ones(c.shape[:-2])
        return e(*{"i2": (0, 1), "i3": (1, 2), "i4": (2, 3)}[kind])
    if kind == "i2":
        return erf_i2(e(0, 0), e(0, 1), e(1, 1))
    if kind == "i3":
        return erf_i3(e(0, 0), e(0, 1), e(0, 2), e(1, 2), e(2, 2))
    if kind == "i4":
        return erf_i4(e(0, 0), e(0, 1), e(0, 2), e(0, 3), e(1, 1), e(1, 2), e(1, 3), e(2, 2), e(2, 3), e(3, 3))
    return erf_j2(e(0, 0), e(0, 1), e(1, 1))


def average(kind: str, cov: Any, act: Any = "erf", *, method: str = "auto", points: int | None = None) -> np.ndarray:
    """The Gaussian average ``kind`` (``"i2"``, ``"i3"``, ``"i4"``, ``"j2"``) for covariances ``cov``.

    Parameters
    ----------
    kind : {"i2", "i3", "i4", "j2"}
    cov : array_like, shape (..., n, n)
        Covariance of the fields, ``n = 2, 3, 4, 2`` for the four kinds;
        symmetric positive semi-definite.
    act : str, Activation or (callable, callable)
        See :func:`~linfa.teacher_student.activation`.
    method : {"auto", "closed", "cubature"}
        ``"auto"``: the closed form when there is one, else cubature.
    points : int, optional
        Gauss–Hermite points per dimension (default 64, 44, 36 for n = 2, 3, 4).

    Returns
    -------
    ndarray, shape (...)
    """
    if kind not in _ORDER:
        raise ValueError(f"kind: expected one of {sorted(_ORDER)}, got {kind!r}")
    a = activation(act)
    n = _ORDER[kind]
    c = real_array("cov", cov)
    if c.ndim < 2 or c.shape[-2:] != (n, n):
        raise ValueError(f"cov: expected shape {shape_str(['...', n, n])} for {kind}, got {shape_str(c.shape)}")
    if not np.all(np.isfinite(c)):
        raise ValueError("cov: expected finite entries")
    if method not in ("auto", "closed", "cubature"):
        raise ValueError(f"method: expected 'auto', 'closed' or 'cubature', got {method!r}")
    if points is not None:
        points = count("points", points, minimum=1)
    check_symmetric_psd("cov", c)
    if method == "closed" and not a.closed_form:
        raise ValueError(f"method: no closed form for activation {a.name!r} (closed forms: 'erf', 'linear')")
    return evaluate(kind, c, a, method=method, points=points)


def evaluate(kind: str, c: np.ndarray, a: Activation, *, method: str = "auto", points: int | None = None) -> np.ndarray:
    """:func:`average` of arguments already checked (``c`` float64 of the right shape): for observables."""
    if method == "closed" or (method == "auto" and a.closed_form):
        return np.asarray(_closed(kind, a.name, c), dtype=np.float64)
    return cubature(kind, a, c, None if points is None else int(points))


def i2(cov: Any, act: Any = "erf", **kw: Any) -> np.ndarray:
    """:math:`I_2 = \\langle g(z_1) g(z_2)\\rangle`, ``cov`` of shape ``(..., 2, 2)``; see :func:`average`."""
    return average("i2", cov, act, **kw)


def i3(cov: Any, act: Any = "erf", **kw: Any) -> np.ndarray:
    """:math:`I_3 = \\langle g'(z_1) z_2 g(z_3)\\rangle`, ``cov`` of shape ``(..., 3, 3)``; see :func:`average`."""
    return average("i3", cov, act, **kw)


def i4(cov: Any, act: Any = "erf", **kw: Any) -> np.ndarray:
    """:math:`I_4 = \\langle g'(z_1) g'(z_2) g(z_3) g(z_4)\\rangle`, ``cov`` ``(..., 4, 4)``; see :func:`average`."""
    return average("i4", cov, act, **kw)


def j2(cov: Any, act: Any = "erf", **kw: Any) -> np.ndarray:
    """:math:`J_2 = \\langle g'(z_1) g'(z_2)\\rangle`, ``cov`` of shape ``(..., 2, 2)``; see :func:`average`."""
    return average("j2", cov, act, **kw)
