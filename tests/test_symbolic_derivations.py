"""Every derivation of linfa.symbolic.derivations: verifies, cross-checks numerically, fails when broken, renders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.symbolic import Derivation, Step
from linfa.symbolic.derivations import ALL

NAMES = sorted(ALL)
_cache: dict[str, Derivation] = {}


def build(name: str) -> Derivation:
    if name not in _cache:
        _cache[name] = ALL[name]()
    return _cache[name]


@pytest.mark.parametrize("name", NAMES)
def test_derivation_verifies(name: str) -> None:
    d = build(name)
    assert d.steps and d.checks
    report = d.verify()
    assert report.ok, str(report)
    # exact unless labelled: no step of these derivations relies on random points
    assert not any(r.numeric_only for r in report), [r.name for r in report if r.numeric_only]


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=4, derandomize=False)
@given(seed=st.integers(0, 2**32 - 1))
def test_cross_check_against_numerical_flows(name: str, seed: int) -> None:
    for res in build(name).cross_check(np.random.default_rng(seed)):
        assert res.ok, str(res)


@pytest.mark.parametrize("name", NAMES)
def test_counterexamples_are_found(name: str) -> None:
    for c in build(name).counterexamples:
        res = c.find()
        assert res.ok, f"{c.hypothesis}: {res}"


def _wrong(rhs: Any) -> Any:
    """A right-hand side that differs from ``rhs`` by a generic non-zero term."""
    if isinstance(rhs, sp.MatrixBase):
        return rhs + sp.ones(*rhs.shape) * sp.Symbol("wrong", real=True)
    if isinstance(rhs, sp.MatrixExpr):
        return rhs + sp.MatrixSymbol("WRONG", *rhs.shape)
    return rhs + sp.Symbol("wrong", positive=True)


def _breakable(d: Derivation) -> list[Step]:
    return [s for s in d.steps if s.relation == "=" and s.method != "definition"]


@pytest.mark.parametrize("name", NAMES)
def test_a_deliberately_wrong_step_is_reported_by_name(name: str) -> None:
    d = build(name)
    steps = _breakable(d)
    assert steps
    for s in (steps[0], steps[-1]):
        bad = d.replace(s.name, rhs=_wrong(s.rhs))
        report = bad.verify()
        # the wrong step fails, and nothing fails but it and the steps checked from it
        assert not report.ok and report.failed[0] == s.name, str(report)
        assert set(report.failed) <= {s.name, *d.dependents(s.name)}, str(report)
        with pytest.raises(AssertionError, match=s.name.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")):
            report.raise_if_failed()


@pytest.mark.parametrize("name", NAMES)
def test_a_dropped_hypothesis_breaks_the_step_that_uses_it(name: str) -> None:
    d = build(name)
    uses = [s for s in d.steps if s.given]
    for s in uses:
        bare = d.replace(s.name, given=()).step(s.name)  # checked alone, from its premises (as verify does)
        r = bare.check(premises=[d.step(u) for u in s.uses])
        assert not r.ok, f"step {s.name} verifies without its hypotheses {s.given}"


@pytest.mark.parametrize("name", NAMES)
def test_latex_and_markdown_rendering(name: str) -> None:
    d = build(name)
    tex = d._repr_latex_()
    assert tex.startswith("$$") and tex.endswith("$$")
    assert tex.count(r"&\text{(") == len(d.steps)
    assert tex.count("{") == tex.count("}")
    md = d._repr_markdown_()
    for i, s in enumerate(d.steps, 1):
        assert f"{i}. `{s.name}`" in md
    assert d.title in d.to_text()
