"""A plain per-sample reference implementation of the learning rules.

This module is the second, independent route to every rule's update that the
catalogue checks :meth:`linfa.AbstractRule.flow` against. It shares no code
with :mod:`linfa.rules` (nor with the batched operations it is written in):
everything here is one sample at a time, one layer at a time, with plain
numpy matrix–vector products, as a textbook writes a network's training step.

For one sample ``(x, y)`` the forward pass is

.. math::

    h_0 = x, \\qquad h_l = W_l h_{l-1}\\ (l = 1..L), \\qquad e = y - h_L ,

and each rule sends a backward signal ``δ_l`` (shape ``n_l``) to layer ``l``,
starting from ``δ_L = e`` at the output:

==================  ==========================================================
rule                backward signal
==================  ==========================================================
``"BP"``            :math:`\\delta_{l-1} = W_l^T \\delta_l`
``"FA"``            :math:`\\delta_{l-1} = B_l \\delta_l` (fixed ``B_l``, ``n_{l-1} × n_l``)
``"DFA"``           :math:`\\delta_l = B_l e` for ``l < L`` (``B_l``, ``n_l × n_L``)
``"KolenPollack"``  :math:`\\delta_{l-1} = B_l \\delta_l` with the current ``B_l``
``"SignSymmetry"``  :math:`\\delta_{l-1} = \\operatorname{sign}(W_l)^T \\delta_l`
==================  ==========================================================

The update of layer ``l`` on that sample is ``δ_l h_{l-1}^T``; the rule's
update on a data set ``{(x_i, y_i)}_{i=1..n}`` is the mean over samples (for
BP: minus the gradient of the mean loss ``(1/n) Σ ½‖y_i − ŷ_i‖²``).
Kolen–Pollack also moves its feedback, ``ΔB_l = (mean δ_l h_{l-1}^T)^T``,
and decays both sides: ``− λ W_l`` and ``− λ B_l``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["RULE_NAMES", "backward", "finite_difference_update", "forward", "loss", "mean_update",
           "sample_updates"]

#: Rules this reference knows, by name.
RULE_NAMES: tuple[str, ...] = ("BP", "FA", "DFA", "KolenPollack", "SignSymmetry")


def _check_rule(rule: object) -> str:
    if rule not in RULE_NAMES:
        raise ValueError(f"rule: expected one of {RULE_NAMES}, got {rule!r}")
    return str(rule)


def _matrices(name: str, mats: Sequence[np.ndarray]) -> list[np.ndarray]:
    if not isinstance(mats, tuple | list):
        raise TypeError(f"{name}: expected a tuple of 2-D arrays, got {type(mats).__name__}")
    out = []
    for i, m in enumerate(mats):
        a = np.asarray(m, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"{name}[{i}]: expected a 2-D array (one instance, no batch axes), got shape {a.shape}")
        out.append(a)
    return out


def forward(weights: Sequence[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """Activations ``[h_0, h_1, ..., h_L]`` of one input ``x``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``(W_1, ..., W_L)``, ``W_l`` of shape ``(n_l, n_{l-1})``.
    x : ndarray, shape (n0,)

    Returns
    -------
    list of ndarray
        ``h_l`` of shape ``(n_l,)``; ``h_0 = x`` and ``h_L = ŷ``.
    """
    ws = _matrices("weights", weights)
    h = [np.asarray(x, dtype=np.float64)]
    if h[0].shape != (ws[0].shape[1],):
        raise ValueError(f"x: expected shape ({ws[0].shape[1]},), got {h[0].shape}")
    for w in ws:
        h.append(w @ h[-1])
    return h


def _backward_bp(weights: list[np.ndarray], e: np.ndarray) -> list[np.ndarray]:
    depth = len(weights)
    delta = [np.zeros(0)] * depth
    delta[depth - 1] = e
    for l in range(depth - 1, 0, -1):  # layer l+1 (index l) sends to layer l (index l-1)
        delta[l - 1] = weights[l].T @ delta[l]
    return delta


def _backward_sign(weights: list[np.ndarray], e: np.ndarray) -> list[np.ndarray]:
    depth = len(weights)
    delta = [np.zeros(0)] * depth
    delta[depth - 1] = e
    for l in range(depth - 1, 0, -1):
        delta[l - 1] = np.sign(weights[l]).T @ delta[l]
    return delta


def _backward_fa(feedback: list[np.ndarray], depth: int, e: np.ndarray) -> list[np.ndarray]:
    # feedback[k] is B_{k+2}, of shape (n_{k+1}, n_{k+2}), standing for W_{k+2}^T
    delta = [np.zeros(0)] * depth
    delta[depth - 1] = e
    for l in range(depth - 1, 0, -1):
        delta[l - 1] = feedback[l - 1] @ delta[l]
    return delta


def _backward_dfa(feedback: list[np.ndarray], depth: int, e: np.ndarray) -> list[np.ndarray]:
    # feedback[k] is B_{k+1}, of shape (n_{k+1}, n_L)
    return [feedback[l] @ e for l in range(depth - 1)] + [e]


def backward(rule: str, weights: Sequence[np.ndarray], feedback: Sequence[np.ndarray],
             e: np.ndarray) -> list[np.ndarray]:
    """Backward signals ``[δ_1, ..., δ_L]`` of one output error ``e`` under ``rule``.

    Parameters
    ----------
    rule : {"BP", "FA", "DFA", "KolenPollack", "SignSymmetry"}
    weights : sequence of ndarray
        ``(W_1, ..., W_L)``.
    feedback : sequence of ndarray
        FA and Kolen–Pollack: ``(B_2, ..., B_L)``, ``B_l`` of shape ``(n_{l-1}, n_l)``;
        DFA: ``(B_1, ..., B_{L-1})``, ``B_l`` of shape ``(n_l, n_L)``; otherwise empty.
    e : ndarray, shape (nL,)
        The error ``y − ŷ``.

    Returns
    -------
    list of ndarray
        ``δ_l`` of shape ``(n_l,)``; ``δ_L = e``.
    """
    name = _check_rule(rule)
    ws = _matrices("weights", weights)
    bs = _matrices("feedback", feedback)
    e = np.asarray(e, dtype=np.float64)
    depth = len(ws)
    if name in ("FA", "KolenPollack", "DFA") and len(bs) != depth - 1:
        raise ValueError(f"feedback: expected {depth - 1} matrices for {name} of depth {depth}, got {len(bs)}")
    if name == "BP":
        return _backward_bp(ws, e)
    if name == "SignSymmetry":
        return _backward_sign(ws, e)
    if name == "DFA":
        return _backward_dfa(bs, depth, e)
    return _backward_fa(bs, depth, e)


def sample_updates(rule: str, weights: Sequence[np.ndarray], feedback: Sequence[np.ndarray],
                   x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The per-sample updates ``[δ_1 h_0^T, ..., δ_L h_{L-1}^T]`` of one sample ``(x, y)``.

    Parameters
    ----------
    rule, weights, feedback
        As in :func:`backward`.
    x : ndarray, shape (n0,)
    y : ndarray, shape (nL,)

    Returns
    -------
    list of ndarray
        The ``l``-th of shape ``(n_l, n_{l-1})`` (no weight decay).
    """
    h = forward(weights, x)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != h[-1].shape:
        raise ValueError(f"y: expected shape {h[-1].shape}, got {y.shape}")
    delta = backward(rule, weights, feedback, y - h[-1])
    return [np.outer(d, a) for d, a in zip(delta, h[:-1], strict=True)]


def _samples(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"X, Y: expected shapes (n, n0) and (n, nL) with n >= 1, got {x.shape} and {y.shape}")
    return x, y


def mean_update(rule: str, weights: Sequence[np.ndarray], feedback: Sequence[np.ndarray], X: np.ndarray,
                Y: np.ndarray, *, decay: float = 0.0) -> tuple[np.ndarray, ...]:
    """The rule's update on the data set ``{(x_i, y_i)}``: the mean of per-sample updates.

    .. math::

        \\Delta W_l = \\frac1n \\sum_i \\delta_{l,i} h_{l-1,i}^T \\;(- \\lambda W_l \\text{ for Kolen–Pollack}),

    and for Kolen–Pollack also :math:`\\Delta B_l = (\\frac1n\\sum_i \\delta_{l,i} h_{l-1,i}^T)^T - \\lambda B_l`.

    Parameters
    ----------
    rule, weights, feedback
        As in :func:`backward`.
    X : ndarray, shape (n, n0)
    Y : ndarray, shape (n, nL)
    decay : float
        Kolen–Pollack's weight decay ``λ`` (ignored by the other rules).

    Returns
    -------
    tuple of ndarray
        ``(ΔW_1, ..., ΔW_L)``, followed for Kolen–Pollack by ``(ΔB_2, ..., ΔB_L)``:
        the same layout as a rule's state.
    """
    x, y = _samples(X, Y)
    ws = _matrices("weights", weights)
    total = [np.zeros_like(w) for w in ws]
    for xi, yi in zip(x, y, strict=True):
        for acc, u in zip(total, sample_updates(rule, ws, feedback, xi, yi), strict=True):
            acc += u
    mean = [acc / x.shape[0] for acc in total]
    if rule != "KolenPollack":
        return tuple(mean)
    lam = float(decay)
    bs = _matrices("feedback", feedback)
    dws = [m - lam * w for m, w in zip(mean, ws, strict=True)]
    dbs = [m.T - lam * b for m, b in zip(mean[1:], bs, strict=True)]
    return (*dws, *dbs)


def loss(weights: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    """The mean loss ``(1/n) Σ_i ½‖y_i − ŷ_i‖²`` of the network on the data set, sample by sample."""
    x, y = _samples(X, Y)
    total = 0.0
    for xi, yi in zip(x, y, strict=True):
        e = yi - forward(weights, xi)[-1]
        total += 0.5 * float(e @ e)
    return total / x.shape[0]


def finite_difference_update(weights: Sequence[np.ndarray], X: np.ndarray, Y: np.ndarray, *,
                             step: float = 1e-5) -> tuple[np.ndarray, ...]:
    """Minus the gradient of :func:`loss` by central differences, entry by entry.

    .. math::

        -\\frac{\\partial L}{\\partial (W_l)_{ij}} \\approx
        -\\frac{L(W_l + s\\,E_{ij}) - L(W_l - s\\,E_{ij})}{2s},

    with truncation error ``O(s²)`` and rounding error ``O(ε L / s)``.

    Returns
    -------
    tuple of ndarray
        Shaped like ``weights``.
    """
    ws = [w.copy() for w in _matrices("weights", weights)]
    if not step > 0:
        raise ValueError(f"step: expected a positive number, got {step!r}")
    out = []
    for w in ws:
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            orig = w[idx]
            w[idx] = orig + step
            up = loss(ws, X, Y)
            w[idx] = orig - step
            down = loss(ws, X, Y)
            w[idx] = orig
            g[idx] = -(up - down) / (2 * step)
        out.append(g)
    return tuple(out)
