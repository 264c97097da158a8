"""Random feedback matrices for feedback alignment (FA), direct FA (DFA) and any registered rule.

:func:`for_rule` draws the matrices a rule declares in its
:class:`~linfa.rules.FeedbackLayout` (a rule object, class or registered
name). For a network of widths ``(n0, ..., nL)``:

* FA uses ``B_l`` of shape ``(n_{l-1}, n_l)`` for ``l = 2..L``, standing in for
  ``W_l^T`` on the backward pass (:func:`fa`);
* DFA uses ``B_l`` of shape ``(n_l, n_L)`` for ``l = 1..L-1``, sending the output
  error straight to layer ``l`` (:func:`dfa`).

Samplers (``kind``):

``"gaussian"``
    i.i.d. ``N(0, scale²)``; default ``scale = 1/sqrt(n_cols)``.
``"uniform"``
    i.i.d. ``U[-scale, scale]``; default ``scale = sqrt(3/n_cols)`` (same variance).
``"orthogonal"``
    ``scale`` times a Haar-random matrix with orthonormal columns
    (``B^T B = I``) when ``n_rows >= n_cols``, orthonormal rows otherwise;
    default ``scale = 1``.
``"row_normalized"``
    Gaussian rows rescaled to Euclidean norm ``scale``; default ``scale = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from linfa import rules
from linfa._validate import as_generator, real
from linfa._validate import batch as as_batch
from linfa._validate import widths as check_widths
from linfa.random_matrices import haar_orthonormal

__all__ = ["KINDS", "dfa", "fa", "for_rule", "sample"]

KINDS = ("gaussian", "uniform", "orthogonal", "row_normalized")


def sample(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    kind: str = "gaussian",
    scale: float | None = None,
    batch: tuple[int, ...] = (),
) -> np.ndarray:
    """Draw one feedback matrix (or a batch of them).

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (n_rows, n_cols)
    kind : {"gaussian", "uniform", "orthogonal", "row_normalized"}
    scale : float, optional
        See the module docstring for the meaning and default per kind.
    batch : tuple of int
        Leading batch shape.

    Returns
    -------
    ndarray, shape (*batch, n_rows, n_cols)
    """
    rng = as_generator("rng", rng)
    rows, cols = check_widths("shape", shape, minimum_length=2)[-2:]
    if np.ndim(shape) != 1 or len(shape) != 2:
        raise ValueError(f"shape: expected two sizes (n_rows, n_cols), got {shape!r}")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if scale is not None:
        scale = real("scale", scale, positive=True)
    batch = as_batch("batch", batch)
    full = (*batch, rows, cols)
    if kind == "gaussian":
        s = 1.0 / np.sqrt(cols) if scale is None else scale
        return s * rng.standard_normal(full)
    if kind == "uniform":
        s = np.sqrt(3.0 / cols) if scale is None else scale
        return rng.uniform(-s, s, size=full)
    s = 1.0 if scale is None else scale
    if kind == "orthogonal":
        if rows >= cols:
            return s * haar_orthonormal(rng, rows, cols, tuple(batch))
        return s * np.swapaxes(haar_orthonormal(rng, cols, rows, tuple(batch)), -1, -2)
    g = rng.standard_normal(full)
    return s * g / np.linalg.norm(g, axis=-1, keepdims=True)


def for_rule(
    rule: str | type[rules.AbstractRule] | rules.AbstractRule,
    widths: Sequence[int],
    rng: np.random.Generator,
    *,
    kind: str = "gaussian",
    scale: float | None = None,
    batch: tuple[int, ...] = (),
) -> tuple[np.ndarray, ...]:
    """The feedback matrices ``rule`` declares (:attr:`~linfa.AbstractRule.feedback_layout`), drawn by :func:`sample`.

    Parameters
    ----------
    rule : str, rule class or rule
        A registered name (``"FA"``, ``"DFA"``, ``"KolenPollack"``, a user's
        rule), its class or an instance of it.
    widths : sequence of int
        ``(n0, ..., nL)``.
    rng : numpy.random.Generator
    kind, scale, batch
        As for :func:`sample`.

    Returns
    -------
    tuple of ndarray
        One matrix per entry of the layout, in its order, each of shape
        ``(*batch, rows, cols)``; empty for a rule without feedback.
    """
    cls = rules.get(rule)
    shapes = cls.feedback_shapes(check_widths("widths", widths))
    return tuple(sample(rng, shp, kind=kind, scale=scale, batch=batch) for shp in shapes)


def fa(
    widths: Sequence[int],
    rng: np.random.Generator,
    *,
    kind: str = "gaussian",
    scale: float | None = None,
    batch: tuple[int, ...] = (),
) -> tuple[np.ndarray, ...]:
    """Feedback matrices ``(B_2, ..., B_L)`` for :class:`linfa.FA`.

    Returns
    -------
    tuple of ndarray
        ``B_l`` of shape ``(*batch, n_{l-1}, n_l)``; empty for ``L = 1``.
    """
    return for_rule(rules.FA, widths, rng, kind=kind, scale=scale, batch=batch)


def dfa(
    widths: Sequence[int],
    rng: np.random.Generator,
    *,
    kind: str = "gaussian",
    scale: float | None = None,
    batch: tuple[int, ...] = (),
) -> tuple[np.ndarray, ...]:
    """Feedback matrices ``(B_1, ..., B_{L-1})`` for :class:`linfa.DFA`.

    Returns
    -------
    tuple of ndarray
        ``B_l`` of shape ``(*batch, n_l, n_L)``; empty for ``L = 1``.
    """
    return for_rule(rules.DFA, widths, rng, kind=kind, scale=scale, batch=batch)
