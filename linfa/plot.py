r"""Figures of learning dynamics, one function per picture.

Every function draws on ``ax`` (the current Axes of :mod:`matplotlib.pyplot`
when ``ax=None``), returns that Axes and never calls ``plt.show()``.

Time series take ``(ts, values)`` with ``ts`` of shape ``(S,)`` and
``values`` of shape ``(*batch, S)`` (scalar observables) or
``(*batch, S, L)`` (one column per layer), exactly what
``Solution.observed[name]`` holds. A :class:`~linfa.integrate.Solution` can
stand in for ``ts``; ``values`` is then an observable name (or omitted for
the function's usual one)::

    plot.update_angles(sol)                 # sol.observed["update_angles"]
    plot.learning_curves(sol, "nse")

A batch of ``K`` instances (any number of leading axes) is drawn as its
median with a quantile band (:func:`quantile_band`); a single instance as a
plain line. NaN entries (instances that stopped early) are ignored.

``import linfa`` does not import matplotlib; ``import linfa.plot`` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from linfa._validate import real_array
from linfa.loglog import loglog_fit as fit_slope

try:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
    raise ImportError("linfa.plot needs matplotlib; install it with `pip install matplotlib`") from exc

__all__ = [
    "alignment",
    "condition_numbers",
    "ep_error",
    "fit_slope",
    "learning_curves",
    "mode_strengths",
    "quantile_band",
    "update_angles",
    "weight_alignment",
]

Quantiles = tuple[float, float]
_BAND_ALPHA = 0.25


# --------------------------------------------------------------------------
# plumbing


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        return plt.gca()
    if not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _is_solution(obj: Any) -> bool:
    return hasattr(obj, "ts") and hasattr(obj, "observed") and hasattr(obj, "status")


def _series(ts: Any, values: Any, default_key: str, *, per_layer: bool,
            names: tuple[str, str] = ("ts", "values"), times: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Resolve ``(ts, values)`` from arrays or from a Solution and check them (``names`` in the errors)."""
    if _is_solution(ts):
        key = default_key if values is None else values
        if not isinstance(key, str):
            raise TypeError(f"values: with a Solution, expected an observable name, got {type(key).__name__}")
        if key not in ts.observed:
            raise ValueError(f"values: the Solution observed {sorted(ts.observed)}, not {key!r}")
        ts, values = ts.ts, ts.observed[key]
    if values is None:
        raise TypeError(f"{names[1]}: expected an array (or pass a Solution as {names[0]})")
    t = real_array(names[0], ts, finite=True)
    v = real_array(names[1], values)  # NaN: an instance that stopped early, drawn as a gap
    if t.ndim != 1:
        raise ValueError(f"{names[0]}: expected shape (S,), got {t.shape}")
    if times and np.any(np.diff(t) < 0):
        raise ValueError(f"{names[0]}: expected non-decreasing times")
    axis = -2 if per_layer else -1
    want = "(*batch, S, L)" if per_layer else "(*batch, S)"
    if v.ndim < (2 if per_layer else 1) or v.shape[axis] != t.shape[0]:
        raise ValueError(f"{names[1]}: expected shape {want} with S = {t.shape[0]}, got {v.shape}")
    return t, v


def _check_quantiles(quantiles: Sequence[float]) -> Quantiles:
    q = tuple(real_array("quantiles", quantiles, finite=True).reshape(-1)) if np.ndim(quantiles) == 1 else ()
    if len(q) != 2 or not 0.0 <= q[0] < q[1] <= 1.0:
        raise ValueError(f"quantiles: expected (lo, hi) with 0 <= lo < hi <= 1, got {quantiles!r}")
    return q[0], q[1]


def _stats(v: np.ndarray, quantiles: Quantiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and quantiles over the flattened leading axes of ``v`` (shape ``(*batch, S)``)."""
    flat = v.reshape(-1, v.shape[-1])
    flat = np.where(np.isfinite(flat), flat, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, which is what we draw
        med = np.nanmedian(flat, axis=0)
        lo, hi = np.nanquantile(flat, quantiles, axis=0)
    return med, lo, hi


def _draw(
    ax: Axes,
    t: np.ndarray,
    v: np.ndarray,
    *,
    label: str | None,
    color: Any,
    quantiles: Quantiles,
    floor: float | None = None,
    **line_kw: Any,
) -> None:
    """A line for one instance, a median line and a quantile band for a batch.

    With ``floor``, values below it (rounding noise of a converged quantity)
    are not drawn: the line stops there and the band is cut at the floor.
    """
    if v.ndim == 1:
        y = np.where(np.isfinite(v), v, np.nan)
        if floor is not None:
            y = np.where(y >= floor, y, np.nan)
        ax.plot(t, y, color=color, label=label if label is not None else "_nolegend_", **line_kw)
        return
    med, lo, hi = _stats(v, quantiles)
    if floor is not None:
        med = np.where(med >= floor, med, np.nan)
        hi = np.where(hi >= floor, hi, np.nan)
        lo = np.where(np.isnan(hi), np.nan, np.maximum(lo, floor))
    (line,) = ax.plot(t, med, color=color, label=label if label is not None else "_nolegend_", **line_kw)
    ax.fill_between(t, lo, hi, color=line.get_color(), alpha=_BAND_ALPHA, linewidth=0, label="_nolegend_")


def _finish(ax: Axes, *, xlabel: str, ylabel: str, legend: bool) -> Axes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(frameon=False)
    return ax


def _per_layer(
    ax: Axes | None,
    ts: Any,
    values: Any,
    default_key: str,
    /,
    *,
    label: str | None,
    quantiles: Sequence[float],
    zero_tol: float = 0.0,
    name: str = "values",
    **line_kw: Any,
) -> tuple[Axes, np.ndarray]:
    """Resolve ``ax`` and ``(ts, values)``, draw one curve per layer (last axis) and return both.

    Curves are labelled from ``layer 1`` and coloured by the Axes' colour cycle unless ``color`` is given.
    A layer whose values are identically 0 (every finite ``|value| <=
    zero_tol``) is not drawn and not in the legend.
    """
    ax = _axes(ax)
    t, v = _series(ts, values, default_key, per_layer=True, names=("ts", name))
    q = _check_quantiles(quantiles)
    color = line_kw.pop("color", None)
    for j in range(v.shape[-1]):
        col = np.abs(v[..., j])
        if v.shape[-1] > 1 and np.any(np.isfinite(col)) and np.all(col[np.isfinite(col)] <= zero_tol):
            ax.plot([], [], color=color, label="_nolegend_", gid="zero_layer")  # keeps the colour cycle
            continue
        name = f"layer {j + 1}" if label is None else f"{label}, layer {j + 1}"
        _draw(ax, t, v[..., j], label=name, color=color, quantiles=q, **line_kw)
    return ax, v


# --------------------------------------------------------------------------
# figures


def quantile_band(
    ts: Any,
    values: Any = None,
    *,
    ax: Axes | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
    label: str | None = None,
    color: Any = None,
    key: str = "loss",
    **line_kw: Any,
) -> Axes:
    """Median over a batch of instances with a quantile band.

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
        Save times (or a solution, whose ``observed[values or key]`` is used).
    values : ndarray, shape (*batch, S)
        One trajectory per instance; all leading axes are pooled (``K`` =
        their product). A 1-D array is drawn as a single line.
    ax : matplotlib Axes, optional
    quantiles : (lo, hi)
        The band spans these quantiles across instances (default 10 %–90 %).
    label : str, optional
        Label of the median line.
    color : matplotlib colour, optional
    key : str
        Observable name used when ``ts`` is a Solution and ``values`` is omitted.
    **line_kw
        Passed to ``ax.plot`` for the median line.

    Returns
    -------
    Axes
        With one median line (``ydata`` = the NaN-ignoring median at each
        time) and one band collection between the two quantiles.
    """
    ax = _axes(ax)
    t, v = _series(ts, values, key, per_layer=False)
    _draw(ax, t, v, label=label, color=color, quantiles=_check_quantiles(quantiles), **line_kw)
    return ax


def learning_curves(
    ts: Any,
    curves: Any = None,
    *,
    ax: Axes | None = None,
    key: str = "nse",
    ylabel: str | None = None,
    logy: bool = True,
    logx: bool = False,
    quantiles: Sequence[float] = (0.1, 0.9),
    floor: float | None = None,
) -> Axes:
    """Loss or NSE against time for one or several runs, on a log scale.

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
    curves : ndarray, str, or mapping of str to (ndarray or Solution)
        One curve of shape ``(*batch, S)``; an observable name when ``ts`` is
        a Solution; or ``{label: values}`` for several runs (e.g.
        ``{"BP": sol_bp, "FA": sol_fa}``; a Solution entry contributes its
        ``observed[key]``).
    ax : matplotlib Axes, optional
    key : str
        Observable drawn from Solutions (default ``"nse"``).
    ylabel : str, optional
        Defaults to ``key`` (or the observable name).
    logy, logx : bool
        Log scales (the y axis is logarithmic by default).
    quantiles : (lo, hi)
        Band of a batched curve.
    floor : float, optional
        Rounding floor: values below it are not drawn (e.g. ``1e-14`` for an
        NSE, whose converged value is rounding noise), and a dotted line
        (``gid="floor"``) marks it when a curve reaches it.

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    q = _check_quantiles(quantiles)
    if floor is not None and not (np.isfinite(floor) and floor > 0):
        raise ValueError(f"floor: expected a positive finite number or None, got {floor!r}")
    reached = False
    if isinstance(curves, Mapping):
        for i, (name, c) in enumerate(curves.items()):
            if _is_solution(c):
                t, v = _series(c, key, key, per_layer=False, names=("ts", f"curves[{name!r}]"))
            else:
                t, v = _series(ts, c, key, per_layer=False, names=("ts", f"curves[{name!r}]"))
            _draw(ax, t, v, label=str(name), color=f"C{i}", quantiles=q, floor=floor)
            reached = reached or (floor is not None and bool(np.any(v < floor)))
        legend = len(curves) > 0
    else:
        if isinstance(curves, str):
            key = curves
        t, v = _series(ts, curves, key, per_layer=False, names=("ts", "curves"))
        _draw(ax, t, v, label=None, color="C0", quantiles=q, floor=floor)
        reached = floor is not None and bool(np.any(v < floor))
        legend = False
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if floor is not None and reached:  # marked only when some curve reaches it
        ax.axhline(floor, color="0.6", linestyle=":", linewidth=1, label="_nolegend_", gid="floor")
    return _finish(ax, xlabel="t", ylabel=key if ylabel is None else ylabel, legend=legend)


def update_angles(
    ts: Any,
    angles: Any = None,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
    **line_kw: Any,
) -> Axes:
    """Angle between each layer's update and the BP update, with the 90° line.

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
    angles : ndarray, shape (*batch, S, L)
        Degrees, as returned by :func:`linfa.observables.update_angles`
        (default observable name ``"update_angles"``). A layer whose angle is
        always below ``1e-5`` degrees (its update is BP's, e.g. the output
        layer under FA; ``arccos`` resolves nothing finer) is not drawn.
    ax : matplotlib Axes, optional
    label : str, optional
        Prefix of the per-layer labels (``"FA, layer 1"``).
    quantiles : (lo, hi)

    Returns
    -------
    Axes
        One line per layer labelled ``layer l``, a dotted horizontal line at
        90° (``gid="right_angle"``), y limits ``[0, 180]``.
    """
    # arccos cannot resolve angles below ~1e-6° (cos within rounding of 1): such a layer's update is BP's
    ax, _ = _per_layer(ax, ts, angles, "update_angles", label=label, quantiles=quantiles, zero_tol=1e-5,
                       name="angles", **line_kw)
    ax.axhline(90.0, color="0.4", linestyle=":", linewidth=1, label="_nolegend_", gid="right_angle")
    ax.set_ylim(0.0, 180.0)
    ax.set_yticks([0, 45, 90, 135, 180])
    return _finish(ax, xlabel="t", ylabel="angle to BP update (°)", legend=True)


def alignment(
    ts: Any,
    values: Any = None,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    yscale: str = "linear",
    linthresh: float | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
    **line_kw: Any,
) -> Axes:
    r"""The alignment :math:`\langle e^T W_{>l} M_l e\rangle` per hidden layer over time.

    Positive values mean the hidden update is within 90° of BP's (Lillicrap
    et al.'s :math:`\langle e^T W B e\rangle` for two layers).

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
    values : ndarray, shape (*batch, S, L-1)
        As returned by :func:`linfa.observables.alignment` (default
        observable name ``"alignment"``).
    ax : matplotlib Axes, optional
    label : str, optional
    yscale : {"linear", "log", "symlog"}
        ``"symlog"`` shows values that span decades and change sign.
    linthresh : float, optional
        Half-width of the linear region of ``"symlog"``; default
        ``1e-6 · max |values|`` rounded down to a power of ten.
    quantiles : (lo, hi)

    Returns
    -------
    Axes
        One line per hidden layer, a horizontal line at 0 (``gid="zero"``).
    """
    ax, v = _per_layer(ax, ts, values, "alignment", label=label, quantiles=quantiles, name="values", **line_kw)
    ax.axhline(0.0, color="0.4", linestyle=":", linewidth=1, label="_nolegend_", gid="zero")
    if yscale == "symlog":
        if linthresh is None:
            finite = np.abs(v[np.isfinite(v)])
            top = float(finite.max()) if finite.size else 0.0
            linthresh = 10.0 ** np.floor(np.log10(1e-6 * top)) if top > 0 else 1.0  # a power of ten: clean ticks
        ax.set_yscale("symlog", linthresh=linthresh)
        _symlog_ticks(ax, v, float(linthresh))
    elif yscale in ("linear", "log"):
        ax.set_yscale(yscale)
    else:
        raise ValueError(f"yscale: expected 'linear', 'log' or 'symlog', got {yscale!r}")
    return _finish(ax, xlabel="t", ylabel=r"$\langle e^T W B e\rangle$", legend=True)


def _symlog_ticks(ax: Axes, v: np.ndarray, linthresh: float) -> None:
    """At most ~5 decade ticks per sign, labelled ``10^k`` / ``−10^k``, plus 0; no minor ticks."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    finite = v[np.isfinite(v)]
    lo_dec = int(np.floor(np.log10(linthresh)))
    ext = {1.0: float(finite.max(initial=0.0)), -1.0: float(-finite.min(initial=0.0))}
    hi = {sign: int(np.ceil(np.log10(e))) for sign, e in ext.items() if e > linthresh}
    step = max(1, int(np.ceil(sum(h - lo_dec + 1 for h in hi.values()) / 7)))  # ~7 ticks in all
    ticks = [0.0]
    for sign, hi_dec in hi.items():
        ticks += [sign * 10.0**k for k in range(hi_dec, lo_dec - 1, -step)]
    ax.yaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.yaxis.set_minor_locator(NullLocator())

    def fmt(y: float, _pos: int) -> str:
        if y == 0:
            return "0"
        k = int(np.rint(np.log10(abs(y))))
        return f"${'-' if y < 0 else ''}10^{{{k}}}$"

    ax.yaxis.set_major_formatter(FuncFormatter(fmt))


def weight_alignment(
    ts: Any,
    cosines: Any = None,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
    **line_kw: Any,
) -> Axes:
    """Cosine between the BP backward path and the rule's feedback, per hidden layer.

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
    cosines : ndarray, shape (*batch, S, L-1)
        As returned by :func:`linfa.observables.weight_alignment` (default
        observable name ``"weight_alignment"``).
    ax : matplotlib Axes, optional
    label : str, optional
    quantiles : (lo, hi)

    Returns
    -------
    Axes
        One line per hidden layer, a line at 0, y limits ``[-1.05, 1.05]``.
    """
    ax, _ = _per_layer(ax, ts, cosines, "weight_alignment", label=label, quantiles=quantiles, name="cosines",
                       **line_kw)
    ax.axhline(0.0, color="0.4", linestyle=":", linewidth=1, label="_nolegend_", gid="zero")
    ax.set_ylim(-1.05, 1.05)
    return _finish(ax, xlabel="t", ylabel="weight alignment (cosine)", legend=True)


def condition_numbers(
    ts: Any,
    kappas: Any = None,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
    **line_kw: Any,
) -> Axes:
    """Condition numbers of the alignment matrices ``A_l`` over time, log scale.

    Parameters
    ----------
    ts : ndarray, shape (S,), or Solution
    kappas : ndarray, shape (*batch, S, L)
        As returned by :func:`linfa.observables.alignment_condition_numbers`
        (default observable name ``"alignment_condition_numbers"``); ``inf``
        (a singular ``A_l``, e.g. at zero init) is not drawn.
    ax : matplotlib Axes, optional
    label : str, optional
    quantiles : (lo, hi)

    Returns
    -------
    Axes
        One line per layer, log y scale.
    """
    ax, _ = _per_layer(ax, ts, kappas, "alignment_condition_numbers", label=label, quantiles=quantiles,
                       name="kappas", **line_kw)
    ax.set_yscale("log")
    return _finish(ax, xlabel="t", ylabel=r"$\kappa(A_l)$", legend=True)


def mode_strengths(
    ts: Any,
    strengths: Any,
    *,
    exact: Any = None,
    singular_values: Any = None,
    ax: Axes | None = None,
    quantiles: Sequence[float] = (0.1, 0.9),
) -> Axes:
    r"""Singular-mode strengths ``u_i(t) = U_i^T W(t) V_i`` against a closed form.

    Parameters
    ----------
    ts : ndarray, shape (S,)
    strengths : ndarray, shape (*batch, S, r)
        Measured mode strengths (solid lines, ``mode i``).
    exact : ndarray, shape (S, r) or (*batch, S, r), optional
        The closed form, e.g. Saxe et al.'s
        :math:`u(t) = s e^{2st}/(e^{2st} - 1 + s/u_0)` (dashed black lines,
        the first labelled ``closed form``).
    singular_values : array_like, shape (r,), optional
        Targets ``s_i`` (dotted horizontal lines, ``gid="target"``).
    ax : matplotlib Axes, optional
    quantiles : (lo, hi)

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    q = _check_quantiles(quantiles)
    t, v = _series(ts, strengths, "mode_strengths", per_layer=True, names=("ts", "strengths"))
    r = v.shape[-1]
    for i in range(r):
        _draw(ax, t, v[..., i], label=f"mode {i + 1}", color=f"C{i}", quantiles=q)
    if exact is not None:
        _, ex = _series(t, exact, "", per_layer=True, names=("ts", "exact"))
        if ex.shape[-1] != r:
            raise ValueError(f"exact: expected {r} modes in the last axis like strengths, got shape {ex.shape}")
        ex = ex.reshape(-1, *ex.shape[-2:])[0] if ex.ndim > 2 else ex
        for i in range(r):
            ax.plot(t, ex[:, i], color="k", linestyle="--", linewidth=1,
                    label="closed form" if i == 0 else "_nolegend_", gid="closed_form")
    if singular_values is not None:
        s = real_array("singular_values", singular_values, finite=True).reshape(-1)
        if s.shape[0] != r:
            raise ValueError(f"singular_values: expected {r} values, got shape {np.shape(singular_values)}")
        for i, si in enumerate(s):
            ax.axhline(si, color=f"C{i}", linestyle=":", linewidth=1, label="_nolegend_", gid="target")
    return _finish(ax, xlabel="t", ylabel="mode strength $u_i$", legend=True)


def ep_error(
    betas: Any,
    errors: Any,
    *,
    ax: Axes | None = None,
    fit: bool = True,
    label: str | None = None,
) -> Axes:
    r"""Error of a two-phase gradient estimate against the nudging strength β, log-log.

    Parameters
    ----------
    betas : array_like, shape (n,)
        Positive nudging strengths.
    errors : ndarray, shape (n,) or (*batch, n), or mapping of str to such arrays
        Errors ``‖ĝ_β − ∇J‖`` (e.g. ``{"one-sided": ..., "centred": ...}``);
        a batched entry is drawn as median and band and fitted on its median.
    ax : matplotlib Axes, optional
    fit : bool
        Draw the least-squares line in log-log coordinates (dashed,
        ``gid="fit"``) and put its slope in the label: ``"centred (slope 2.00)"``.
        The one-sided estimate has slope 1, the centred one slope 2.
    label : str, optional
        Label when ``errors`` is a single array.

    Returns
    -------
    Axes
        Log-log axes with markers at the data.
    """
    ax = _axes(ax)
    b = real_array("betas", betas).reshape(-1)
    if b.size < 2 or np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"betas: expected at least two positive finite values, got {np.asarray(betas)!r}")
    items = errors.items() if isinstance(errors, Mapping) else [("error" if label is None else label, errors)]
    for i, (name, err) in enumerate(items):
        what = f"errors[{name!r}]" if isinstance(errors, Mapping) else "errors"
        _, e = _series(b, err, "", per_layer=False, names=("betas", what), times=False)
        med = _stats(e, (0.1, 0.9))[0] if e.ndim > 1 else e
        text = str(name)
        if fit:
            slope, intercept = fit_slope(b, med)
            text = f"{name} (slope {slope:.2f})"
            ax.plot(b, np.exp(intercept) * b**slope, color=f"C{i}", linestyle="--", linewidth=1,
                    label="_nolegend_", gid="fit")
        _draw(ax, b, e, label=text, color=f"C{i}", quantiles=(0.1, 0.9), marker="o", linestyle="-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(ax, xlabel=r"$\beta$", ylabel="gradient error", legend=True)
