r"""Two-phase learning as a flow on the parameters, integrable like any flow.

The parameters :math:`\theta = (b, U, W)` (``W`` symmetric) follow either the
exact gradient flow on the objective :math:`J` of :mod:`linfa.eqprop.gradients`
or the flow of the two-phase (EP) estimate, averaged over a dataset:

.. math::

    \frac{d\theta}{dt} = -M \circ \frac{dJ}{d\theta}
    \quad\text{(rule ``"gradient"``)}, \qquad
    \frac{d\theta}{dt} = -M \circ \widehat\nabla_\beta
    \quad\text{(``"ep"``; ``"ep_centered"`` uses } \widehat\nabla^c_\beta),

where the 0/1 masks :math:`M` keep structural zeros (a layered network's
blocks, the model's ``w_mask``/``u_mask``) and freeze parameters left out of
``trainable``. The flows are exactly gradient flow's up to the estimator
error: the one-sided flow differs from it by :math:`\beta c_1(\theta) + O(\beta^2)`,
so trajectories over a fixed time differ by :math:`O(\beta)`, and the centred
one by :math:`O(\beta^2)`. Where the model fits every sample (``e = 0``),
:math:`\mu_\beta = H_\beta^{-1}P^Te = 0` and every estimate vanishes for any β:
zero-error solutions are fixed points of all three flows.

A population (a :class:`linfa.tasks.Task`, read as zero-mean) enters through
:func:`population_samples`: every quantity above is a polynomial of degree
at most two in ``(x, d)``, so a ``2 (n_in + n_out)``-point symmetric
dataset with the same second moments gives the population averages exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa.eqprop.energy import QuadraticEnergy, _as_beta, _sym, check_beta, check_model
from linfa.eqprop.gradients import Params, _ep_kernel, _gradient_kernel

__all__ = [
    "RULES",
    "centered_ep_flow",
    "ep_flow",
    "gradient_flow",
    "learning_args",
    "models_along",
    "population_samples",
    "train",
]

RULES = ("gradient", "ep", "ep_centered")


def _read(y: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(b, U, W)`` with W symmetrised: the flow is defined on symmetric W, and an
    integrator's stage sums may round the (i, j) and (j, i) entries differently."""
    b, U, W = y
    return b, U, _sym(W)


def _masked(g: Params, bm: np.ndarray, um: np.ndarray, wm: np.ndarray) -> tuple[np.ndarray, ...]:
    return (-bm * g.b, -um * g.U, -wm * g.W)


def gradient_flow(t: Any, y: tuple[np.ndarray, ...], args: tuple[np.ndarray, ...]
                  ) -> tuple[np.ndarray, ...]:
    r"""Vector field of gradient flow on :math:`J`, :math:`d\theta/dt = -M\circ dJ/d\theta`.

    Signature ``vf(t, y, args)`` of :func:`linfa.integrate.integrate` with
    ``y = (b, U, W)`` and ``args`` from :func:`learning_args`.
    """
    b, U, W = _read(y)
    P, x, d, _, bm, um, wm = args
    return _masked(_gradient_kernel(W, b, U, P, x, d), bm, um, wm)


def ep_flow(t: Any, y: tuple[np.ndarray, ...], args: tuple[np.ndarray, ...]
            ) -> tuple[np.ndarray, ...]:
    r"""Vector field of one-sided EP learning, :math:`d\theta/dt = -M\circ\widehat\nabla_\beta`.

    Each evaluation computes the free and nudged fixed points of every sample.
    """
    b, U, W = _read(y)
    P, x, d, beta, bm, um, wm = args
    return _masked(_ep_kernel(W, b, U, P, x, d, beta, False), bm, um, wm)


def centered_ep_flow(t: Any, y: tuple[np.ndarray, ...], args: tuple[np.ndarray, ...]
                     ) -> tuple[np.ndarray, ...]:
    r"""Vector field of centred EP learning, :math:`d\theta/dt = -M\circ\widehat\nabla^c_\beta`."""
    b, U, W = _read(y)
    P, x, d, beta, bm, um, wm = args
    return _masked(_ep_kernel(W, b, U, P, x, d, beta, True), bm, um, wm)


_FLOWS = {"gradient": gradient_flow, "ep": ep_flow, "ep_centered": centered_ep_flow}


def learning_args(
    model: QuadraticEnergy,
    x: Any,
    d: Any,
    beta: Any = 0.0,
    *,
    trainable: Sequence[str] = ("b", "U", "W"),
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Initial state and ``args`` of the learning flows, broadcast to the full batch.

    Parameters
    ----------
    model : QuadraticEnergy
        Initial parameters, read-out ``P`` and masks.
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)
    beta : float or ndarray, shape batch
    trainable : sequence of {"b", "U", "W"}
        Parameters that learn; the others stay fixed.

    Returns
    -------
    y0 : (b, U, W)
        Shapes ``(*batch, n)``, ``(*batch, n, n_in)``, ``(*batch, n, n)``.
    args : (P, x, d, beta, b_mask, U_mask, W_mask)
        Each with the leading batch axes.
    """
    bad = [p for p in trainable if p not in ("b", "U", "W")]
    if bad:
        raise ValueError(f"trainable: expected names among 'b', 'U', 'W', got {bad!r}")
    bt = _as_beta(beta)
    x, d, _ = check_model(model).check_data(x=x, d=d)
    n, n_in = model.n, model.n_in
    bm = np.full(n, 1.0 if "b" in trainable else 0.0)
    um = np.ones((n, n_in)) if model.u_mask is None else model.u_mask.astype(float)
    wm = np.ones((n, n)) if model.w_mask is None else model.w_mask.astype(float)
    um = um * (1.0 if "U" in trainable else 0.0)
    wm = wm * (1.0 if "W" in trainable else 0.0)
    batch = np.broadcast_shapes(model.batch_shape, x.shape[:-2], d.shape[:-2], bt.shape)

    def full(a: np.ndarray, core: int) -> np.ndarray:
        return np.broadcast_to(a, (*batch, *a.shape[a.ndim - core:])).copy()

    y0 = (full(model.b, 1), full(model.U, 2), full(model.W, 2))
    args = (full(model.P, 2), full(x, 2), full(d, 2), full(bt, 0), full(bm, 1), full(um, 2),
            full(wm, 2))
    return y0, args


def train(
    model: QuadraticEnergy,
    x: Any,
    d: Any,
    t: Any,
    *,
    rule: str = "ep",
    beta: Any = 0.0,
    trainable: Sequence[str] = ("b", "U", "W"),
    **options: Any,
) -> Any:
    r"""Integrate a learning flow with :func:`linfa.integrate.integrate`.

    Parameters
    ----------
    model : QuadraticEnergy
        Initial parameters (and ``P``, masks).
    x : ndarray, shape (*batch, m, n_in)
        Training inputs (see :func:`population_samples` for a population).
    d : ndarray, shape (*batch, m, n_out)
        Targets.
    t : array_like, shape (T,)
        Increasing save times, ``t[-1]`` the end time (start at 0).
    rule : {"gradient", "ep", "ep_centered"}
    beta : float or ndarray, shape batch
        Nudging strength (ignored by ``"gradient"``); an array gives one
        trajectory per β in a single batched integration.
    trainable : sequence of {"b", "U", "W"}
    **options
        Passed on (``method``, ``rtol``, ``atol``, ``observe``, ``max_steps``, ...).

    Returns
    -------
    linfa.integrate.Solution
        ``states = (b, U, W)`` of shapes ``(*batch, T, n)``, ``(*batch, T, n, n_in)``,
        ``(*batch, T, n, n)``; read them with :func:`models_along`.

    Raises
    ------
    ValueError
        Unknown ``rule``; ``beta == 0`` for an EP rule; a negative β that
        :func:`check_beta` rejects at the initial parameters.

    Notes
    -----
    The flow assumes :math:`A = I - W \succ 0` along the trajectory (and
    :math:`A - |\beta|P^TP \succ 0` for the centred rule); check it on the
    result with :func:`linfa.eqprop.observables.min_eigenvalue`.
    """
    from linfa.integrate import integrate

    if rule not in _FLOWS:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    if rule != "gradient":
        bt = check_beta(model, beta)
        if np.any(bt == 0):
            raise ValueError(f"beta: rule {rule!r} needs a nonzero beta")
        if rule == "ep_centered":
            check_beta(model, -bt)
    ts = np.asarray(t, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or not np.all(np.isfinite(ts)) or np.any(np.diff(ts) < 0) \
            or ts[0] < 0:
        raise ValueError(f"t: expected a 1-D increasing array of times >= 0, got {t!r}")
    y0, args = learning_args(model, x, d, beta if rule != "gradient" else 0.0, trainable=trainable)
    batch = args[0].shape[:-2]
    return integrate(_FLOWS[rule], y0, float(ts[-1]), args=args, batch_shape=batch, saveat=ts,
                     **options)


def models_along(model: QuadraticEnergy, states: Sequence[np.ndarray]) -> QuadraticEnergy:
    """The parameters of a saved learning trajectory as one batched model.

    Parameters
    ----------
    model : QuadraticEnergy
        The model training started from (supplies ``P`` and masks).
    states : (b, U, W)
        ``Solution.states`` of :func:`train`: ``(*batch, T, ...)``.

    Returns
    -------
    QuadraticEnergy
        Batch shape ``(*batch, T)``; validated, so it raises if
        :math:`I - W` lost positive definiteness along the way.
    """
    b, U, W = states
    P = np.expand_dims(model.P, -3)
    return QuadraticEnergy(W, b, U, P, w_mask=model.w_mask, u_mask=model.u_mask,
                           widths=model.widths)


def population_samples(task: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""A finite dataset with exactly the (zero-mean) moments of a population.

    For the joint second moment :math:`M = \begin{pmatrix}\Sigma_{xx} & \Sigma_{yx}^T\\
    \Sigma_{yx} & \Sigma_{yy}\end{pmatrix} = R R^T` (``r = n_in + n_out``
    columns), the ``2r`` points :math:`\pm\sqrt r\,R_{:,k}` have mean zero
    and second moment ``M``. Averages of polynomials of degree <= 2 in
    ``(x, d)`` — the loss, the gradient and every EP estimate — are then the
    population averages of any zero-mean distribution with these moments.

    Parameters
    ----------
    task : linfa.tasks.Task
        With ``sxx`` ``(*batch, n_in, n_in)``, ``syx`` ``(*batch, n_out, n_in)``,
        ``syy`` ``(*batch, n_out, n_out)``.

    Returns
    -------
    x : ndarray, shape (*batch, 2r, n_in)
    d : ndarray, shape (*batch, 2r, n_out)
    """
    sxx, syx, syy = (np.asarray(a, dtype=np.float64) for a in (task.sxx, task.syx, task.syy))
    n_in, n_out = sxx.shape[-1], syy.shape[-1]
    batch = np.broadcast_shapes(sxx.shape[:-2], syx.shape[:-2], syy.shape[:-2])
    r = n_in + n_out
    M = np.empty((*batch, r, r))
    M[..., :n_in, :n_in] = sxx
    M[..., n_in:, :n_in] = syx
    M[..., :n_in, n_in:] = np.swapaxes(syx, -1, -2)
    M[..., n_in:, n_in:] = syy
    lam, V = np.linalg.eigh(_sym(M))
    R = V * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]
    pts = np.sqrt(r) * np.swapaxes(R, -1, -2)  # (*batch, r, r): one point per row
    z = np.concatenate([pts, -pts], axis=-2)
    return z[..., :n_in].copy(), z[..., n_in:].copy()
