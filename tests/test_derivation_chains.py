"""Derivations are chains: each claim is checked from earlier steps, so deleting a step breaks it.

For every derivation of :mod:`linfa.symbolic.derivations` and every step that
is not a claim:

* deleting the step outright (its users keep naming it) fails verification;
* deleting it *and* dropping it from every ``uses`` (:meth:`Derivation.without`,
  what an editor who removes a line of the proof would leave) fails too, and
  fails *mathematically* — some step that relied on it no longer holds — except
  for the few listed bridge steps, which tie a matrix-symbol result to the same
  result written out in entries and are caught by the chain check instead.

And every catalogue entry that cites a derivation names one of its claims.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

pytest.importorskip("sympy")

from linfa import theorems
from linfa.symbolic import Derivation, Step
from linfa.symbolic.derivations import ALL

NAMES = sorted(ALL)

#: steps whose deletion is caught by the chain check only (see the module docstring)
BRIDGES = {("fa_zero_init", "d(WA)-structured")}


def _recheck(d: Derivation, names: list[str]) -> list[str]:
    """Names among ``names`` whose check fails in ``d`` (premises taken from ``d``)."""
    by_name = {s.name: s for s in d.steps}
    rng = np.random.default_rng(0)
    failed = []
    for n in names:
        s = by_name[n]
        if not s.check(rng, [by_name[u] for u in s.uses if u in by_name]).ok:
            failed.append(n)
    return failed


@pytest.fixture(scope="module", params=NAMES)
def derivation(request: pytest.FixtureRequest) -> tuple[str, Derivation]:
    return request.param, ALL[request.param]()


def test_each_derivation_is_a_chain_ending_in_claims(derivation: tuple[str, Derivation]) -> None:
    _, d = derivation
    assert d.chain_problems() == []
    assert d.steps[-1].claim and all(c.uses for c in d.claims)
    report = d.verify()
    assert report.ok, str(report)
    assert set(report.claims) == {c.name for c in d.claims}


def test_deleting_any_middle_step_breaks_the_derivation(derivation: tuple[str, Derivation]) -> None:
    name, d = derivation
    middle = [s for s in d.steps if not s.claim]
    assert len(middle) >= 2
    only_chain = []
    for s in middle:
        # outright deletion: the steps that used it now name a missing step
        cut = dataclasses.replace(d, steps=[t for t in d.steps if t.name != s.name])
        users = [t.name for t in cut.steps if s.name in t.uses]
        assert users, f"{name}: no step uses {s.name!r}"
        assert _recheck(cut, users) == users
        # deletion as an editor would do it: the users no longer cite it
        gone = d.without(s.name)
        broken = _recheck(gone, d.dependents(s.name))
        if not broken:
            assert gone.chain_problems(), f"{name}: deleting {s.name!r} leaves a valid derivation"
            only_chain.append((name, s.name))
    assert set(only_chain) <= BRIDGES, f"{name}: deletions caught only by the chain check: {only_chain}"


def test_chain_mechanics() -> None:
    x = sp.Symbol("x", real=True)
    s, t = sp.Symbol("s", real=True), sp.Symbol("t", real=True)
    d = Derivation("toy", r"x^2 + 2x + 1 \geq 0")
    d.add("complete", x**2 + 2 * x + 1, (x + 1) ** 2, defines=s)
    d.conclude(s, 0, ">=", uses=("complete",))
    assert d.verify().ok
    # the premise is needed: without it, the sign of s is unknown
    assert not d.without("complete").verify().ok
    # a sign premise lends its sign to the placeholder
    e = Derivation("sign", "t^2 s >= 0")
    e.define("def-t", t, x**2 + 1)
    e.add("t-positive", t, 0, ">", uses=("def-t",))
    e.conclude(t * x**2, 0, ">=", uses=("t-positive",))
    assert e.verify().ok
    assert not e.without("t-positive").verify().ok
    # a step naming a later or missing step fails, and so does a derivation not ending in a claim
    bad = Derivation("bad", "")
    bad.append(Step("a", s, s, uses=("b",)))
    bad.append(Step("b", x, x, defines=s))
    rep = bad.verify()
    assert not rep.ok and rep.results[0].method == "chain"
    assert any("claim" in p for p in rep.structure) and any("not earlier" in p for p in rep.structure)
    # a claim checked from nothing is not a chain
    lone = Derivation("lone", "")
    lone.conclude(x, x)
    assert any("not checked from any earlier step" in p for p in lone.chain_problems())
    # a definition must name a fresh placeholder
    circular = Derivation("circ", "")
    circular.define("d", s, s + 1)
    assert not circular.verify().results[0].ok


def test_every_entry_citing_a_derivation_names_one_of_its_claims() -> None:
    built: dict[str, Derivation] = {}
    cited = 0
    for thm in theorems.catalogue():
        if thm.derivation is None:
            assert thm.derivation_claim is None
            continue
        cited += 1
        d = built.setdefault(thm.derivation, ALL[thm.derivation]())
        claims = [c.name for c in d.claims]
        assert thm.derivation_claim in claims, f"{thm.id}: {thm.derivation_claim!r} not in {claims}"
    assert cited >= 15
