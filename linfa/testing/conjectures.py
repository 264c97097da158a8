"""Shipped conjectures: predicates and the instances they are searched over.

``zero_init_alignment`` is docs/design.md, fact 3, an open question made testable:
"from zero initialisation, FA keeps ``e^T W B e >= 0`` for every error ``e``".
It is **false** for general feedback ``B`` and **true** when ``B^T B = cI``::

    >>> from linfa.testing import conjecture
    >>> from linfa.testing.conjectures import zero_init_alignment, zero_init_instances
    >>> res = conjecture(zero_init_alignment, strategy=zero_init_instances(), t1=2.0, seed=0)
    >>> res.holds
    False
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis.strategies import SearchStrategy

from linfa.instances import Instance
from linfa.linalg import frobenius, sym
from linfa.testing.strategies import instances, widths

__all__ = ["ZERO_INIT_TOL", "zero_init_alignment", "zero_init_instances"]

#: Slack of :func:`zero_init_alignment`, relative to ``‖W B‖``: rounding and integration error only.
ZERO_INIT_TOL = 1e-8


def zero_init_alignment(instance: Instance, solution: Any) -> float:
    """Margin of "``e^T W(t) B e >= 0`` for all ``e`` and all saved ``t``" on a two-layer FA run.

    .. math::

        \\min_t \\frac{\\lambda_{\\min}(\\operatorname{Sym}(W(t) B))}{\\lVert W(t) B\\rVert_F} + \\text{tol}

    (``W`` the output weights ``W_2``, ``B`` the feedback ``B_2``); ``>= 0``
    iff the quadratic form ``e ↦ e^T W B e`` is non-negative up to ``tol``.
    """
    b = instance.arrays["B2"]
    w = np.asarray(solution.states[1])  # (S, n_out, n_h)
    wb = w @ b
    lam = np.linalg.eigvalsh(sym(wb))[..., 0]
    norm = frobenius(wb)
    rel = np.where(norm > 0, lam / np.where(norm > 0, norm, 1.0), 0.0)
    return float(rel.min() + ZERO_INIT_TOL)


def zero_init_instances(*, orthogonal: bool = False, max_width: int = 4) -> SearchStrategy[Instance]:
    """Two-layer FA instances from zero weights with whitened input and integer teacher.

    Parameters
    ----------
    orthogonal : bool
        Orthogonal feedback with ``n_h >= n_out`` (so ``B^T B = I``: the
        conjecture holds); otherwise integer feedback entries in ``[-2, 2]``.
    max_width : int
        Largest width drawn.
    """
    ws = widths(min_depth=2, max_depth=2, max_width=max_width)
    if orthogonal:
        ws = ws.filter(lambda w: w[1] >= w[2])
    return instances(rule="FA", widths=ws, init="zeros", values="integers", whitened=True,
                     feedback_kind="orthogonal" if orthogonal else "integers")
