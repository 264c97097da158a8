"""Least-squares lines on log–log axes: measured orders of convergence and scaling exponents.

An error that behaves as :math:`C h^p` is a line of slope ``p`` on log–log
axes, :math:`\\log \\text{err} = p \\log h + \\log C`. :func:`loglog_fit` fits
that line; :func:`loglog_slope` returns only ``p``. Neither imports matplotlib
(:func:`linfa.plot.ep_error` draws the fitted line).

Examples
--------
>>> from linfa.loglog import loglog_fit, loglog_slope
>>> round(loglog_slope([1e-3, 1e-2, 1e-1], [2e-6, 2e-4, 2e-2]), 12)
2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa._validate import real_array

__all__ = ["loglog_fit", "loglog_slope"]


def loglog_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares line through ``(log x, log y)``: slope and intercept.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Positive values (any shape, flattened); pairs with a non-positive or
        non-finite entry are dropped (at least two must remain).

    Returns
    -------
    slope, intercept : float
        ``log y ≈ slope · log x + intercept`` (natural logs).

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in size, or fewer than two pairs are usable.

    Examples
    --------
    >>> loglog_fit([1e-3, 1e-2, 1e-1], [2e-6, 2e-4, 2e-2])[0]  # doctest: +ELLIPSIS
    2.0...
    """
    xa = real_array("x", x).reshape(-1)  # complex, strings, None: a TypeError naming the argument
    ya = real_array("y", y).reshape(-1)
    if xa.shape != ya.shape:
        raise ValueError(f"y: expected the shape of x, {xa.shape}, got {ya.shape}")
    ok = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    if ok.sum() < 2:
        raise ValueError(f"x, y: need at least two pairs of positive finite values to fit a slope, got {int(ok.sum())}")
    slope, intercept = np.polyfit(np.log(xa[ok]), np.log(ya[ok]), 1)
    return float(slope), float(intercept)


def loglog_slope(x: Any, y: Any) -> float:
    """The slope of :func:`loglog_fit`: the measured order ``p`` of ``y ≈ C x^p``.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        As for :func:`loglog_fit`.

    Returns
    -------
    float
    """
    return loglog_fit(x, y)[0]
