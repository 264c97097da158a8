"""Closed-form oracles for the learning dynamics (docs/design.md, facts 3, 5, 6, 8).

* :func:`saxe_mode`, :func:`saxe_weights` — Saxe et al.'s mode dynamics of
  backprop with whitened inputs and a mode-aligned, balanced initialisation;
* :func:`fa_zero_init_structure`, :func:`dfa_zero_init_structure` — the
  factor structures that feedback alignment and direct feedback alignment
  keep when started from zero, as predicates with residuals;
* :func:`bp_fixed_point` — the least-squares solution ``Σyx Σxx^{-1}``;
* :func:`kolen_pollack_mismatch` — ``W_k - B_k^T`` decaying as ``e^{-λt}``.

All functions broadcast over leading batch axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import as_matrix, count, instance_of, is_trusted, real, real_array, shape_str, times
from linfa._validate import widths as check_widths
from linfa.linalg import relative_residual, transpose
from linfa.tasks import Task

__all__ = [
    "FactorStructure",
    "alignment_fit",
    "bp_fixed_point",
    "dfa_zero_init_structure",
    "fa_zero_init_structure",
    "kolen_pollack_mismatch",
    "saxe_mode",
    "saxe_weights",
]


def saxe_mode(t: Any, s: Any, u0: Any, *, depth: int = 2, tau: float = 1.0) -> np.ndarray:
    """Strength ``u(t)`` of one input–output mode under backprop (Saxe et al. 2014).

    With ``Σxx = I``, ``Σyx = U S V^T`` and a balanced initialisation aligned
    to the modes, each mode's end-to-end strength ``u`` (the product of the
    per-layer strengths ``a = u^{1/L}``) obeys

    .. math::

        \\tau \\frac{du}{dt} = L\\, u^{2 - 2/L} (s - u),

    which for two layers (``L = 2``) integrates to

    .. math::

        u(t) = \\frac{s\\, e^{2st/\\tau}}{e^{2st/\\tau} - 1 + s/u_0}.

    For ``L = 2`` this is evaluated in a form stable for large ``t`` and for
    ``s → 0`` (where ``u = u_0 / (1 + 2 u_0 t/τ)``). For ``L > 2`` the implicit
    solution ``t(u) = τ ∫_{u0}^{u} dv / (L v^{2-2/L} (s - v))`` is inverted
    numerically (quadrature and bracketing), independently of :mod:`linfa.integrate`.

    Parameters
    ----------
    t : array_like
        Times ``>= 0``.
    s : array_like
        Singular values ``>= 0`` of ``Σyx``.
    u0 : array_like
        Initial strengths ``> 0``.
    depth : int
        Number of layers ``L >= 2``.
    tau : float
        Time constant (``1`` for the flows of :mod:`linfa.rules`).

    Returns
    -------
    ndarray
        ``u(t)``, the broadcast shape of ``t``, ``s``, ``u0``.
    """
    t, s, u0 = (real_array(name, a, finite=True) for name, a in (("t", t), ("s", s), ("u0", u0)))
    if np.any(t < 0):
        raise ValueError(f"t: expected times >= 0, got {float(t.min())!r}")
    if np.any(u0 <= 0):
        raise ValueError("u0: expected positive initial mode strengths")
    if np.any(s < 0):
        raise ValueError("s: expected non-negative singular values")
    depth = count("depth", depth, minimum=2)
    tau = real("tau", tau, positive=True)
    if depth == 2:
        x = 2 * s * t / tau
        # u = 1 / (e^{-x}/u0 + (1 - e^{-x})/s), with (1 - e^{-x})/s -> 2t/τ as s -> 0.
        safe_s = np.where(s > 0, s, 1.0)
        growth = np.where(s > 0, -np.expm1(-x) / safe_s, 2 * t / tau)
        return 1.0 / (np.exp(-x) / u0 + growth)
    return _deep_mode(t, s, u0, int(depth), tau)


def _deep_mode(t: np.ndarray, s: np.ndarray, u0: np.ndarray, L: int, tau: float) -> np.ndarray:
    from scipy.integrate import quad
    from scipy.optimize import brentq

    p = 2.0 - 2.0 / L

    def time_to(u: float, s_: float, u0_: float) -> float:
        val, _ = quad(lambda v: tau / (L * v**p * (s_ - v)), u0_, u, epsabs=0.0, epsrel=1e-13,
                      limit=200)
        return val

    def one(t_: float, s_: float, u0_: float) -> float:
        if t_ == 0 or u0_ == s_:
            return u0_
        if s_ == 0:
            # tau du/dt = -L u^{3-2/L}: u^{-q} = u0^{-q} + L q t / tau with q = 2 - 2/L
            return float((u0_ ** (-p) + L * p * t_ / tau) ** (-1.0 / p))
        # u moves monotonically from u0 towards s; bracket between u0 and s.
        lo, hi = (u0_, s_) if u0_ < s_ else (s_, u0_)
        span = hi - lo
        # stop short of u = s, where the integrand is singular (relative offset: s + 1e-300 == s)
        a, b = lo + span * 1e-15, hi - span * 1e-15
        f = lambda u: time_to(u, s_, u0_) - t_
        if u0_ < s_:
            if f(b) <= 0:
                return b
            return brentq(f, u0_, b, xtol=1e-15 * s_, rtol=1e-14)
        if f(a) <= 0:
            return a
        return brentq(f, a, u0_, xtol=1e-15 * s_, rtol=1e-14)

    import warnings

    from scipy.integrate import IntegrationWarning

    with warnings.catch_warnings():
        # The integrand is singular at v = s, an endpoint only in the limit t -> inf.
        warnings.simplefilter("ignore", IntegrationWarning)
        return np.vectorize(one, otypes=[np.float64])(t, s, u0)


def saxe_weights(task: Task, t: Any, u0: Any, widths: Sequence[int]) -> tuple[np.ndarray, ...]:
    """The exact backprop trajectory from the mode-aligned initialisation.

    Starting from :meth:`linfa.DeepLinear.aligned` (``rng=None``) with
    ``Σxx = I``, the weights stay aligned and only the mode strengths move:

    .. math::

        W_1(t) = R_1 D(t) V^T,\\; W_l(t) = R_l D(t) R_{l-1}^T,\\;
        W_L(t) = U D(t) R_{L-1}^T,\\quad D(t) = \\operatorname{diag}(u(t)^{1/L}),

    with ``u(t)`` from :func:`saxe_mode` for each singular value of ``Σyx``.

    Parameters
    ----------
    task : Task
        With ``sxx = I`` (not checked here; the closed form needs it).
    t : float or array_like, shape (T,)
    u0 : float or array_like, shape (r,)
        Initial strengths, ``r = min(widths)``.
    widths : sequence of int
        ``(n0, ..., nL)``.

    Returns
    -------
    tuple of ndarray
        ``W_l`` of shape ``(*batch, n_l, n_{l-1})`` for scalar ``t``, else
        ``(*batch, T, n_l, n_{l-1})``.
    """
    instance_of("task", task, Task, "a linfa.Task")
    widths = check_widths("widths", widths)
    if (widths[0], widths[-1]) != (task.n_in, task.n_out):
        raise ValueError(f"widths: expected (n0, ..., nL) with n0 = {task.n_in} and nL = {task.n_out} (the task's "
                         f"inputs and outputs), got {widths}")
    L = len(widths) - 1
    r = min(widths)
    batch = task.batch_shape
    uu, sv, vt = np.linalg.svd(np.broadcast_to(task.syx, (*batch, *task.syx.shape[-2:])))
    U = uu[..., :, :r]
    V = np.swapaxes(vt, -1, -2)[..., :, :r]
    s = sv[..., :r]
    tt = times("t", t, min_size=0)
    scalar = tt.ndim == 0
    tt = np.atleast_1d(tt)
    u0 = real_array("u0", u0, finite=True)
    if u0.ndim > 1 or u0.size not in (1, r):
        raise ValueError(f"u0: expected a scalar or {r} initial strengths (r = min(widths)), got shape {u0.shape}")
    u0 = np.broadcast_to(u0.reshape(-1) if u0.ndim else u0, (r,))
    u = saxe_mode(tt[:, None], s[..., None, :], u0, depth=L)  # (*batch, T, r)
    d = u ** (1.0 / L)
    frames = [V[..., None, :, :]]
    for n in widths[1:-1]:
        frames.append(np.eye(n)[:, :r])
    frames.append(U[..., None, :, :])
    out = tuple(
        (frames[l] * d[..., None, :]) @ np.swapaxes(frames[l - 1], -1, -2) for l in range(1, L + 1)
    )
    if scalar:
        out = tuple(w[..., 0, :, :] for w in out)
    return tuple(np.ascontiguousarray(w) for w in out)


def bp_fixed_point(task: Task) -> np.ndarray:
    """The end-to-end map backprop converges to: :math:`W^* = \\Sigma_{yx}\\Sigma_{xx}^{-1}`.

    The least-squares optimum :meth:`Task.optimum <linfa.tasks.Task.optimum>`,
    here required to be unique.

    Returns
    -------
    ndarray, shape (*batch, nL, n0)

    Raises
    ------
    ValueError
        If ``Σxx`` is singular (then the minimiser is not unique).
    """
    instance_of("task", task, Task, "a linfa.Task")
    sxx = np.asarray(task.sxx, dtype=np.float64)
    if np.any(np.linalg.matrix_rank(sxx, hermitian=True) < sxx.shape[-1]):
        raise ValueError("task: Σxx is singular; the fixed point Σyx Σxx^{-1} is not unique")
    return task.optimum()


def kolen_pollack_mismatch(t: Any, mismatch0: Any, decay: float) -> np.ndarray:
    """Kolen–Pollack's ``W_k(t) - B_k(t)^T = e^{-λt} (W_k(0) - B_k(0)^T)`` (fact 8).

    Parameters
    ----------
    t : array_like, shape (T,) or scalar
    mismatch0 : ndarray, shape (*batch, n_k, n_{k-1})
    decay : float
        ``λ``.

    Returns
    -------
    ndarray, shape (*batch, T, n_k, n_{k-1}) (or ``(*batch, n_k, n_{k-1})`` for scalar ``t``)
    """
    m0 = as_matrix("mismatch0", mismatch0)
    tt = times("t", t, min_size=1)
    decay = real("decay", decay, minimum=0.0)
    if tt.ndim == 0:
        return np.exp(-decay * tt) * m0
    return np.exp(-decay * tt)[:, None, None] * m0[..., None, :, :]


@dataclass(frozen=True)
class FactorStructure:
    """A factor-structure predicate: the fitted factors and how well they fit.

    Attributes
    ----------
    factors : dict of str to ndarray
        The fitted small matrices (``M``, ``N`` for FA; ``A_1..A_L`` for DFA).
    residuals : dict of str to ndarray
        Relative residual of each identity, each of shape ``batch``
        (``‖X - X̂‖_F / ‖X‖_F``, and ``0`` where ``X = 0``).
    """

    factors: dict[str, np.ndarray]
    residuals: dict[str, np.ndarray]

    @property
    def max_residual(self) -> np.ndarray:
        """Largest residual over the identities, shape ``batch``."""
        return np.max(np.stack(list(self.residuals.values())), axis=0)

    def holds(self, tol: float = 1e-8) -> np.ndarray:
        """Whether every identity holds to relative tolerance ``tol``; shape ``batch``."""
        return self.max_residual <= tol


def _matrices(name: str, seq: Any) -> tuple[np.ndarray, ...]:
    if not isinstance(seq, tuple | list):
        raise TypeError(f"{name}: expected a tuple of matrices, got {type(seq).__name__}")
    return tuple(as_matrix(f"{name}[{i}]", a) for i, a in enumerate(seq))


def fa_zero_init_structure(weights: Sequence[Any], feedback: Sequence[Any]) -> FactorStructure:
    """Feedback alignment from zero, two layers (fact 3): ``A = B M``, ``W = N B^T``, ``N + N^T = M M^T``.

    With ``h = A x``, ``ŷ = W h``, fixed ``B`` (``n1 × n2``) in place of
    ``W^T`` and ``A(0) = 0``, ``W(0) = 0``, the flow ``dA/dt = B E``,
    ``dW/dt = E A^T`` gives ``M = ∫E dt`` and ``N = ∫ E M^T dt``, so

    .. math::

        A = B M, \\qquad W = N B^T, \\qquad N + N^T = M M^T .

    ``M = B^+ A`` and ``N = W (B^T)^+`` are fitted by pseudo-inverse (unique
    when ``B`` has full column rank, ``n2 <= n1``) and the residuals of the
    three identities returned.

    Parameters
    ----------
    weights : (A, W)
        Shapes ``(*batch, n1, n0)`` and ``(*batch, n2, n1)``.
    feedback : (B,)
        ``B`` of shape ``(*batch, n1, n2)`` (as for :class:`linfa.FA`).
    """
    weights, feedback = _matrices("weights", weights), _matrices("feedback", feedback)
    if len(weights) != 2 or len(feedback) != 1:
        raise ValueError(
            f"weights, feedback: expected two layers (A, W) and one feedback matrix (B,), "
            f"got {len(weights)} and {len(feedback)}"
        )
    A, W = weights
    B = feedback[0]
    if A.shape[-2] != B.shape[-2] or W.shape[-2] != B.shape[-1] or W.shape[-1] != A.shape[-2]:
        raise ValueError(f"weights, feedback: expected A (n1, n0), W (n2, n1), B (n1, n2), got shapes "
                         f"{A.shape}, {W.shape}, {B.shape}")
    M = np.linalg.pinv(B) @ A
    N = W @ np.linalg.pinv(transpose(B))
    MMt = M @ transpose(M)
    return FactorStructure(
        factors={"M": M, "N": N},
        residuals={
            "A = B M": relative_residual(A, B @ M),
            "W = N B^T": relative_residual(W, N @ transpose(B)),
            "N + N^T = M M^T": relative_residual(MMt, N + transpose(N)),
        },
    )


def dfa_zero_init_structure(weights: Sequence[Any], feedback: Sequence[Any]) -> FactorStructure:
    """Direct feedback alignment from zero (fact 5): weights factor through the feedback.

    With ``B_l`` (``n_l × n_L``) the DFA feedback of layer ``l < L``, training
    from zero keeps

    .. math::

        W_1 = B_1 A_1, \\qquad W_l = B_l A_l B_{l-1}^T \\;(1 < l < L), \\qquad
        W_L = A_L B_{L-1}^T,

    with small "alignment matrices" ``A_l`` (``A_1``: ``n_L × n_0``, the
    others ``n_L × n_L``), fitted here by pseudo-inverses.

    Parameters
    ----------
    weights : (W_1, ..., W_L)
    feedback : (B_1, ..., B_{L-1})
        As for :class:`linfa.DFA`.
    """
    ws = list(_matrices("weights", weights))
    bs = list(_matrices("feedback", feedback))
    L = len(ws)
    if L < 2 or len(bs) != L - 1:
        raise ValueError(
            f"feedback: expected L - 1 = {L - 1} matrices for {L} layers, got {len(bs)}"
        )
    mats, fits = alignment_fit(ws, bs)
    labels = ["W_1 = B_1 A_1", *(f"W_{l} = B_{l} A_{l} B_{l - 1}^T" for l in range(2, L)), f"W_{L} = A_{L} B_{L - 1}^T"]
    return FactorStructure(
        factors={f"A_{l}": a for l, a in enumerate(mats, start=1)},
        residuals={label: relative_residual(w, fit) for label, w, fit in zip(labels, ws, fits, strict=True)},
    )


def alignment_fit(
    weights: Sequence[np.ndarray], backward: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Least-squares alignment matrices of the zero-init factor structure, and the fitted weights.

    With backward matrices ``M_l`` (``n_l × n_L``; ``B_l`` for DFA,
    ``B_{l+1} ⋯ B_L`` for FA) the structure of docs/design.md, fact 5 is

    .. math::

        W_1 = M_1 A_1, \\qquad W_l = M_l A_l M_{l-1}^T \\;(1 < l < L), \\qquad
        W_L = A_L M_{L-1}^T;

    each ``A_l`` is fitted with the pseudo-inverses ``M_l^+`` (the
    least-squares solution, exact when the structure holds and the ``M_l``
    have full column rank).

    Parameters
    ----------
    weights : sequence of ndarray
        ``(W_1, ..., W_L)``, ``L >= 2``, ``W_l`` of shape ``(*batch, n_l, n_{l-1})``.
    backward : sequence of ndarray
        ``(M_1, ..., M_{L-1})``, ``M_l`` of shape ``(*batch, n_l, n_L)``.

    Returns
    -------
    matrices : list of ndarray
        ``A_1`` of shape ``(*batch, n_L, n_0)``, then ``A_l`` of shape ``(*batch, n_L, n_L)``.
    fits : list of ndarray
        The weights rebuilt from the structure, shaped like ``weights``.

    Raises
    ------
    TypeError
        If ``weights`` or ``backward`` is not a tuple or list of real matrices.
    ValueError
        On fewer than two layers, the wrong number of backward matrices,
        shapes that do not chain, or non-finite entries.
    """
    if not is_trusted():  # an observable's caller has validated the state already (NaN of a diverged instance)
        weights, backward = _checked_alignment_fit(weights, backward)
    depth = len(weights)
    pinv = [np.linalg.pinv(m) for m in backward]
    mats, fits = [], []
    for l in range(1, depth + 1):
        w = weights[l - 1]
        if l == 1:
            a = pinv[0] @ w
            fit = backward[0] @ a
        elif l == depth:
            a = w @ transpose(pinv[l - 2])
            fit = a @ transpose(backward[l - 2])
        else:
            a = pinv[l - 1] @ w @ transpose(pinv[l - 2])
            fit = backward[l - 1] @ a @ transpose(backward[l - 2])
        mats.append(a)
        fits.append(fit)
    return mats, fits


def _checked_alignment_fit(weights: Any, backward: Any) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``weights, backward`` as real finite matrices of chaining shapes, or an error naming the argument."""
    ws, ms = _matrices("weights", weights), _matrices("backward", backward)
    depth = len(ws)
    if depth < 2 or len(ms) != depth - 1:
        raise ValueError(f"backward: expected L - 1 = {depth - 1} matrices for {depth} layers (L >= 2), "
                         f"got {len(ms)}")
    n = [ws[0].shape[-1], *(w.shape[-2] for w in ws)]
    for l in range(2, depth + 1):
        if ws[l - 1].shape[-1] != n[l - 1]:
            raise ValueError(f"weights[{l - 1}]: expected {n[l - 1]} columns (the rows of weights[{l - 2}]), "
                             f"got shape {shape_str(ws[l - 1].shape)}")
    for l, m in enumerate(ms, start=1):
        if m.shape[-2:] != (n[l], n[depth]):
            raise ValueError(f"backward[{l - 1}]: expected M_{l} of shape {shape_str(['*batch', n[l], n[depth]])}, "
                             f"got {shape_str(m.shape)}")
    return ws, ms
