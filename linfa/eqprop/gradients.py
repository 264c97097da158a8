r"""Exact gradients by the adjoint, and the two-phase (EP) estimates of them.

Objective
---------
Over a dataset of ``m`` samples :math:`(x_k, d_k)`, with free fixed points
:math:`s^0_k = A^{-1}(b + U x_k)` and output errors
:math:`e_k = P s^0_k - d_k`,

.. math::

    J(\theta) = \Big\langle \tfrac12 \lVert P s^0 - d \rVert^2 \Big\rangle,
    \qquad \langle f \rangle = \frac1m \sum_{k=1}^m f_k .

Adjoint gradient
----------------
Perturbing :math:`\theta = (b, U, W)` with :math:`dA = -dW` gives
:math:`A\, ds^0 = db + dU\, x + dW\, s^0`, so with the adjoint state
:math:`\lambda = A^{-1} P^T e`

.. math::

    dJ = \langle \lambda^T (db + dU\,x + dW\,s^0) \rangle,
    \qquad
    \frac{dJ}{db} = \langle \lambda \rangle,\quad
    \frac{dJ}{dU} = \langle \lambda x^T \rangle,\quad
    \frac{dJ}{dW} = \operatorname{sym}\langle \lambda s^{0T} \rangle,

with :math:`\operatorname{sym} M = \tfrac12 (M + M^T)`.

**Symmetric parametrisation of W.** ``W`` ranges over symmetric matrices,
and ``dJ/dW`` here is *the gradient in the space of symmetric matrices with
the Frobenius inner product*: the symmetric ``G`` with
:math:`dJ = \operatorname{tr}(G\,dW)` for every symmetric ``dW``. It is the
symmetrisation of the unconstrained gradient :math:`\langle\lambda s^{0T}\rangle`.
For one off-diagonal coupling :math:`w_{ij} = w_{ji}` moved as a single
scalar, :math:`\partial J/\partial w_{ij} = 2 G_{ij}`; for a diagonal entry,
:math:`G_{ii}`. The flow :math:`dW/dt = -G` is gradient flow on symmetric
matrices and keeps ``W`` symmetric.

EP estimates
------------
With :math:`\partial F/\partial\theta(s) = (-s,\ -s x^T,\ -\tfrac12 s s^T)`
(the cost does not depend on θ; the W-entry is again the Frobenius gradient
on symmetric matrices) the one-sided and centred estimates are

.. math::

    \widehat{\nabla}_\beta = \frac1\beta \Big\langle
        \frac{\partial F}{\partial\theta}(s^\beta) - \frac{\partial F}{\partial\theta}(s^0)
    \Big\rangle, \qquad
    \widehat{\nabla}^{c}_\beta = \frac1{2\beta} \Big\langle
        \frac{\partial F}{\partial\theta}(s^\beta) - \frac{\partial F}{\partial\theta}(s^{-\beta})
    \Big\rangle = \tfrac12\big(\widehat\nabla_\beta + \widehat\nabla_{-\beta}\big).

Closed form and error expansion
-------------------------------
Subtracting the fixed-point equations :math:`H_\beta s^\beta = b + Ux + \beta P^Td`
and :math:`A s^0 = b + Ux` gives, exactly,
:math:`s^\beta = s^0 - \beta\mu_\beta` with :math:`\mu_\beta = H_\beta^{-1}P^Te`,
hence, exactly for every β,

.. math::

    \widehat\nabla_\beta = \Big(\langle\mu_\beta\rangle,\
        \langle\mu_\beta x^T\rangle,\
        \operatorname{sym}\langle\mu_\beta s^{0T}\rangle
            - \tfrac\beta2\langle\mu_\beta\mu_\beta^T\rangle\Big).

Expanding :math:`H_\beta^{-1} = (I + \beta A^{-1}Q)^{-1}A^{-1}` (``Q = P^TP``;
a Neumann series for :math:`|\beta|\,\rho(A^{-1}Q) < 1`),

.. math::

    \mu_\beta = \sum_{k\ge0} (-\beta)^k (A^{-1}Q)^k \lambda
              = \lambda - \beta\nu + \beta^2\rho - O(\beta^3),
    \qquad \nu = A^{-1}Q\lambda,\quad \rho = A^{-1}Q\nu .

So :math:`\widehat\nabla_\beta = dJ/d\theta + \beta c_1 + O(\beta^2)` with

.. math::

    c_1 = \Big(-\langle\nu\rangle,\ -\langle\nu x^T\rangle,\
          -\operatorname{sym}\langle\nu s^{0T}\rangle - \tfrac12\langle\lambda\lambda^T\rangle\Big),

and, since the centred estimate is the even part in β (odd powers cancel;
:math:`\mu_\beta\mu_\beta^T - \mu_{-\beta}\mu_{-\beta}^T = -2\beta(\nu\lambda^T + \lambda\nu^T) + O(\beta^3)`),
:math:`\widehat\nabla^c_\beta = dJ/d\theta + \beta^2 c_2 + O(\beta^4)` with

.. math::

    c_2 = \Big(\langle\rho\rangle,\ \langle\rho x^T\rangle,\
          \operatorname{sym}\langle\rho s^{0T}\rangle + \operatorname{sym}\langle\nu\lambda^T\rangle\Big).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from linfa.eqprop.energy import (
    QuadraticEnergy,
    _field,
    _output_error,
    _sym,
    check_beta,
    check_model,
    nudged_matrix,
)
from linfa.eqprop.fixed_points import fixed_point, output_error, solve_rows

__all__ = [
    "Params",
    "adjoint",
    "ep_error_coefficient",
    "ep_gradient",
    "ep_gradient_closed_form",
    "gradient",
    "loss",
    "parameter_derivative",
]


class Params(NamedTuple):
    """The parameters :math:`\\theta = (b, U, W)`, or a gradient with respect to them.

    Attributes
    ----------
    b : ndarray, shape (*batch, n)
    U : ndarray, shape (*batch, n, n_in)
    W : ndarray, shape (*batch, n, n)
        Symmetric; as a gradient, the Frobenius gradient on symmetric matrices.
    """

    b: np.ndarray
    U: np.ndarray
    W: np.ndarray


def _mean_outer(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:math:`\\langle a c^T\\rangle` over the sample axis; ``a`` (…, m, p), ``c`` (…, m, q)."""
    return np.swapaxes(a, -1, -2) @ c / a.shape[-2]


# ---------------------------------------------------------------- kernels
# Unvalidated array kernels, shared by the public functions and by the
# learning flows of linfa.eqprop.training (which must not raise mid-integration).
def _free_system(W: np.ndarray, b: np.ndarray, U: np.ndarray, x: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``A = I - W`` and the field ``b + U x`` per sample (the free fixed point solves ``A s = field``)."""
    return np.eye(W.shape[-1]) - W, _field(b, U, x)


def _dF_dtheta(s: np.ndarray, x: np.ndarray) -> Params:
    # _sym: a BLAS product s^T s need not be exactly symmetric; a flow must keep W so
    return Params(-np.mean(s, axis=-2), -_mean_outer(s, x), -0.5 * _sym(_mean_outer(s, s)))


def _gradient_kernel(W: np.ndarray, b: np.ndarray, U: np.ndarray, P: np.ndarray,
                     x: np.ndarray, d: np.ndarray) -> Params:
    A, field = _free_system(W, b, U, x)
    s0 = solve_rows(A, field)
    lam = solve_rows(A, _output_error(P, s0, d) @ P)
    return Params(np.mean(lam, axis=-2), _mean_outer(lam, x), _sym(_mean_outer(lam, s0)))


def _ep_kernel(W: np.ndarray, b: np.ndarray, U: np.ndarray, P: np.ndarray,
               x: np.ndarray, d: np.ndarray, beta: np.ndarray, centered: bool) -> Params:
    A, field = _free_system(W, b, U, x)  # the centred estimate never needs the free phase s0
    Q = np.swapaxes(P, -1, -2) @ P
    pd = d @ P
    bb = beta[..., None, None]
    plus = _dF_dtheta(solve_rows(A + bb * Q, field + bb * pd), x)
    if centered:
        other = _dF_dtheta(solve_rows(A - bb * Q, field - bb * pd), x)
        scale = 0.5 / beta
    else:
        other = _dF_dtheta(solve_rows(A, field), x)
        scale = 1.0 / beta
    return Params((plus.b - other.b) * scale[..., None], (plus.U - other.U) * scale[..., None, None],
                  (plus.W - other.W) * scale[..., None, None])


# ---------------------------------------------------------------- public
def loss(model: QuadraticEnergy, x: Any, d: Any) -> np.ndarray:
    r"""The objective :math:`J = \langle \tfrac12\lVert P s^0 - d\rVert^2\rangle`.

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    ndarray, shape batch
    """
    e = output_error(model, fixed_point(model, x), d)
    return 0.5 * np.mean(np.sum(e * e, axis=-1), axis=-1)


def adjoint(model: QuadraticEnergy, x: Any, d: Any) -> np.ndarray:
    r"""The adjoint state :math:`\lambda = A^{-1} P^T (P s^0 - d)` per sample.

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    ndarray, shape (*batch, m, n)
    """
    e = output_error(model, fixed_point(model, x), d)
    return solve_rows(model.A, e @ model.P)


def gradient(model: QuadraticEnergy, x: Any, d: Any) -> Params:
    r"""The exact gradient :math:`dJ/d\theta` by the adjoint method.

    .. math::

        \frac{dJ}{db} = \langle\lambda\rangle, \quad
        \frac{dJ}{dU} = \langle\lambda x^T\rangle, \quad
        \frac{dJ}{dW} = \operatorname{sym}\langle\lambda s^{0T}\rangle,
        \qquad \lambda = A^{-1}P^T(Ps^0 - d).

    ``dJ/dW`` is the gradient on symmetric matrices (Frobenius inner
    product); see the module docstring for the parametrisation.

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    Params
        ``b`` of shape ``(*batch, n)``, ``U`` ``(*batch, n, n_in)``,
        ``W`` ``(*batch, n, n)`` (symmetric).
    """
    x, d, _ = check_model(model).check_data(x=x, d=d)
    return _gradient_kernel(model.W, model.b, model.U, model.P, x, d)


def parameter_derivative(model: QuadraticEnergy, s: Any, x: Any) -> Params:
    r"""The sample-averaged :math:`\partial F/\partial\theta` at a state ``s``.

    .. math::

        \frac{\partial F}{\partial b} = -s, \quad
        \frac{\partial F}{\partial U} = -s x^T, \quad
        \frac{\partial F}{\partial W} = -\tfrac12 s s^T

    (the last is the gradient on symmetric matrices of
    :math:`-\tfrac12 s^T W s`). These are local: each entry uses only the
    activities of the units it connects.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    x : ndarray, shape (*batch, m, n_in)

    Returns
    -------
    Params
    """
    x, _, s = check_model(model).check_data(x=x, s=s)
    return _dF_dtheta(s, x)


def ep_gradient(
    model: QuadraticEnergy, x: Any, d: Any, beta: Any, *, centered: bool = False
) -> Params:
    r"""The two-phase (equilibrium propagation) estimate of :math:`dJ/d\theta`.

    One-sided (``centered=False``) and centred (``centered=True``):

    .. math::

        \widehat\nabla_\beta = \frac1\beta\Big\langle
            \tfrac{\partial F}{\partial\theta}(s^\beta) - \tfrac{\partial F}{\partial\theta}(s^0)
        \Big\rangle, \qquad
        \widehat\nabla^c_\beta = \frac1{2\beta}\Big\langle
            \tfrac{\partial F}{\partial\theta}(s^\beta) - \tfrac{\partial F}{\partial\theta}(s^{-\beta})
        \Big\rangle,

    computed literally from the fixed points of the two phases. Their
    errors are :math:`\beta c_1 + O(\beta^2)` and :math:`\beta^2 c_2 + O(\beta^4)`
    (:func:`ep_error_coefficient`; derivation in the module docstring).

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)
    beta : float or ndarray, shape batch
        Nonzero nudging strength. The centred estimate also uses ``-beta``,
        which must keep :math:`A - |\beta|P^TP \succ 0`.
    centered : bool

    Returns
    -------
    Params
    """
    bt = check_beta(model, beta)
    if np.any(bt == 0):
        raise ValueError("beta: the EP estimate needs a nonzero beta")
    if centered:
        check_beta(model, -bt)
    x, d, _ = check_model(model).check_data(x=x, d=d)
    return _ep_kernel(model.W, model.b, model.U, model.P, x, d, bt, centered)


def ep_gradient_closed_form(model: QuadraticEnergy, x: Any, d: Any, beta: Any) -> Params:
    r"""The one-sided EP estimate in closed form, exact for every β.

    .. math::

        \widehat\nabla_\beta = \Big(\langle\mu_\beta\rangle,\
            \langle\mu_\beta x^T\rangle,\
            \operatorname{sym}\langle\mu_\beta s^{0T}\rangle
            - \tfrac\beta2\langle\mu_\beta\mu_\beta^T\rangle\Big),
        \qquad \mu_\beta = (A + \beta P^TP)^{-1} P^T (Ps^0 - d).

    At β = 0 it is the exact gradient (:math:`\mu_0 = \lambda`).

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)
    beta : float or ndarray, shape batch

    Returns
    -------
    Params
    """
    bt = check_beta(model, beta)
    x, d, _ = check_model(model).check_data(x=x, d=d)
    s0 = fixed_point(model, x)
    mu = solve_rows(nudged_matrix(model, bt), output_error(model, s0, d) @ model.P)
    return Params(np.mean(mu, axis=-2), _mean_outer(mu, x),
                  _sym(_mean_outer(mu, s0)) - 0.5 * bt[..., None, None] * _sym(_mean_outer(mu, mu)))


def ep_error_coefficient(
    model: QuadraticEnergy, x: Any, d: Any, *, centered: bool = False
) -> Params:
    r"""Leading coefficient of the EP estimate's error, in closed form.

    One-sided: :math:`\widehat\nabla_\beta - dJ/d\theta = \beta c_1 + O(\beta^2)`;
    centred: :math:`\widehat\nabla^c_\beta - dJ/d\theta = \beta^2 c_2 + O(\beta^4)`, with

    .. math::

        c_1 &= \Big(-\langle\nu\rangle,\ -\langle\nu x^T\rangle,\
              -\operatorname{sym}\langle\nu s^{0T}\rangle
              - \tfrac12\langle\lambda\lambda^T\rangle\Big), \\
        c_2 &= \Big(\langle\rho\rangle,\ \langle\rho x^T\rangle,\
              \operatorname{sym}\langle\rho s^{0T}\rangle
              + \operatorname{sym}\langle\nu\lambda^T\rangle\Big),

    :math:`\lambda = A^{-1}P^Te`, :math:`\nu = A^{-1}P^TP\lambda`,
    :math:`\rho = A^{-1}P^TP\nu`. Derivation in the module docstring.

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)
    centered : bool
        ``False`` for :math:`c_1`, ``True`` for :math:`c_2`.

    Returns
    -------
    Params
    """
    x, d, _ = check_model(model).check_data(x=x, d=d)
    s0 = fixed_point(model, x)
    A, Q = model.A, model.Q
    lam = solve_rows(A, output_error(model, s0, d) @ model.P)
    nu = solve_rows(A, lam @ Q)  # Q symmetric: rows of lam @ Q are (Q lam)^T
    if not centered:
        return Params(-np.mean(nu, axis=-2), -_mean_outer(nu, x),
                      -_sym(_mean_outer(nu, s0)) - 0.5 * _sym(_mean_outer(lam, lam)))
    rho = solve_rows(A, nu @ Q)
    return Params(np.mean(rho, axis=-2), _mean_outer(rho, x),
                  _sym(_mean_outer(rho, s0)) + _sym(_mean_outer(nu, lam)))
