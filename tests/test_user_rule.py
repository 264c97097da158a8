"""A rule defined in this file only, run through every layer of linfa.

``SignFA`` is feedback alignment whose backward pass uses the *sign* of fixed
random matrices: :math:`M_l = \\operatorname{sign}(B_{l+1}) ⋯ \\operatorname{sign}(B_L)`.
It declares its name and feedback layout, registers itself, and is then
solved, trained by SGD, observed, drawn by ``linfa.testing.instances``,
searched by ``conjecture`` (counterexample saved and replayed), checked as a
catalogue entry by ``linfa check`` (in-process and through ``--plugin`` in a
subprocess) and swept by ``linfa sweep``. Nothing outside this file knows it.

The mathematics asserted: its flow is FA's flow with ``B`` replaced by
``sign(B)``; it conserves
:math:`Q_l = W_l W_l^T - S_{l+1} W_{l+1} - W_{l+1}^T S_{l+1}^T` with
``S = sign(B)`` (the FA law, fact 2, with ``S`` for ``B``), along the flow
and as a catalogue claim; and from zero init with one output its alignment
``e^T W_2 S e`` stays non-negative (fact 3: ``S^T S = n_1`` is a multiple of
the identity for a single output).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import linfa
from linfa import observables as obs
from linfa import theorems
from linfa.cli import main as cli_main
from linfa.rules import FeedbackLayout
from linfa.testing import conjecture, instances, replay, widths

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


@linfa.rules.register
class SignFA(linfa.AbstractRule):
    """FA through ``sign(B)``: :math:`M_l = \\operatorname{sign}(B_{l+1}) ⋯ \\operatorname{sign}(B_L)`."""

    name = "SignFA"
    feedback_layout = FeedbackLayout.layerwise()

    def _signals(self, state: Any, e: np.ndarray) -> list[np.ndarray]:
        out = [e]
        for b in reversed(self.feedback):
            out.append(np.sign(b) @ out[-1])
        return out[::-1]

    def conserved_quantities(self, state: Any) -> tuple[np.ndarray, ...]:
        ws = self.weights(state)
        qs = []
        for l in range(len(ws) - 1):
            sw = np.sign(self.feedback[l]) @ ws[l + 1]
            qs.append(ws[l] @ _t(ws[l]) - sw - _t(sw))
        return tuple(qs)


def _problem(rng: np.random.Generator, ws: tuple[int, ...], batch: tuple[int, ...] = (4,)) -> tuple[Any, ...]:
    sxx = linfa.spd_with_condition(rng, ws[0], 5.0, batch=batch)
    task = linfa.Task.random_teacher(rng, ws[0], ws[-1], sxx=sxx, batch=batch)
    state = linfa.DeepLinear(ws).gaussian(rng, 0.5, batch=batch)
    fb = linfa.feedback.for_rule("SignFA", ws, rng, batch=batch)
    return task, state, fb


# ------------------------------------------------------------------ the rule itself
def test_declaration_is_read_everywhere() -> None:
    assert linfa.rules.get("SignFA") is SignFA and "SignFA" in linfa.rules.names()
    assert SignFA.feedback_shapes((3, 4, 5, 2)) == [(4, 5), (5, 2)]
    fb = linfa.feedback.for_rule("SignFA", (3, 4, 5, 2), np.random.default_rng(0), batch=(2,))
    assert [b.shape for b in fb] == [(2, 4, 5), (2, 5, 2)]
    with pytest.raises(ValueError, match="feedback: expected 2 matrices"):
        SignFA(fb[:1]).validate(linfa.Task.random_teacher(np.random.default_rng(0), 3, 2), linfa.DeepLinear(
            (3, 4, 5, 2)).zeros())


def test_flow_is_fa_flow_with_sign_feedback() -> None:
    rng = np.random.default_rng(1)
    ws = (3, 4, 5, 2)
    task, state, fb = _problem(rng, ws)
    mine = SignFA(fb)
    fa = linfa.FA(tuple(np.sign(b) for b in fb))
    mine.validate(task, state)
    for a, b in zip(mine.dstate(task, state), fa.dstate(task, state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    # independent route: dW_l = M_l E W_{<l}^T written out for depth 3
    s2, s3 = np.sign(fb[0]), np.sign(fb[1])
    w1, w2, w3 = state
    e = task.syx - w3 @ w2 @ w1 @ task.sxx
    expected = (s2 @ s3 @ e, s3 @ e @ _t(w1), e @ _t(w2 @ w1))
    for a, b in zip(mine.dstate(task, state), expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for m, ref in zip(mine.backward_matrices(state), (s2 @ s3, s3), strict=True):
        np.testing.assert_allclose(m, ref, rtol=1e-14)


def test_solve_conserves_the_sign_law_and_matches_fa_on_sign_b() -> None:
    rng = np.random.default_rng(2)
    ws = (3, 4, 3, 2)
    task, state, fb = _problem(rng, ws)
    observe = {"Q1": obs.conserved_quantity(1), "Q2": obs.conserved_quantity(2), "loss": obs.loss}
    ts = np.linspace(0.0, 3.0, 7)
    sol = linfa.solve(SignFA(fb), task, state, 3.0, saveat=ts, observe=observe, rtol=1e-10, atol=1e-12)
    assert sol.ok.all()
    for key in ("Q1", "Q2"):
        q = sol.observed[key]
        drift = np.max(np.abs(q - q[:, :1]), axis=(1, 2, 3))
        assert np.all(drift <= 1e-7 * (1 + np.max(np.abs(q), axis=(1, 2, 3))))
    # the weights really moved (the law is not conserved trivially)
    assert np.all(np.abs(sol.observed["loss"][:, -1] - sol.observed["loss"][:, 0]) > 1e-3)
    ref = linfa.solve(linfa.FA(tuple(np.sign(b) for b in fb)), task, state, 3.0, saveat=ts,
                      rtol=1e-10, atol=1e-12)
    for a, b in zip(sol.state_final, ref.state_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    # with the raw B (FA's own law) the sign law is not conserved: the check can fail
    q_fa = obs.conserved_quantities(linfa.FA(fb), sol.state_final)[0]
    q_fa0 = obs.conserved_quantities(linfa.FA(fb), state)[0]
    assert np.max(np.abs(q_fa - q_fa0)) > 1e-3


def test_sgd_is_fa_sgd_on_sign_b() -> None:
    rng = np.random.default_rng(3)
    ws = (3, 4, 2)
    task, state, fb = _problem(rng, ws, batch=(3,))
    kw: dict[str, Any] = {"lr": 0.05, "steps": 40, "batch_size": 8, "observe": {"loss": obs.loss}, "every": 10}
    mine = linfa.sgd(SignFA(fb), task, state, rng=np.random.default_rng(9), **kw)
    ref = linfa.sgd(linfa.FA(tuple(np.sign(b) for b in fb)), task, state, rng=np.random.default_rng(9), **kw)
    assert mine.ok.all()
    np.testing.assert_allclose(mine.observed["loss"], ref.observed["loss"], rtol=1e-12)
    for a, b in zip(mine.state_final, ref.state_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_observables_read_the_declaration() -> None:
    rng = np.random.default_rng(4)
    ws = (3, 4, 5, 2)
    task, state, fb = _problem(rng, ws)
    mine, on_sign = SignFA(fb), linfa.FA(tuple(np.sign(b) for b in fb))
    for f in (obs.alignment, obs.signal_angles, obs.update_angles, obs.weight_alignment, obs.loss):
        np.testing.assert_allclose(f(mine, task, state), f(on_sign, task, state), rtol=1e-12, atol=1e-12)
    # layer-wise feedback: the rule's declared matrices B_l (not their signs)
    np.testing.assert_allclose(obs.layer_alignment(mine, task, state),
                               obs.layer_alignment(linfa.FA(fb), task, state), rtol=1e-14)
    for a, b in zip(obs.conserved_quantities(mine, state), obs.conserved_quantities(on_sign, state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


# ------------------------------------------------------------------ strategies, instances, conjecture
@settings(max_examples=10, deadline=None)
@given(instances(rule="SignFA", widths=widths(min_depth=2, max_depth=3), whitened=False, init="gaussian"))
def test_strategy_draws_round_trip(tmp_path_factory: pytest.TempPathFactory, inst: linfa.Instance) -> None:
    rule, task, state = inst.problem()
    assert type(rule) is SignFA and inst.params["rule"] == "SignFA"
    assert [b.shape for b in rule.feedback] == SignFA.feedback_shapes(inst.widths)
    back = linfa.Instance.load(inst.save(tmp_path_factory.mktemp("inst") / "i.npz"))
    rule2, task2, state2 = back.problem()
    for a, b in zip(rule2.dstate(task2, state2), rule.dstate(task, state), strict=True):
        np.testing.assert_array_equal(a, b)
    again = linfa.Instance.from_problem(rule, task, state)
    assert sorted(again.arrays) == sorted(inst.arrays)


def sign_alignment_nonnegative(inst: linfa.Instance, sol: linfa.Solution) -> float:
    """From zero init with one output, ``e^T W_2 S e >= 0`` (``S^T S`` is a multiple of ``I``)."""
    rule, task, _ = inst.problem()
    a = obs.alignment(rule, task, sol.state_final)
    return float(np.min(a)) + 1e-9 * (1 + float(np.max(np.abs(a))))


def loss_halves_by_t1(inst: linfa.Instance, sol: linfa.Solution) -> float:
    """False: the loss need not halve in a short time."""
    rule, task, state = inst.problem()
    return float(0.5 * obs.loss(rule, task, state) - obs.loss(rule, task, sol.state_final))


def test_conjecture_true_and_false_with_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_output = widths(min_depth=2, max_depth=2, n_out=1, max_width=4)
    held = conjecture(sign_alignment_nonnegative, t1=2.0, max_examples=15, seed=0, outdir=tmp_path,
                      strategy=instances(rule="SignFA", widths=one_output, init="zeros"))
    assert held.holds, str(held)
    res = conjecture(loss_halves_by_t1, t1=0.05, max_examples=20, seed=0, outdir=tmp_path,
                     strategy=instances(rule="SignFA", widths=widths(min_depth=2, max_depth=2)))
    assert not res.holds and res.path is not None and res.outcome is not None
    saved = linfa.Instance.load(res.path)
    assert saved.params["rule"] == "SignFA" and type(saved.rule()) is SignFA
    again = replay(res.path, predicate=loss_halves_by_t1)  # the file's recorded name is not imported unasked
    assert not again.holds and again.margin == res.outcome.margin
    assert cli_main(["replay", res.path, "--predicate", "test_user_rule:loss_halves_by_t1"]) == 1


# ------------------------------------------------------------------ a catalogue entry, linfa check, linfa sweep
CLAIM_ID = "signfa.conservation"
TOL = 1e-7


def _draw_claim(rng: np.random.Generator, size: int) -> linfa.Instance:
    depth = int(rng.integers(2, 4))
    ws = tuple(int(n) for n in rng.integers(1, 5, size=depth + 1))
    task, state, fb = _problem(rng, ws, batch=(size,))
    return linfa.Instance.learning(task, state, rule="SignFA", feedback=fb, size=size, t1=2.0)


def _sign_scale(rule: linfa.AbstractRule, task: linfa.Task, state: Any) -> np.ndarray:
    ws = rule.weights(state)
    return sum(np.linalg.norm(w, axis=(-2, -1)) ** 2 for w in ws)  # type: ignore[return-value]


def _check_claim(inst: linfa.Instance) -> theorems.Verdict:
    rule, task, state = inst.problem()
    depth = len(rule.weights(state))
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    observe: dict[str, Any] = {f"Q{l}": obs.conserved_quantity(l) for l in range(1, depth)}
    observe["scale"] = _sign_scale
    sol = theorems.solve(rule, task, state, t1, saveat=np.linspace(0.0, t1, 5), observe=observe)
    drift = np.zeros(sol.ok.shape)
    for l in range(1, depth):
        q = sol.observed[f"Q{l}"]
        drift = np.maximum(drift, np.max(np.linalg.norm(q - q[:, :1], axis=(-2, -1)), axis=1))
    err = drift / np.max(sol.observed["scale"], axis=1)
    margin = np.where(sol.ok, TOL - err, -1.0)
    return theorems.Verdict(margin >= 0, np.nan_to_num(margin, nan=-1.0), {"relative_drift": err})


CLAIM = theorems.Theorem(
    id=CLAIM_ID, paper="this test", title="SignFA conserves the FA law with sign(B)",
    statement=r"Q_l = W_l W_l^T - S_{l+1} W_{l+1} - W_{l+1}^T S_{l+1}^T,\ S = \operatorname{sign}(B),"
              r"\ \text{is constant}",
    reference="tests/test_user_rule.py", hypotheses=("any init", "any SPD Σxx"), kind="theorem",
    tolerance=TOL, tolerance_reason="integrator tolerances of linfa.theorems.solve",
    draw=_draw_claim, check_batch=_check_claim, group_size=4, instances=8, fast_instances=4,
)


def register_claims() -> None:
    """Plug-in hook: ``linfa --plugin test_user_rule:register_claims check signfa.conservation``."""
    theorems.register(CLAIM, replace=True)


@pytest.fixture
def claim() -> Any:
    register_claims()
    yield CLAIM
    theorems.unregister(CLAIM_ID)


def test_linfa_check_and_sweep_run_the_user_claim(claim: theorems.Theorem, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "check.json"
    assert cli_main(["check", CLAIM_ID, "--seed", "0", "--json", str(out), "--quiet"]) == 0
    (entry,) = json.loads(out.read_text())["results"]
    assert entry["id"] == CLAIM_ID and entry["passed"] and entry["holding"] == entry["instances"] == 8
    result = theorems.run(claim, seed=0, derivation=False)
    assert entry["worst_margin"] == result.worst_margin
    store = tmp_path / "sweep.sqlite"
    assert cli_main(["sweep", CLAIM_ID, "-n", "8", "--seed", "0", "--out", str(store), "--no-progress",
                     "--json"]) == 0
    summary = json.loads(_last_json(capsys))
    assert summary["counts"]["ok"] == 8
    from linfa.sweep import ResultStore

    with ResultStore.open(store, readonly=True) as st:
        margins = [st.record(i).margin for i in range(8)]
    # instance i of the sweep is instance i of `linfa check --seed 0`
    assert min(m for m in margins if m is not None) == result.worst_margin


def _last_json(capsys: pytest.CaptureFixture[str]) -> str:
    text = capsys.readouterr().out
    return text[text.index("{"):]


def test_plugin_in_subprocesses(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    out = tmp_path / "check.json"
    cmd = [sys.executable, "-m", "linfa", "--plugin", "test_user_rule:register_claims", "check", CLAIM_ID,
           "--instances", "4", "--json", str(out), "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(out.read_text())["results"]
    assert entry["passed"] and entry["holding"] == 4
    # a sweep in two spawned worker processes: they load the same plug-in before looking the entry up
    store = tmp_path / "sweep.sqlite"
    cmd = [sys.executable, "-m", "linfa", "--plugin", "test_user_rule:register_claims", "sweep", CLAIM_ID,
           "-n", "8", "--chunk-size", "4", "--workers", "2", "--out", str(store), "--no-progress", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["counts"]["ok"] == 8
