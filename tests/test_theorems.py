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
    # empirical: rejected when the one-sided binomial test does, P(K <= k | 10, 0.8) < 1e-3
    from scipy.stats import binom

    emp = _theorem(kind="empirical", fraction=0.8)
    for k in range(11):
        assert emp.passes(k, 10) == (binom.cdf(k, 10, 0.8) >= 1e-3), k
    assert emp.passes(3, 10, inconclusive=7)  # 3 of 3 decided
    assert not emp.passes(3, 10) and emp.passes(4, 10)
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


def test_binomial_statistics_against_scipy() -> None:
    from scipy.stats import beta, binom

    from linfa.theorems._statistics import binomial_cdf, clopper_pearson_lower, max_failures

    for n, p in ((8, 0.75), (24, 0.75), (32, 0.9), (40, 0.5)):
        for k in range(n + 1):
            assert binomial_cdf(k, n, p) == pytest.approx(binom.cdf(k, n, p), rel=1e-12, abs=1e-300)
        m = max_failures(n, p)
        # a claim of fraction p tolerates m failures and not m + 1, at level 1e-3
        assert binom.cdf(n - m, n, p) >= 1e-3 > binom.cdf(n - m - 1, n, p)
    for k, n in ((1, 5), (13, 16), (132, 144), (10, 10)):
        assert clopper_pearson_lower(k, n) == pytest.approx(beta.ppf(1e-3, k, n - k + 1), abs=1e-12)
    # large n: the binomial coefficient alone overflows a float (n > 1030)
    for k, n, p in ((1990, 2100, 0.95), (1100, 1200, 0.9), (5, 5000, 0.001)):
        assert binomial_cdf(k, n, p) == pytest.approx(binom.cdf(k, n, p), rel=1e-9)


def _check_three_states(inst: Instance) -> Verdict:
    # x0 > 1 holds; -1 <= x0 <= 1 cannot be decided; x0 < -1 is a counterexample
    x = inst.arrays["x"][:, 0]
    return Verdict(x > 1, x - 1, {}, (x >= -1) & (x <= 1), "x0 within 1 of 0")


def test_verdict_third_state_and_status() -> None:
    v = _check_three_states(Instance({"x": np.array([[2.0, 0], [0.0, 0], [-2.0, 0]])}, size=3))
    np.testing.assert_array_equal(v.counterexample, [False, False, True])
    assert v.squeeze is not None
    with pytest.raises(ValueError, match="both hold and be inconclusive"):
        Verdict(np.ones(2, bool), np.ones(2), {}, np.ones(2, bool))
    with pytest.raises(ValueError, match="inconclusive: expected the shape"):
        Verdict(np.ones(2, bool), np.ones(2), {}, np.ones(3, bool))
    one = Verdict(np.zeros(1, bool), np.zeros(1), {}, np.ones(1, bool), "why").squeeze()
    assert one.inconclusive.shape == () and one.reason == "why"  # type: ignore[union-attr]


def test_inconclusive_instances_do_not_fail_but_counterexamples_do() -> None:
    from linfa.cli import render_table

    def shifted(shift: float):  # type: ignore[no-untyped-def]
        def check(inst: Instance) -> Verdict:
            moved = Instance({"x": inst.arrays["x"] + shift}, size=inst.size)
            return _check_three_states(moved)
        return check

    # every instance inside [-1, 1] (|x| small): all inconclusive, none fails
    undecided = theorems.run(_theorem(check_batch=shifted(0.0), draw=lambda rng, size: Instance(
        {"x": 0.1 * rng.standard_normal((size, 2))}, size=size)), derivation=False)
    assert undecided.passed and undecided.status == "inconclusive" and undecided.inconclusive == 10
    assert undecided.inconclusive_reasons == ["x0 within 1 of 0"] and undecided.failures == []
    assert "inconclusive (0/10, 10 undecided)" in render_table([undecided])
    assert undecided.to_json()["status"] == "inconclusive"
    # shifted far down: counterexamples fail the run
    wrong = theorems.run(_theorem(check_batch=shifted(-50.0)), derivation=False)
    assert not wrong.passed and wrong.status == "fails" and len(wrong.failures) == 5


def test_reexamine_decides_failing_instances_again() -> None:
    seen: list[int] = []

    def strict(inst: Instance) -> Verdict:  # the first look fails everything
        return Verdict(np.zeros(inst.size or 1, bool), -np.ones(inst.size or 1))

    def second(inst: Instance) -> Verdict:
        seen.append(inst.size or 1)
        return _check_three_states(inst)

    thm = _theorem(check_batch=strict, reexamine=second, draw=lambda rng, size: Instance(
        {"x": np.array([[2.0, 0], [0.0, 0], [2.0, 0], [0.5, 0]])[:size]}, size=size), group_size=4, instances=4)
    r = theorems.run(thm, derivation=False)
    assert seen == [4] and r.holding == 2 and r.inconclusive == 2 and r.passed and r.status == "inconclusive"
    thm_bad = _theorem(check_batch=strict, reexamine=strict)
    assert not theorems.run(thm_bad, derivation=False).passed


def test_derivation_status_needs_a_report_and_says_checked_at_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from linfa.theorems import _core

    class Fake:
        def __init__(self, report: object) -> None:
            self.report = report

        def verify(self, **kw: object) -> object:
            assert kw.get("cross_check") is True  # linfa check runs the cross-checks
            return self.report

    class Report:
        def __init__(self, ok: bool, scope: str, claims: tuple[str, ...] = ("c",)) -> None:
            self.ok, self.scope, self.failed, self.claims = ok, scope, ["step 2"], claims

        def __bool__(self) -> bool:
            return self.ok

        def scope_of(self, claim: str) -> str:
            return self.scope if claim == "c" else "dimension-free"

    cases = [(None, "failed: the derivation returned no report", None),
             (Report(True, "dimension-free"), "verified", None),
             (Report(True, "some steps exact only at n=2"), "checked at sizes (some steps exact only at n=2)", None),
             (Report(True, "some steps exact only at n=2"), "checked at sizes (some steps exact only at n=2)", "c"),
             (Report(True, "some steps exact only at n=2", ("c", "d")), "verified", "d"),
             (Report(True, "dimension-free"), "failed: fake has no claim step 'x' (its claims: c)", "x"),
             (Report(True, "dimension-free", ()), "failed: fake has no claim step None (its claims: none)", None),
             (Report(False, "dimension-free"), "failed: step 2", None)]
    for report, expected, claim in cases:
        thm = _theorem(derivation="fake", derivation_claim=claim)
        monkeypatch.setattr(_core, "_DERIVATION_CACHE", {})
        monkeypatch.setattr(Theorem, "load_derivation", lambda self, _r=report: Fake(_r))
        assert _core.verify_derivation(thm) == expected


def test_tighter_reexamine_separates_integration_error_from_counterexamples() -> None:
    from linfa.theorems import _numerics

    def check_with(err_of_rtol):  # type: ignore[no-untyped-def]
        def check(inst: Instance) -> Verdict:
            err = np.full(inst.size or 1, err_of_rtol(_numerics.RTOL))
            return Verdict(err <= 1e-6, 1e-6 - err)
        return check

    inst = Instance({"x": np.zeros((2, 1))}, size=2)

    def run(err_of_rtol):  # type: ignore[no-untyped-def]
        return _numerics.tighter_reexamine(check_with(err_of_rtol), 1e-6)(inst)

    assert run(lambda r: 5e-6).counterexample.all()  # does not move: a counterexample
    assert run(lambda r: 2e-6 + 5e3 * r).counterexample.all()  # 7e-6 -> 2.005e-6: less than tenfold
    undecided = run(lambda r: 2e-5 if r > 1e-10 else 1.5e-6)  # tenfold smaller, still above 1e-6
    assert undecided.inconclusive.all() and undecided.reason  # type: ignore[union-attr]
    assert run(lambda r: 2e3 * r).holds.all()  # 2e-6 -> 2e-9: holds at the tighter tolerance
    assert _numerics.RTOL == 1e-9  # restored
