"""The catalogue's statistical decisions: no entry tuned to a seed, and enough instances to reject.

``linfa check --fast`` holds at twenty run seeds, including every one at which an earlier catalogue
reported a false "NO" (8, 13, 14, 15, 19, 25, 36, 37, 40); run in-process, entry by entry, as
``linfa check --fast`` does. And every empirical entry runs enough instances that its binomial
test rejects a claim whose true fraction is half the claimed one with probability >= 0.8 under
``--fast`` and >= 0.9 by default.
"""

from __future__ import annotations

import numpy as np
import pytest

from linfa import theorems
from linfa.theorems._statistics import (
    ALPHA,
    DEFAULT_POWER,
    FAST_POWER,
    instances_for_power,
    min_rejecting_instances,
    power,
)

SEEDS = [*range(1, 13), 13, 14, 15, 19, 25, 36, 37, 40]


def _failures_at(seed: int) -> list[tuple[object, ...]]:
    """The entries that fail ``linfa check --fast --seed seed``, run in this process."""
    failed: list[tuple[object, ...]] = []
    for thm in theorems.catalogue():
        r = theorems.run(thm, seed=seed, fast=True, derivation=False)
        if not r.passed:
            failed.append((seed, thm.id, r.holding, r.instances, r.error))
    return failed


@pytest.mark.slow
def test_fast_check_holds_at_twenty_seeds() -> None:
    from concurrent.futures import ProcessPoolExecutor

    assert len(SEEDS) == 20
    # the seeds are independent runs: two processes, one per core (the results do not depend on it)
    with ProcessPoolExecutor(max_workers=2) as pool:
        failed = [f for fs in pool.map(_failures_at, SEEDS) for f in fs]
    assert not failed, failed


def test_power_against_scipy() -> None:
    from scipy.stats import binom

    for n, p, p1 in [(4, 0.9, 0.45), (13, 0.9, 0.45), (61, 0.5, 0.25), (21, 0.8, 0.4), (12, 0.95, 0.5), (9, 0.5, 0.1)]:
        ks = np.arange(n + 1)
        rejected = ks[binom.cdf(ks, n, p) < ALPHA]
        expected = binom.cdf(rejected.max(), n, p1) if rejected.size else 0.0
        assert power(n, p, p1) == pytest.approx(expected, rel=1e-10, abs=1e-300)
        assert power(n, p, p) < ALPHA  # the level: a correct claim at the boundary is rejected that rarely
    for p in (0.5, 0.7, 0.8, 0.85, 0.95):
        n = min_rejecting_instances(p)
        assert (1 - p) ** n < ALPHA <= (1 - p) ** (n - 1)
        m = instances_for_power(p, FAST_POWER)
        assert power(m, p, p / 2) >= FAST_POWER > power(m - 1, p, p / 2)


def test_empirical_entries_run_enough_instances_to_reject() -> None:
    weak = []
    for thm in theorems.catalogue():
        if thm.kind != "empirical":
            continue
        p = thm.fraction
        fast, default = power(thm.fast_instances, p, p / 2), power(thm.instances, p, p / 2)
        if fast < FAST_POWER or default < DEFAULT_POWER:
            weak.append((thm.id, thm.fast_instances, round(fast, 3), thm.instances, round(default, 3)))
    assert not weak, weak
