"""Controls for the catalogue's constructed and added claims: each check fails where its claim should not hold."""

from __future__ import annotations

import numpy as np
import pytest

from linfa import theorems
from linfa.theorems import Instance
from linfa.theorems._core import draw_groups


def _first_group(id_: str, seed: int = 0) -> Instance:
    thm = theorems.get(id_)
    return next(iter(draw_groups(thm, thm.group_size, seed)))[1]


def test_far_from_optimal_needs_feedback_near_the_weak_mode() -> None:
    # B along the *first* singular direction instead: FA keeps the strong mode, loss/optimum -> 1
    thm = theorems.get("garg_vempala.far_from_optimal")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.all()
    u, _, _ = np.linalg.svd(inst.arrays["syx"])
    strong = Instance({**inst.arrays, "B2": u[..., :, :1].swapaxes(-1, -2)}, inst.params, size=inst.size)
    v = thm.check(strong)
    assert not v.holds.any() and np.all(v.details["loss_over_best"] < 1.01)


def test_different_representations_needs_r_below_rank() -> None:
    # with a rank-1 Y (second singular value 0), FA and GD learn the same (only) mode: similar kernels
    thm = theorems.get("garg_vempala.different_representations")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.all()
    u, s, vt = np.linalg.svd(inst.arrays["syx"], full_matrices=False)
    y = u[..., :, :1] * s[..., None, :1] @ vt[..., :1, :]
    rank1 = Instance({**inst.arrays, "syx": y, "syy": y @ y.swapaxes(-1, -2)}, inst.params, size=inst.size)
    v = thm.check(rank1)
    assert not v.holds.any() and np.all(v.details["kernel_similarity_fa_gd"] > 0.5)


def test_align_then_memorise_fails_from_a_large_init() -> None:
    # from weights of scale 1 the error falls at once, before any alignment plateau
    thm = theorems.get("refinetti2021.align_then_memorise")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.all()
    big = Instance({k: (a * 1e3 if k.startswith("W") else a) for k, a in inst.arrays.items()}, inst.params,
                   size=inst.size)
    assert thm.check(big).holds.mean() < 0.5


def test_zero_init_convergence_fails_without_feedback_rank() -> None:
    # B of rank < n_out (a zero column): FA cannot fit the lost output direction; the check reports it,
    # as a counterexample (at rest) or as undecided, never as holding
    thm = theorems.get("lillicrap2016.zero_init_convergence")
    for seed in range(6):
        inst = _first_group(thm.id, seed)
        if inst.widths[-1] >= 2:
            break
    b = inst.arrays["B2"].copy()
    b[..., :, 0] = 0.0
    short = Instance({**inst.arrays, "B2": b}, {**inst.params, "t1": 200.0}, size=inst.size)
    assert not thm.check(short).holds.any()


def test_alignment_matrix_bound_needs_the_zero_init_structure() -> None:
    # from a random (non-zero) init W_{>l}^T is not B_l Λ_l^T and the bound read off B_l fails somewhere
    thm = theorems.get("refinetti2021.alignment_matrix_bound")
    failing = 0
    for seed in range(3):
        inst = _first_group(thm.id, seed)
        assert thm.check(inst).holds.all()
        rng = np.random.default_rng(seed)
        noisy = {k: (a + 0.5 * rng.standard_normal(a.shape) if k.startswith("W") else a)
                 for k, a in inst.arrays.items()}
        failing += int((~thm.check(Instance(noisy, inst.params, size=inst.size)).holds).sum())
    assert failing >= 3


def test_alignment_condition_fails_for_a_scaled_hidden_update(monkeypatch: pytest.MonkeyPatch) -> None:
    # FA's hidden update 1.05 B E: the loss then falls at 1.05 tr(W B E E^T), not at the rate the claim states
    import linfa.rules as rules

    thm = theorems.get("lillicrap2016.alignment_condition")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.all()
    orig = rules.FA._signals
    monkeypatch.setattr(rules.FA, "_signals",
                        lambda self, s, e: [1.05 * d for d in orig(self, s, e)[:-1]] + [orig(self, s, e)[-1]])
    assert not thm.check(inst).holds.any()


def test_suboptimal_when_r_lt_rank_fails_with_feedback_on_the_top_modes() -> None:
    # B^T along Y's top-r left singular vectors: Π keeps the top modes, FA's limit is optimal (ratio 1)
    thm = theorems.get("garg_vempala.suboptimal_when_r_lt_rank")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.any()
    r = inst.arrays["B2"].shape[-2]
    u, _, _ = np.linalg.svd(inst.arrays["syx"])
    top = Instance({**inst.arrays, "B2": u[..., :, :r].swapaxes(-1, -2)}, inst.params, size=inst.size)
    v = thm.check(top)
    assert not v.holds.any() and np.all(np.abs(v.details["loss_over_best"] - 1.0) < 1e-6)


def test_linear_task_nse_fails_with_rank_deficient_feedback() -> None:
    # three zero columns of B: those output directions never reach the hidden layer, FA's NSE stays ~0.2
    thm = theorems.get("lillicrap2016.linear_task_nse")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.all()
    b = inst.arrays["B2"].copy()
    b[..., :, :3] = 0.0
    v = thm.check(Instance({**inst.arrays, "B2": b}, inst.params, size=inst.size))
    assert not v.holds.any() and np.all(v.details["nse_fa"] > 0.05)


def test_degeneracy_breaking_fails_when_dfa_is_bp(monkeypatch: pytest.MonkeyPatch) -> None:
    # with BP's update in place of DFA's both runs end equally aligned with b: "more aligned" (strict) fails
    from linfa.theorems import refinetti2021_shallow as rs

    thm = theorems.get("refinetti2021_shallow.degeneracy_breaking")
    inst = _first_group(thm.id)
    assert thm.check(inst).holds.mean() >= 0.9
    solve = rs._solve
    monkeypatch.setattr(rs, "_solve", lambda inst, rule, alpha, saveat: solve(inst, "BP", alpha, saveat))
    v = thm.check(inst)
    assert not v.holds.any() and np.all(v.details["cos_dfa"] == v.details["cos_bp"])


def test_bp_realisable_fails_for_an_unrealisable_teacher() -> None:
    # K = 1 < M = 2: one erf unit cannot represent two teacher units, ε_g cannot fall 1000-fold
    from linfa.theorems import refinetti2021_shallow as rs

    thm = theorems.get("refinetti2021_shallow.bp_realisable")
    inst = rs._small_init(np.random.default_rng(0), 8, 1, 2, eta=0.5)
    v = thm.check(inst)
    assert not v.holds.any() and np.all(v.details["eg_ratio"] > 1e-2)
