"""Partial products of a deep linear network's weights.

For weights ``(W_1, ..., W_L)``, ``W_l`` of shape ``(*batch, n_l, n_{l-1})``:

.. math::

    W_{<l} = W_{l-1} \\cdots W_1, \\qquad W_{>l} = W_L \\cdots W_{l+1},

with ``W_{<1} = I`` and ``W_{>L} = I`` (represented by ``None``), so that
``W_{<L+1} = W = W_L ⋯ W_1`` is the end-to-end map. A learning rule's update
of layer ``l`` is ``M_l E W_{<l}^T`` (:mod:`linfa.rules`), and backprop's
backward matrix is ``M_l = W_{>l}^T``.

Both functions accept numpy arrays (broadcasting leading batch axes) and sympy
matrices alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from linfa._ops import matmul

__all__ = ["prefix_products", "suffix_products"]


def prefix_products(weights: Sequence[Any]) -> list[Any]:
    """Products ``W_{<l} = W_{l-1} ⋯ W_1`` for ``l = 1..L+1``.

    Parameters
    ----------
    weights : sequence of ndarray or sympy matrices
        ``(W_1, ..., W_L)``.

    Returns
    -------
    list, length L + 1
        Entry 0 is ``None`` (standing for the identity, ``W_{<1} = I``);
        entry ``l`` has shape ``(*batch, n_l, n_0)``; entry ``L`` is the
        end-to-end map ``W = W_L ⋯ W_1``.
    """
    out: list[Any] = [None, weights[0]]
    for w in weights[1:]:
        out.append(matmul(w, out[-1]))
    return out


def suffix_products(weights: Sequence[Any]) -> list[Any]:
    """Products ``W_{>l} = W_L ⋯ W_{l+1}`` for ``l = 1..L`` (``weights`` as for :func:`prefix_products`).

    Entry ``l - 1`` of the returned list (length ``L``) is ``W_{>l}``, of shape
    ``(*batch, n_L, n_l)``; the last entry is ``None`` (``W_{>L} = I``).
    """
    out: list[Any] = [None]
    for w in reversed(weights[1:]):
        out.append(w if out[-1] is None else matmul(out[-1], w))
    out.reverse()
    return out
