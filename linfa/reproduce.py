r"""Regenerate the project's figures, with the numbers behind each.

Each figure is a :class:`FigureSpec` in :data:`FIGURES`: a function computing
its data (a :class:`Bundle` of arrays) and a function drawing that bundle.
:func:`reproduce` writes, for each figure ``name``, ``name.png``,
``name.csv`` (the series, one column per instance/layer) and ``name.json``
(everything, including fitted slopes and parameters) and ``name.txt`` (the
caption)::

    linfa reproduce                      # all figures into ./figures
    linfa reproduce fa_nse ep_beta --out out --fast
    linfa reproduce --list

``fast=True`` uses fewer instances and save points (the tests use it); the
same ``seed`` gives the same numbers. Each figure draws its randomness from
``numpy.random.default_rng([seed, k])`` with a fixed ``k`` per experiment,
so the numbers do not depend on which other figures are run.

The experiments:

* ``fa_*``: Lillicrap et al.'s linear task (30-20-10 network, teacher entries
  ``U[-1, 1]``, init ``U[-0.01, 0.01]``, feedback ``U[-0.5, 0.5]``, whitened
  input), ``K`` instances, BP and FA;
* ``dfa_*``: DFA on a 4-layer linear network from zero init (Refinetti et al.);
* ``saxe_modes``: BP, two layers, mode-aligned init against the closed form,
  and random small init beside it;
* ``ep_beta``: the two-phase (EP) gradient estimate of a quadratic energy
  against the nudging strength β, with the predicted leading terms;
* ``garg_vempala``: FA vs gradient descent on low-rank matrix factorisation,
  ``r ≥ rank Y`` and ``r < rank Y``;
* ``nokland_zero_init``: BP, FA and DFA from exactly zero weights;
* ``kolen_pollack``: decay of the feedback mismatch ``W_l − B_l^T``;
* ``du_balancedness``: BP's conserved ``W_l W_l^T − W_{l+1}^T W_{l+1}``;
* ``shallow_align_then_memorise``: a shallow erf teacher–student network (K = M = 3) trained by
  BP and DFA from the same small weights, by the order-parameter ODEs with finite-N SGD overlaid
  (Refinetti et al., section 3).

Every figure states its setting under the plot and in ``name.txt`` (widths,
``K``, initial scale, feedback distribution, ``Σxx``, the time unit
``t = learning rate × steps``, integrator tolerances, seed); ``name.json``
records the same plus the linfa version. Curves stop at the rounding floor
(an NSE below ``1e-14`` is not drawn).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "Bundle", "FigureSpec", "add_parser", "reproduce", "run", "save"]


@dataclass(frozen=True, eq=False)
class Bundle:
    """The numbers behind one figure.

    Attributes
    ----------
    x_label : str
        Name of the abscissa (``"t"`` or ``"beta"``).
    x : ndarray, shape (S,)
    series : dict of str to ndarray
        Each of shape ``(S, ...)``: the abscissa first, then instances
        and/or layers (e.g. ``(S, K, L)``).
    extra : dict
        Parameters and derived numbers (fitted slopes, closed-form
        comparisons); JSON-serialisable scalars, strings, lists or arrays.
    settings : dict
        How the numbers were made (widths, ``K``, initial scale, feedback
        distribution, ``Σxx``, time unit, integrator tolerances), as
        ``{name: str}``; printed under the figure and in its caption file.
    """

    x_label: str
    x: np.ndarray
    series: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=float)
        if x.ndim != 1:
            raise ValueError(f"x: expected shape (S,), got {x.shape}")
        for name, v in self.series.items():
            if np.ndim(v) < 1 or np.shape(v)[0] != x.shape[0]:
                raise ValueError(f"series[{name!r}]: expected shape (S, ...) with S = {x.shape[0]}, got {np.shape(v)}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "series", {k: np.array(v, dtype=float) for k, v in self.series.items()})

    def batched(self, name: str) -> np.ndarray:
        """Series ``name`` with its abscissa moved to the position :mod:`linfa.plot` expects.

        ``(S,)`` stays; ``(S, K)`` becomes ``(K, S)``; ``(S, K, L)`` becomes ``(K, S, L)``.
        """
        v = self.series[name]
        return v if v.ndim == 1 else np.moveaxis(v, 0, 1)


@dataclass(frozen=True)
class FigureSpec:
    """One reproducible figure.

    Attributes
    ----------
    name : str
        File stem and command-line name.
    title : str
        One line saying what the figure shows.
    compute : callable
        ``compute(fast: bool, seed: int) -> Bundle``.
    draw : callable
        ``draw(bundle, fig) -> None``: draws on a :class:`matplotlib.figure.Figure`.
    paper : str
        The paper's figure or claim this figure reproduces.
    caption : str
        What to read off the figure (and why it looks as it does).
    size : (width, height)
        Figure size in inches.
    """

    name: str
    title: str
    compute: Callable[[bool, int], Bundle]
    draw: Callable[[Bundle, Figure], None]
    paper: str = ""
    caption: str = ""
    size: tuple[float, float] = (6.0, 4.0)


# --------------------------------------------------------------------------
# experiments (cached: several figures share one set of runs)


def _rng(seed: int, experiment: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), experiment])


@functools.lru_cache(maxsize=4)
def _lillicrap(fast: bool, seed: int) -> dict[str, np.ndarray]:
    """BP and FA on Lillicrap et al.'s 30-20-10 linear task, K instances."""
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.feedback import fa as fa_feedback
    from linfa.networks import DeepLinear
    from linfa.rules import BP, FA
    from linfa.tasks import Task

    rng = _rng(seed, 1)
    k, s = (4, 41) if fast else (32, 201)
    widths = (30, 20, 10)
    task = Task.teacher(rng.uniform(-1.0, 1.0, size=(k, widths[-1], widths[0])))
    state0 = DeepLinear(widths).uniform(rng, 0.01, batch=(k,))
    feedback = fa_feedback(widths, rng, kind="uniform", scale=0.5, batch=(k,))
    t1 = 4.0
    ts = np.linspace(0.0, t1, s)
    bp = solve(BP(), task, state0, t1, saveat=ts, observe={"nse": obs.nse})
    fa = solve(FA(feedback), task, state0, t1, saveat=ts,
               observe={"nse": obs.nse, "update_angles": obs.update_angles, "alignment": obs.alignment})
    return {
        "t": ts,
        "nse_bp": np.moveaxis(bp.observed["nse"], -1, 0),
        "nse_fa": np.moveaxis(fa.observed["nse"], -1, 0),
        "angles_fa": np.moveaxis(fa.observed["update_angles"], -2, 0),
        "alignment_fa": np.moveaxis(fa.observed["alignment"], -2, 0),
        "K": np.array(k),
    }


@functools.lru_cache(maxsize=4)
def _dfa(fast: bool, seed: int) -> dict[str, np.ndarray]:
    """DFA on a 4-layer linear network from zero init, K instances."""
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.feedback import dfa as dfa_feedback
    from linfa.networks import DeepLinear
    from linfa.rules import DFA
    from linfa.tasks import Task

    rng = _rng(seed, 2)
    k, s = (4, 41) if fast else (32, 201)
    widths = (20, 30, 30, 30, 10)
    task = Task.random_teacher(rng, widths[0], widths[-1], batch=(k,))
    state0 = DeepLinear(widths).zeros(batch=(k,))
    rule = DFA(dfa_feedback(widths, rng, kind="gaussian", batch=(k,)))
    t1 = 10.0
    ts = np.linspace(0.0, t1, s)
    sol = solve(rule, task, state0, t1, saveat=ts, observe={
        "nse": obs.nse,
        "weight_alignment": obs.weight_alignment,
        "update_angles": obs.update_angles,
        "alignment_condition_numbers": obs.alignment_condition_numbers,
        "alignment_residuals": obs.alignment_residuals,
    })
    return {
        "t": ts,
        "nse": np.moveaxis(sol.observed["nse"], -1, 0),
        "weight_alignment": np.moveaxis(sol.observed["weight_alignment"], -2, 0),
        "update_angles": np.moveaxis(sol.observed["update_angles"], -2, 0),
        "condition_numbers": np.moveaxis(sol.observed["alignment_condition_numbers"], -2, 0),
        "residuals": np.moveaxis(sol.observed["alignment_residuals"], -2, 0),
        "K": np.array(k),
    }


# --------------------------------------------------------------------------
# settings shared by the figures

_TIME = "t = learning rate × steps (gradient-flow time)"
_SOLVER = "dopri5, rtol 1e-8, atol 1e-10 per instance"
_FLOOR = 1e-14
"""Rounding floor: an NSE below it is rounding noise and is not drawn."""
_BAND = "median and 10–90 % band over the K instances"


def _settings(**items: Any) -> dict[str, Any]:
    out = {k.replace("_", " "): v for k, v in items.items()}
    out.setdefault("time", _TIME)
    out.setdefault("integrator", _SOLVER)
    return out


def _lillicrap_settings(k: int) -> dict[str, Any]:
    return _settings(widths="30-20-10", K=k, task="teacher W* with entries U[-1, 1], Σxx = I (whitened)",
                     init="W_l entries U[-0.01, 0.01]", feedback="B entries U[-0.5, 0.5]", curves=_BAND)


def _dfa_settings(k: int) -> dict[str, Any]:
    return _settings(widths="20-30-30-30-10", K=k, task="random teacher (linfa.Task.random_teacher), Σxx = I",
                     init="all weights exactly 0", feedback="B_l entries N(0, 1/n_L)", curves=_BAND)


# --------------------------------------------------------------------------
# figures: compute


def _fa_nse(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    final_bp, final_fa = d["nse_bp"][-1], d["nse_fa"][-1]
    return Bundle("t", d["t"], {"nse_bp": d["nse_bp"], "nse_fa": d["nse_fa"]}, {
        "K": int(d["K"]), "widths": [30, 20, 10],
        "median_final_nse_bp": float(np.median(final_bp)), "median_final_nse_fa": float(np.median(final_fa)),
    }, _lillicrap_settings(int(d["K"])))


def _fa_angles(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    a = d["angles_fa"]
    return Bundle("t", d["t"], {"update_angles_fa": a}, {
        "K": int(d["K"]),
        "median_final_angle_layer1": float(np.nanmedian(a[-1, :, 0])),
        "max_final_angle_layer1": float(np.nanmax(a[-1, :, 0])),
    }, _lillicrap_settings(int(d["K"])))


def _fa_alignment(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    v = d["alignment_fa"]
    return Bundle("t", d["t"], {"alignment_fa": v}, {
        "K": int(d["K"]), "fraction_positive_after_start": float(np.mean(v[1:] > 0)),
    }, _lillicrap_settings(int(d["K"])))


def _dfa_weight_alignment(fast: bool, seed: int) -> Bundle:
    d = _dfa(fast, seed)
    w = d["weight_alignment"]
    return Bundle("t", d["t"], {"weight_alignment": w, "nse": d["nse"]}, {
        "K": int(d["K"]), "median_final_weight_alignment": np.nanmedian(w[-1], axis=0).tolist(),
    }, _dfa_settings(int(d["K"])) | {"floor": f"NSE below {_FLOOR:g} (rounding) not drawn"})


def _dfa_condition_numbers(fast: bool, seed: int) -> Bundle:
    d = _dfa(fast, seed)
    c = d["condition_numbers"]
    return Bundle("t", d["t"], {"condition_numbers": c, "residuals": d["residuals"]}, {
        "K": int(d["K"]),
        "max_residual": float(np.nanmax(d["residuals"])),
        "median_final_condition_numbers": np.median(c[-1], axis=0).tolist(),
    }, _dfa_settings(int(d["K"])))


def _saxe_modes(fast: bool, seed: int) -> Bundle:
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.exact import saxe_mode
    from linfa.networks import DeepLinear
    from linfa.rules import BP
    from linfa.tasks import Task

    rng = _rng(seed, 3)
    s = np.array([3.0, 2.0, 1.0, 0.5])
    u0 = 1e-3
    widths = (6, 4, 5)
    task = Task.random_teacher(rng, widths[0], widths[-1], singular_values=s)
    state0 = DeepLinear(widths).aligned(task, u0)
    t1 = 10.0
    ts = np.linspace(0.0, t1, 41 if fast else 201)
    rtol, atol = 1e-10, 1e-12
    sol = solve(BP(), task, state0, t1, saveat=ts, rtol=rtol, atol=atol)
    uu, _, vt = np.linalg.svd(task.syx)
    w = sol.states[1] @ sol.states[0]
    u = np.einsum("ir,sij,rj->sr", uu[:, :4], w, vt[:4])
    exact = saxe_mode(ts[:, None], s, u0)
    # random (not mode-aligned) small init: same task, K instances, Gaussian entries of scale sigma
    k = 4 if fast else 16
    sigma = 0.03  # |u_α(0)| ≈ sigma² sqrt(n_h): about 1e-3 like the aligned init
    batched = Task.teacher(np.broadcast_to(task.syx, (k, *task.syx.shape)).copy())
    rand0 = DeepLinear(widths).gaussian(rng, sigma, batch=(k,))
    rsol = solve(BP(), batched, rand0, t1, saveat=ts, observe={"u": obs.mode_strengths}, rtol=rtol, atol=atol)
    ur = np.moveaxis(rsol.observed["u"], 1, 0)[..., : len(s)]  # (S, K, 4): the modes with s > 0
    return Bundle("t", ts, {"measured": u, "closed_form": exact, "random_init": ur}, {
        "singular_values": s.tolist(), "u0": u0, "widths": list(widths), "random_init_scale": sigma,
        "max_abs_error": float(np.max(np.abs(u - exact))),
        "median_abs_random_u0": float(np.median(np.abs(ur[0]))),
    }, _settings(widths="6-4-5", K=f"1 (aligned), {k} (random)", task="Σyx = U diag(3, 2, 1, 0.5) Vᵀ, Σxx = I",
                 init=f"aligned: u_α(0) = {u0:g}, balanced; random: entries N(0, {sigma:g}²)",
                 integrator="dopri5, rtol 1e-10, atol 1e-12"))


def _ep_beta(fast: bool, seed: int) -> Bundle:
    from linfa import eqprop
    from linfa.loglog import loglog_slope

    rng = _rng(seed, 4)
    k, nb = (4, 7) if fast else (32, 13)
    model = eqprop.QuadraticEnergy.random(rng, 8, 3, 2, batch=(k,))
    x = rng.standard_normal((k, 5, 3))
    d = rng.standard_normal((k, 5, 2))
    betas = np.geomspace(1e-4, 1e-1, nb)
    exact = eqprop.gradient(model, x, d)  # the same for every beta: computed once
    one = np.stack([eqprop.gradient_error(eqprop.ep_gradient(model, x, d, b), exact, relative=True)
                    for b in betas])
    cen = np.stack([eqprop.gradient_error(eqprop.ep_gradient(model, x, d, b, centered=True), exact, relative=True)
                    for b in betas])
    g = eqprop.params_norm(exact)
    c1 = eqprop.params_norm(eqprop.ep_error_coefficient(model, x, d)) / g
    c2 = eqprop.params_norm(eqprop.ep_error_coefficient(model, x, d, centered=True)) / g
    return Bundle("beta", betas, {
        "one_sided": one, "centred": cen,
        "one_sided_leading_term": betas[:, None] * c1[None, :],
        "centred_leading_term": betas[:, None] ** 2 * c2[None, :],
    }, {
        "K": k, "n": 8, "n_in": 3, "n_out": 2, "samples": 5,
        "slope_one_sided": loglog_slope(betas, np.median(one, axis=1)),
        "slope_centred": loglog_slope(betas, np.median(cen, axis=1)),
    }, {"model": "quadratic energy, 8 units (3 input, 2 output), linfa.eqprop.QuadraticEnergy.random",
        "K": k, "data": "5 samples, x and d entries N(0, 1)",
        "error": "‖ĝ_β − ∇J‖ / ‖∇J‖ (exact relaxation, no integration)", "curves": _BAND})


def _garg_vempala(fast: bool, seed: int) -> Bundle:
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.feedback import fa as fa_feedback
    from linfa.networks import DeepLinear
    from linfa.random_matrices import haar_orthonormal
    from linfa.rules import BP, FA
    from linfa.tasks import Task

    rng = _rng(seed, 9)
    k, s_count = (4, 41) if fast else (32, 161)
    n, m, rank, t1 = 6, 5, 3, 40.0
    ts = np.linspace(0.0, t1, s_count)
    sv = rng.uniform(1.0, 2.0, size=(k, 1, rank))
    y = (haar_orthonormal(rng, n, rank, (k,)) * sv) @ np.swapaxes(haar_orthonormal(rng, m, rank, (k,)), -1, -2)
    task = Task.factorization(y)
    total = 0.5 * np.sum(sv[:, 0] ** 2, axis=-1)  # ½‖Y‖²
    series: dict[str, np.ndarray] = {}
    extra: dict[str, Any] = {"K": k, "n": n, "m": m, "rank": rank}
    for tag, r in (("r_ge_rank", rank), ("r_lt_rank", rank - 1)):
        widths = (m, r, n)
        state0 = DeepLinear(widths).gaussian(rng, 0.1, batch=(k,))
        feedback = fa_feedback(widths, rng, batch=(k,))
        best = 0.5 * np.sum(np.sort(sv[:, 0], axis=-1)[:, ::-1][:, r:] ** 2, axis=-1)  # Eckart–Young
        for name, rule in (("gd", BP()), ("fa", FA(feedback))):
            sol = solve(rule, task, state0, t1, saveat=ts, observe={"loss": obs.loss})
            excess = (np.moveaxis(sol.observed["loss"], -1, 0) - best) / total
            series[f"excess_{name}_{tag}"] = excess
            extra[f"median_final_excess_{name}_{tag}"] = float(np.median(excess[-1]))
        extra[f"r_{tag}"] = r
    extra["fraction_fa_suboptimal_r_lt_rank"] = float(np.mean(series["excess_fa_r_lt_rank"][-1] > 1e-3))
    return Bundle("t", ts, series, extra, _settings(
        task=f"Y ≈ Z W, Y {n}×{m} of rank {rank} with singular values U[1, 2] (Haar singular vectors), Σxx = I",
        widths=f"{m}-r-{n}, r = {rank} (r ≥ rank) and r = {rank - 1} (r < rank)", K=k,
        init="entries N(0, 0.1²)", feedback="B entries N(0, 1/n) (linfa.feedback.fa)",
        quantity="(L − L*) / ½‖Y‖², L* = best rank-r loss (Eckart–Young)",
        floor=f"values below {_FLOOR:g} (rounding) not drawn", curves=_BAND))


def _nokland(fast: bool, seed: int) -> Bundle:
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.feedback import dfa as dfa_feedback
    from linfa.feedback import fa as fa_feedback
    from linfa.networks import DeepLinear
    from linfa.rules import BP, DFA, FA
    from linfa.tasks import Task

    rng = _rng(seed, 10)
    k, s_count = (4, 41) if fast else (16, 161)
    widths = (20, 30, 30, 30, 10)
    t1 = 12.0
    ts = np.linspace(0.0, t1, s_count)
    task = Task.random_teacher(rng, widths[0], widths[-1], batch=(k,))
    state0 = DeepLinear(widths).zeros(batch=(k,))
    rules = {"BP": BP(), "FA": FA(fa_feedback(widths, rng, batch=(k,))),
             "DFA": DFA(dfa_feedback(widths, rng, batch=(k,)))}
    series = {}
    for name, rule in rules.items():
        sol = solve(rule, task, state0, t1, saveat=ts, observe={"nse": obs.nse})
        series[f"nse_{name}"] = np.moveaxis(sol.observed["nse"], -1, 0)
    return Bundle("t", ts, series, {
        "K": k, "widths": list(widths),
        "max_abs_change_nse_BP": float(np.max(np.abs(series["nse_BP"] - series["nse_BP"][0]))),
        "median_final_nse_DFA": float(np.median(series["nse_DFA"][-1])),
        "median_final_nse_FA": float(np.median(series["nse_FA"][-1])),
    }, _dfa_settings(k) | {"feedback": "DFA: B_l entries N(0, 1/n_L); FA: B_l entries N(0, 1/n_l)",
                            "floor": f"NSE below {_FLOOR:g} (rounding) not drawn"})


def _kolen_pollack(fast: bool, seed: int) -> Bundle:
    from linfa.dynamics import solve
    from linfa.exact import kolen_pollack_mismatch
    from linfa.feedback import fa as fa_feedback
    from linfa.linalg import frobenius
    from linfa.networks import DeepLinear
    from linfa.rules import KolenPollack
    from linfa.tasks import Task

    rng = _rng(seed, 7)
    k, s_count = (4, 41) if fast else (16, 161)
    widths = (10, 20, 20, 5)
    decay, t1 = 0.5, 20.0
    ts = np.linspace(0.0, t1, s_count)
    task = Task.random_teacher(rng, widths[0], widths[-1], batch=(k,))
    w0 = DeepLinear(widths).gaussian(rng, 0.3, batch=(k,))
    rule = KolenPollack(decay)
    state0 = rule.init_state(w0, fa_feedback(widths, rng, batch=(k,)))
    sol = solve(rule, task, state0, t1, saveat=ts)
    depth = len(widths) - 1
    rel = []
    for l in range(1, depth):
        mism = sol.states[l] - np.swapaxes(sol.states[depth + l - 1], -1, -2)  # (K, S, n_l, n_{l-1})
        rel.append(frobenius(mism) / frobenius(mism[:, :1]))
    measured = np.moveaxis(np.stack(rel, axis=-1), 1, 0)  # (S, K, L-1)
    exact = frobenius(kolen_pollack_mismatch(ts, np.ones((1, 1)), decay))  # e^{-λt}
    return Bundle("t", ts, {"relative_mismatch": measured, "closed_form": exact}, {
        "K": k, "decay": decay, "widths": list(widths),
        "max_relative_deviation": float(np.max(np.abs(measured / exact[:, None, None] - 1.0))),
    }, _settings(widths="10-20-20-5", K=k, task="random teacher, Σxx = I", init="W_l entries N(0, 0.3²)",
                 feedback="B_l(0) entries N(0, 1/n_l), then learned", decay=f"λ = {decay:g}", curves=_BAND))


def _du_balancedness(fast: bool, seed: int) -> Bundle:
    from linfa import observables as obs
    from linfa.dynamics import solve
    from linfa.linalg import frobenius
    from linfa.networks import DeepLinear
    from linfa.random_matrices import spd_with_condition
    from linfa.rules import BP
    from linfa.tasks import Task

    rng = _rng(seed, 8)
    k, s_count = (4, 41) if fast else (16, 161)
    widths = (10, 20, 20, 5)
    t1 = 12.0
    ts = np.linspace(0.0, t1, s_count)
    task = Task.random_teacher(rng, widths[0], widths[-1], sxx=spd_with_condition(rng, widths[0], 10.0, batch=(k,)),
                               batch=(k,))
    state0 = DeepLinear(widths).gaussian(rng, 0.05, batch=(k,))
    depth = len(widths) - 1
    observe: dict[str, Any] = {f"q{l}": obs.conserved_quantity(l) for l in range(1, depth)}
    sol = solve(BP(), task, state0, t1, saveat=ts, observe=observe)
    norms = np.stack([frobenius(w) ** 2 for w in sol.states], axis=-1)  # (K, S, L)
    drift = np.stack([frobenius(sol.observed[f"q{l}"] - sol.observed[f"q{l}"][:, :1])
                      / frobenius(sol.observed[f"q{l}"][:, :1]) for l in range(1, depth)], axis=-1)
    grams = [w @ np.swapaxes(w, -1, -2) for w in sol.states[:-1]]  # W_l W_l^T, one term of Q_l
    change = np.stack([frobenius(g - g[:, :1]) / frobenius(g[:, :1]) for g in grams], axis=-1)
    return Bundle("t", ts, {"squared_norms": np.moveaxis(norms, 1, 0), "relative_drift": np.moveaxis(drift, 1, 0),
                            "relative_change_gram": np.moveaxis(change, 1, 0)}, {
        "K": k, "widths": list(widths), "max_relative_drift": float(np.max(drift)),
        "median_norm_growth": np.median(norms[:, -1] / norms[:, 0], axis=0).tolist(),
    }, _settings(widths="10-20-20-5", K=k, task="random teacher, Σxx of condition number 10 (not whitened)",
                 init="W_l entries N(0, 0.05²) (not balanced)", curves=_BAND))


# --------------------------------------------------------------------------
# figures: draw


@functools.lru_cache(maxsize=4)
def _shallow(fast: bool, seed: int) -> Bundle:
    from linfa import teacher_student as ts

    rng = _rng(seed, 5)
    size, k, m, n_sim = (2 if fast else 6), 3, 3, (500 if fast else 1000)
    w, wstar = ts.initial_weights(rng, n_sim, k, m, size=size, scale=1e-2)
    v, vstar, b = 1e-2 * rng.standard_normal((size, k)), np.ones((size, m)), rng.standard_normal((size, k))
    alphas = np.concatenate([[0.0], np.logspace(-2, 3, 61 if fast else 151)])
    series: dict[str, np.ndarray] = {}
    extra: dict[str, Any] = {"K": k, "M": m, "eta": 0.5, "init_std": 1e-2, "N_sim": n_sim}
    sim_alphas = alphas[alphas <= (2.0 if fast else 20.0)]
    for rule in ("DFA", "BP"):
        problem = ts.Problem.from_weights(w, wstar, v, vstar, rule=rule, b=b, eta=0.5)
        sol = ts.solve(problem, alphas[-1], saveat=alphas, observe=["eg", "alignment"], method="tsit5")
        series[f"eg_{rule.lower()}"] = sol.observed["eg"].T
        series[f"alignment_{rule.lower()}"] = sol.observed["alignment"].T
        sim = ts.simulate(w, wstar, v, vstar, sim_alphas, _rng(seed, 6), rule=rule, b=b, eta=0.5)
        pad = np.full((len(alphas) - len(sim_alphas), size), np.nan)
        ops = sim.order_parameters()
        series[f"eg_{rule.lower()}_sgd"] = np.concatenate([ts.generalisation_error(ops).T, pad])
        series[f"alignment_{rule.lower()}_sgd"] = np.concatenate([ts.alignment(ops).T, pad])
    eg, cos = series["eg_dfa"], series["alignment_dfa"]
    first = np.argmax(cos >= 0.9 * cos[-1], axis=0)
    extra["alpha_aligned_dfa"] = alphas[first].tolist()
    extra["eg_ratio_when_aligned_dfa"] = (eg[first, np.arange(size)] / eg[0]).tolist()
    extra["final_alignment_dfa"] = cos[-1].tolist()
    extra["final_alignment_bp"] = series["alignment_bp"][-1].tolist()
    return Bundle("alpha", alphas, series, extra, _settings(
        network=f"erf teacher–student, K = M = {k} hidden units, second layer learned (v* = 1)",
        instances=size, init="student entries N(0, 1e-2²), v entries N(0, 1e-2²)", feedback="DFA: b entries N(0, 1)",
        time="α = steps / N (η = 0.5)", integrator="order-parameter ODEs: tsit5",
        SGD=f"N = {n_sim}, one run per instance, drawn up to α = {sim_alphas[-1]:.2g}", curves="one line per instance"))


def _draw_shallow(b: Bundle, fig: Figure) -> None:
    axes = fig.subplots(1, 2)
    colours = {"dfa": "C0", "bp": "C1"}
    x = b.x.copy()
    x[0] = np.nan  # log axis
    for rule, c in colours.items():
        eg = b.series[f"eg_{rule}"]
        label = [rule.upper() + " (ODE)"] + [None] * (eg.shape[1] - 1)
        for ax, y, y_sgd in ((axes[0], eg / eg[0], b.series[f"eg_{rule}_sgd"] / eg[0]),
                             (axes[1], b.series[f"alignment_{rule}"], b.series[f"alignment_{rule}_sgd"])):
            for i in range(eg.shape[1]):
                ax.plot(x, y[:, i], color=c, alpha=0.7, label=label[i])
                ax.plot(x, y_sgd[:, i], ".", color=c, ms=3, alpha=0.6)
    axes[0].set(xscale="log", yscale="log", xlabel="α = steps / N", ylabel="ε_g / ε_g(0)",
                title="generalisation error")
    axes[1].set(xscale="log", xlabel="α = steps / N", ylabel="cos(v, b)", title="second layer vs DFA feedback")
    for ax, where in zip(axes, ("lower left", "upper left"), strict=True):  # where no curve runs
        ax.plot([], [], "k.", label=f"SGD, N = {b.extra['N_sim']}")
        ax.legend(fontsize=7, loc=where)
    fig.suptitle("Shallow erf teacher–student, K = M = 3, same small init: DFA aligns (cos ↑), then memorises (ε_g ↓)")
    fig.set_size_inches(11, 4.2)  # (save() lays the figure out: constrained layout, so no subplots_adjust)


def _draw_fa_nse(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.learning_curves(b.x, {"BP": b.batched("nse_bp"), "FA": b.batched("nse_fa")}, ax=ax, ylabel="NSE",
                         floor=_FLOOR)
    ax.set_title(f"30-20-10 linear task, {b.extra['K']} instances")
    ax.text(0.03, 0.03, "FA is faster here: its hidden layer is driven by B e, |B| ≈ 0.5,\n"
            "BP's by W₂ᵀe, |W₂| ≈ 0.01 (the init scale), so BP first\nsits on a plateau near the saddle at 0",
            transform=ax.transAxes, fontsize=7.5, va="bottom", color="0.25")


def _draw_fa_angles(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.update_angles(b.x, b.batched("update_angles_fa"), ax=ax, label="FA")
    ax.set_title("FA: angle between the FA and BP updates of layer 1\n"
                 "(layer 2 gets the BP update itself: angle 0, not drawn)", fontsize=10)


def _draw_fa_alignment(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.alignment(b.x, b.batched("alignment_fa"), ax=ax, label="FA", yscale="symlog")
    ax.set_title(r"FA: $\langle e^T W B e\rangle$ (symmetric log scale)")


def _draw_dfa_weight_alignment(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax1, ax2 = fig.subplots(1, 2)
    plot.weight_alignment(b.x, b.batched("weight_alignment"), ax=ax1)
    ax1.set_title(r"DFA: $\cos(W_{>l}^T, B_l)$")
    plot.learning_curves(b.x, b.batched("nse"), ax=ax2, ylabel="NSE", floor=_FLOOR)
    ax2.set_title("DFA: NSE (stops at the rounding floor)")


def _draw_dfa_condition_numbers(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.condition_numbers(b.x, b.batched("condition_numbers"), ax=ax)
    ax.set_title("DFA from zero init: conditioning of the alignment matrices")


def _draw_saxe_modes(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    plot.mode_strengths(b.x, b.series["measured"], exact=b.series["closed_form"],
                        singular_values=b.extra["singular_values"], ax=ax1)
    ax1.set_title(f"aligned init, $u_\\alpha(0) = {b.extra['u0']:g}$")
    ax1.legend(loc="center right", frameon=False, fontsize=8)
    plot.mode_strengths(b.x, b.batched("random_init"), exact=b.series["closed_form"],
                        singular_values=b.extra["singular_values"], ax=ax2)
    ax2.set_title(f"random init, entries N(0, {b.extra['random_init_scale']:g}²)")
    ax2.legend(loc="center right", frameon=False, fontsize=8)
    ax2.set_ylabel("")
    fig.suptitle("BP, two layers: Saxe et al.'s mode strengths $u_\\alpha = U_\\alpha^T W V_\\alpha$", fontsize=11)


def _draw_ep_beta(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.ep_error(b.x, {"one-sided": b.batched("one_sided"), "centred": b.batched("centred")}, ax=ax)
    for i, key in enumerate(("one_sided_leading_term", "centred_leading_term")):
        med = np.median(b.series[key], axis=1)
        ax.plot(b.x, med, color="k", linestyle=(0, (1, 1.5)) if i else "--", linewidth=1.2,
                label=r"predicted $\beta\,\|c_1\|$" if i == 0 else r"predicted $\beta^2\|c_2\|$", gid="predicted")
    ax.legend(frameon=False, fontsize=8)
    ax.set_ylabel("relative gradient error")
    ax.set_title("Quadratic energy: EP estimate error vs β")


def _draw_garg_vempala(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    axes = fig.subplots(1, 2, sharey=True)
    for ax, tag, what in zip(axes, ("r_ge_rank", "r_lt_rank"), ("r ≥ rank Y", "r < rank Y"), strict=True):
        plot.learning_curves(b.x, {"GD (BP)": b.batched(f"excess_gd_{tag}"), "FA": b.batched(f"excess_fa_{tag}")},
                             ax=ax, ylabel="excess loss over the best rank-r", floor=_FLOOR)
        ax.set_title(f"{what}: r = {b.extra[f'r_{tag}']}, rank Y = {b.extra['rank']}")
    axes[1].set_ylabel("")
    fig.suptitle("Garg & Vempala: FA vs gradient descent on low-rank matrix factorisation", fontsize=11)


def _draw_nokland(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.learning_curves(b.x, {k: b.batched(f"nse_{k}") for k in ("BP", "FA", "DFA")}, ax=ax, ylabel="NSE",
                         floor=_FLOOR)
    ax.set_title("From exactly zero weights (4 layers): BP cannot move, DFA learns", fontsize=10)


def _draw_kolen_pollack(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    v = b.batched("relative_mismatch")
    ax.plot(b.x, b.series["closed_form"], color="0.75", linewidth=5, label=r"$e^{-\lambda t}$", gid="closed_form")
    every = max(1, len(b.x) // 12)
    for j, marker in zip(range(v.shape[-1]), "ox+^", strict=False):
        plot.quantile_band(b.x, v[..., j], ax=ax, label=f"layer {j + 2} (median of {b.extra['K']})",
                           color=f"C{j}", marker=marker, markevery=(j * every // 2, every), linestyle="none")
    ax.text(0.03, 0.05, f"largest relative deviation from $e^{{-\\lambda t}}$: {b.extra['max_relative_deviation']:.1e}",
            transform=ax.transAxes, fontsize=8, color="0.25")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\|W_l - B_l^T\|_F\, /\, \|W_l(0) - B_l(0)^T\|_F$")
    ax.legend(frameon=False)
    ax.set_title(f"Kolen–Pollack: feedback mismatch decays as $e^{{-\\lambda t}}$, λ = {b.extra['decay']:g}")


def _draw_du_balancedness(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax1, ax2 = fig.subplots(1, 2)
    v = b.batched("squared_norms")
    for j in range(v.shape[-1]):
        plot.quantile_band(b.x, v[..., j], ax=ax1, label=f"layer {j + 1}", color=f"C{j}")
    ax1.set(xlabel="t", ylabel=r"$\|W_l\|_F^2$", yscale="log", title="the layers grow by large factors ...")
    ax1.legend(frameon=False, fontsize=8)
    d, g = b.batched("relative_drift"), b.batched("relative_change_gram")
    for j in range(d.shape[-1]):
        plot.quantile_band(b.x[1:], g[:, 1:, j], ax=ax2, label=f"$W_{j + 1}W_{j + 1}^T$ alone", color=f"C{j}",
                           linestyle="--")
        plot.quantile_band(b.x[1:], d[:, 1:, j], ax=ax2, label=f"$Q_{j + 1}$", color=f"C{j}")
    ax2.set_yscale("log")
    ax2.set_ylim(1e-14, None)
    ax2.set(xlabel="t", ylabel="relative change since t = 0",
            title=r"... $Q_l = W_lW_l^T - W_{l+1}^TW_{l+1}$ does not")
    ax2.text(0.98, 0.12, "Q_l: integration error only (rtol 1e-8)", transform=ax2.transAxes, ha="right",
             fontsize=8, color="0.3")
    ax2.legend(frameon=False, fontsize=8, loc="center right")
    fig.suptitle("Du, Hu & Lee: BP gradient flow keeps the layers balanced", fontsize=11)


FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in [
        FigureSpec("fa_nse", "Lillicrap et al.: NSE of BP and FA on the 30-20-10 linear task", _fa_nse, _draw_fa_nse,
                   paper="Lillicrap et al. 2016, Fig. 2 (linear task): learning curves of BP and FA (there with SGD)",
                   caption="Both rules start at NSE ≈ 1 (small init). FA leaves the start faster because its "
                           "hidden layer is driven by the fixed feedback B (entries U[-0.5, 0.5]) while BP's is "
                           "driven by W_2, which starts at the init scale 0.01: BP spends longer near the saddle "
                           "at W = 0. With the init and feedback at the same scale the order reverses."),
        FigureSpec("fa_angles", "Lillicrap et al.: FA update angle to BP per layer, with the 90° line",
                   _fa_angles, _draw_fa_angles,
                   paper="Lillicrap et al. 2016, Fig. 2 (linear task): angle between the FA and BP hidden updates",
                   caption="The hidden (layer-1) update falls from ~90° to well below 90° and stays there: "
                           "FA's update is within 90° of BP's. The output layer's FA update is BP's (angle 0)."),
        FigureSpec("fa_alignment", "Lillicrap et al.: <e^T W B e> under FA", _fa_alignment, _draw_fa_alignment,
                   paper="Lillicrap et al. 2016, alignment condition e^T W B e > 0 (Supplementary notes)",
                   caption="The alignment becomes positive almost at once and decays with the error; "
                           "symmetric log axis (linear within ±linthresh around 0)."),
        FigureSpec("dfa_weight_alignment", "Refinetti et al.: DFA weight alignment per layer and NSE",
                   _dfa_weight_alignment, _draw_dfa_weight_alignment,
                   paper="Refinetti et al. 2021, weight alignment of deep linear DFA networks (align, then memorise)",
                   caption="The cosine between each layer's BP backward path and its DFA feedback grows and "
                           "saturates while the error falls to the rounding floor.", size=(9.0, 4.0)),
        FigureSpec("dfa_condition_numbers", "Refinetti et al.: condition numbers of DFA's alignment matrices",
                   _dfa_condition_numbers, _draw_dfa_condition_numbers,
                   paper="Refinetti et al. 2021, alignment-matrix structure W_l = B_l A_l B_{l-1}^T from zero init",
                   caption="From zero init W_l = B_l A_l B_{l-1}^T holds exactly; the A_l start singular "
                           "(κ = ∞, not drawn) and become well conditioned as learning aligns the layers."),
        FigureSpec("saxe_modes", "Saxe et al.: singular-mode strengths vs the closed form", _saxe_modes,
                   _draw_saxe_modes, paper="Saxe et al. 2014, closed-form mode dynamics u(t) vs simulation",
                   caption="Left: from the mode-aligned balanced init each mode follows the closed form "
                           "u(t) = s e^{2st} / (e^{2st} − 1 + s/u_0) exactly (dashed). Right: from a random small "
                           "init the same sigmoidal, stage-like learning appears, ordered by s, but the timing "
                           "differs from the aligned closed form (dashed, the same u_0) by the random u_α(0).",
                   size=(10.0, 4.2)),
        FigureSpec("ep_beta", "Scellier & Bengio: EP gradient error vs β (slopes 1 and 2)", _ep_beta,
                   _draw_ep_beta, paper="Scellier & Bengio 2017, Theorem 1 (β → 0 limit; centred variant O(β²))",
                   caption="Relative error of the two-phase gradient estimate: one-sided O(β), centred O(β²). "
                           "Black lines: the predicted leading terms β‖c_1‖ and β²‖c_2‖ (medians), computed "
                           "in closed form."),
        FigureSpec("garg_vempala", "Garg & Vempala: FA vs GD on low-rank matrix factorisation (r ≥ rank, r < rank)",
                   _garg_vempala, _draw_garg_vempala,
                   paper="Garg & Vempala 2022, convergence for r ≥ rank Y and the separation from GD for r < rank Y",
                   caption="Excess loss over the best rank-r factorisation (Eckart–Young). Left, r ≥ rank Y: "
                           "FA and GD both reach the optimum (shown at r = rank Y; for r > rank Y the surplus "
                           "hidden direction makes the approach slow, ~1/t). Right, r < rank Y: GD approaches the "
                           "best rank-r loss (at a rate set by the gap s_r − s_{r+1}); FA converges to a "
                           "sub-optimal factorisation on most instances.", size=(10.0, 4.2)),
        FigureSpec("nokland_zero_init", "Nøkland: DFA learns from exactly zero weights; BP cannot move",
                   _nokland, _draw_nokland,
                   paper="Nøkland 2016, DFA trains from zero initial weights (BP cannot)",
                   caption="At W = 0 every BP backward path W_{>l}^T is 0, so BP's NSE stays exactly 1. DFA's "
                           "hidden layers receive B_l e ≠ 0 and learn; FA also learns here (its signals "
                           "B_{l+1} ⋯ B_L e do not pass through the zero weights)."),
        FigureSpec("kolen_pollack", "Kolen–Pollack: feedback mismatch decays as exp(−λ t)", _kolen_pollack,
                   _draw_kolen_pollack,
                   paper="Kolen & Pollack 1994 / Akrout et al. 2019: W_l − B_l^T decays under shared updates "
                         "and weight decay",
                   caption="The relative mismatch ‖W_l − B_l^T‖ of every layer lies on e^{−λt} (dashed) for "
                           "every instance, whatever the task: the decay is exact, not asymptotic."),
        FigureSpec("du_balancedness", "Du, Hu & Lee: BP conserves W_l W_l^T − W_{l+1}^T W_{l+1}",
                   _du_balancedness, _draw_du_balancedness,
                   paper="Du, Hu & Lee 2018, layers automatically balanced under gradient flow (linear case)",
                   caption="Left: from a small, unbalanced init the layers' squared norms grow by large "
                           "factors as the network learns. Right: each Gram matrix W_l W_l^T changes by O(1) "
                           "(dashed) while the difference Q_l stays constant: its relative drift (solid) is "
                           "integration error (rtol 1e-8). Non-whitened input: the law needs no Σxx = I.",
                   size=(10.0, 4.2)),
        FigureSpec("shallow_align_then_memorise",
                   "Refinetti et al.: shallow teacher–student, DFA aligns v with b, then ε_g falls (ODE and SGD)",
                   _shallow, _draw_shallow,
                   paper="Refinetti et al. 2021, Sec. 3: align-then-memorise in a shallow teacher–student network",
                   caption="DFA's second layer v aligns with its feedback b (cos rises) while the generalisation "
                           "error is still near its start; only then does ε_g fall. The order-parameter ODEs "
                           "(lines) and finite-N SGD (overlaid) agree.", size=(11.0, 4.2)),
    ]
}
"""The figures, by name."""


# --------------------------------------------------------------------------
# writing


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def save(spec: FigureSpec, bundle: Bundle, out_dir: str | Path, *, fast: bool, seed: int,
         dpi: int = 120) -> dict[str, Path]:
    """Draw ``bundle`` and write ``<name>.png``, ``.csv``, ``.json`` and ``.txt`` into ``out_dir``.

    The PNG carries the figure's setting (:attr:`Bundle.settings` and the
    seed) in small print under the plot. The CSV has the abscissa in the first
    column and one column per entry of each series (``name[k,l]`` for
    instance ``k``, layer ``l``); non-finite values are written as
    ``nan``/``inf``. The JSON holds the linfa version, title, paper
    reference, caption, settings, seed, mode, abscissa, series (NaN as
    ``null``, infinities as strings) and extras. The ``.txt`` is the caption
    file: title, what it reproduces, how to read it, the full setting.

    Returns
    -------
    dict
        ``{"png": path, "csv": path, "json": path, "txt": path}``.
    """
    import textwrap

    from matplotlib.figure import Figure

    from linfa import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{spec.name}.{ext}" for ext in ("png", "csv", "json", "txt")}
    setting = {**bundle.settings, "seed": f"{seed}{' (--fast)' if fast else ''}", "linfa": __version__}

    fig = Figure(figsize=spec.size, layout="constrained")
    spec.draw(bundle, fig)
    foot = " · ".join(f"{k}: {v}" for k, v in setting.items())
    fig.supxlabel("\n".join(textwrap.wrap(foot, width=int(spec.size[0] * 19))), fontsize=6.5, color="0.3",
                  x=0.01, ha="left")
    fig.savefig(paths["png"], dpi=dpi)

    lines = [spec.title, "", f"Reproduces: {spec.paper}" if spec.paper else "", "",
             *textwrap.wrap(spec.caption, 100), "", "Setting:", *(f"  {k}: {v}" for k, v in setting.items())]
    paths["txt"].write_text("\n".join(lines) + "\n")

    header = [bundle.x_label]
    columns = [bundle.x]
    for name, v in bundle.series.items():
        flat = v.reshape(v.shape[0], -1)
        for j, idx in enumerate(np.ndindex(v.shape[1:])):
            header.append(name if not idx else f"{name}[{','.join(map(str, idx))}]")
            columns.append(flat[:, j])
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in np.stack(columns, axis=1):
            writer.writerow([repr(float(x)) for x in row])

    doc = {
        "figure": spec.name, "title": spec.title, "linfa_version": __version__, "paper": spec.paper,
        "caption": spec.caption, "settings": bundle.settings, "seed": seed, "fast": fast,
        "x_label": bundle.x_label, "x": bundle.x, "series": bundle.series, "extra": bundle.extra,
    }
    paths["json"].write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
    return paths


def _check_names(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return list(FIGURES)
    if isinstance(names, str):
        names = [names]
    out = list(dict.fromkeys(names))
    unknown = [n for n in out if n not in FIGURES]
    if unknown:
        raise ValueError(f"names: unknown figure(s) {unknown}; expected some of {list(FIGURES)}")
    return out


def reproduce(
    names: Sequence[str] | None = None,
    out_dir: str | Path = "figures",
    *,
    fast: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Bundle]:
    """Compute, draw and write figures.

    Parameters
    ----------
    names : sequence of str, optional
        Figure names (keys of :data:`FIGURES`); all when omitted.
    out_dir : path
        Directory for ``<name>.png``, ``.csv`` and ``.json`` (created).
    fast : bool
        Fewer instances and save points (for tests and quick looks).
    seed : int
        Same seed, same numbers.
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    dict of str to Bundle
        The numbers behind each figure.
    """
    from tqdm import tqdm

    from linfa._validate import count

    chosen = _check_names(names)
    seed = count("seed", seed, minimum=0)
    out: dict[str, Bundle] = {}
    bar = tqdm(chosen, desc="linfa reproduce", unit="figure", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        spec = FIGURES[name]
        bundle = spec.compute(bool(fast), int(seed))
        save(spec, bundle, out_dir, fast=bool(fast), seed=int(seed))
        out[name] = bundle
    return out


# --------------------------------------------------------------------------
# command line


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``reproduce`` sub-command to an ``argparse`` sub-parsers object.

    Sets ``func=run`` as the parser default, so a caller can dispatch with
    ``args.func(args)``.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "reproduce",
        help="regenerate the figures (PNG) with the numbers behind them (CSV, JSON)",
        description="Regenerate the figures as PNG, with the numbers behind each as CSV and JSON.",
    )
    p.add_argument("figures", nargs="*", metavar="FIGURE", help="figure names (default: all; see --list)")
    p.add_argument("--out", default="figures", metavar="DIR", help="output directory (default: ./figures)")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--fast", action="store_true", help="fewer instances and save points")
    p.add_argument("--seed", type=_seed, default=0, help="random seed, a non-negative integer (default: 0)")
    p.set_defaults(func=run)
    return p


def _seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {s}")
    return v


def run(args: argparse.Namespace) -> int:
    """Run ``linfa reproduce`` with parsed arguments; return the exit status."""
    if args.list:
        width = max(len(n) for n in FIGURES)
        for name, spec in FIGURES.items():
            print(f"{name:<{width}}  {spec.title}")
            if spec.paper:
                print(f"{'':<{width}}  reproduces: {spec.paper}")
        return 0
    from linfa.cli import UsageError, writable_dir

    try:
        chosen = _check_names(args.figures or None)
        writable_dir(args.out, "--out")  # before computing anything
    except (ValueError, UsageError) as exc:
        print(f"linfa reproduce: error: {exc}", file=sys.stderr)
        return 2
    reproduce(chosen, args.out, fast=args.fast, seed=args.seed)
    for name in chosen:
        print(f"{name}: {Path(args.out) / name}.png, .csv, .json, .txt")
    return 0
