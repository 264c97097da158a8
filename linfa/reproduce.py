r"""Regenerate the project's figures, with the numbers behind each.

Each figure is a :class:`FigureSpec` in :data:`FIGURES`: a function computing
its data (a :class:`Bundle` of arrays) and a function drawing that bundle.
:func:`reproduce` writes, for each figure ``name``, ``name.png``,
``name.csv`` (the series, one column per instance/layer) and ``name.json``
(everything, including fitted slopes and parameters)::

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
* ``saxe_modes``: BP, two layers, mode-aligned init, against the closed form;
* ``ep_beta``: the two-phase (EP) gradient estimate of a quadratic energy
  against the nudging strength β;
* ``shallow_align_then_memorise``: a shallow erf teacher–student network (K = M = 3) trained by
  BP and DFA from the same small weights, by the order-parameter ODEs with finite-N SGD overlaid
  (Refinetti et al., section 3).
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
    """

    x_label: str
    x: np.ndarray
    series: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)

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
    """

    name: str
    title: str
    compute: Callable[[bool, int], Bundle]
    draw: Callable[[Bundle, Figure], None]


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
# figures: compute


def _fa_nse(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    final_bp, final_fa = d["nse_bp"][-1], d["nse_fa"][-1]
    return Bundle("t", d["t"], {"nse_bp": d["nse_bp"], "nse_fa": d["nse_fa"]}, {
        "K": int(d["K"]), "widths": [30, 20, 10],
        "median_final_nse_bp": float(np.median(final_bp)), "median_final_nse_fa": float(np.median(final_fa)),
    })


def _fa_angles(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    a = d["angles_fa"]
    return Bundle("t", d["t"], {"update_angles_fa": a}, {
        "K": int(d["K"]),
        "median_final_angle_layer1": float(np.nanmedian(a[-1, :, 0])),
        "max_final_angle_layer1": float(np.nanmax(a[-1, :, 0])),
    })


def _fa_alignment(fast: bool, seed: int) -> Bundle:
    d = _lillicrap(fast, seed)
    v = d["alignment_fa"]
    return Bundle("t", d["t"], {"alignment_fa": v}, {
        "K": int(d["K"]), "fraction_positive_after_start": float(np.mean(v[1:] > 0)),
    })


def _dfa_weight_alignment(fast: bool, seed: int) -> Bundle:
    d = _dfa(fast, seed)
    w = d["weight_alignment"]
    return Bundle("t", d["t"], {"weight_alignment": w, "nse": d["nse"]}, {
        "K": int(d["K"]), "median_final_weight_alignment": np.nanmedian(w[-1], axis=0).tolist(),
    })


def _dfa_condition_numbers(fast: bool, seed: int) -> Bundle:
    d = _dfa(fast, seed)
    c = d["condition_numbers"]
    return Bundle("t", d["t"], {"condition_numbers": c, "residuals": d["residuals"]}, {
        "K": int(d["K"]),
        "max_residual": float(np.nanmax(d["residuals"])),
        "median_final_condition_numbers": np.median(c[-1], axis=0).tolist(),
    })


def _saxe_modes(fast: bool, seed: int) -> Bundle:
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
    sol = solve(BP(), task, state0, t1, saveat=ts, rtol=1e-10, atol=1e-12)
    uu, _, vt = np.linalg.svd(task.syx)
    w = sol.states[1] @ sol.states[0]
    u = np.einsum("ir,sij,rj->sr", uu[:, :4], w, vt[:4])
    exact = saxe_mode(ts[:, None], s, u0)
    return Bundle("t", ts, {"measured": u, "closed_form": exact}, {
        "singular_values": s.tolist(), "u0": u0, "widths": list(widths),
        "max_abs_error": float(np.max(np.abs(u - exact))),
    })


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
    })


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
    return Bundle("alpha", alphas, series, extra)


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
    for ax in axes:
        ax.plot([], [], "k.", label=f"SGD, N = {b.extra['N_sim']}")
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Shallow erf teacher–student, K = M = 3, same small init: DFA aligns (cos ↑), then memorises (ε_g ↓)")
    fig.set_size_inches(11, 4.2)
    fig.subplots_adjust(wspace=0.25, top=0.84, bottom=0.13)


def _draw_fa_nse(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.learning_curves(b.x, {"BP": b.batched("nse_bp"), "FA": b.batched("nse_fa")}, ax=ax, ylabel="NSE")
    ax.set_title(f"30-20-10 linear task, {b.extra['K']} instances (median, 10–90 %)")


def _draw_fa_angles(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.update_angles(b.x, b.batched("update_angles_fa"), ax=ax, label="FA")
    ax.set_title("FA: angle between the FA and BP updates")


def _draw_fa_alignment(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.alignment(b.x, b.batched("alignment_fa"), ax=ax, label="FA", yscale="symlog")
    ax.set_title(r"FA: $\langle e^T W B e\rangle$")


def _draw_dfa_weight_alignment(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax1, ax2 = fig.subplots(1, 2)
    plot.weight_alignment(b.x, b.batched("weight_alignment"), ax=ax1)
    ax1.set_title(r"DFA: $\cos(W_{>l}^T, B_l)$")
    plot.learning_curves(b.x, b.batched("nse"), ax=ax2, ylabel="NSE")
    ax2.set_title("DFA: NSE")


def _draw_dfa_condition_numbers(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.condition_numbers(b.x, b.batched("condition_numbers"), ax=ax)
    ax.set_title("DFA from zero init: conditioning of the alignment matrices")


def _draw_saxe_modes(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.mode_strengths(b.x, b.series["measured"], exact=b.series["closed_form"],
                        singular_values=b.extra["singular_values"], ax=ax)
    ax.set_title("BP, two layers: mode strengths vs Saxe et al.")


def _draw_ep_beta(b: Bundle, fig: Figure) -> None:
    from linfa import plot

    ax = fig.add_subplot()
    plot.ep_error(b.x, {"one-sided": b.batched("one_sided"), "centred": b.batched("centred")}, ax=ax)
    ax.set_ylabel("relative gradient error")
    ax.set_title("Quadratic energy: EP estimate error vs β")


FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in [
        FigureSpec("fa_nse", "Lillicrap et al.: NSE of BP and FA on the 30-20-10 linear task", _fa_nse, _draw_fa_nse),
        FigureSpec("fa_angles", "Lillicrap et al.: FA update angle to BP per layer, with the 90° line",
                   _fa_angles, _draw_fa_angles),
        FigureSpec("fa_alignment", "Lillicrap et al.: <e^T W B e> under FA", _fa_alignment, _draw_fa_alignment),
        FigureSpec("dfa_weight_alignment", "Refinetti et al.: DFA weight alignment per layer and NSE",
                   _dfa_weight_alignment, _draw_dfa_weight_alignment),
        FigureSpec("dfa_condition_numbers", "Refinetti et al.: condition numbers of DFA's alignment matrices",
                   _dfa_condition_numbers, _draw_dfa_condition_numbers),
        FigureSpec("saxe_modes", "Saxe et al.: singular-mode strengths vs the closed form", _saxe_modes,
                   _draw_saxe_modes),
        FigureSpec("ep_beta", "Scellier & Bengio: EP gradient error vs β (slopes 1 and 2)", _ep_beta,
                   _draw_ep_beta),
        FigureSpec("shallow_align_then_memorise",
                   "Refinetti et al.: shallow teacher–student, DFA aligns v with b, then ε_g falls (ODE and SGD)",
                   _shallow, _draw_shallow),
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
    """Draw ``bundle`` and write ``<name>.png``, ``<name>.csv`` and ``<name>.json`` into ``out_dir``.

    The CSV has the abscissa in the first column and one column per entry of
    each series (``name[k,l]`` for instance ``k``, layer ``l``); non-finite
    values are written as ``nan``/``inf``. The JSON holds the title, seed,
    mode, abscissa, series (NaN as ``null``, infinities as strings) and extras.

    Returns
    -------
    dict
        ``{"png": path, "csv": path, "json": path}``.
    """
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{spec.name}.{ext}" for ext in ("png", "csv", "json")}

    fig = Figure(figsize=(9.0, 4.0) if spec.name == "dfa_weight_alignment" else (6.0, 4.0), layout="constrained")
    spec.draw(bundle, fig)
    fig.savefig(paths["png"], dpi=dpi)

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
        "figure": spec.name, "title": spec.title, "seed": seed, "fast": fast,
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
        print(f"{name}: {Path(args.out) / name}.png, .csv, .json")
    return 0
