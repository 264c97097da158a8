"""Catalogue entries of linfa.theorems.refinetti2021_shallow: they hold, and they can fail."""

from __future__ import annotations

import numpy as np
import pytest

from linfa import theorems
from linfa.teacher_student import ode
from linfa.theorems import draw_groups
from linfa.theorems import refinetti2021_shallow as rs


def _group(id_: str, seed: int = 0) -> theorems.Instance:
    thm = theorems.get(id_)
    return next(draw_groups(thm, thm.group_size, seed))[1]


def test_entries_registered() -> None:
    ids = {t.id for t in theorems.catalogue(["refinetti2021_shallow"])}
    assert ids == {f"refinetti2021_shallow.{c}" for c in
                   ("align_then_memorise", "degeneracy_breaking", "bp_realisable", "ode_limit",
                    "ode_matches_mean_update")}


def test_align_then_memorise_holds_for_dfa_not_for_bp() -> None:
    inst = _group("refinetti2021_shallow.align_then_memorise")
    dfa = rs.atm_verdict(inst, "DFA")
    bp = rs.atm_verdict(inst, "BP")  # control: BP's second layer has no reason to turn towards b
    decided = ~np.asarray(dfa.inconclusive, dtype=bool)
    assert decided.sum() >= 4 and dfa.holds[decided].mean() >= 0.8
    assert not (dfa.holds & ~decided).any()  # a vacuous instance (aligned at α = 0) is not counted as holding
    assert bp.holds.mean() <= 0.5


def test_ode_limit_fails_for_a_mutated_ode(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = _group("refinetti2021_shallow.ode_limit", seed=1)
    thm = theorems.get("refinetti2021_shallow.ode_limit")
    right = thm.check(inst)
    real = ode.field_sums

    def wrong_i3(*args, **kw):  # type: ignore[no-untyped-def]
        a2, a3, a4, j2 = real(*args, **kw)
        return a2, 1.5 * a3, a4, j2  # e.g. a wrong constant in the closed form of I3

    monkeypatch.setattr(ode, "field_sums", wrong_i3)
    wrong = thm.check(inst)
    assert right.holds.mean() >= 0.75
    assert wrong.holds.mean() < 0.75  # far below the fraction the entry claims (0.9)


def test_mean_update_reference_by_hand_for_linear_g() -> None:
    # linear g: Δ = v·λ − v*·ν, so every mean is a second moment of the fields, written out by hand
    rng = np.random.default_rng(3)
    k, m = 2, 1
    x = rng.standard_normal((k + m, 6))
    omega = x @ x.T / 6
    Q, R, T = omega[:k, :k], omega[:k, k:], omega[k:, k:]
    v, vstar, f = rng.standard_normal(k), rng.standard_normal(m), rng.standard_normal(k)
    eta, sigma = 0.7, 0.4
    dQ, dR, dv, eg = rs.mean_update(Q, R, T, v, vstar, f, eta, sigma, linear=True, points=4)
    s = np.concatenate([v, -vstar])
    c = Q @ v - R @ vstar  # <λ Δ>
    dd = s @ omega @ s  # <Δ²>
    np.testing.assert_allclose(dv, -eta * c, rtol=1e-12)
    np.testing.assert_allclose(dR, -eta * np.outer(f, R.T @ v - T @ vstar), rtol=1e-12)
    np.testing.assert_allclose(dQ, -eta * (np.outer(f, c) + np.outer(c, f)) + eta**2 * np.outer(f, f) * (dd + sigma**2),
                               rtol=1e-12)
    assert eg == pytest.approx(0.5 * dd, rel=1e-12)
