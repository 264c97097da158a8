"""The catalogue machinery: Verdict, Theorem, registry, seeding and the runner."""

from __future__ import annotations

import numpy as np
import pytest

from linfa import theorems
from linfa.theorems import Instance, Theorem, Verdict


def _draw(rng: np.random.Generator, size: int) -> Instance:
    return Instance({"x": rng.standard_normal((size, 2))}, {"n": 2}, size=size)


def _check(inst: Instance) -> Verdict:
    x = inst.arrays["x"]
    return Verdict(x[:, 0] > -10, x[:, 0] + 10, {"x0": x[:, 0]})


def _theorem(**kw: object) -> Theorem:
    base: dict[str, object] = dict(id="toy.claim", paper="p", title="t", statement="s", reference="r",
                                   hypotheses=("h",), kind="theorem", tolerance=0.0, tolerance_reason="why",
                                   draw=_draw, check_batch=_check, group_size=4, instances=10)
    base.update(kw)
    return Theorem(**base)  # type: ignore[arg-type]


def test_verdict_validation() -> None:
    with pytest.raises(ValueError, match="margin"):
        Verdict(np.ones(3, bool), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        Verdict(np.ones(2, bool), np.array([1.0, np.nan]))


@pytest.mark.parametrize(("kw", "match"), [
    ({"id": "noclaim"}, "id"), ({"kind": "lemma"}, "kind"), ({"fraction": 0.5}, "fraction"),
    ({"kind": "empirical", "fraction": 0.0}, "fraction"), ({"group_size": 0}, "group_size"),
])
def test_theorem_validation(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _theorem(**kw)


def test_criteria_by_kind() -> None:
    assert _theorem().passes(10, 10) and not _theorem().passes(9, 10)
    emp = _theorem(kind="empirical", fraction=0.8)
    assert emp.passes(8, 10) and not emp.passes(7, 10)
    ex = _theorem(kind="existential")
    assert ex.passes(1, 10) and not ex.passes(0, 10)
    assert not _theorem().passes(0, 0)


def test_registry() -> None:
    thm = theorems.register(_theorem())
    try:
        with pytest.raises(ValueError, match="already registered"):
            theorems.register(_theorem())
        assert theorems.get("toy.claim") is thm
        assert theorems.catalogue(["toy"]) == [thm]
    finally:
        theorems.unregister("toy.claim")
    with pytest.raises(KeyError, match="no catalogue entry"):
        theorems.get("toy.claim")


def test_run_is_reproducible_and_independent_of_count() -> None:
    thm = _theorem()
    a = theorems.run(thm, instances=10, seed=5, derivation=False)
    b = theorems.run(thm, instances=10, seed=5, derivation=False)
    assert a.worst_margin == b.worst_margin and a.witness == b.witness
    assert a.instances == 10 and a.holding == 10 and a.passed
    # instance j does not depend on how many are drawn: the first 6 are the first 6 of 10
    six = [theorems.replay(thm, {"entropy": 5, "spawn_key": [k for k in theorems.group_seed(thm.id, 5, j // 4)
                                                                 .spawn_key], "group": j // 4, "index": j % 4})
           for j in range(6)]
    first = [inst.arrays["x"] for inst in six]
    groups = [g for _, g in theorems._core.draw_groups(thm, 10, 5)]
    stacked = np.concatenate([g.arrays["x"] for g in groups])
    np.testing.assert_array_equal(np.stack(first), stacked[:6])
    c = theorems.run(thm, instances=10, seed=6, derivation=False)
    assert c.worst_margin != a.worst_margin


def test_check_accepts_single_instances() -> None:
    thm = _theorem()
    batch = next(iter(theorems._core.draw_groups(thm, 4, 0)))[1]
    v = thm.check(batch)
    one = thm.check(batch.take(2))
    assert v.holds.shape == (4,) and one.holds.shape == ()
    assert one.margin == v.margin[2]
    with pytest.raises(TypeError, match="Instance"):
        thm.check({"x": 1})  # type: ignore[arg-type]


def test_group_seeds_differ_between_entries() -> None:
    a = theorems.group_seed("a.b", 0, 0).generate_state(2)
    b = theorems.group_seed("a.c", 0, 0).generate_state(2)
    assert not np.array_equal(a, b)


def test_catalogue_metadata_is_complete() -> None:
    ids = [t.id for t in theorems.catalogue()]
    assert len(ids) == len(set(ids))
    for t in theorems.catalogue():
        assert t.statement and t.reference and t.hypotheses and t.tolerance_reason, t.id
        assert t.kind in theorems.KINDS
