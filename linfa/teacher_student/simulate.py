"""Finite-N online SGD of a shallow teacher–student network (the microscopic dynamics of :mod:`.ode`).

One fresh sample :math:`x \\sim \\mathcal N(0, I_N)` per step and instance,

.. math::

    w_k \\leftarrow w_k - \\frac{\\eta}{\\sqrt N} f_k g'(\\lambda_k)\\Delta x,\\qquad
    v_k \\leftarrow v_k - \\frac{\\eta}{N} g(\\lambda_k)\\Delta,\\qquad
    \\Delta = \\textstyle\\sum_k v_k g(\\lambda_k) - \\sum_m v^*_m g(\\nu_m) - \\sigma\\zeta,

``f = v`` (BP) or ``f = b`` (DFA). The order parameters of the weights are
recorded at the requested times ``α = steps / N``; their generalisation error
(:func:`~linfa.teacher_student.generalisation_error`) is the exact population
error of the finite network, since its fields are exactly Gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import as_generator, count, real, times
from linfa.teacher_student.order_parameters import OrderParameters, Problem, _array, order_parameters

__all__ = ["Simulation", "simulate"]


@dataclass(frozen=True, eq=False)
class Simulation:
    """Order parameters of simulated SGD at the saved times.

    ``alphas (S,)``, ``Q (B, S, K, K)``, ``R (B, S, K, M)``, ``v (B, S, K)``, ``T (B, M, M)``,
    ``vstar (B, M)``, ``b (B, K)``; :meth:`order_parameters` lines them up for the observables.
    """

    alphas: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    v: np.ndarray
    T: np.ndarray
    vstar: np.ndarray
    b: np.ndarray

    def order_parameters(self) -> OrderParameters:
        """:class:`OrderParameters` with leading axes ``(B, S)``."""
        s = self.alphas.shape[0]
        B = self.Q.shape[0]
        return OrderParameters(
            self.Q, self.R, np.broadcast_to(self.T[:, None], (B, s, *self.T.shape[1:])), self.v,
            np.broadcast_to(self.vstar[:, None], (B, s, self.vstar.shape[-1])),
            np.broadcast_to(self.b[:, None], (B, s, self.b.shape[-1])),
        )


def simulate(
    w: Any,
    wstar: Any,
    v: Any,
    vstar: Any,
    alphas: Any,
    rng: np.random.Generator,
    *,
    rule: str = "BP",
    b: Any = None,
    eta: float = 1.0,
    sigma: float = 0.0,
    activation: Any = "erf",
    train_second_layer: bool = True,
) -> Simulation:
    """Run online SGD from weights ``w`` (B, K, N), teacher ``wstar`` (B, M, N), ``v`` (B, K), ``vstar`` (B, M).

    Parameters
    ----------
    alphas : array_like, shape (S,)
        Sorted times ``α >= 0`` at which to record (rounded to whole steps, ``round(α N)``).
    rng : numpy.random.Generator
        Source of the samples (and of the label noise).
    rule, b, eta, sigma, activation, train_second_layer
        As in :class:`~linfa.teacher_student.Problem` (scalars ``eta``, ``sigma``).

    Returns
    -------
    Simulation
    """
    from linfa.teacher_student.activations import activation as _activation

    rng = as_generator("rng", rng)
    act = _activation(activation)
    w = np.array(_array("w", w, None, 2))
    wstar = _array("wstar", wstar, None, 2)
    if w.ndim != 3 or wstar.ndim != 3 or w.shape[0] != wstar.shape[0] or w.shape[2] != wstar.shape[2]:
        raise ValueError(f"w, wstar: expected shapes (B, K, N) and (B, M, N), got {w.shape} and {wstar.shape}")
    B, K, N = w.shape
    M = wstar.shape[1]
    eta = real("eta", eta, positive=True)
    sigma = real("sigma", sigma, minimum=0.0)
    # one validation of every shape and value, shared with the ODE
    v = _array("v", v, (K,), 1)
    vstar = _array("vstar", vstar, (M,), 1)
    problem = Problem.from_weights(w, wstar, np.broadcast_to(v, (B, K)), np.broadcast_to(vstar, (B, M)),
                                   rule=rule, b=b, eta=eta, sigma=sigma, activation=act,
                                   train_second_layer=train_second_layer)
    v = np.array(problem.v, dtype=np.float64)
    vstar_ = problem.vstar
    fb = problem.b
    a = times("alphas", alphas).reshape(-1)
    if np.any(np.diff(a) < 0):
        raise ValueError("alphas: expected a non-empty sorted array of times >= 0")
    steps = np.rint(a * N).astype(np.int64)
    count("steps", int(steps[-1]))
    g, dg = act.g, act.dg
    root = np.sqrt(N)
    Qs, Rs, vs = [], [], []
    done = 0
    for target in steps:
        for _ in range(done, int(target)):
            x = rng.standard_normal((B, N))
            lam = np.einsum("bkn,bn->bk", w, x) / root
            nu = np.einsum("bmn,bn->bm", wstar, x) / root
            glam = g(lam)
            delta = np.sum(v * glam, -1) - np.sum(vstar_ * g(nu), -1)
            if sigma > 0:
                delta = delta - sigma * rng.standard_normal(B)
            f = v if rule == "BP" else fb
            w -= (eta / root) * (f * dg(lam) * delta[:, None])[:, :, None] * x[:, None, :]
            if train_second_layer:
                v -= (eta / N) * glam * delta[:, None]
        done = int(target)
        Q, R, _ = order_parameters(w, wstar)
        Qs.append(Q)
        Rs.append(R)
        vs.append(v.copy())
    _, _, T = order_parameters(w, wstar)
    return Simulation(steps / N, np.stack(Qs, 1), np.stack(Rs, 1), np.stack(vs, 1), T, vstar_, fb)
