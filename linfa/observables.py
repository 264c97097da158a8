"""Observables of a learning state, all batched.

Every observable has the signature ``obs(rule, task, state) -> ndarray`` with
leading batch axes ``(*batch, ...)``, so it can be handed to
:func:`linfa.solve` (``observe={"loss": loss}``) or called directly.
Angles are in degrees, in ``[0, 180]``; an angle involving a vanishing vector
is undefined and returned as NaN.

Notation (docs/design.md): ``W = W_L ⋯ W_1``, ``W_{>l} = W_L ⋯ W_{l+1}``, the error
covariance

.. math::

    \\Sigma_{ee} = \\langle e e^T\\rangle
      = \\Sigma_{yy} - W\\Sigma_{yx}^T - \\Sigma_{yx}W^T + W\\Sigma_{xx}W^T,

and ``M_l`` the rule's backward matrix (:mod:`linfa.rules`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linfa._validate import checked_problem, count, is_symbolic_problem, is_trusted, problem_state, real_array
from linfa.exact import alignment_fit
from linfa.linalg import frobenius, relative_residual, sym
from linfa.linalg import inner as _inner
from linfa.linalg import trace as _tr
from linfa.linalg import transpose as _t
from linfa.products import prefix_products, suffix_products
from linfa.rules import BP, AbstractRule
from linfa.rules import error as rule_error
from linfa.tasks import Task

__all__ = [
    "alignment",
    "alignment_condition_numbers",
    "alignment_matrices",
    "alignment_residuals",
    "angle",
    "conserved_quantities",
    "conserved_quantity",
    "cosine",
    "error_covariance",
    "gradient",
    "gradient_norms",
    "layer_alignment",
    "loss",
    "loss_rate",
    "mode_strengths",
    "nse",
    "pseudo_backprop_angle",
    "signal_angle",
    "signal_angles",
    "suffix_products",
    "update_angles",
    "weight_alignment",
]

State = tuple[np.ndarray, ...]
Observable = Callable[[AbstractRule, Task, State], np.ndarray]


def angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between ``a`` and ``b`` in the Frobenius inner product.

    Parameters
    ----------
    a, b : ndarray, shape (*batch, m, n)

    Returns
    -------
    ndarray, shape (*batch,)
        ``arccos(<a, b> / (‖a‖ ‖b‖))``; NaN where either vanishes.
    """
    a, b = _pair(a, b)
    a, b = _unit_scale(a, (-2, -1)), _unit_scale(b, (-2, -1))
    return _angle_from(_inner(a, b), _inner(a, a), _inner(b, b))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between ``a`` and ``b`` in the Frobenius inner product; shape ``(*batch,)``.

    Computed directly (not as ``cos(angle)``, which loses digits near ±1);
    NaN where either vanishes.
    """
    a, b = _pair(a, b)
    a, b = _unit_scale(a, (-2, -1)), _unit_scale(b, (-2, -1))
    den = frobenius(a) * frobenius(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.clip(_inner(a, b) / np.where(den > 0, den, 1.0), -1.0, 1.0), np.nan)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """``a, b`` as real arrays of the same matrix shape (``(*batch, m, n)``; the batches broadcast)."""
    if is_trusted():
        return a, b
    a, b = real_array("a", a), real_array("b", b)
    for name, x in (("a", a), ("b", b)):
        if x.ndim < 2:
            raise ValueError(f"{name}: expected a matrix of shape (*batch, m, n), got shape {x.shape}")
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"a, b: expected matrices of the same shape, got {a.shape} and {b.shape}")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"a, b: batch shapes {a.shape[:-2]} and {b.shape[:-2]} do not broadcast") from None
    return a, b


def _unit_scale(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Divide by the largest absolute entry over ``axes`` (angles are scale-free; avoids under/overflow)."""
    m = np.max(np.abs(a), axis=axes, keepdims=True)
    return a / np.where(m > 0, m, 1.0)


def _angle_from(ab: np.ndarray, aa: np.ndarray, bb: np.ndarray) -> np.ndarray:
    # Square norms may come out slightly negative from rounding (traces of a
    # Σee that is ~0); the product of the roots avoids underflow of aa * bb.
    den = np.sqrt(np.maximum(aa, 0.0)) * np.sqrt(np.maximum(bb, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, ab / np.where(den > 0, den, 1.0), np.nan)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@checked_problem
def error_covariance(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Error covariance ``Σee = <(y - ŷ)(y - ŷ)^T>``; shape ``(*batch, nL, nL)``."""
    w = prefix_products(rule.weights(state))[-1]
    wsyx = w @ _t(task.syx)
    return sym(task.syy - wsyx - _t(wsyx) + w @ task.sxx @ _t(w))


@checked_problem
def loss(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Population loss ``L = ½ <‖y - ŷ‖²> = ½ tr Σee``; shape ``batch``.

    .. math::

        L = \\tfrac12\\operatorname{tr}\\Sigma_{yy} - \\operatorname{tr}(W^T\\Sigma_{yx})
            + \\tfrac12\\operatorname{tr}(W\\Sigma_{xx}W^T)
    """
    w = prefix_products(rule.weights(state))[-1]
    return 0.5 * _tr(task.syy) - _inner(w, task.syx) + 0.5 * _inner(w @ task.sxx, w)


@checked_problem
def nse(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Normalised squared error ``<‖e‖²> / <‖y‖²> = 2L / tr Σyy``; shape ``batch``."""
    return 2.0 * loss(rule, task, state) / _tr(task.syy)


@checked_problem
def gradient(rule: AbstractRule, task: Task, state: State) -> tuple[np.ndarray, ...]:
    """The loss gradient ``∂L/∂W_l`` at the weights of ``state`` (whatever ``rule`` is).

    With ``E = Σyx − W Σxx`` (:func:`linfa.rules.error`),

    .. math::

        \\frac{\\partial L}{\\partial W_l} = -\\,W_{>l}^T\\, E\\, W_{<l}^T,

    the negative of BP's update. It is a tuple (one array per layer, shapes
    differ), so it is not itself an observable for :func:`linfa.solve`; use
    :func:`gradient_norms` there.

    Returns
    -------
    tuple of ndarray
        ``∂L/∂W_l`` of shape ``(*batch, n_l, n_{l-1})``, ``l = 1..L``.
    """
    return tuple(-d for d in BP().dstate(task, rule.weights(state)))


@checked_problem
def gradient_norms(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Frobenius norm ``‖∂L/∂W_l‖_F`` of each layer's loss gradient; shape ``(*batch, L)``."""
    return np.stack([frobenius(g) for g in gradient(rule, task, state)], axis=-1)


@checked_problem
def loss_rate(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Rate of change ``dL/dt`` of the loss along ``rule``'s flow; shape ``batch``.

    By the chain rule, with ``Ẇ_l`` the rule's update (:meth:`AbstractRule.dstate`),

    .. math::

        \\frac{dL}{dt} = \\sum_{l=1}^{L}
          \\Big\\langle \\frac{\\partial L}{\\partial W_l}, \\dot W_l\\Big\\rangle_F ,

    which is ``-‖∇L‖²`` for BP and, for any rule, negative exactly when the
    update is a descent direction. Learned feedback (Kolen–Pollack) does not
    enter the loss, so only the forward weights count.
    """
    weights = rule.weights(state)
    mine = rule.dstate(task, state)[: len(weights)]
    return sum((_inner(g, w) for g, w in zip(gradient(rule, task, state), mine, strict=True)),
               np.zeros(()))


@checked_problem
def mode_strengths(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Saxe et al.'s mode strengths ``u_α = u_α^T W v_α`` for the task's SVD.

    With ``Σyx = U S V^T`` (``numpy.linalg.svd``: singular values in
    decreasing order, the same factors :meth:`linfa.DeepLinear.aligned` uses)
    and ``W = W_L ⋯ W_1``,

    .. math::

        u_\\alpha = U_{:\\alpha}^T\\, W\\, V_{:\\alpha},\\qquad \\alpha = 1..r,\\; r = \\min(n_L, n_0).

    For ``Σxx = I`` and mode-aligned balanced init under BP each ``u_α``
    follows :func:`linfa.exact.saxe_mode`; from other inits it measures how
    much of each target mode the network has learned (``u_α → s_α``). The
    shape is the one :func:`linfa.plot.mode_strengths` expects after
    :func:`linfa.solve` adds the time axis.

    Returns
    -------
    ndarray, shape (*batch, r)
    """
    w = prefix_products(rule.weights(state))[-1]
    u, _, vt = np.linalg.svd(task.syx)
    r = min(u.shape[-1], vt.shape[-2])
    return np.einsum("...ia,...ij,...aj->...a", u[..., :r], w, vt[..., :r, :])


@checked_problem
def pseudo_backprop_angle(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Angle between each hidden layer's update and the pseudo-backprop update.

    Pseudo-backprop sends ``W_{>l}^+ e`` (Moore–Penrose pseudo-inverse) where
    BP sends ``W_{>l}^T e``; with ``E = Σyx − W Σxx`` the two updates of layer
    ``l`` are

    .. math::

        \\dot W_l = M_l E W_{<l}^T \\quad\\text{and}\\quad
        \\dot W_l^{\\mathrm{pBP}} = W_{>l}^{+} E W_{<l}^T .

    Returns
    -------
    ndarray, shape (*batch, L-1)
        Degrees, ``l = 1..L-1`` (the last layer's two updates coincide); NaN
        where either update vanishes.
    """
    weights = rule.weights(state)
    prefix = prefix_products(weights)
    e = rule_error(task, prefix[-1])
    mine = rule.dstate(task, state)[: len(weights)]
    sufs = suffix_products(weights)
    out = []
    for l in range(len(weights) - 1):
        s = sufs[l]
        assert s is not None
        upd = np.linalg.pinv(s) @ e
        if prefix[l] is not None:
            upd = upd @ _t(prefix[l])
        out.append(angle(mine[l], upd))
    batch = np.broadcast_shapes(*(np.shape(w)[:-2] for w in weights))
    return np.stack(out, axis=-1) if out else np.zeros((*batch, 0))


@checked_problem
def update_angles(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Angle between each layer's update under ``rule`` and under BP.

    Returns
    -------
    ndarray, shape (*batch, L)
        Degrees; NaN where either update vanishes (e.g. BP at zero weights).
    """
    weights = rule.weights(state)
    mine = rule.dstate(task, state)[: len(weights)]
    bp = BP().dstate(task, weights)
    return np.stack([angle(a, b) for a, b in zip(mine, bp, strict=True)], axis=-1)


def _backward_and_bp(rule: AbstractRule, state: State) -> tuple[tuple[np.ndarray, ...], list[Any]]:
    weights = rule.weights(state)
    return rule.backward_matrices(state), suffix_products(weights)


@checked_problem
def alignment(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Population alignment ``<e^T W_{>l} M_l e> = tr(W_{>l} M_l Σee)`` per hidden layer.

    For two layers under FA (``M_1 = B``, ``W_{>1} = W_2``) this is the
    ``<e^T W B e>`` of Lillicrap et al.; positive means the hidden signal
    ``M_l e`` is on average within 90° of the BP signal ``W_{>l}^T e``.

    Returns
    -------
    ndarray, shape (*batch, L-1)
    """
    see = error_covariance(rule, task, state)
    ms, sufs = _backward_and_bp(rule, state)
    out = [_tr(s @ m @ see) for m, s in zip(ms, sufs[:-1], strict=True)]
    return np.stack(out, axis=-1) if out else np.zeros((*see.shape[:-2], 0))


@checked_problem
def signal_angles(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Population angle between the hidden signals ``M_l e`` and ``W_{>l}^T e``.

    The angle between ``M_l Σee^{1/2}`` and ``W_{>l}^T Σee^{1/2}`` in the
    Frobenius inner product:

    .. math::

        \\cos\\theta_l = \\frac{\\operatorname{tr}(W_{>l} M_l \\Sigma_{ee})}
          {\\sqrt{\\operatorname{tr}(M_l\\Sigma_{ee}M_l^T)\\,
                  \\operatorname{tr}(W_{>l}^T\\Sigma_{ee}W_{>l})}}.

    Returns
    -------
    ndarray, shape (*batch, L-1)
        Degrees; below 90 exactly when :func:`alignment` is positive.
    """
    see = error_covariance(rule, task, state)
    ms, sufs = _backward_and_bp(rule, state)
    out = []
    for m, s in zip(ms, sufs[:-1], strict=True):
        assert s is not None
        st = _t(s)
        out.append(_angle_from(_tr(s @ m @ see), _tr(m @ see @ _t(m)), _tr(st @ see @ s)))
    return np.stack(out, axis=-1) if out else np.zeros((*see.shape[:-2], 0))


def signal_angle(feedback: np.ndarray, w: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Angle between ``B e`` and ``W^T e`` for explicit error vectors (fact 1).

    Parameters
    ----------
    feedback : ndarray, shape (*batch, n_h, n_out)
        ``B``.
    w : ndarray, shape (*batch, n_out, n_h)
        The output weights ``W``.
    e : ndarray, shape (*batch, n_out)
        Error vectors.

    Returns
    -------
    ndarray, shape (*batch,)
        Degrees; below 90 iff ``e^T W B e > 0``.
    """
    be = _unit_scale(np.einsum("...ij,...j->...i", feedback, e), (-1,))
    we = _unit_scale(np.einsum("...ji,...j->...i", w, e), (-1,))
    return _angle_from(
        np.einsum("...i,...i->...", be, we),
        np.einsum("...i,...i->...", be, be),
        np.einsum("...i,...i->...", we, we),
    )


@checked_problem
def weight_alignment(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Cosine between the BP backward path ``W_{>l}^T`` and the rule's ``M_l``.

    For DFA this is the alignment of ``(W_L ⋯ W_{l+1})^T`` with ``B_l``; for
    two-layer FA it is ``cos(W_2^T, B_2)``.

    Returns
    -------
    ndarray, shape (*batch, L-1)
        Cosines in ``[-1, 1]``; NaN where either matrix vanishes.
    """
    ms, sufs = _backward_and_bp(rule, state)
    out = [cosine(_t(s), m) for m, s in zip(ms, sufs[:-1], strict=True)]
    batch = np.broadcast_shapes(*(np.shape(w)[:-2] for w in rule.weights(state)))
    return np.stack(out, axis=-1) if out else np.zeros((*batch, 0))


@checked_problem
def layer_alignment(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Layer-wise cosine ``cos(W_l^T, B_l)``, ``l = 2..L``, for rules with layer-wise feedback.

    ``B_l`` are the rule's feedback matrices (:meth:`~linfa.AbstractRule.feedback_of`)
    of a :class:`~linfa.rules.FeedbackLayout` of kind ``"layer"`` (each standing
    for ``W_l^T``): FA's fixed ones, Kolen–Pollack's learned ones, or a
    user rule's.

    Returns
    -------
    ndarray, shape (*batch, L-1)

    Raises
    ------
    TypeError
        For a rule whose feedback layout is not layer-wise.
    """
    layout = type(rule).feedback_layout
    if layout is None or layout.kind != "layer":
        raise TypeError(
            f"rule: layer_alignment needs layer-wise feedback (B_l in place of W_l^T, as FA or "
            f"KolenPollack), got {type(rule).__name__}"
        )
    weights = rule.weights(state)
    fb = rule.feedback_of(state)
    out = [cosine(_t(w), b) for w, b in zip(weights[1:], fb, strict=True)]
    batch = np.broadcast_shapes(*(np.shape(w)[:-2] for w in weights))
    return np.stack(out, axis=-1) if out else np.zeros((*batch, 0))


# --------------------------------------------------------------------------
# Alignment matrices (docs/design.md, fact 5)


@checked_problem(needs_task=False)  # reads only the state
def alignment_matrices(
    rule: AbstractRule, task: Task, state: State
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Least-squares alignment matrices ``A_l`` of the zero-init factor structure.

    With the rule's backward matrices ``M_l`` (``n_l × n_L``; ``M_l = B_l`` for
    DFA, ``B_{l+1} ⋯ B_L`` for FA), from zero init

    .. math::

        W_1 = M_1 A_1,\\quad W_l = M_l A_l M_{l-1}^T,\\quad W_L = A_L M_{L-1}^T.

    Each ``A_l`` is recovered by pseudo-inverses (the least-squares fit,
    :func:`linfa.exact.alignment_fit`) and its relative residual
    ``‖W_l - fit‖_F / ‖W_l‖_F`` reported.

    Returns
    -------
    matrices : tuple of ndarray
        ``A_1`` of shape ``(*batch, nL, n0)``, then ``A_l`` of shape
        ``(*batch, nL, nL)`` for ``l = 2..L``.
    residuals : ndarray, shape (*batch, L)
        Zero (to rounding) exactly when the structure holds; NaN for a
        vanishing layer.
    """
    weights = rule.weights(state)
    ms = rule.backward_matrices(state)
    depth = len(weights)
    if depth < 2:
        raise ValueError("state: alignment matrices need depth L >= 2")
    mats, fits = alignment_fit(weights, ms)
    res = [relative_residual(w, fit, vanishing=np.nan) for w, fit in zip(weights, fits, strict=True)]
    return tuple(mats), np.stack(res, axis=-1)


@checked_problem(needs_task=False)  # reads only the state
def alignment_residuals(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Relative residuals of the alignment-matrix fit; shape ``(*batch, L)``."""
    return alignment_matrices(rule, task, state)[1]


@checked_problem(needs_task=False)  # reads only the state
def alignment_condition_numbers(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
    """Condition numbers ``σ_max / σ_min`` of the alignment matrices ``A_l``.

    Returns
    -------
    ndarray, shape (*batch, L)
        ``inf`` where an ``A_l`` is singular (e.g. at zero init).
    """
    mats, _ = alignment_matrices(rule, task, state)
    out = []
    for a in mats:
        s = np.linalg.svd(a, compute_uv=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(s[..., -1] > 0, s[..., 0] / np.where(s[..., -1] > 0, s[..., -1], 1), np.inf))
    return np.stack(out, axis=-1)


# --------------------------------------------------------------------------
# Conservation laws (docs/design.md, fact 2)


def conserved_quantities(rule: AbstractRule, state: State) -> tuple[np.ndarray, ...]:
    """Quantities conserved by the flow, one per hidden layer ``l = 1..L-1``.

    Each rule declares its own (:meth:`linfa.AbstractRule.conserved_quantities`):

    * BP (balancedness): :math:`Q_l = W_l W_l^T - W_{l+1}^T W_{l+1}`;
    * FA: :math:`Q_l = W_l W_l^T - B_{l+1} W_{l+1} - W_{l+1}^T B_{l+1}^T`
      (for two layers ``A A^T - B W - W^T B^T``).

    Both hold for any initialisation and any ``Σxx``.

    Returns
    -------
    tuple of ndarray
        ``Q_l`` of shape ``(*batch, n_l, n_l)``.

    Raises
    ------
    TypeError
        For a rule with no known conservation law.
    """
    if not isinstance(rule, AbstractRule):
        raise TypeError(f"rule: expected a linfa rule, got {type(rule).__name__}")
    if not is_trusted() and not is_symbolic_problem(state):
        state = problem_state(rule, None, state, needs_task=False)
    return tuple(rule.conserved_quantities(state))


def conserved_quantity(layer: int) -> Observable:
    """Observable ``Q_l`` of :func:`conserved_quantities` for one hidden layer ``l``.

    Captures no arrays (so it stays valid when an integrator slices the
    batch); compare its values along a trajectory with its first value.

    Parameters
    ----------
    layer : int
        ``l`` in ``1..L-1``.

    Returns
    -------
    callable
        ``obs(rule, task, state) -> ndarray (*batch, n_l, n_l)``.
    """
    layer = count("layer", layer, minimum=1)

    def q(rule: AbstractRule, task: Task, state: State) -> np.ndarray:
        qs = conserved_quantities(rule, state)
        if layer > len(qs):
            raise ValueError(f"layer: expected l in 1..{len(qs)}, got {layer}")
        return qs[layer - 1]

    q.__name__ = f"conserved_quantity_{layer}"
    return q
