"""Module-level sweep targets for tests/test_sweep*.py (importable by worker processes)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linfa.sweep import Batched, PerInstance, ResultStore
from linfa.sweep.examples import fa_alignment


def noisy_claim(rng: np.random.Generator) -> dict[str, Any]:
    """Per instance: a claim that fails on about 10% of instances, errors on about 5%."""
    x = rng.standard_normal(3)
    n = int(rng.integers(1, 5))
    if x[0] > 1.64:
        raise FloatingPointError(f"bad draw {x[0]:.3f}")
    margin = x[1] + 1.28
    return {"holds": margin > 0, "margin": margin, "size": n, "norm": float(np.linalg.norm(x)),
            "params": {"n": n}, "instance": {"x": x}}


def undecided_claim(rng: np.random.Generator) -> dict[str, Any]:
    """Per instance: a claim that never fails, but cannot be decided on about a quarter of instances."""
    x = rng.standard_normal(2)
    undecided = bool(abs(x[0]) < 0.3)
    margin = float(x[1] + 10.0)
    return {"holds": not undecided, "margin": -1.0 if undecided else margin, "inconclusive": undecided,
            "inconclusive_reason": "x0 too close to 0" if undecided else None, "instance": {"x": x}}


def fa_or_raise(seeds: Sequence[np.random.SeedSequence], **kw: Any) -> dict[str, Any]:
    """Batched FA check that raises for the whole batch if any instance is 'bad'."""
    bad = [np.random.default_rng(s).random() < 0.1 for s in seeds]
    if any(bad):
        raise RuntimeError("a bad instance in this batch")
    return fa_alignment(seeds, **kw)


def slow_fa(seeds: Sequence[np.random.SeedSequence]) -> dict[str, Any]:
    """The FA check, slowed down so a test can kill a sweep mid-way."""
    time.sleep(float(os.environ.get("LINFA_TEST_SLEEP", "0.05")))
    return fa_alignment(seeds, steps=20)


FA_SMALL = Batched(fa_alignment, steps=20)
FA_OR_RAISE = Batched(fa_or_raise, steps=20)
SLOW_FA = Batched(slow_fa)
NOISY = PerInstance(noisy_claim)
UNDECIDED = PerInstance(undecided_claim)


def fingerprint(path: Path) -> list[tuple[Any, ...]]:
    """Everything recorded per instance, floats as exact bit patterns (timings and tracebacks aside)."""
    with ResultStore.open(path, readonly=True) as store:
        out = []
        for r in store.records():
            arrays = {k: v.tobytes() for k, v in r.arrays().items()}
            out.append((r.index, r.status, r.holds, None if r.margin is None else float(r.margin).hex(),
                        tuple(sorted((k, float(v).hex()) for k, v in r.metrics.items())),
                        json.dumps(r.params, sort_keys=True), r.size, tuple(sorted(arrays.items())),
                        None if r.error is None else r.error.strip().splitlines()[-1], r.replay))
        return out


def draw_zero_init(rng: np.random.Generator) -> Any:
    """A two-layer FA instance from zero weights with Gaussian feedback (for the conjecture target)."""
    from linfa.theorems import Instance

    n0, nh, nout = (int(v) for v in rng.integers(1, 4, size=3))
    w_star = rng.standard_normal((nout, n0))
    arrays = {"sxx": np.eye(n0), "syx": w_star, "syy": w_star @ w_star.T + np.eye(nout),
              "W1": np.zeros((nh, n0)), "W2": np.zeros((nout, nh)), "B2": rng.standard_normal((nh, nout))}
    return Instance(arrays, {"rule": "FA", "widths": [n0, nh, nout]})
