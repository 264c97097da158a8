r"""Free and nudged fixed points of a quadratic energy, by linear solves.

The total energy :math:`F_\beta = E + \beta C` is quadratic with Hessian
:math:`H_\beta = A + \beta P^T P`; its unique minimiser (when
:math:`H_\beta \succ 0`) solves :math:`\partial F_\beta / \partial s = 0`:

.. math::

    s^\beta = H_\beta^{-1} \left(b + U x + \beta P^T d\right).

The free phase is :math:`\beta = 0`, :math:`s^0 = A^{-1}(b + Ux)`.
Subtracting the two equations gives the exact identity used throughout
:mod:`linfa.eqprop.gradients`,

.. math::

    s^\beta - s^0 = -\beta\, H_\beta^{-1} P^T e, \qquad e = P s^0 - d .
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa.eqprop.energy import QuadraticEnergy, _nudged_system, _output_error, check_beta, check_model

__all__ = ["fixed_point", "output_error", "solve_rows"]


def solve_rows(H: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Solve :math:`H s = c` for every row ``c`` of ``C``.

    Parameters
    ----------
    H : ndarray, shape (*batch, n, n)
    C : ndarray, shape (*batch, m, n)
        Right-hand sides, one per row; batch axes broadcast against ``H``'s.

    Returns
    -------
    ndarray, shape (*batch, m, n)
    """
    return np.swapaxes(np.linalg.solve(H, np.swapaxes(C, -1, -2)), -1, -2)


def fixed_point(model: QuadraticEnergy, x: Any, d: Any = None, beta: Any = 0.0) -> np.ndarray:
    r"""The minimiser :math:`s^\beta` of the total energy, for every sample.

    .. math::

        s^\beta = (A + \beta P^T P)^{-1} (b + U x + \beta P^T d).

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
        Inputs, one per row.
    d : ndarray, shape (*batch, m, n_out), optional
        Targets; needed unless ``beta == 0``.
    beta : float or ndarray, shape batch
        Nudging strength; a negative β must keep
        :math:`A - |\beta| P^T P \succ 0` (see :func:`check_beta`).

    Returns
    -------
    s : ndarray, shape (*batch, m, n)
        It satisfies :math:`\partial F_\beta/\partial s = 0`
        (:func:`linfa.eqprop.energy_gradient`).

    Raises
    ------
    ValueError
        On bad shapes, a missing ``d`` with ``beta != 0``, or a too
        negative β.
    """
    bt = check_beta(model, beta)
    x, d, _ = check_model(model).check_data(x=x, d=d)
    return solve_rows(*_nudged_system(model, x, d, bt))


def output_error(model: QuadraticEnergy, s: Any, d: Any) -> np.ndarray:
    """The output error :math:`e = P s - d` per sample.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    ndarray, shape (*batch, m, n_out)
    """
    _, d, s = check_model(model).check_data(d=d, s=s)
    return _output_error(model.P, s, d)
