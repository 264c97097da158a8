"""What a sweep found, read back from its results store without re-running anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linfa._validate import count
from linfa._validate import path as as_path
from linfa.sweep.store import ResultStore
from linfa.sweep.targets import Record

__all__ = ["QUANTILES", "Summary", "summarize"]

#: Quantiles reported for the margin and every metric.
QUANTILES = (0.0, 0.01, 0.5, 0.99, 1.0)


@dataclass(frozen=True)
class Summary:
    """Counts, worst margins, quantiles and the smallest counterexample of a sweep.

    Attributes
    ----------
    path : str
        The results file.
    target : str
        Id of the swept target.
    seed : int
    n_instances : int
        Instances asked for.
    counts : dict of str to int
        Recorded instances per status ``"ok"``, ``"fail"``, ``"inconclusive"``, ``"error"``.
    worst : tuple of (int, float)
        ``(index, margin)`` of the decided instances with the smallest margins, smallest first.
    quantiles : dict of str to dict of float to float
        For ``"margin"`` and every metric: quantile level → value (NaNs ignored).
    counterexample : Record or None
        The smallest failing instance (by ``size``, then index), with its ``.npz``
        and replay command.
    first_error : Record or None
        The error of lowest index, with its traceback and replay command.
    n_run : int
        Instances computed by the call that returned this summary (0 when read back).
    seconds : float
        Wall time of that call.
    kind : {"theorem", "empirical", "existential"}
        How instances decide the claim (catalogue entries say; other targets are theorems).
    fraction : float
        Fraction of instances that must hold for an empirical claim.
    """

    path: str
    target: str
    seed: int
    n_instances: int
    counts: dict[str, int]
    worst: tuple[tuple[int, float], ...] = ()
    quantiles: dict[str, dict[float, float]] = field(default_factory=dict)
    counterexample: Record | None = None
    first_error: Record | None = None
    n_run: int = 0
    seconds: float = 0.0
    kind: str = "theorem"
    fraction: float = 1.0

    @property
    def n_recorded(self) -> int:
        """Instances recorded (any status)."""
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        """Whether every instance asked for is recorded."""
        return self.n_recorded >= self.n_instances

    @property
    def passed(self) -> bool:
        """Complete, without error, and the claim met its criterion.

        The catalogue's own rule (:func:`linfa.theorems._statistics.claim_passes`):
        a theorem holds on every decided instance, an empirical claim of
        :attr:`fraction` is not rejected by the one-sided binomial test at level
        1e-3 over the decided instances, an existential claim has a witness.
        Inconclusive instances are never counterexamples.
        """
        from linfa.theorems._statistics import claim_passes

        ok, fail, undecided, err = (self.counts.get(k, 0) for k in ("ok", "fail", "inconclusive", "error"))
        if not self.complete or err:
            return False
        return claim_passes(self.kind, self.fraction, ok, ok + fail + undecided, undecided)

    @property
    def rate(self) -> float:
        """Instances per second of the call that returned this summary."""
        return self.n_run / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable) for reports."""

        def rec(r: Record | None) -> dict[str, Any] | None:
            if r is None:
                return None
            return {"index": r.index, "status": r.status, "margin": r.margin, "size": r.size,
                    "metrics": dict(r.metrics), "params": dict(r.params), "error": r.error, "replay": r.replay}

        return {
            "path": self.path, "target": self.target, "seed": self.seed, "n_instances": self.n_instances,
            "counts": dict(self.counts), "worst": [list(w) for w in self.worst],
            "quantiles": {k: {str(q): v for q, v in d.items()} for k, d in self.quantiles.items()},
            "counterexample": rec(self.counterexample), "first_error": rec(self.first_error),
            "n_run": self.n_run, "seconds": self.seconds, "kind": self.kind, "fraction": self.fraction,
            "passed": self.passed,
        }

    def __str__(self) -> str:
        c = self.counts
        ok, fail, undecided, err = (c.get(k, 0) for k in ("ok", "fail", "inconclusive", "error"))
        missing = max(self.n_instances - self.n_recorded, 0)
        n = self.n_recorded
        decided = n - undecided - err
        of = f"{decided} decided instances ({undecided} inconclusive)" if undecided else f"{n} instances"
        if not self.complete:
            verdict = f"incomplete: {n} of {self.n_instances} instances recorded"
        elif self.kind == "theorem" and fail:
            verdict = f"fails on {fail} of {of}"
        elif err:
            verdict = f"errors on {err} of {n} instances"
        elif self.kind == "existential":
            verdict = (f"witness found: holds on {ok} of {n} instances" if self.passed
                       else f"no witness in {n} instances")
        elif decided == 0:
            verdict = f"inconclusive: none of {n} instances decided"
        elif self.kind == "empirical":
            verdict = (f"{'holds' if self.passed else 'FAILS'}: holds on {ok} of {of} "
                       f"(claims {self.fraction:.0%}; one-sided binomial test at level 1e-3)")
        else:
            verdict = (f"holds on all {of}" if self.passed else f"fails on {fail} of {of}")
        also = ", ".join(f"{k} {v}" for k, v in (("ok", ok if err else 0), ("fail", fail if err else 0),
                                                  ("error", err), ("missing", missing)) if v)
        lines = [
            f"{self.target} (seed {self.seed}): {verdict}" + (f" ({also})" if also else ""),
            f"  results: {self.path}",
        ]
        if self.n_run:
            lines.append(f"  this run: {self.n_run} instances in {self.seconds:.1f} s ({self.rate:.1f}/s)")
        if self.worst:
            lines.append("  worst margins: " + ", ".join(f"#{i} {m:.3g}" for i, m in self.worst))
        for name, qs in self.quantiles.items():
            lines.append(f"  {name}: " + "  ".join(f"q{q:g}={v:.4g}" for q, v in qs.items()))
        if self.counterexample is not None:
            r = self.counterexample
            size = "" if r.size is None else f", size {r.size}"
            margin = "" if r.margin is None else f", margin {r.margin:.3g}"
            lines += [f"  smallest counterexample: instance {r.index}{size}{margin}", f"    replay: {r.replay}"]
        if self.first_error is not None:
            r = self.first_error
            last = (r.error or "").strip().splitlines()[-1:] or [""]
            lines += [f"  first error: instance {r.index}: {last[0]}", f"    replay: {r.replay}"]
        return "\n".join(lines)


def _quantiles(values: np.ndarray) -> dict[float, float]:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return {}
    return {q: float(x) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES), strict=True)}


def from_store(store: ResultStore, *, n_worst: int = 5, n_run: int = 0, seconds: float = 0.0) -> Summary:
    """Summarise an open :class:`ResultStore`."""
    idx, margins = store.column("margin")
    undecided = store.recorded(status="inconclusive")
    if undecided.size:  # an undecided instance's margin says nothing about the claim
        keep = ~np.isin(idx, undecided)
        idx, margins = idx[keep], margins[keep]
    worst: tuple[tuple[int, float], ...] = ()
    quantiles: dict[str, dict[float, float]] = {}
    if margins.size:
        ok = ~np.isnan(margins)
        order = np.lexsort((idx[ok], margins[ok]))[:n_worst]
        worst = tuple((int(idx[ok][j]), float(margins[ok][j])) for j in order)
        quantiles["margin"] = _quantiles(margins)
    for name, values in store.metric_columns().items():
        quantiles[name] = _quantiles(values)
    return Summary(
        path=str(store.path), target=store.target, seed=store.seed, n_instances=store.n_instances,
        counts=store.counts(), worst=worst, quantiles={k: v for k, v in quantiles.items() if v},
        counterexample=store.first("status = 'fail'", "size IS NULL, size, idx"),
        first_error=store.first("status = 'error'", "idx"),
        n_run=n_run, seconds=seconds, kind=str(store.config.get("theorem_kind", "theorem")),
        fraction=float(store.config.get("fraction", 1.0)),
    )


def summarize(path: str | os.PathLike[str], *, n_worst: int = 5) -> Summary:
    """Read the summary of a sweep back from its results file, without running anything.

    Parameters
    ----------
    path : path-like
        A results file written by :func:`linfa.sweep.sweep`.
    n_worst : int
        How many of the smallest margins to report.

    Raises
    ------
    linfa.sweep.StoreError
        If the file is missing, foreign or damaged.
    """
    n_worst = count("n_worst", n_worst)
    with ResultStore.open(as_path("path", path), readonly=True) as store:
        return from_store(store, n_worst=n_worst)
