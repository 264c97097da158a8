"""Property tests of the Lillicrap et al. (2016) catalogue entries on hypothesis-drawn instances."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from linfa import theorems
from linfa.testing import Instance, instances, seeds, widths

TWO_LAYER = widths(min_depth=2, max_depth=2, max_width=4)
FULL_RANK_B = TWO_LAYER.filter(lambda w: w[1] >= w[2])
# n_h > n_out: otherwise A = B M holds for any A (B square or wide) and the structure is trivial
TALL_B = TWO_LAYER.filter(lambda w: w[1] > w[2])
ZERO_INIT = {"t1": 3.0, "n_save": 6}


def _holds(id_: str, inst: Instance) -> theorems.Verdict:
    verdict = theorems.get(id_).check(inst)
    assert verdict.holds, (id_, verdict.margin, verdict.details)
    assert verdict.margin >= 0
    return verdict


@settings(max_examples=10)
@given(instances(rule="FA", widths=TWO_LAYER, init="gaussian", whitened=False, params={"t1": 1.0, "n_save": 4}))
def test_alignment_condition(inst: Instance) -> None:
    _holds("lillicrap2016.alignment_condition", inst)


@settings(max_examples=10)
@given(instances(rule="FA", widths=widths(min_depth=2, max_depth=3, max_width=4), init="gaussian", init_scale=0.5,
                 whitened=False, params={"t1": 2.0, "n_save": 4}))
def test_fa_conservation(inst: Instance) -> None:
    _holds("lillicrap2016.fa_conservation", inst)


@settings(max_examples=15)
@given(instances(rule="FA", widths=widths(min_depth=2, max_depth=3, max_width=4), init="gaussian", whitened=False,
                 noise=0.2, params={"eta": 0.1}), seeds())
def test_fa_conservation_sgd(inst: Instance, seed: int) -> None:
    x, y = inst.task().sample(np.random.default_rng(seed), 3)
    _holds("lillicrap2016.fa_conservation_sgd", Instance({**inst.arrays, "X": x, "Y": y}, inst.params))


@settings(max_examples=10)
@given(instances(rule="FA", widths=TALL_B, init="zeros", whitened=False, params=ZERO_INIT))
def test_zero_init_structure(inst: Instance) -> None:
    _holds("lillicrap2016.zero_init_structure", inst)


@settings(max_examples=10)
@given(instances(rule="FA", widths=FULL_RANK_B, init="zeros", feedback_kind="orthogonal", feedback_scale=1.5,
                 whitened=False, params=ZERO_INIT))
def test_zero_init_alignment(inst: Instance) -> None:
    v = _holds("lillicrap2016.zero_init_alignment", inst)
    assert v.details["min_alignment"] >= -1e-12  # population <e^T W B e> too


@settings(max_examples=10)
@given(instances(rule="FA", widths=FULL_RANK_B, init="zeros", feedback_kind="orthogonal", feedback_scale=0.7,
                 whitened=True, params=ZERO_INIT))
def test_zero_init_lyapunov(inst: Instance) -> None:
    _holds("lillicrap2016.zero_init_lyapunov", inst)


@settings(max_examples=10)
@given(instances(rule="FA", widths=widths(min_depth=2, max_depth=2, n_out=1), init="zeros", whitened=False,
                 params=ZERO_INIT))
def test_single_output_alignment(inst: Instance) -> None:
    _holds("lillicrap2016.single_output_alignment", inst)


def test_general_feedback_witness_is_real() -> None:
    thm = theorems.get("lillicrap2016.general_feedback_counterexample")
    res = theorems.run(thm, instances=8, seed=0, derivation=False)
    assert res.passed and res.witness is not None
    inst = theorems.replay(thm, res.witness)
    # independent confirmation: integrate and exhibit an error vector with e^T W B e < 0
    from linfa.dynamics import solve

    rule, task, state = inst.problem()
    sol = solve(rule, task, state, float(inst.params["t1"]),  # type: ignore[arg-type]
                saveat=np.linspace(0, float(inst.params["t1"]), 9), rtol=1e-10, atol=1e-12)  # type: ignore[arg-type]
    b = inst.arrays["B2"]
    values = []
    for w in sol.states[1][1:]:
        _lam, vec = np.linalg.eigh(0.5 * (w @ b + (w @ b).T))
        e = vec[:, 0]
        values.append(float(e @ w @ b @ e) / np.linalg.norm(w @ b))
    assert min(values) < -1e-3
    assert min(values) <= -res.worst_margin + 1e-6  # the reported margin is attained


def test_linear_task_angle_empirical() -> None:
    thm = theorems.get("lillicrap2016.linear_task_angle")
    res = theorems.run(thm, instances=4, seed=1, derivation=False)
    assert res.passed and res.p_value is not None and res.p_value >= 1e-3  # one-sided binomial test
    assert res.details["max_angle_after"]["max"] < 90.0
