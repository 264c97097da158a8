"""Batched matrix helpers shared by the whole package.

Every function acts on the last two axes of numpy arrays of shape
``(*batch, m, n)`` and broadcasts over the leading (batch) axes. The
operations a learning rule's flow is written in (and which also accept sympy
matrices) are in :mod:`linfa._ops`; their symbolic counterparts for explicit
sympy matrices are in :mod:`linfa.symbolic.matrices`.

Examples
--------
>>> import numpy as np
>>> from linfa.linalg import frobenius, relative_residual, sym
>>> a = np.array([[0.0, 2.0], [0.0, 0.0]])
>>> sym(a)
array([[0., 1.],
       [1., 0.]])
>>> float(frobenius(a)), float(relative_residual(a, 0.5 * a))
(2.0, 0.5)
"""

from __future__ import annotations

import numpy as np

__all__ = ["frobenius", "inner", "relative_residual", "sym", "trace", "transpose"]


def transpose(a: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes, :math:`A^T`; shape ``(*batch, n, m)``."""
    return np.swapaxes(a, -1, -2)


def sym(a: np.ndarray) -> np.ndarray:
    r"""Symmetric part :math:`\operatorname{Sym}(A) = \tfrac12 (A + A^T)` of square matrices."""
    return 0.5 * (a + transpose(a))


def trace(a: np.ndarray) -> np.ndarray:
    """Trace of the last two axes; shape ``batch``."""
    return np.trace(a, axis1=-2, axis2=-1)


def inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Frobenius inner product :math:`\langle A, B\rangle = \operatorname{tr}(A^T B) = \sum_{ij} A_{ij} B_{ij}`.

    Parameters
    ----------
    a, b : ndarray, shape (*batch, m, n)

    Returns
    -------
    ndarray, shape batch
    """
    return np.einsum("...ij,...ij->...", a, b)


def frobenius(a: np.ndarray) -> np.ndarray:
    r"""Frobenius norm :math:`\lVert A\rVert_F = \sqrt{\langle A, A\rangle}`; shape ``batch``."""
    return np.sqrt(inner(a, a))


def relative_residual(x: np.ndarray, fit: np.ndarray, *, vanishing: float | None = None) -> np.ndarray:
    r"""Relative residual of a fit, :math:`\lVert X - \hat X\rVert_F / \lVert X\rVert_F`.

    Parameters
    ----------
    x : ndarray, shape (*batch, m, n)
        The matrix fitted.
    fit : ndarray, shape (*batch, m, n)
        Its fit :math:`\hat X`.
    vanishing : float, optional
        The value where ``x`` vanishes; by default the absolute residual
        :math:`\lVert \hat X\rVert_F` there (so ``0`` for an exact fit of ``0``).

    Returns
    -------
    ndarray, shape batch
    """
    num = frobenius(x - fit)
    den = frobenius(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = num / np.where(den > 0, den, 1.0)
    return np.where(den > 0, ratio, num if vanishing is None else vanishing)
