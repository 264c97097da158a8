"""linfa sweep over the teacher–student catalogue entries: records equal the in-process run; resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _sweep_targets import fingerprint

from linfa import cli, theorems
from linfa.sweep import ResultStore, summarize, sweep

ENTRY = "refinetti2021_shallow.align_then_memorise"
SEED = 5


def _in_process(theorem: theorems.Theorem, n: int) -> dict[int, tuple[bool, float, dict[str, float]]]:
    """Instance ``g * group_size + p`` drawn and checked here, group by group, as ``linfa check`` does."""
    gs = theorem.group_size
    out = {}
    for g, inst in theorems.draw_groups(theorem, n, SEED):
        verdict = theorem.check(inst)
        for p in range(inst.size):
            details = {k: float(np.asarray(v)[p]) for k, v in verdict.details.items()
                       if np.shape(v) == (inst.size,)}
            out[g * gs + p] = (bool(verdict.holds[p]), float(verdict.margin[p]), details)
    return out


def test_sweep_of_teacher_student_instances_equals_the_in_process_run_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    theorem = theorems.get(ENTRY)
    gs = theorem.group_size
    n = 2 * gs
    expected = _in_process(theorem, n)
    assert all(details for _, _, details in expected.values())  # per-instance metrics to compare

    # interrupted after its first chunk (one group) ...
    out = tmp_path / "ts.sqlite"

    def stop(k: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(ENTRY, n, out=out, seed=SEED, chunk_size=gs, progress=stop)
    with ResultStore.open(out, readonly=True) as store:
        assert store.count() == gs  # one whole group recorded, nothing else
    # ... then resumed from the command line: only the missing group runs
    code = cli.main(["sweep", ENTRY, "-n", str(n), "--seed", str(SEED), "--chunk-size", str(gs),
                     "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr()
    s = summarize(out)
    assert s.n_recorded == n
    with ResultStore.open(out, readonly=True) as store:
        assert np.array_equal(store.recorded(), np.arange(n))
        for rec in store.records():
            holds, margin, details = expected[rec.index]
            assert rec.holds == holds and rec.margin == margin  # bit for bit
            assert rec.params["group"] * gs + rec.params["position"] == rec.index
            for k, v in details.items():
                assert rec.metrics[k] == v or (np.isnan(v) and np.isnan(rec.metrics[k])), k
    assert s.counts["ok"] == sum(h for h, _, _ in expected.values())
    # a straight run in another chunking records the same, bit for bit
    straight = tmp_path / "straight.sqlite"
    sweep(ENTRY, n, out=straight, seed=SEED, chunk_size=n)
    assert fingerprint(straight) == fingerprint(out)

