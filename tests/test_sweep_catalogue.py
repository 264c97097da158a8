"""linfa.sweep on catalogue entries: numbering as ``linfa check``, chunking-invariant, counterexamples kept."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from _sweep_targets import fingerprint

from linfa import theorems
from linfa.sweep import ResultStore, replay, summarize, sweep

ENTRY = "lillicrap2016.general_feedback_counterexample"


@pytest.fixture(scope="module")
def entry() -> object:
    return theorems.get(ENTRY)


def test_catalogue_sweep_numbers_instances_as_linfa_check(tmp_path: Path, entry: object) -> None:
    gs = entry.group_size  # type: ignore[attr-defined]
    n = 3 * gs
    out = tmp_path / "cat.sqlite"
    s = sweep(ENTRY, n, out=out, seed=3, chunk_size=1)  # chunks are whole groups all the same
    assert s.n_recorded == n and s.kind == entry.kind  # type: ignore[attr-defined]
    result = theorems.run(entry, instances=n, seed=3, derivation=False)
    assert s.counts["ok"] == result.holding
    with ResultStore.open(out, readonly=True) as store:
        for where in result.failures:
            rec = store.record(where["group"] * gs + where["index"])
            assert rec.status == "fail" and rec.margin == pytest.approx(where["margin"], rel=0, abs=0)
            inst = theorems.Instance.load(_write(tmp_path, rec.instance))
            assert inst.seed["group"] == where["group"] and inst.seed["index"] == where["index"]
            assert rec.replay == f"linfa sweep {ENTRY} --seed 3 --replay {rec.index}"
    # the same records whatever the chunking and however the sweep is split
    other = tmp_path / "cat2.sqlite"
    sweep(ENTRY, gs + 1, out=other, seed=3, chunk_size=5 * gs)
    sweep(ENTRY, n, out=other, seed=3, chunk_size=2 * gs, workers=2)
    assert fingerprint(other) == fingerprint(out)
    if s.counterexample is not None:
        again = replay(ENTRY, seed=3, index=s.counterexample.index)
        assert again.status == "fail" and again.margin == s.counterexample.margin
    assert summarize(out).counts == s.counts


def _write(tmp_path: Path, blob: bytes | None) -> str:
    assert blob is not None
    path = os.path.join(tmp_path, "inst.npz")
    with open(path, "wb") as fh:
        fh.write(io.BytesIO(blob).getvalue())
    return path


def test_run_checks_in_processes_equals_serial(entry: object) -> None:
    from linfa.sweep.checks import run_checks

    ids = [t.id for t in theorems.catalogue()[:3]] + [ENTRY]
    kw = {"instances": 16, "seed": 2, "derivation": False}
    parallel = list(run_checks(ids, workers=2, **kw))
    assert [r.theorem.id for r in parallel] == ids
    for r in parallel:
        s = theorems.run(r.theorem, **kw)
        assert (r.holding, r.passed, r.worst_margin, r.witness, r.failures) == (
            s.holding, s.passed, s.worst_margin, s.witness, s.failures)
