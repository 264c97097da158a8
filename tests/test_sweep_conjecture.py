"""linfa.sweep on a conjecture of linfa.testing: seeded instances, counterexamples kept and replayable."""

from __future__ import annotations

from pathlib import Path

import _sweep_targets as tt
import pytest
from _sweep_targets import fingerprint

from linfa.sweep import ResultStore, replay, sweep
from linfa.testing import conjectures


def test_zero_init_alignment_conjecture_fails_for_general_feedback(tmp_path: Path) -> None:
    from linfa.sweep.conjecture import Conjecture
    from linfa.theorems import Instance

    target = Conjecture(conjectures.zero_init_alignment, tt.draw_zero_init, t1=2.0)
    s = sweep(target, 24, out=tmp_path / "c.sqlite", seed=1, chunk_size=5)
    assert s.n_recorded == 24 and s.counts["error"] == 0
    assert s.counts["fail"] > 0  # docs/design.md, fact 3: false for general B
    cx = s.counterexample
    assert cx is not None and cx.margin is not None and cx.margin < 0
    with ResultStore.open(tmp_path / "c.sqlite", readonly=True) as store:
        sizes = [r.size for r in store.records("fail")]
    assert cx.size == min(sizes)
    path = tmp_path / "cx.npz"
    path.write_bytes(cx.instance or b"")
    assert Instance.load(path).params["rule"] == "FA"
    again = replay(target, seed=1, index=cx.index)
    assert again.status == "fail" and again.margin == cx.margin
    sweep(target, 24, out=tmp_path / "d.sqlite", seed=1, chunk_size=24, workers=2)
    assert fingerprint(tmp_path / "d.sqlite") == fingerprint(tmp_path / "c.sqlite")
    with pytest.raises(TypeError, match="draw"):
        Conjecture(conjectures.zero_init_alignment, conjectures.zero_init_instances())
