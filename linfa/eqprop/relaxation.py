r"""Relaxation of the state to its fixed point, and the nudged transient.

The relaxation :math:`ds/dt = -\partial F_\beta/\partial s` is linear,

.. math::

    \frac{ds}{dt} = -(H_\beta s - c_\beta), \qquad
    H_\beta = A + \beta P^TP, \quad c_\beta = b + Ux + \beta P^T d,

with the closed form (an oracle for the ODE route), through the
eigendecomposition :math:`H_\beta = V \operatorname{diag}(w) V^T`,

.. math::

    s(t) = s^\beta + e^{-H_\beta t}\,(s(0) - s^\beta), \qquad
    e^{-H_\beta t} = V \operatorname{diag}(e^{-w t}) V^T .

Along it the total energy decreases,
:math:`dF/dt = -\lVert\partial F/\partial s\rVert^2 \le 0`.

Nudged transient (recurrent-backprop equivalence)
-------------------------------------------------
Start the nudged phase at the free fixed point, :math:`s(0) = s^0`. Then
:math:`s(0) - s^\beta = \beta H_\beta^{-1}P^Te` (see
:mod:`linfa.eqprop.fixed_points`), so exactly

.. math::

    \frac1\beta \frac{ds}{dt} = -H_\beta e^{-H_\beta t} H_\beta^{-1} P^T e
        = -e^{-H_\beta t} P^T e
    \;\xrightarrow[\beta\to0]{}\; -e^{-At}P^Te ,

the trajectory of the linear recurrent-backprop (adjoint) dynamics
:math:`d\lambda/dt = -A\lambda` from :math:`-P^Te`, whose integral over
:math:`[0,\infty)` is :math:`-A^{-1}P^Te = -\lambda`. The first-order term
follows from the Duhamel formula
:math:`e^{-(A+\beta Q)t} = e^{-At} - \beta\int_0^t e^{-A(t-\tau)}Qe^{-A\tau}d\tau + O(\beta^2)`:

.. math::

    \frac1\beta\frac{ds}{dt} = -e^{-At}P^Te + \beta K(t)P^Te + O(\beta^2),
    \qquad K(t) = V\big[(V^TQV)\circ\Phi(t)\big]V^T,

where :math:`A = V\operatorname{diag}(a)V^T` and
:math:`\Phi_{ij}(t) = \int_0^t e^{-a_i(t-\tau)}e^{-a_j\tau}d\tau
= (e^{-a_jt} - e^{-a_it})/(a_i - a_j)` (:math:`t e^{-a_it}` when :math:`a_i = a_j`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa._validate import times
from linfa.eqprop.energy import QuadraticEnergy, _nudged_system, check_beta, check_model, nudged_matrix
from linfa.eqprop.fixed_points import fixed_point, output_error, solve_rows

__all__ = [
    "decay",
    "nudged_transient",
    "relax",
    "relax_ode",
    "relaxation_args",
    "relaxation_vf",
    "transient_coefficient",
    "transient_limit",
]


def _times(t: Any) -> np.ndarray:
    ts = times("t", t, minimum=0.0, min_size=1)
    if ts.ndim != 1:
        raise ValueError(f"t: expected a 1-D array of finite times >= 0, got shape {ts.shape}")
    return ts


def decay(H: np.ndarray, t: Any) -> np.ndarray:
    r"""The matrix exponential :math:`e^{-Ht}` of a symmetric ``H``, at times ``t``.

    Parameters
    ----------
    H : ndarray, shape (*batch, n, n)
        Symmetric.
    t : array_like, shape (T,)

    Returns
    -------
    ndarray, shape (*batch, T, n, n)
    """
    ts = _times(t)
    w, V = np.linalg.eigh(H)
    ew = np.exp(-w[..., None, :] * ts[:, None])  # (*batch, T, n)
    V = V[..., None, :, :]
    return (V * ew[..., None, :]) @ np.swapaxes(V, -1, -2)


def _apply_rows(M: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Apply ``M`` (…, T, n, n) to each row of ``rows`` (…, m, n) -> (…, T, m, n)."""
    return rows[..., None, :, :] @ np.swapaxes(M, -1, -2)


def relax(
    model: QuadraticEnergy, s_init: Any, t: Any, x: Any, d: Any = None, beta: Any = 0.0
) -> np.ndarray:
    r"""Closed-form relaxation :math:`s(t) = s^\beta + e^{-H_\beta t}(s(0) - s^\beta)`.

    Parameters
    ----------
    model : QuadraticEnergy
    s_init : ndarray, shape (*batch, m, n)
        Initial state :math:`s(0)`.
    t : array_like, shape (T,)
        Times (>= 0).
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out), optional
        Needed unless ``beta == 0``.
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, T, m, n)
    """
    bt = check_beta(model, beta)
    x, d, s_init = check_model(model).check_data(x=x, d=d, s=s_init, s_name="s_init")
    H, c = _nudged_system(model, x, d, bt)
    s_star = solve_rows(H, c)
    return s_star[..., None, :, :] + _apply_rows(decay(H, t), s_init - s_star)


def relaxation_args(
    model: QuadraticEnergy, x: Any, d: Any = None, beta: Any = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""The arrays ``(H, c)`` of the relaxation ODE :math:`ds/dt = c_\beta - H_\beta s`.

    Both are broadcast to the full batch shape of model, data and β, as
    :func:`linfa.integrate.integrate` expects of ``args``.

    Returns
    -------
    H : ndarray, shape (*batch, n, n)
        :math:`A + \beta P^TP`.
    c : ndarray, shape (*batch, m, n)
        Rows :math:`(b + Ux + \beta P^Td)^T`.
    """
    bt = check_beta(model, beta)
    x, d, _ = check_model(model).check_data(x=x, d=d)
    H, c = _nudged_system(model, x, d, bt)
    batch = np.broadcast_shapes(H.shape[:-2], c.shape[:-2])
    return (np.broadcast_to(H, (*batch, *H.shape[-2:])).copy(),
            np.broadcast_to(c, (*batch, *c.shape[-2:])).copy())


def relaxation_vf(
    t: Any, y: tuple[np.ndarray, ...], args: tuple[np.ndarray, ...]
) -> tuple[np.ndarray]:
    r"""Vector field of the relaxation, :math:`ds/dt = c - H s` (rowwise).

    Signature ``vf(t, y, args)`` of :func:`linfa.integrate.integrate`, with
    ``y = (s,)``, ``s`` of shape ``(*batch, m, n)`` and ``args = (H, c, ...)``
    from :func:`relaxation_args` (further arguments, e.g. for observables,
    are ignored).
    """
    (s,) = y
    H, c = args[0], args[1]
    return (c - s @ H,)  # H symmetric: rows of s @ H are (H s)^T


def relax_ode(
    model: QuadraticEnergy,
    s_init: Any,
    t: Any,
    x: Any,
    d: Any = None,
    beta: Any = 0.0,
    **options: Any,
) -> Any:
    r"""Relaxation integrated with :func:`linfa.integrate.integrate`.

    Parameters
    ----------
    model, s_init, t, x, d, beta
        As in :func:`relax`; the trajectory is saved at the times ``t``
        (``t[-1]`` is the end time).
    **options
        Passed to :func:`linfa.integrate.integrate` (``method``, ``rtol``,
        ``atol``, ``observe``, ...).

    Returns
    -------
    linfa.integrate.Solution
        ``states[0]`` has shape ``(*batch, T, m, n)``.
    """
    from linfa.integrate import integrate

    ts = _times(t)
    H, c = relaxation_args(model, x, d, beta)
    _, _, s0 = check_model(model).check_data(s=s_init, s_name="s_init")
    batch = H.shape[:-2]
    s0 = np.broadcast_to(s0, (*batch, *c.shape[-2:])).copy()
    return integrate(relaxation_vf, (s0,), float(ts[-1]), args=(H, c), batch_shape=batch,
                     saveat=ts, **options)


def nudged_transient(model: QuadraticEnergy, x: Any, d: Any, t: Any, beta: Any) -> np.ndarray:
    r"""Exact :math:`\frac1\beta\frac{ds}{dt}` along the nudged relaxation from :math:`s^0`.

    .. math::

        \frac1\beta \frac{ds}{dt}(t) = -e^{-(A+\beta P^TP)t} P^T (Ps^0 - d).

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out)
    t : array_like, shape (T,)
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, T, m, n)
    """
    bt = check_beta(model, beta)
    pe = output_error(model, fixed_point(model, x), d) @ model.P
    return -_apply_rows(decay(nudged_matrix(model, bt), t), pe)


def transient_limit(model: QuadraticEnergy, x: Any, d: Any, t: Any) -> np.ndarray:
    r"""The β → 0 limit :math:`-e^{-At}P^T(Ps^0 - d)` of :func:`nudged_transient`.

    Returns
    -------
    ndarray, shape (*batch, T, m, n)
    """
    return nudged_transient(model, x, d, t, 0.0)


def transient_coefficient(model: QuadraticEnergy, x: Any, d: Any, t: Any) -> np.ndarray:
    r"""First-order term :math:`K(t)P^Te` of :func:`nudged_transient` in β.

    .. math::

        \frac1\beta\frac{ds}{dt} = -e^{-At}P^Te + \beta K(t)P^Te + O(\beta^2),
        \qquad K(t) = \int_0^t e^{-A(t-\tau)} P^TP e^{-A\tau}\,d\tau .

    Computed in the eigenbasis of ``A`` (module docstring).

    Returns
    -------
    ndarray, shape (*batch, T, m, n)
    """
    ts = _times(t)
    pe = output_error(model, fixed_point(model, x), d) @ model.P
    a, V = np.linalg.eigh(model.A)
    ai = a[..., None, :, None]  # (*batch, 1, n, 1)
    aj = a[..., None, None, :]
    tt = ts[:, None, None]
    z = (aj - ai) * tt
    small = np.abs(z) < 1e-6
    diff = np.where(small, 1.0, ai - aj)
    phi = np.where(small, tt * np.exp(-ai * tt) * (1.0 - 0.5 * z),
                   (np.exp(-aj * tt) - np.exp(-ai * tt)) / diff)
    Qt = np.swapaxes(V, -1, -2) @ model.Q @ V
    Vt = V[..., None, :, :]
    K = Vt @ (Qt[..., None, :, :] * phi) @ np.swapaxes(Vt, -1, -2)
    return _apply_rows(K, pe)
