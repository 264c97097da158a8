"""Figure functions: the data the artists carry, their labels and scales (Agg backend, no pixels)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from linfa import plot


@pytest.fixture(autouse=True)
def _no_show_and_close(monkeypatch):
    def show(*args, **kwargs):
        raise AssertionError("a figure function called plt.show()")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


def _ax():
    return plt.figure().add_subplot()


def _data_lines(ax):
    """Lines carrying data (not the reference lines drawn with a gid)."""
    return [ln for ln in ax.get_lines() if ln.get_gid() is None]


def _band_extent(coll, ts):
    """Lowest and highest y of a fill_between polygon at each time."""
    verts = np.concatenate([p.vertices for p in coll.get_paths()])
    lo = np.array([verts[np.isclose(verts[:, 0], t), 1].min() for t in ts])
    hi = np.array([verts[np.isclose(verts[:, 0], t), 1].max() for t in ts])
    return lo, hi


def _rgb(c):
    return tuple(np.round(matplotlib.colors.to_rgb(c), 6))


def _solution(ts, **observed):
    return SimpleNamespace(ts=np.asarray(ts), observed=observed, status=np.zeros(()))


def test_importing_linfa_plot_loads_matplotlib_but_linfa_does_not():
    code = (
        "import sys, linfa\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import linfa.plot\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quantile_band_draws_median_and_quantiles_over_all_leading_axes():
    rng = np.random.default_rng(0)
    ts = np.linspace(0.0, 1.0, 7)
    values = rng.standard_normal((3, 4, 7))
    ax = plot.quantile_band(ts, values, ax=_ax(), quantiles=(0.25, 0.75), label="runs")
    (line,) = ax.get_lines()
    flat = values.reshape(12, 7)
    np.testing.assert_allclose(line.get_xdata(), ts)
    np.testing.assert_allclose(line.get_ydata(), np.median(flat, axis=0))
    assert line.get_label() == "runs"
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    lo, hi = _band_extent(band, ts)
    np.testing.assert_allclose(lo, np.quantile(flat, 0.25, axis=0))
    np.testing.assert_allclose(hi, np.quantile(flat, 0.75, axis=0))
    assert _rgb(band.get_facecolor()[0]) == _rgb(line.get_color())


def test_quantile_band_ignores_instances_that_stopped_early():
    ts = np.arange(4.0)
    values = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, np.nan, np.nan], [5.0, 6.0, 7.0, 8.0]])
    ax = plot.quantile_band(ts, values, ax=_ax())
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [3.0, 4.0, 5.0, 6.0])


def test_a_single_instance_is_a_plain_line():
    ts = np.linspace(0, 2, 5)
    ax = plot.quantile_band(ts, ts**2, ax=_ax())
    assert len(ax.get_lines()) == 1 and not ax.collections
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), ts**2)


def test_learning_curves_from_solutions_and_arrays_on_log_scale():
    ts = np.linspace(0, 5, 6)
    bp = np.exp(-ts)
    fa = np.exp(-0.5 * ts)[None, :] * np.array([[1.0], [2.0], [3.0]])
    ax = plot.learning_curves(ts, {"BP": _solution(ts, nse=bp), "FA": fa}, ax=_ax())
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["BP", "FA"]
    np.testing.assert_allclose(lines[0].get_ydata(), bp)
    np.testing.assert_allclose(lines[1].get_ydata(), 2.0 * np.exp(-0.5 * ts))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BP", "FA"]
    assert ax.get_ylabel() == "nse"


def test_learning_curves_with_a_solution_and_an_observable_name():
    ts = np.linspace(0, 1, 4)
    sol = _solution(ts, loss=np.array([4.0, 3.0, 2.0, 1.0]))
    ax = plot.learning_curves(sol, "loss", ax=_ax(), logx=True)
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "loss"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [4.0, 3.0, 2.0, 1.0])


def test_update_angles_one_line_per_layer_and_the_right_angle():
    ts = np.linspace(0, 1, 5)
    angles = np.stack([np.linspace(90, 30, 5), np.zeros(5)], axis=-1)
    angles[:, 1] += 1e-7 * np.arange(5)  # the output layer under FA: BP's update up to rounding
    ax = plot.update_angles(_solution(ts, update_angles=angles), ax=_ax())
    lines = _data_lines(ax)
    # the identically-zero layer is neither drawn nor in the legend; layer 1 keeps colour C0
    assert [ln.get_label() for ln in lines] == ["layer 1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["layer 1"]
    np.testing.assert_allclose(lines[0].get_ydata(), angles[:, 0])
    angles[:, 1] = 1.0  # not zero: drawn
    ax = plot.update_angles(ts, angles, ax=_ax())
    assert [ln.get_label() for ln in _data_lines(ax)] == ["layer 1", "layer 2"]
    (right,) = [ln for ln in ax.get_lines() if ln.get_gid() == "right_angle"]
    np.testing.assert_allclose(right.get_ydata(), [90.0, 90.0])
    assert ax.get_ylim() == (0.0, 180.0)


def test_update_angles_label_prefix_and_batch():
    ts = np.linspace(0, 1, 3)
    angles = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    ax = plot.update_angles(ts, angles, ax=_ax(), label="FA")
    lines = _data_lines(ax)
    assert [ln.get_label() for ln in lines] == ["FA, layer 1", "FA, layer 2"]
    np.testing.assert_allclose(lines[1].get_ydata(), np.median(angles[..., 1], axis=0))
    assert len(ax.collections) == 2


def test_alignment_zero_line_and_symlog():
    ts = np.linspace(0, 1, 4)
    vals = np.array([[-1e-3], [0.0], [1e-1], [40.0]])
    ax = plot.alignment(ts, vals, ax=_ax(), yscale="symlog")
    assert ax.get_yscale() == "symlog"
    assert ax.yaxis.get_transform().linthresh == pytest.approx(1e-5)
    (zero,) = [ln for ln in ax.get_lines() if ln.get_gid() == "zero"]
    np.testing.assert_allclose(zero.get_ydata(), [0.0, 0.0])
    np.testing.assert_allclose(_data_lines(ax)[0].get_ydata(), vals[:, 0])
    assert "e^T W B e" in ax.get_ylabel()


def test_symlog_ticks_are_few_decades_labelled_as_powers_of_ten():
    ts = np.linspace(0, 1, 4)
    vals = np.array([[-0.3], [1e-6], [1e-1], [40.0]])
    ax = plot.alignment(ts, vals, ax=_ax(), yscale="symlog")
    ticks = ax.get_yticks()
    assert 0.0 in ticks and len(ticks) <= 9
    nonzero = np.abs(ticks[ticks != 0])
    np.testing.assert_allclose(np.log10(nonzero), np.round(np.log10(nonzero)))  # decades only
    fmt = ax.yaxis.get_major_formatter()
    assert fmt(0.0, 0) == "0" and fmt(-0.01, 0) == "$-10^{-2}$" and fmt(100.0, 0) == "$10^{2}$"


def test_learning_curves_floor_masks_rounding_noise():
    ts = np.linspace(0, 1, 5)
    nse = np.array([1.0, 1e-6, 1e-13, 3e-16, 1e-17])
    ax = plot.learning_curves(ts, nse, ax=_ax(), floor=1e-14)
    y = _data_lines(ax)[0].get_ydata()
    np.testing.assert_allclose(y[:3], nse[:3])
    assert np.all(np.isnan(y[3:]))
    assert [ln.get_gid() for ln in ax.get_lines()].count("floor") == 1
    # a curve that never reaches the floor does not stretch the axis down to it
    ax = plot.learning_curves(ts, np.array([1.0, 0.5, 0.1, 0.05, 0.01]), ax=_ax(), floor=1e-14)
    assert "floor" not in [ln.get_gid() for ln in ax.get_lines()] and ax.get_ylim()[0] > 1e-3
    with pytest.raises(ValueError, match="floor"):
        plot.learning_curves(ts, nse, ax=_ax(), floor=-1.0)


def test_weight_alignment_limits():
    ts = np.linspace(0, 1, 3)
    cos = np.array([[0.0, 0.1], [0.5, 0.6], [0.9, 0.95]])
    ax = plot.weight_alignment(ts, cos, ax=_ax())
    assert ax.get_ylim() == (-1.05, 1.05)
    np.testing.assert_allclose(_data_lines(ax)[1].get_ydata(), cos[:, 1])


def test_condition_numbers_log_scale_and_inf_not_drawn():
    ts = np.linspace(0, 1, 3)
    kappa = np.array([[np.inf, np.inf], [3.0, 5.0], [2.0, 4.0]])
    ax = plot.condition_numbers(ts, kappa, ax=_ax())
    assert ax.get_yscale() == "log"
    y = _data_lines(ax)[0].get_ydata()
    assert np.isnan(y[0]) and y[1] == 3.0


def test_mode_strengths_against_closed_form_and_targets():
    ts = np.linspace(0, 3, 10)
    s, u0 = np.array([3.0, 1.0]), 1e-2
    ex = s * np.exp(2 * s * ts[:, None]) / (np.exp(2 * s * ts[:, None]) - 1 + s / u0)
    measured = ex * (1 + 1e-3)
    ax = plot.mode_strengths(ts, measured, exact=ex, singular_values=s, ax=_ax())
    data = _data_lines(ax)
    assert [ln.get_label() for ln in data] == ["mode 1", "mode 2"]
    closed = [ln for ln in ax.get_lines() if ln.get_gid() == "closed_form"]
    assert len(closed) == 2 and closed[0].get_label() == "closed form"
    for i in range(2):
        np.testing.assert_allclose(closed[i].get_ydata(), ex[:, i])
        np.testing.assert_allclose(data[i].get_ydata(), measured[:, i])
    targets = sorted(ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() == "target")
    assert targets == [1.0, 3.0]


def test_ep_error_fits_slopes_one_and_two_on_log_log_axes():
    betas = np.geomspace(1e-4, 1e-1, 6)
    errors = {"one-sided": 0.3 * betas, "centred": 2.0 * betas**2}
    ax = plot.ep_error(betas, errors, ax=_ax())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [ln.get_label() for ln in _data_lines(ax)]
    assert labels == ["one-sided (slope 1.00)", "centred (slope 2.00)"]
    fits = [ln for ln in ax.get_lines() if ln.get_gid() == "fit"]
    np.testing.assert_allclose(fits[0].get_ydata(), errors["one-sided"], rtol=1e-9)
    np.testing.assert_allclose(fits[1].get_ydata(), errors["centred"], rtol=1e-9)
    np.testing.assert_allclose(_data_lines(ax)[1].get_xdata(), betas)


def test_fit_slope_drops_non_positive_pairs():
    slope, intercept = plot.fit_slope([0.0, 1e-3, 1e-2, 1e-1], [1.0, 5e-3, 5e-2, 5e-1])
    assert slope == pytest.approx(1.0) and np.exp(intercept) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="at least two"):
        plot.fit_slope([1.0, 2.0], [0.0, 1.0])


def test_ax_none_draws_on_current_axes():
    fig = plt.figure()
    ax = plot.learning_curves(np.arange(3.0), np.ones(3))
    assert ax is plt.gca() and ax.figure is fig


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: plot.quantile_band(np.arange(3.0), np.ones(4)), ValueError, r"values: expected shape \(\*batch, S\)"),
        (lambda: plot.update_angles(np.arange(3.0), np.ones(3)), ValueError, r"angles: .*\(\*batch, S, L\)"),
        (lambda: plot.quantile_band(np.ones((2, 2)), np.ones(2)), ValueError, "ts: expected shape"),
        (lambda: plot.quantile_band(np.arange(2.0), np.ones(2), quantiles=(0.9, 0.1)), ValueError, "quantiles"),
        (lambda: plot.learning_curves(np.arange(2.0), np.ones(2), ax="axes"), TypeError, "ax: expected"),
        (lambda: plot.update_angles(_solution([0.0], nse=np.ones(1))), ValueError, "not 'update_angles'"),
        (lambda: plot.ep_error([0.0, 1.0], [1.0, 2.0]), ValueError, "betas"),
        (lambda: plot.alignment(np.arange(2.0), np.ones((2, 1)), yscale="loglog"), ValueError, "yscale"),
        (lambda: plot.mode_strengths(np.arange(2.0), np.ones((2, 2)), exact=np.ones((2, 3))), ValueError, "exact"),
    ],
)
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_small_but_nonzero_layers_are_drawn():
    """Only an identically-zero layer is dropped: a condition number of 2 beside one of 1e7 stays."""
    ts = np.linspace(0, 1, 3)
    kappas = np.array([[2.0, 1e7], [2.5, 1e5], [3.0, 1e3]])
    ax = plot.condition_numbers(ts, kappas, ax=_ax())
    assert [ln.get_label() for ln in _data_lines(ax)] == ["layer 1", "layer 2"]
