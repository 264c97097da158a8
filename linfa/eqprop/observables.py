r"""Observables of two-phase learning with quadratic energies.

Parameters and gradients are :class:`~linfa.eqprop.gradients.Params`
triples ``(b, U, W)``; they are compared with the Frobenius inner product
summed over the three blocks (``W`` as a full symmetric matrix, the inner
product for which ``dJ/dW`` is the gradient):

.. math::

    \langle g, h\rangle = g_b^T h_b + \operatorname{tr}(g_U^T h_U)
                          + \operatorname{tr}(g_W^T h_W).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa.eqprop.energy import QuadraticEnergy, nudged_matrix, total_energy
from linfa.eqprop.gradients import Params, ep_gradient, gradient, loss
from linfa.loglog import loglog_slope

__all__ = [
    "energy_along",
    "ep_error",
    "gradient_error",
    "loglog_slope",
    "loss_along",
    "min_eigenvalue",
    "params_inner",
    "params_norm",
    "update_angle",
]


def params_inner(g: Params, h: Params) -> np.ndarray:
    """Frobenius inner product over ``(b, U, W)``; shape ``batch``."""
    return (np.sum(g.b * h.b, axis=-1) + np.sum(g.U * h.U, axis=(-2, -1))
            + np.sum(g.W * h.W, axis=(-2, -1)))


def params_norm(g: Params) -> np.ndarray:
    """Frobenius norm over ``(b, U, W)``; shape ``batch``."""
    return np.sqrt(params_inner(g, g))


def gradient_error(estimate: Params, exact: Params, *, relative: bool = False) -> np.ndarray:
    r"""Distance :math:`\lVert \widehat\nabla - \nabla\rVert` (divided by :math:`\lVert\nabla\rVert` if ``relative``).

    Returns
    -------
    ndarray, shape batch
    """
    diff = Params(*(a - b for a, b in zip(estimate, exact, strict=True)))
    err = params_norm(diff)
    return err / params_norm(exact) if relative else err


def update_angle(estimate: Params, exact: Params) -> np.ndarray:
    r"""Angle in degrees between an update and the gradient (as in :mod:`linfa.observables`).

    .. math::

        \angle(g, h) = \arccos \frac{\langle g, h\rangle}{\lVert g\rVert\,\lVert h\rVert}
        \in [0°, 180°].

    Returns
    -------
    ndarray, shape batch
    """
    cos = params_inner(estimate, exact) / (params_norm(estimate) * params_norm(exact))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def ep_error(
    model: QuadraticEnergy, x: Any, d: Any, beta: Any, *, centered: bool = False,
    relative: bool = False,
) -> np.ndarray:
    """Error of the EP estimate, :func:`gradient_error` of :func:`ep_gradient` vs :func:`gradient`.

    Returns
    -------
    ndarray, shape batch
    """
    return gradient_error(ep_gradient(model, x, d, beta, centered=centered), gradient(model, x, d),
                          relative=relative)


def energy_along(
    model: QuadraticEnergy, states: Any, x: Any, d: Any = None, beta: Any = 0.0
) -> np.ndarray:
    r"""Total energy :math:`F_\beta(s(t))` along a trajectory of states.

    Parameters
    ----------
    model : QuadraticEnergy
    states : ndarray, shape (*batch, T, m, n)
        As returned by :func:`~linfa.eqprop.relaxation.relax` or in
        ``Solution.states[0]`` of :func:`~linfa.eqprop.relaxation.relax_ode`.
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out), optional
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, T, m)
        Non-increasing in ``T`` (:math:`dF/dt = -\lVert\partial F/\partial s\rVert^2`).
    """
    x = np.expand_dims(np.asarray(x, dtype=np.float64), -3)
    d = None if d is None else np.expand_dims(np.asarray(d, dtype=np.float64), -3)
    bt = np.expand_dims(np.asarray(beta, dtype=np.float64), -1)
    tmodel = QuadraticEnergy(np.expand_dims(model.W, -3), np.expand_dims(model.b, -2),
                             np.expand_dims(model.U, -3), np.expand_dims(model.P, -3))
    return total_energy(tmodel, states, x, d, bt)


def loss_along(model: QuadraticEnergy, states: Sequence[np.ndarray], x: Any, d: Any) -> np.ndarray:
    """The objective :math:`J` along a learning trajectory.

    Parameters
    ----------
    model : QuadraticEnergy
        Start of training (supplies ``P``).
    states : (b, U, W)
        ``Solution.states`` of :func:`~linfa.eqprop.training.train`, ``(*batch, T, ...)``.
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    ndarray, shape (*batch, T)
    """
    from linfa.eqprop.training import models_along

    x = np.expand_dims(np.asarray(x, dtype=np.float64), -3)
    d = np.expand_dims(np.asarray(d, dtype=np.float64), -3)
    return loss(models_along(model, states), x, d)


def min_eigenvalue(model: QuadraticEnergy, beta: Any = 0.0) -> np.ndarray:
    r"""Smallest eigenvalue of :math:`A + \beta P^TP`; positive iff the phase is well posed.

    Returns
    -------
    ndarray, shape batch
    """
    return np.linalg.eigvalsh(nudged_matrix(model, beta))[..., 0]
