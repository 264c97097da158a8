"""Per-instance step-size control: :class:`StepSizeController`.

The controller is the classical one (Hairer, Nørsett & Wanner, *Solving
Ordinary Differential Equations I*, II.4; scipy's ``RungeKutta``): a step
with RMS scaled error ``err`` (accepted when ``err <= 1``) is followed by a
step of size

.. math::

    h \\leftarrow h \\cdot \\min\\bigl(f_{\\max}, \\max(f_{\\min},\\; s\\,
    \\mathrm{err}^{-1/(q+1)})\\bigr),

with ``q`` the order of the method's error estimate, no growth right after a
rejection, and the starting step from the heuristic of scipy's
``select_initial_step``. It is the one home of the tolerance defaults: both
:func:`linfa.integrate.integrate` and :func:`linfa.solve` read them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import real
from linfa.integrate._kernels import power, rms_rows

__all__ = ["StepSizeController", "rms"]


def rms(x: np.ndarray) -> np.ndarray:
    """Per row, the root mean square ``sqrt(Σ_d x_d² / D)`` of ``x (K, D)``: shape ``(K,)``.

    The norm of the stiff methods' scaled error estimates and Newton corrections. Each sum runs in
    index order (:func:`linfa.integrate._kernels.rms_rows`), as in the compiled ``bdf`` loop, so that
    both routes of ``bdf`` compute their norms bit for bit alike.
    """
    if np.ndim(x) != 2:
        raise ValueError(f"x: expected an array of shape (K, D), got shape {np.shape(x)}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.shape[0])
    rms_rows(x, out)
    return out


@dataclass(frozen=True)
class StepSizeController:
    """Tolerances and step-size rule of the adaptive methods.

    Parameters
    ----------
    rtol, atol : float
        Positive tolerances. A step is accepted when the RMS over the
        instance's components of ``err / (atol + rtol·max(|y|, |y_new|))`` is
        at most 1.
    dt0 : float, optional
        The first step (every step, for a fixed-step method such as
        ``euler``); chosen per instance when omitted.
    safety, min_factor, max_factor : float
        ``s``, ``f_min`` and ``f_max`` of the update rule above.

    Examples
    --------
    >>> from linfa.integrate import StepSizeController
    >>> StepSizeController(rtol=1e-10, atol=1e-12).rtol
    1e-10
    """

    rtol: float = 1e-8
    atol: float = 1e-10
    dt0: float | None = None
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rtol", real("rtol", self.rtol, positive=True))
        object.__setattr__(self, "atol", real("atol", self.atol, positive=True))
        if self.dt0 is not None:
            object.__setattr__(self, "dt0", real("dt0", self.dt0, positive=True))
        object.__setattr__(self, "safety", real("safety", self.safety, positive=True))
        object.__setattr__(self, "min_factor", real("min_factor", self.min_factor, positive=True))
        object.__setattr__(self, "max_factor", real("max_factor", self.max_factor, positive=True))
        if not self.min_factor <= 1.0 <= self.max_factor:
            raise ValueError(
                f"min_factor, max_factor: expected min_factor <= 1 <= max_factor, "
                f"got {self.min_factor}, {self.max_factor}"
            )

    @classmethod
    def resolve(cls, stepsize: StepSizeController | None = None, *, rtol: Any = None, atol: Any = None,
                dt0: Any = None) -> StepSizeController:
        """The controller of an entry point's ``stepsize=`` or its ``rtol=``, ``atol=``, ``dt0=`` shortcuts."""
        given = {k: v for k, v in (("rtol", rtol), ("atol", atol), ("dt0", dt0)) if v is not None}
        if stepsize is None:
            return cls(**given)
        if not isinstance(stepsize, StepSizeController):
            raise TypeError(
                f"stepsize: expected a linfa.integrate.StepSizeController, got {type(stepsize).__name__}"
            )
        if given:
            raise ValueError(
                f"stepsize: pass the tolerances either in stepsize or as keywords, "
                f"got both stepsize and {', '.join(given)}"
            )
        return stepsize

    # ------------------------------------------------------------------ the rule
    def factor(self, errn: np.ndarray, rejected: np.ndarray,
               error_order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accept or reject each instance's step and the factor of its next step.

        Parameters
        ----------
        errn : ndarray, shape (K,)
            RMS scaled error of the step (NaN for non-finite stages).
        rejected : ndarray of bool, shape (K,)
            Whether the instance's previous step was rejected (then no growth).
        error_order : int
            Order ``q`` of the method's error estimate.

        Returns
        -------
        accepted, finite : ndarray of bool, shape (K,)
        factor : ndarray, shape (K,)
            ``h_next / h``.
        """
        finite = np.isfinite(errn)
        acc = errn <= 1.0  # False for a NaN norm: non-finite stages are never accepted
        factor = self.safety * power(errn, -1.0 / (error_order + 1))  # the C library's pow, as compiled
        factor = np.where(errn == 0, self.max_factor, factor)
        grow = np.minimum(np.where(rejected, 1.0, self.max_factor), factor)
        shrink = np.where(finite, np.maximum(self.min_factor, factor), self.min_factor)
        return acc, finite, np.where(acc, grow, shrink)

    def initial_step(self, vf: Callable[[np.ndarray, np.ndarray], np.ndarray], t0: np.ndarray,
                     y0: np.ndarray, f0: np.ndarray, interval: float,
                     error_order: int) -> tuple[np.ndarray, np.ndarray]:
        """The first step of each instance, scipy's ``select_initial_step`` heuristic.

        Parameters
        ----------
        vf : callable
            ``vf(t, y) -> dy`` on flat ``(K, D)`` arrays (one evaluation is made).
        t0 : ndarray, shape (K,)
        y0, f0 : ndarray, shape (K, D)
            The state and its derivative at ``t0``.
        interval : float
            ``t1 - t0``; no step is longer.
        error_order : int

        Returns
        -------
        h : ndarray, shape (K,)
        overflow : ndarray of bool, shape (K,)
            The flow is too large for its scaled norm to be computed (it
            overflows); ``h`` is then 0, and the instance cannot be integrated.
        """
        K = y0.shape[0]
        if interval == 0:
            return np.full(K, 1.0), np.zeros(K, dtype=bool)
        scale = self.atol + np.abs(y0) * self.rtol
        d0 = rms(y0 / scale)  # index-order sums and the C library's pow, as the compiled loops compute them
        d1 = rms(f0 / scale)
        h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.where(d1 > 0, d1, 1.0))
        h0 = np.minimum(h0, interval)
        y1 = y0 + h0[:, None] * f0
        f1 = vf(t0 + h0, y1)
        diff = (f1 - f0) / scale
        d2 = rms(diff) / h0
        dmax = np.maximum(d1, d2)
        small = (d1 <= 1e-15) & (d2 <= 1e-15)
        h1 = np.where(
            small,
            np.maximum(1e-6, h0 * 1e-3),
            power(0.01 / np.where(small, 1.0, dmax), 1.0 / (error_order + 1)),
        )
        h1 = np.where(np.isfinite(h1), h1, h0)
        return np.minimum(np.minimum(100 * h0, h1), interval), ~(np.isfinite(d1) & np.isfinite(d2))
