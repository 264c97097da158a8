"""`linfa reproduce`: every figure at reduced size, checked on its numbers (not its pixels)."""

from __future__ import annotations

import argparse
import csv
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from linfa import reproduce as rp


@pytest.fixture(scope="module")
def bundles():
    """All figures computed once in fast mode (the experiments are shared and cached)."""
    return {name: spec.compute(True, 0) for name, spec in rp.FIGURES.items()}


def test_registry_names_titles_and_callables():
    assert set(rp.FIGURES) == {
        "fa_nse", "fa_angles", "fa_alignment", "dfa_weight_alignment", "dfa_condition_numbers",
        "saxe_modes", "ep_beta", "garg_vempala", "nokland_zero_init", "kolen_pollack", "du_balancedness",
        "shallow_align_then_memorise",
    }
    for name, spec in rp.FIGURES.items():
        assert spec.name == name and spec.title and callable(spec.compute) and callable(spec.draw)
        assert spec.paper and spec.caption  # each figure says what it reproduces and how to read it


def test_every_figure_states_its_setting(bundles):
    for name, b in bundles.items():
        keys = set(b.settings)
        assert keys & {"K", "instances"}, name  # how many instances the curves summarise
        if b.x_label == "t":  # trajectories: the time unit and the integrator's tolerances
            assert {"time", "integrator", "init"} <= keys, name
            assert "learning rate × steps" in b.settings["time"]


def test_fa_nse_starts_at_one_and_both_rules_learn(bundles):
    b = bundles["fa_nse"]
    assert b.x[0] == 0.0 and b.series["nse_bp"].shape == (len(b.x), 4)
    # init U[-0.01, 0.01]: the network output is ~0, so NSE = <|y - ŷ|²>/<|y|²> ≈ 1
    np.testing.assert_allclose(b.series["nse_bp"][0], 1.0, atol=1e-2)
    np.testing.assert_array_equal(b.series["nse_bp"][0], b.series["nse_fa"][0])
    assert np.all(b.series["nse_fa"][-1] < 1e-4)
    assert np.all(b.series["nse_bp"][-1] < 1e-2)
    # loss never increases under BP (gradient flow), up to integration error
    assert np.all(np.diff(b.series["nse_bp"], axis=0) <= 1e-9)


def test_fa_angle_falls_well_below_ninety_and_output_layer_matches_bp(bundles):
    a = bundles["fa_angles"].series["update_angles_fa"]
    assert a.shape[1:] == (4, 2)
    assert np.all(a[-1, :, 0] < 60.0)
    assert bundles["fa_angles"].extra["max_final_angle_layer1"] < 60.0
    # the last layer's FA update is the BP update (M_L = I for every rule)
    np.testing.assert_allclose(a[1:, :, 1], 0.0, atol=1e-5)


def test_fa_alignment_becomes_positive(bundles):
    b = bundles["fa_alignment"]
    v = b.series["alignment_fa"][..., 0]
    assert np.all(v[len(b.x) // 4 :] > 0)
    assert b.extra["fraction_positive_after_start"] > 0.9


def test_dfa_zero_init_structure_alignment_and_conditioning(bundles):
    b = bundles["dfa_condition_numbers"]
    # W_1 = B_1 A_1, W_l = B_l A_l B_{l-1}^T, W_L = A_L B_{L-1}^T holds to rounding along the whole run
    assert b.extra["max_residual"] < 1e-10
    kappa = b.series["condition_numbers"]
    assert np.all(np.isinf(kappa[0]))  # zero init: every A_l vanishes
    assert np.all(np.isfinite(kappa[-1])) and np.all(kappa[-1] >= 1.0)
    w = bundles["dfa_weight_alignment"]
    assert np.all(w.series["weight_alignment"][-1] > 0.5)
    assert np.all(w.series["nse"][-1] < 1e-6)


def test_saxe_modes_follow_the_closed_form(bundles):
    b = bundles["saxe_modes"]
    u, exact = b.series["measured"], b.series["closed_form"]
    np.testing.assert_allclose(u[0], 1e-3, rtol=1e-8)
    np.testing.assert_allclose(u, exact, atol=1e-6)
    np.testing.assert_allclose(exact[-1, :3], b.extra["singular_values"][:3], rtol=1e-3)


def test_ep_error_slopes_one_and_two(bundles):
    b = bundles["ep_beta"]
    assert abs(b.extra["slope_one_sided"] - 1.0) < 0.05
    assert abs(b.extra["slope_centred"] - 2.0) < 0.05
    # at the smallest beta the errors match their closed-form leading terms
    np.testing.assert_allclose(b.series["one_sided"][0], b.series["one_sided_leading_term"][0], rtol=1e-3)
    np.testing.assert_allclose(b.series["centred"][0], b.series["centred_leading_term"][0], rtol=1e-3)


def test_same_seed_same_numbers_other_seed_other_numbers():
    rp._lillicrap.cache_clear()
    a = rp.FIGURES["fa_nse"].compute(True, 3).series["nse_fa"]
    rp._lillicrap.cache_clear()
    b = rp.FIGURES["fa_nse"].compute(True, 3).series["nse_fa"]
    c = rp.FIGURES["fa_nse"].compute(True, 4).series["nse_fa"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_reproduce_writes_png_csv_json_with_the_numbers(tmp_path):
    out = rp.reproduce(["ep_beta", "saxe_modes"], tmp_path / "figs", fast=True, progress=False)
    for name, b in out.items():
        png = tmp_path / "figs" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with (tmp_path / "figs" / f"{name}.csv").open() as fh:
            rows = list(csv.reader(fh))
        assert rows[0][0] == b.x_label and len(rows) == len(b.x) + 1
        doc = json.loads((tmp_path / "figs" / f"{name}.json").read_text())
        assert doc["figure"] == name and doc["seed"] == 0 and doc["fast"] is True
        assert doc["linfa_version"] and doc["settings"] == b.settings and doc["paper"]
        caption = (tmp_path / "figs" / f"{name}.txt").read_text()
        assert "Setting:" in caption and "seed: 0" in caption
        np.testing.assert_array_equal(doc["x"], b.x)
        for key, v in b.series.items():
            np.testing.assert_array_equal(np.array(doc["series"][key], dtype=float), v)
            col = rows[0].index(key if v.ndim == 1 else f"{key}[{','.join('0' * (v.ndim - 1))}]")
            np.testing.assert_array_equal([float(r[col]) for r in rows[1:]], v.reshape(len(b.x), -1)[:, 0])
    ep = json.loads((tmp_path / "figs" / "ep_beta.json").read_text())
    assert ep["extra"]["slope_centred"] == out["ep_beta"].extra["slope_centred"]


def test_json_writes_nan_as_null_and_inf_as_string(tmp_path):
    spec = rp.FIGURES["dfa_condition_numbers"]
    b = spec.compute(True, 0)
    rp.save(spec, b, tmp_path, fast=True, seed=0)
    doc = json.loads((tmp_path / "dfa_condition_numbers.json").read_text())
    assert doc["series"]["condition_numbers"][0][0][0] == "inf"
    assert doc["series"]["residuals"][0][0][0] is None


def _parser():
    parser = argparse.ArgumentParser(prog="linfa")
    rp.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_list(capsys):
    args = _parser().parse_args(["reproduce", "--list"])
    assert args.func is rp.run
    assert rp.run(args) == 0
    out = capsys.readouterr().out
    for name in rp.FIGURES:
        assert name in out


def test_cli_writes_the_requested_figures(tmp_path, capsys):
    args = _parser().parse_args(["reproduce", "ep_beta", "--out", str(tmp_path), "--fast", "--seed", "1"])
    assert rp.run(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep_beta.csv", "ep_beta.json", "ep_beta.png", "ep_beta.txt"]
    assert json.loads((tmp_path / "ep_beta.json").read_text())["seed"] == 1


def test_cli_unknown_figure_is_an_error(tmp_path, capsys):
    args = _parser().parse_args(["reproduce", "nope", "--out", str(tmp_path)])
    assert rp.run(args) == 2
    assert "unknown figure" in capsys.readouterr().err  # errors go to stderr
    assert not list(tmp_path.iterdir())


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="names: unknown figure"):
        rp.reproduce(["fa_nse", "nope"], tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed"):
        rp.reproduce(["ep_beta"], tmp_path, seed=-1, progress=False)
    with pytest.raises(ValueError, match=r"series\['y'\]"):
        rp.Bundle("t", np.arange(3.0), {"y": np.ones(4)})


def test_linfa_command_line_dispatches_reproduce(tmp_path, capsys):
    from linfa.cli import main

    assert main(["reproduce", "--list"]) == 0
    assert "ep_beta" in capsys.readouterr().out
    assert main(["reproduce", "saxe_modes", "--fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "saxe_modes.json").exists()


def test_shallow_dfa_aligns_before_it_memorises_and_sgd_follows_the_ode(bundles):
    b = bundles["shallow_align_then_memorise"]
    # DFA: 90 % of the final alignment is reached while ε_g is within 10 % of its start
    assert np.all(np.array(b.extra["eg_ratio_when_aligned_dfa"]) > 0.9)
    assert np.all(b.series["eg_dfa"][-1] < 0.1 * b.series["eg_dfa"][0])
    # SGD (N = 500, one run each) on its window follows the ODE it was started from
    for rule in ("dfa", "bp"):
        sgd = b.series[f"eg_{rule}_sgd"]
        ok = np.isfinite(sgd)
        assert ok.sum() > 10
        gap = np.abs(sgd - b.series[f"eg_{rule}"])[ok] / np.broadcast_to(b.series[f"eg_{rule}"][0], sgd.shape)[ok]
        assert np.max(gap) < 0.1


def test_garg_vempala_fa_optimal_for_r_ge_rank_and_gd_below_fa_for_r_lt_rank(bundles):
    b = bundles["garg_vempala"]
    ex = b.series
    # excess over the Eckart–Young optimum is never negative (beyond rounding): L* is the best rank-r loss
    for v in ex.values():
        assert np.all(v > -1e-10)
    assert np.all(ex["excess_gd_r_ge_rank"][-1] < 1e-8) and np.median(ex["excess_fa_r_ge_rank"][-1]) < 1e-4
    # r < rank: FA settles strictly above the optimum on some instances (its excess has stopped moving
    # there), while GD keeps descending towards it
    fa, gd = ex["excess_fa_r_lt_rank"], ex["excess_gd_r_lt_rank"]
    stuck = (fa[-1] > 1e-3) & (np.abs(fa[-1] - fa[3 * len(b.x) // 4]) < 1e-3 * fa[-1])
    assert np.any(stuck) and b.extra["fraction_fa_suboptimal_r_lt_rank"] > 0
    assert np.median(gd[-1]) < np.median(fa[-1]) and np.all(np.diff(gd, axis=0) < 1e-12)


def test_nokland_bp_frozen_at_zero_dfa_learns(bundles):
    b = bundles["nokland_zero_init"]
    assert b.extra["max_abs_change_nse_BP"] == 0.0  # W = 0 is a fixed point of BP exactly
    assert b.extra["median_final_nse_DFA"] < 1e-6


def test_kolen_pollack_mismatch_is_exactly_exponential(bundles):
    b = bundles["kolen_pollack"]
    np.testing.assert_allclose(b.series["closed_form"], np.exp(-b.extra["decay"] * b.x), rtol=1e-12)
    assert b.extra["max_relative_deviation"] < 1e-4  # integration error only (rtol 1e-8)


def test_saxe_random_init_reaches_the_singular_values(bundles):
    b = bundles["saxe_modes"]
    ur = b.series["random_init"]
    # random small init: |u_α(0)| small, and the learned modes approach s_α (BP converges to Σyx)
    assert np.all(np.abs(ur[0]) < 0.05)
    np.testing.assert_allclose(np.median(ur[-1, :, :2], axis=0), b.extra["singular_values"][:2], rtol=1e-3)


def test_du_balancedness_q_constant_while_the_layers_change(bundles):
    b = bundles["du_balancedness"]
    assert b.extra["max_relative_drift"] < 1e-6  # integration error (rtol 1e-8)
    assert np.all(b.series["relative_change_gram"][-1] > 0.1)  # each term changes by O(1)
    assert np.all(np.array(b.extra["median_norm_growth"]) > 2.0)
