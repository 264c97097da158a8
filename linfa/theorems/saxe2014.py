"""Saxe, McClelland & Ganguli (2014): exact solutions to the nonlinear dynamics of deep linear networks.

With whitened input, ``Σyx = U S V^T`` and a balanced initialisation aligned
to the singular modes, backprop decouples into one scalar equation per mode
(DESIGN.md fact 6):

.. math::

    \\tau \\frac{du}{dt} = L\\,u^{2-2/L}(s - u), \\qquad
    u(t) = \\frac{s\\,e^{2st/\\tau}}{e^{2st/\\tau} - 1 + s/u_0}\\quad(L = 2).

Reference: A. M. Saxe, J. L. McClelland, S. Ganguli, *Exact solutions to the
nonlinear dynamics of learning in deep linear neural networks*, ICLR 2014.
"""

from __future__ import annotations

import numpy as np

from linfa.exact import saxe_mode
from linfa.rules import AbstractRule
from linfa.tasks import Task
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._instance import Instance
from linfa.theorems._numerics import t, trajectory

__all__: list[str] = []

PAPER = "Saxe et al. 2014"
REF = "Saxe, McClelland & Ganguli, ICLR 2014"


def _draw_modes(rng: np.random.Generator, size: int) -> Instance:
    depth = _draw.integers(rng, 2, 3)
    n0, nout = _draw.integers(rng, 1, 5, 2)
    r = min(n0, nout)
    hidden = _draw.integers(rng, r, 5, depth - 1)
    widths = (n0, *hidden, nout)
    s = np.sort(rng.uniform(0.5, 3.0, size=r))[::-1]
    task = Task.random_teacher(rng, n0, nout, singular_values=s, batch=(size,))
    u0 = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), size=r))
    weights = _draw.network(widths).aligned(task, u0, rng=rng)
    return _draw.linear_instance(task, weights, rule="BP", size=size, t1=8.0, n_save=16)


def mode_matrix(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    """``U^T W V`` for ``Σyx = U S V^T``: diagonal (the mode strengths) when the modes decouple."""
    u, _, vt = np.linalg.svd(task.syx)
    w = state[0]
    for layer in state[1:]:
        w = layer @ w
    return t(u) @ w @ t(vt)


def _check_modes(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    ts = np.linspace(0.0, t1, int(inst.params["n_save"]) + 1)  # type: ignore[arg-type]
    _, out, ok = trajectory(rule, task, state, t1, saveat=ts, observe={"modes": mode_matrix})
    modes = out["modes"]  # (K, S, nL, n0)
    s = np.linalg.svd(task.syx, compute_uv=False)  # (K, r)
    r = s.shape[-1]
    diag = np.diagonal(modes, axis1=-2, axis2=-1)[..., :r]  # (K, S, r)
    u0 = diag[:, 0]
    # modes the initialisation does not reach (strength zero up to rounding) stay at zero
    live = u0 > 1e-9 * s.max(axis=-1, keepdims=True)
    dummy = np.where(s > 0, 0.5 * s, 1.0)  # any valid start for the dead modes, whose prediction is unused
    exact = np.where(live[:, None], saxe_mode(ts[None, :, None], s[:, None, :], np.where(live, u0, dummy)[:, None],
                                              depth=len(state)), 0.0)
    off = modes.copy()
    idx = np.arange(r)
    off[..., idx, idx] = 0.0
    scale = np.maximum(s.max(axis=-1), 1e-300)
    err = np.maximum(np.max(np.abs(diag - exact), axis=(1, 2)), np.max(np.abs(off), axis=(1, 2, 3))) / scale
    margin = np.where(ok, TOL - err, -1.0)
    return Verdict(margin >= 0, np.nan_to_num(margin, nan=-1.0),
                   {"max_error_over_s": err, "final_u_over_s": diag[:, -1, 0] / scale})


TOL = 1e-6

register(Theorem(
    id="saxe2014.mode_dynamics",
    paper=PAPER,
    title="BP from a mode-aligned balanced init: each mode follows the closed-form sigmoid",
    statement=(r"W(t) = U\,\mathrm{diag}(u_\alpha(t))\,V^T,\quad "
               r"\frac{du}{dt} = L\,u^{2-2/L}(s - u);\ \ L = 2:\ "
               r"u(t) = \frac{s\,e^{2st}}{e^{2st} - 1 + s/u_0}"),
    reference=f"{REF}, Sec. 2 (exact solutions) and Sec. 3 (deeper networks)",
    hypotheses=("BP (gradient flow), depth 2 or 3, Σxx = I", "Σyx = U S V^T with distinct singular values",
                "balanced initialisation aligned to the modes (DeepLinear.aligned), τ = 1",
                "hidden widths >= min(n0, nL)"),
    kind="theorem",
    tolerance=TOL,
    tolerance_reason="closed form (linfa.exact.saxe_mode) against dopri5 at rtol 1e-9 over t <= 8, relative to "
                     "the largest singular value; off-diagonal mode couplings must stay at rounding level",
    draw=_draw_modes,
    check_batch=_check_modes,
    derivation="saxe_modes",
))
