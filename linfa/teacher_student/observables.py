"""Observables of the teacher–student order parameters (all broadcast over leading axes).

* :func:`generalisation_error` :math:`\\epsilon_g = \\tfrac12\\langle(\\hat y - y_0)^2\\rangle
  = \\tfrac12\\sum_{pq} s_p s_q I_2(p, q)` with :math:`s = (v, -v^*)` and :math:`y_0` the
  teacher's noiseless output (the noisy loss is :math:`\\epsilon_g + \\sigma^2/2`);
* :func:`alignment` :math:`\\cos(v, b) = v\\cdot b / (\\lVert v\\rVert \\lVert b\\rVert)`;
* :func:`overlaps` the normalised overlaps :math:`r_{km} = R_{km}/\\sqrt{Q_{kk}T_{mm}}`;
* :func:`specialisation` mean over student units of the gap between their largest and second
  largest :math:`|r_{km}|`: 0 when every unit overlaps all teacher units alike, 1 when each copies one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linfa._validate import shape_str
from linfa.teacher_student import averages
from linfa.teacher_student.activations import activation
from linfa.teacher_student.order_parameters import OrderParameters, covariance

__all__ = ["alignment", "builtin", "generalisation_error", "overlaps", "specialisation"]


def _checked(op: Any) -> OrderParameters:
    """``op`` if it is an :class:`OrderParameters` of consistent shapes (entries may be NaN: a diverged run)."""
    if not isinstance(op, OrderParameters):
        raise TypeError(f"op: expected teacher_student.OrderParameters (Q, R, T, v, vstar, b), got {type(op).__name__}")
    R = np.shape(op.R)
    if len(R) < 2:
        raise ValueError(f"op.R: expected shape (..., K, M), got {shape_str(R)}")
    k, m = R[-2:]
    for name, core in (("Q", (k, k)), ("T", (m, m)), ("v", (k,)), ("vstar", (m,)), ("b", (k,))):
        shape = np.shape(getattr(op, name))
        if shape[len(shape) - len(core):] != core:
            raise ValueError(f"op.{name}: expected shape {shape_str(['...', *core])} (K = {k}, M = {m}), "
                             f"got {shape_str(shape)}")
    return op


def generalisation_error(op: OrderParameters, act: Any = "erf") -> np.ndarray:
    """:math:`\\epsilon_g` of order parameters ``op``, shape ``(...)``.

    .. math:: \\epsilon_g = \\tfrac12 \\sum_{p,q} s_p s_q\\, I_2(\\Omega_{pp}, \\Omega_{pq}, \\Omega_{qq}),
              \\quad s = (v, -v^*)
    """
    a = activation(act)
    op = _checked(op)
    omega = covariance(op.Q, op.R, op.T)
    s = np.concatenate([op.v, np.broadcast_to(-op.vstar, (*op.v.shape[:-1], op.vstar.shape[-1]))], axis=-1)
    p = omega.shape[-1]
    ii, jj = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    cov = np.stack([np.stack([omega[..., ii, ii], omega[..., ii, jj]], -1),
                    np.stack([omega[..., jj, ii], omega[..., jj, jj]], -1)], -2)
    i2 = averages.evaluate("i2", cov, a)
    return np.asarray(0.5 * np.einsum("...p,...pq,...q->...", s, i2, s))


def alignment(op: OrderParameters) -> np.ndarray:
    """Cosine between the second layer ``v`` and the feedback ``b``, shape ``(...)``."""
    op = _checked(op)
    v, b = op.v, op.b
    return np.asarray(np.sum(v * b, -1) / np.maximum(np.linalg.norm(v, axis=-1) * np.linalg.norm(b, axis=-1),
                                                     np.finfo(float).tiny))


def overlaps(op: OrderParameters) -> np.ndarray:
    """Normalised teacher–student overlaps :math:`R_{km}/\\sqrt{Q_{kk} T_{mm}}`, shape ``(..., K, M)``."""
    op = _checked(op)
    qk = np.diagonal(op.Q, axis1=-2, axis2=-1)
    tm = np.diagonal(op.T, axis1=-2, axis2=-1)
    return np.asarray(op.R / np.sqrt(np.maximum(qk[..., :, None] * tm[..., None, :], np.finfo(float).tiny)))


def specialisation(op: OrderParameters) -> np.ndarray:
    """Mean over student units of (largest − second largest) :math:`|r_{km}|`, shape ``(...)`` (M = 1: largest)."""
    r = np.sort(np.abs(overlaps(op)), axis=-1)
    second = r[..., -2] if r.shape[-1] > 1 else 0.0
    return np.asarray(np.mean(r[..., -1] - second, axis=-1))


def builtin(name: str, act: Any = "erf") -> Callable[[OrderParameters], np.ndarray]:
    """The built-in observable ``name`` (``"eg"``, ``"alignment"``, ``"overlaps"``, ``"specialisation"``)."""
    a = activation(act)
    table: dict[str, Callable[[OrderParameters], np.ndarray]] = {
        "eg": lambda op: generalisation_error(op, a),
        "alignment": alignment,
        "overlaps": overlaps,
        "specialisation": specialisation,
    }
    if name not in table:
        raise ValueError(f"observe: expected names among {sorted(table)}, got {name!r}")
    return table[name]
