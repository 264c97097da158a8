"""Property tests of the catalogue entries beyond Lillicrap et al., on hypothesis-drawn instances.

Each theorem entry is checked on instances drawn by :mod:`linfa.testing` (not by the entry's own
``draw``); empirical and existential entries are run and their findings confirmed independently.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa import BP, DeepLinear, theorems
from linfa.exact import saxe_mode
from linfa.testing import Instance, instances, seeds, widths
from linfa.theorems import draw_groups


def _holds(id_: str, inst: Instance) -> theorems.Verdict:
    verdict = theorems.get(id_).check(inst)
    assert verdict.holds, (id_, verdict.margin, verdict.details)
    return verdict


@settings(max_examples=8)
@given(instances(rule="BP", widths=widths(min_depth=2, max_depth=4, max_width=4), init="gaussian", whitened=False,
                 params={"t1": 2.0, "n_save": 4}))
def test_du2018_balancedness(inst: Instance) -> None:
    _holds("du2018.balancedness", inst)


SAXE_WIDTHS = widths(min_depth=2, max_depth=3, min_width=1, max_width=4).filter(
    lambda w: min(w[1:-1]) >= min(w[0], w[-1]))


@settings(max_examples=8, deadline=None)
@given(instances(rule="BP", widths=SAXE_WIDTHS, init="aligned", whitened=True, params={"n_save": 6}))
def test_saxe2014_mode_dynamics(inst: Instance) -> None:
    from hypothesis import assume

    from linfa.theorems.saxe2014 import mode_matrix, transition_time

    rule, task, state = inst.problem()
    s = np.linalg.svd(task.syx, compute_uv=False)
    u0 = np.diagonal(mode_matrix(rule, task, state))[: s.size]  # the strategy's mode-aligned strengths
    assume(s.min() > 0.2 and np.all(-np.diff(s) > 0.05) and np.all(u0 < 0.4 * s))
    t1 = 2.0 * float(transition_time(s, u0, inst.depth).max())
    assume(t1 < 40.0)
    v = _holds("saxe2014.mode_dynamics", Instance({**inst.arrays, "u0": u0}, {**inst.params, "t1": t1}))
    assert v.details["max_error_over_s"] <= 1e-7 and v.details["min_final_u_over_s_per_mode"] > 0.5


def test_saxe_two_layer_closed_form_by_hand() -> None:
    # one mode, s = 2, u0 = 0.1: u(t) = s e^{2st} / (e^{2st} - 1 + s/u0); at t = 1, u = 2e^4 / (e^4 + 19)
    ts = np.array([1.0])
    assert abs(saxe_mode(ts, 2.0, 0.1)[0] - 2 * np.exp(4) / (np.exp(4) + 19)) < 1e-14
    task_inst = Instance({"sxx": np.eye(1), "syx": np.full((1, 1), 2.0), "syy": np.full((1, 1), 4.0),
                          "W1": np.full((1, 1), np.sqrt(0.1)), "W2": np.full((1, 1), np.sqrt(0.1)),
                          "u0": np.array([0.1])},
                         {"rule": "BP", "t1": 1.0, "n_save": 1})
    v = _holds("saxe2014.mode_dynamics", task_inst)
    assert abs(v.details["final_u_over_s"] - np.exp(4) / (np.exp(4) + 19)) < 1e-7


@settings(max_examples=8)
@given(instances(rule="KolenPollack", widths=widths(min_depth=2, max_depth=3, max_width=4), init="gaussian",
                 decay=0.7, whitened=False, params={"t1": 2.0, "n_save": 4}))
def test_kolen_pollack_mismatch_decay(inst: Instance) -> None:
    _holds("kolen_pollack.mismatch_decay", inst)


# every hidden width above n_L: otherwise the alignment-matrix fit is exact for any weights (trivial)
DEEP = widths(min_depth=3, max_depth=4, max_width=4).filter(lambda w: all(h > w[-1] for h in w[1:-1]))


@settings(max_examples=8)
@given(instances(rule="DFA", widths=DEEP, init="zeros", whitened=False, noise=0.2, params={"t1": 2.0, "n_save": 4}))
def test_refinetti_dfa_structure(inst: Instance) -> None:
    _holds("refinetti2021.dfa_zero_init_structure", inst)


@settings(max_examples=8)
@given(instances(rule="FA", widths=DEEP, init="zeros", whitened=False, params={"t1": 2.0, "n_save": 4}))
def test_refinetti_fa_structure(inst: Instance) -> None:
    _holds("refinetti2021.fa_deep_structure", inst)


@settings(max_examples=8)
@given(instances(rule="DFA", widths=DEEP, init="zeros", whitened=False, noise=0.3,
                 params={"lr": 0.02, "steps": 30}), st.lists(seeds(), min_size=2, max_size=2))
def test_refinetti_dfa_structure_sgd(inst: Instance, seed: list[int]) -> None:
    _holds("refinetti2021.dfa_structure_sgd", Instance(inst.arrays, {**inst.params, "sgd_seed": seed}))


def test_refinetti_structure_fails_without_zero_init() -> None:
    # the structure is a consequence of zero init: from a generic init (hidden layers wider than the
    # output, so that B_l has a non-trivial left null space) the fit residual is O(1)
    from linfa import Task
    from linfa import feedback as fb

    rng = np.random.default_rng(0)
    ws = (3, 5, 5, 2)
    arrays = {"sxx": np.eye(3), "syx": rng.standard_normal((2, 3))}
    arrays["syy"] = arrays["syx"] @ arrays["syx"].T
    Task(arrays["sxx"], arrays["syx"], arrays["syy"])
    arrays.update({f"W{l}": w for l, w in enumerate(DeepLinear(ws).gaussian(rng, 0.3), start=1)})
    arrays.update({f"B{l}": b for l, b in enumerate(fb.dfa(ws, rng), start=1)})
    inst = Instance(arrays, {"rule": "DFA", "t1": 2.0, "n_save": 4})
    v = theorems.get("refinetti2021.dfa_zero_init_structure").check(inst)
    assert not v.holds and v.details["max_relative_residual"] > 0.1
    zero = Instance({**arrays, **{f"W{l}": np.zeros_like(arrays[f"W{l}"]) for l in (1, 2, 3)}}, inst.params)
    assert theorems.get("refinetti2021.dfa_zero_init_structure").check(zero).holds


def test_refinetti_output_conditioning_empirical() -> None:
    thm = theorems.get("refinetti2021.output_conditioning")
    res = theorems.run(thm, instances=16, seed=2, derivation=False)
    assert res.passed and res.p_value is not None and res.p_value >= 1e-3  # one-sided binomial test
    assert thm.derivation is None  # the bound motivates the claim but does not imply the ordering
    medians = [res.details[f"alignment_kappa_{k:g}"]["median"] for k in (1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(medians))
    lam = [res.details[f"kappa_lambda_kappa_{k:g}"]["median"] for k in (1, 10, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(lam))


def _family_final(inst: Instance) -> tuple[object, tuple[np.ndarray, ...], tuple[np.ndarray, ...], object]:
    from linfa.theorems import refinetti2021 as r

    rule, task, weights, feedback = r._family_problem(inst)
    sol = r.solve(rule, task, weights, float(inst.params["t1"]))  # type: ignore[arg-type]
    assert sol.ok.all()
    return rule, rule.weights(sol.state_final), feedback, task


def test_output_conditioning_measures_fact5_alignment_matrices() -> None:
    # independent route: κ(Λ_l) read off W_{>l}^T = B_l Λ_l^T equals κ(A_L ⋯ A_{l+1}) of the fitted
    # alignment matrices (fact 5 with G_l = B_l^T B_l = c I), and the cosines are weight_alignment's
    from linfa import observables as obs
    from linfa.exact import alignment_fit
    from linfa.theorems import refinetti2021 as r

    thm = theorems.get("refinetti2021.output_conditioning")
    inst = next(iter(draw_groups(thm, 8, 1)))[1]
    rule, weights, feedback, task = _family_final(inst)
    cos, cond = r.alignment_and_conditioning(weights, feedback)
    np.testing.assert_allclose(cos, obs.weight_alignment(rule, task, weights), atol=1e-12)
    mats, _ = alignment_fit(weights, tuple(np.broadcast_to(b, (*weights[0].shape[:2], *b.shape[2:]))
                                           for b in feedback))
    depth = len(weights)
    for l in range(1, depth):
        prod = mats[-1]
        for a in reversed(mats[l:-1]):
            prod = prod @ a
        np.testing.assert_allclose(cond[..., l - 1], np.linalg.cond(prod), rtol=1e-6)


def test_output_conditioning_whitened_modes_decouple() -> None:
    # the hypothesis' reading of the whitened case: with Σxx = I and B_l^T B_l = c I, Λ_l is symmetric and
    # commutes with Σyy (a function of Σyy), so the alignment depends on the spectrum alone
    from linfa.linalg import transpose as tr
    from linfa.products import suffix_products

    thm = theorems.get("refinetti2021.output_conditioning")
    inst = next(iter(draw_groups(thm, 8, 3)))[1]
    w, v = np.linalg.eigh(inst.arrays["sxx"])
    inv_half = (v / np.sqrt(w)[..., None, :]) @ tr(v)
    n = inst.arrays["sxx"].shape[-1]
    white = Instance({**inst.arrays, "sxx": np.broadcast_to(np.eye(n), inst.arrays["sxx"].shape).copy(),
                      "syx": inst.arrays["syx"] @ inv_half[:, None]}, inst.params, size=inst.size)
    assert thm.check(white).holds.all()
    _, weights, feedback, task = _family_final(white)
    sufs = suffix_products(weights)
    c = inst.arrays["c"][:, None, None, None]
    for b, s in zip(feedback, sufs[:-1], strict=False):
        lam = tr(tr(b) @ tr(s) / c)  # Λ_l from W_{>l}^T = B_l Λ_l^T, B_l^T B_l = c I
        scale = np.linalg.norm(lam, axis=(-2, -1))[..., None, None]
        assert np.max(np.abs(lam - tr(lam)) / scale) < 1e-6
        assert np.max(np.abs(lam @ task.syy - task.syy @ lam) / scale) < 1e-6


@settings(max_examples=15)
@given(widths(min_depth=2, max_depth=5))
def test_bp_cannot_move_from_zero(ws: tuple[int, ...]) -> None:
    from linfa import Task

    task = Task.random_teacher(np.random.default_rng(0), ws[0], ws[-1])
    flow = BP().dstate(task, DeepLinear(ws).zeros())
    assert all(not d.any() for d in flow)


def test_nokland_zero_init_training() -> None:
    thm = theorems.get("nokland2016.zero_init_training")
    res = theorems.run(thm, instances=8, seed=0, derivation=False)
    assert res.passed
    assert res.details["bp_loss_change"]["max"] == 0.0
    assert res.details["dfa_excess_loss_left"]["median"] < 0.1


@settings(max_examples=6)
@given(st.data())
def test_garg_vempala_conservation(data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 3))
    inst = data.draw(instances(rule="FA", widths=widths(min_depth=2, max_depth=2, min_width=k, max_width=5),
                               structure="factorization", rank=k, init="gaussian", params={"t1": 2.0, "rank": k}))
    _holds("garg_vempala.conservation", inst)


@settings(max_examples=5)
@given(st.data())
def test_garg_vempala_fixed_point_and_optimum(data: st.DataObject) -> None:
    k = data.draw(st.integers(2, 3))
    r = data.draw(st.integers(1, k + 1))
    n, m = data.draw(st.integers(k, 4)), data.draw(st.integers(k, 4))
    inst = data.draw(instances(rule="FA", widths=(m, r, n), structure="factorization", rank=k, init="gaussian",
                               init_scale=0.1, params={"t1": 300.0, "rank": k}))
    if r < k:
        _holds("garg_vempala.fixed_point", inst)
    else:
        _holds("garg_vempala.optimal_when_r_ge_rank", inst)


def test_garg_vempala_suboptimal_matches_the_predicted_fixed_point() -> None:
    thm = theorems.get("garg_vempala.suboptimal_when_r_lt_rank")
    res = theorems.run(thm, instances=15, seed=0, derivation=False)
    assert res.passed and res.holding >= 2
    inst = next(iter(draw_groups(thm, thm.group_size, 0)))[1]
    v = thm.check(inst)
    # independently: the predicted limit Z W = Y Π, its loss over Eckart–Young's best rank-r loss
    for k in range(inst.size):
        y, b = inst.arrays["syx"][k], inst.arrays["B2"][k]
        r = b.shape[0]
        _, _, vt = np.linalg.svd(b @ y)
        proj = vt[:r].T @ vt[:r]
        sv = np.linalg.svd(y, compute_uv=False)
        predicted = np.linalg.norm(y - y @ proj) ** 2 / np.sum(sv[r:] ** 2)
        assert predicted >= 1.0
        if not v.inconclusive[k]:
            assert abs(v.details["loss_over_best"][k] / predicted - 1.0) < 1e-6
            assert v.holds[k] == (predicted > 1.1)


def test_garg_vempala_feedback_alignment() -> None:
    thm = theorems.get("garg_vempala.feedback_alignment")
    res = theorems.run(thm, instances=8, seed=0, derivation=False)
    assert res.passed and res.holding == res.instances
    d = res.details
    # the cosine is what the trace of the conservation law says, and from a small init that is large
    assert d["trace_identity_error"]["max"] < 1e-8 and d["abs_trC0_over_half_W2_end"]["max"] < 0.1
    assert d["cos_Z_Bt_end"]["median"] > 0.5 and d["cos_Z_Bt_start"]["median"] < 0.3
    assert d["nse_fa"]["max"] < 1e-4
    # the representations are not orthogonal under a rotation-invariant comparison
    assert d["kernel_similarity_fa_bp"]["min"] > 0.8


@settings(max_examples=10)
@given(seeds(), st.sampled_from(["scellier_bengio2017.ep_first_order",
                                 "scellier_bengio2017.ep_centered_second_order",
                                 "scellier_bengio2017.nudged_relaxation"]))
def test_scellier_bengio_entries(seed: int, id_: str) -> None:
    thm = theorems.get(id_)
    inst = thm.draw(np.random.default_rng(seed), 4)
    assert thm.check(inst).holds.all()


def test_ep_order_check_tells_the_orders_apart() -> None:
    # the one-sided estimate's error halves with β (ratio 2), the centred one's quarters (ratio 4):
    # each check fails when handed the other estimate's order
    from linfa.theorems import scellier_bengio2017 as sb

    inst = theorems.get("scellier_bengio2017.ep_first_order").draw(np.random.default_rng(0), 4)
    one = sb._order_check(inst, centered=False)
    centred = sb._order_check(inst, centered=True)
    assert one.holds.all() and centred.holds.all()
    assert np.all(np.abs(one.details["error_ratio_beta_vs_half"] - 2) < 0.05)
    assert np.all(np.abs(centred.details["error_ratio_beta_vs_half"] - 4) < 0.05)


def test_ep_order_checks_compare_the_whole_error_vector() -> None:
    # a negated or permuted leading coefficient has the right norm but the wrong vector: it must fail
    from linfa.eqprop import Params
    from linfa.theorems import scellier_bengio2017 as sb

    inst = theorems.get("scellier_bengio2017.ep_first_order").draw(np.random.default_rng(1), 4)
    orig = sb.ep_error_coefficient
    mutations = [lambda c: Params(*(-a for a in c)), lambda c: Params(c.b[..., ::-1], c.U, c.W)]
    try:
        for centered in (False, True):
            assert sb._order_check(inst, centered=centered).holds.all()
            for mutate in mutations:
                sb.ep_error_coefficient = lambda *a, _m=mutate, **k: _m(orig(*a, **k))  # type: ignore[misc]
                v = sb._order_check(inst, centered=centered)
                assert not v.holds.any(), v.details["error_vector_vs_leading_term"]
                sb.ep_error_coefficient = orig
    finally:
        sb.ep_error_coefficient = orig


def test_default_check_covers_every_design_fact() -> None:
    ids = {t.id for t in theorems.catalogue()}
    for needed in ["lillicrap2016.alignment_condition", "lillicrap2016.fa_conservation", "du2018.balancedness",
                   "lillicrap2016.zero_init_alignment", "garg_vempala.fixed_point",
                   "refinetti2021.dfa_zero_init_structure", "saxe2014.mode_dynamics",
                   "scellier_bengio2017.ep_first_order", "kolen_pollack.mismatch_decay",
                   "garg_vempala.optimal_when_r_ge_rank", "garg_vempala.suboptimal_when_r_lt_rank",
                   "garg_vempala.feedback_alignment", "lillicrap2016.linear_task_angle",
                   "refinetti2021.output_conditioning", "nokland2016.zero_init_training"]:
        assert needed in ids


def test_nudge_lowers_cost_fails_for_a_negative_nudge(monkeypatch: pytest.MonkeyPatch) -> None:
    # pushing away from the target (β < 0, A + βP^TP still positive definite) raises the cost: must fail
    from linfa.theorems import scellier_bengio2017 as sb

    thm = theorems.get("scellier_bengio2017.nudge_lowers_cost")
    inst = thm.draw(np.random.default_rng(3), 4)
    assert thm.check(inst).holds.all()
    monkeypatch.setattr(sb, "BETAS", (-1e-3, -1e-2, -0.1))
    assert not thm.check(inst).holds.any()


def test_nudge_layer_orders_fail_when_layers_are_short_circuited() -> None:
    # a coupling from the output straight to the deepest layer makes it move at order t, not t^n
    thm = theorems.get("scellier_bengio2017.nudge_propagates_layer_by_layer")
    for seed in range(4):
        inst = thm.draw(np.random.default_rng(seed), 4)
        if len(inst.params["layers"]) >= 3:  # type: ignore[arg-type]
            break
    assert thm.check(inst).holds.all()
    w = inst.arrays["W"].copy()
    w[:, 0, -1] = w[:, -1, 0] = 0.1  # deepest unit <-> an output unit
    short = Instance({**inst.arrays, "W": w}, inst.params, size=inst.size)
    assert not thm.check(short).holds.any()


def test_draw_groups_checks_its_arguments_at_the_call() -> None:
    thm = theorems.get("lillicrap2016.zero_init_alignment")
    with pytest.raises(TypeError, match="theorem: expected a Theorem"):
        draw_groups("lillicrap2016.zero_init_alignment", 8, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^n: "):
        draw_groups(thm, -1, 0)
    with pytest.raises(ValueError, match=r"^seed: "):
        draw_groups(thm, 8, -2)
    sizes = [inst.size for _, inst in draw_groups(thm, thm.group_size + 3, 0)]
    assert sizes == [thm.group_size, 3]
