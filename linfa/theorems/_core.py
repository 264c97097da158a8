"""The catalogue's machinery: :class:`Theorem`, :class:`Verdict`, the registry and the runner.

A catalogue entry is a published claim made checkable:

* its *statement* (LaTeX), *reference* and *hypotheses*;
* its *kind*: ``"theorem"`` (must hold on every valid instance),
  ``"empirical"`` (a population claim: at least a stated ``fraction`` of
  random instances hold; a run fails when a one-sided exact binomial test
  rejects it at level :data:`~linfa.theorems._statistics.ALPHA` = 1e-3, so a
  correct claim fails a run with probability at most 1e-3) or
  ``"existential"`` (a separation or a counterexample: a search that passes
  when it finds a witness, which it reports);
* a *tolerance* and the reason for it;
* ``draw(rng, size)``, which draws ``size`` instances sharing their
  dimensions as one batched :class:`~linfa.Instance`, and
  ``check(instance) -> Verdict``, which decides them all at once (one batched
  integration per group of instances);
* optionally the name of a derivation in :mod:`linfa.symbolic.derivations`
  and the number of the fact it checks (:mod:`linfa.facts`, the numbered
  facts of docs/design.md);
* optionally ``reexamine(instance) -> Verdict``: a stricter second look
  (tighter tolerances, a longer horizon, the entry's convergence criterion)
  at the instances the check found failing, before they are reported. An
  instance a check cannot decide is *inconclusive* (with a reason), never a
  counterexample; an inconclusive instance does not fail the run.

Seeding: group ``g`` of entry ``id`` under ``--seed S`` is drawn from
``SeedSequence(S, spawn_key=(crc32(id), g))``. Groups have a fixed size per
entry, so instance ``j`` is the same whatever the number of instances asked
for and whichever other entries run.
"""

from __future__ import annotations

import importlib
import math
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from linfa._validate import count, flag
from linfa.errors import UnknownNameError
from linfa.facts import FACTS
from linfa.instances import Instance
from linfa.theorems._statistics import binomial_cdf, claim_passes, clopper_pearson_lower

__all__ = [
    "KINDS",
    "STATUSES",
    "Result",
    "Theorem",
    "Verdict",
    "catalogue",
    "draw_group",
    "draw_groups",
    "get",
    "group_seed",
    "register",
    "run",
    "unregister",
]

Kind = Literal["theorem", "empirical", "existential"]
KINDS: tuple[str, ...] = ("theorem", "empirical", "existential")
#: What a run of an entry concluded (:attr:`Result.status`).
STATUSES: tuple[str, ...] = ("holds", "fails", "inconclusive")


@dataclass(frozen=True, eq=False)
class Verdict:
    """Outcome of a check on a batch of instances.

    Parameters
    ----------
    holds : array_like of bool, shape (K,)
        Whether the claim holds on each instance (within tolerance).
    margin : array_like of float, shape (K,)
        Signed slack: ``>= 0`` where the claim holds, larger is safer; for
        a bound ``x <= tol`` it is ``tol - x``. NaN is not allowed.
    details : dict
        Per-instance diagnostics (arrays of shape ``(K,)``) and scalars, e.g.
        the measured error, the final loss.
    inconclusive : array_like of bool, shape (K,), optional
        Instances the check could not decide (e.g. an integration that has
        not converged to the limit the claim is about): neither holding nor a
        counterexample. They must not hold. Default: none.
    reason : str
        Why the inconclusive instances could not be decided.

    An instance is thus in one of three states: it *holds*, it is
    *inconclusive*, or it is a *counterexample* (neither). For an unbatched
    instance :meth:`Theorem.check` returns shape ``()``.
    """

    holds: np.ndarray
    margin: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    inconclusive: np.ndarray | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        holds = np.asarray(self.holds, dtype=bool)
        margin = np.asarray(self.margin, dtype=np.float64)
        if holds.shape != margin.shape:
            raise ValueError(f"margin: expected the shape of holds, {holds.shape}, got {margin.shape}")
        if np.any(np.isnan(margin)):
            raise ValueError("margin: expected numbers, got NaN (a check must decide every instance)")
        undecided = (np.zeros(holds.shape, dtype=bool) if self.inconclusive is None
                     else np.asarray(self.inconclusive, dtype=bool))
        if undecided.shape != holds.shape:
            raise ValueError(f"inconclusive: expected the shape of holds, {holds.shape}, got {undecided.shape}")
        if np.any(undecided & holds):
            raise ValueError("inconclusive: an instance cannot both hold and be inconclusive")
        if not isinstance(self.reason, str):
            raise TypeError(f"reason: expected a string, got {type(self.reason).__name__}")
        object.__setattr__(self, "holds", holds)
        object.__setattr__(self, "margin", margin)
        object.__setattr__(self, "details", dict(self.details))
        object.__setattr__(self, "inconclusive", undecided)

    @property
    def counterexample(self) -> np.ndarray:
        """Instances that neither hold nor are inconclusive; shape ``(K,)``."""
        assert self.inconclusive is not None
        return ~self.holds & ~self.inconclusive

    def squeeze(self) -> Verdict:
        """The verdict of a batch of one as an unbatched verdict."""
        assert self.inconclusive is not None
        return Verdict(
            self.holds.reshape(()),
            self.margin.reshape(()),
            {k: (np.asarray(v)[0] if np.ndim(v) >= 1 and np.shape(v)[0] == 1 else v) for k, v in self.details.items()},
            self.inconclusive.reshape(()),
            self.reason,
        )


DrawFn = Callable[[np.random.Generator, int], Instance]
CheckFn = Callable[[Instance], Verdict]


@dataclass(frozen=True, eq=False)
class Theorem:
    """A published claim with a numerical check.

    Parameters
    ----------
    id : str
        ``paper.claim``, e.g. ``"lillicrap2016.zero_init_alignment"``.
    paper : str
        Short citation, e.g. ``"Lillicrap et al. 2016"``.
    title : str
        One line.
    statement : str
        The claim in LaTeX.
    reference : str
        Paper, venue, section or figure.
    hypotheses : tuple of str
        Conditions the instances satisfy (and the claim needs).
    kind : {"theorem", "empirical", "existential"}
    tolerance : float
        The threshold the check compares against.
    tolerance_reason : str
        Why this tolerance (integrator accuracy, rounding, horizon, ...).
    draw : callable
        ``draw(rng, size) -> Instance`` with ``size`` instances batched
        (leading axis ``size`` on every array, shared dimensions).
    check_batch : callable
        ``check_batch(instance) -> Verdict`` on a batched instance, with
        verdict arrays of shape ``(size,)``; use :meth:`check`, which also
        accepts a single instance.
    fraction : float
        For ``"empirical"`` claims, the claimed population fraction ``p`` of
        holding instances; a run fails when ``P(K <= holding | n, p) < 1e-3``
        (one-sided exact binomial test over the ``n`` decided instances).
    derivation : str or None
        Name of a builder in :mod:`linfa.symbolic.derivations` whose chain
        ends in this entry's claim.
    derivation_claim : str or None
        The name of that claim step (:meth:`linfa.symbolic.Derivation.conclude`);
        None means the derivation's last claim.
    fact : int or None
        Number of the fact of docs/design.md the entry checks
        (:func:`linfa.facts.get`), or None for a claim outside them.
    group_size : int
        Instances per batched draw.
    instances : int
        Default number of instances; ``fast_instances`` with ``--fast``.
    reexamine : callable or None
        ``reexamine(instance) -> Verdict`` on the batch of instances the check
        found failing (not inconclusive): decides them more carefully. Its
        holding instances hold, its inconclusive ones are inconclusive, and
        only its failing ones are counterexamples.
    """

    id: str
    paper: str
    title: str
    statement: str
    reference: str
    hypotheses: tuple[str, ...]
    kind: Kind
    tolerance: float
    tolerance_reason: str
    draw: DrawFn
    check_batch: CheckFn
    fraction: float = 1.0
    derivation: str | None = None
    derivation_claim: str | None = None
    fact: int | None = None
    group_size: int = 8
    instances: int = 32
    fast_instances: int = 8
    reexamine: CheckFn | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or self.id.count(".") != 1 or not all(p for p in self.id.split(".")):
            raise ValueError(f"id: expected 'paper.claim', got {self.id!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction: expected a number in (0, 1], got {self.fraction!r}")
        if self.kind == "theorem" and self.fraction != 1.0:
            raise ValueError("fraction: a theorem must hold on every instance (fraction 1)")
        for name in ("group_size", "instances", "fast_instances"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if self.fact is not None and self.fact not in {f.number for f in FACTS}:
            raise ValueError(f"fact: expected None or a fact number 1..{len(FACTS)} (linfa.facts), got {self.fact!r}")
        if not callable(self.draw) or not callable(self.check_batch):
            raise TypeError("draw, check_batch: expected callables")
        claim = self.derivation_claim
        if claim is not None and (self.derivation is None or not isinstance(claim, str)):
            raise ValueError("derivation_claim: expected a claim name of the entry's derivation, and a derivation")
        if self.reexamine is not None and not callable(self.reexamine):
            raise TypeError(f"reexamine: expected a callable or None, got {type(self.reexamine).__name__}")
        object.__setattr__(self, "hypotheses", tuple(self.hypotheses))

    @property
    def module(self) -> str:
        """The paper key, the part of the id before the dot."""
        return self.id.split(".")[0]

    @property
    def required_fraction(self) -> float | None:
        """Fraction of instances that must hold: 1 for a theorem, :attr:`fraction` if empirical, else None."""
        if self.kind == "empirical":
            return self.fraction
        return 1.0 if self.kind == "theorem" else None

    def to_json(self) -> dict[str, Any]:
        """The entry's description as JSON data (the leading fields of :meth:`Result.to_json`)."""
        return {
            "id": self.id,
            "paper": self.paper,
            "title": self.title,
            "kind": self.kind,
            "statement": self.statement,
            "reference": self.reference,
            "hypotheses": list(self.hypotheses),
            "tolerance": self.tolerance,
            "tolerance_reason": self.tolerance_reason,
            "required_fraction": self.required_fraction,
        }

    def check(self, instance: Instance) -> Verdict:
        """Decide the claim on one instance or a batch of them.

        Parameters
        ----------
        instance : Instance
            As drawn by :attr:`draw` (batched) or one of them
            (:meth:`Instance.take`, or :meth:`Instance.load` of a saved one).

        Returns
        -------
        Verdict
            Arrays of shape ``(K,)`` for a batch of ``K``, ``()`` for one.
        """
        if not isinstance(instance, Instance):
            raise TypeError(f"instance: expected a linfa.Instance, got {type(instance).__name__}")
        if instance.size is None:
            batched = Instance({k: a[None] for k, a in instance.arrays.items()}, instance.params,
                               instance.seed, 1, instance.name)
            return self._checked(batched).squeeze()
        return self._checked(instance)

    def _checked(self, instance: Instance) -> Verdict:
        verdict = self.check_batch(instance)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"{self.id}: check returned {type(verdict).__name__}, expected a Verdict")
        if verdict.holds.shape != (instance.size,):
            raise ValueError(f"{self.id}: check returned shape {verdict.holds.shape}, expected ({instance.size},)")
        return verdict

    def passes(self, holding: int, total: int, inconclusive: int = 0) -> bool:
        """Whether ``holding`` of ``total`` instances (``inconclusive`` undecided) meet this claim's criterion.

        A theorem passes without a counterexample; an empirical claim unless the
        binomial test over the decided instances rejects it (:meth:`p_value` below
        ``ALPHA``); an existential claim with a witness. Inconclusive instances
        are never counterexamples.
        """
        return claim_passes(self.kind, self.fraction, holding, total, inconclusive)

    def p_value(self, holding: int, decided: int) -> float | None:
        """One-sided binomial p-value of an empirical claim: ``P(K <= holding | decided, fraction)``.

        None for other kinds or when no instance was decided.
        """
        if self.kind != "empirical" or decided < 1:
            return None
        return binomial_cdf(holding, decided, self.fraction)

    def load_derivation(self) -> Any:
        """The :mod:`linfa.symbolic` derivation object, or None (imports sympy)."""
        if self.derivation is None:
            return None
        module = importlib.import_module("linfa.symbolic.derivations")
        return getattr(module, self.derivation)()

    def __repr__(self) -> str:
        return f"Theorem({self.id!r}, kind={self.kind!r})"


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Theorem] = {}


def register(theorem: Theorem, *, replace: bool = False) -> Theorem:
    """Add ``theorem`` to the catalogue and return it.

    Raises
    ------
    ValueError
        If its id is taken and ``replace`` is false.
    """
    if not isinstance(theorem, Theorem):
        raise TypeError(f"theorem: expected a Theorem, got {type(theorem).__name__}")
    if theorem.id in _REGISTRY and not replace:
        raise ValueError(f"theorem: id {theorem.id!r} is already registered (pass replace=True)")
    _REGISTRY[theorem.id] = theorem
    return theorem


def _id(name: str, id: Any) -> str:
    if not isinstance(id, str):
        raise TypeError(f"{name}: expected a catalogue id such as 'saxe2014.mode_dynamics', got {type(id).__name__} "
                        f"{id!r}"[:200])
    return id


def unregister(id: str) -> Theorem:
    """Remove and return the entry ``id``.

    Raises
    ------
    linfa.UnknownNameError
        (a ``KeyError`` and ``ValueError``) listing the ids, if there is no such entry.
    """
    _id("id", id)
    try:
        return _REGISTRY.pop(id)
    except KeyError:
        raise UnknownNameError("id", id, _REGISTRY, kind="catalogue entry") from None


def get(id: str) -> Theorem:
    """The entry ``id``.

    Raises
    ------
    linfa.UnknownNameError
        (a ``KeyError`` and ``ValueError``) naming close matches and listing the ids, if there is no such entry.
    """
    return _get("id", id)


def _get(name: str, id: Any) -> Theorem:
    _id(name, id)
    try:
        return _REGISTRY[id]
    except KeyError:
        close = [k for k in _REGISTRY if id in k or k.startswith(id.split(".")[0] + ".")]
        hint = f" (did you mean one of {close[:5]}?)" if close else " (see `linfa list`)"
        raise UnknownNameError(name, id, _REGISTRY, kind="catalogue entry", hint=hint) from None


def catalogue(ids: list[str] | None = None) -> list[Theorem]:
    """Entries in registration order; ``ids`` selects exact ids or whole papers (``"saxe2014"``)."""
    if isinstance(ids, str):
        raise TypeError(f"ids: expected a list of ids or paper modules such as [{ids!r}], got the string {ids!r}")
    if not ids:
        return list(_REGISTRY.values())
    try:
        keys = list(ids)
    except TypeError:
        raise TypeError(f"ids: expected a list of ids or paper modules, got {type(ids).__name__}") from None
    out: list[Theorem] = []
    for i, key in enumerate(keys):
        _id(f"ids[{i}]", key)
        if key in _REGISTRY:
            chosen = [_REGISTRY[key]]
        else:
            chosen = [t for t in _REGISTRY.values() if t.module == key]
            if not chosen:
                _get(f"ids[{i}]", key)  # raises with a hint
        out.extend(t for t in chosen if t not in out)
    return out


# --------------------------------------------------------------------------- runner
def group_seed(theorem_id: str, seed: int, group: int) -> np.random.SeedSequence:
    """Seed of instance group ``group`` of entry ``theorem_id`` under run seed ``seed``."""
    return np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(theorem_id.encode()), int(group)))


def draw_group(theorem: Theorem, seed: int, group: int, positions: Sequence[int] | None = None) -> Instance:
    """Draw instance group ``group`` of ``theorem`` under run seed ``seed``.

    The group's ``theorem.group_size`` instances are drawn together from
    :func:`group_seed`; ``positions`` keeps only those (in that order).

    Returns
    -------
    Instance
        Batched, with ``seed = {"entropy", "spawn_key", "group"}`` and
        ``name = theorem.id``.
    """
    ss = group_seed(theorem.id, seed, group)
    inst = theorem.draw(np.random.default_rng(ss), theorem.group_size)
    if inst.size != theorem.group_size:
        raise ValueError(f"{theorem.id}: draw returned {inst.size} instances, expected {theorem.group_size}")
    seed_info = {"entropy": int(seed), "spawn_key": [int(k) for k in ss.spawn_key], "group": int(group)}
    if positions is None:
        return Instance(inst.arrays, inst.params, seed_info, theorem.group_size, theorem.id)
    pos = np.asarray(positions, dtype=np.intp)
    return Instance({k: a[pos] for k, a in inst.arrays.items()}, inst.params, seed_info, len(pos), theorem.id)


def draw_groups(theorem: Theorem, n: int, seed: int) -> Iterator[tuple[int, Instance]]:
    """Draw ``n`` instances of ``theorem`` in groups of ``theorem.group_size`` (:func:`draw_group`).

    The arguments are checked at the call, before the first group is drawn; the
    groups are then drawn one at a time as the iterator is advanced.
    """
    if not isinstance(theorem, Theorem):
        raise TypeError(f"theorem: expected a Theorem, got {type(theorem).__name__}")
    return _groups(theorem, count("n", n), count("seed", seed))


def _groups(theorem: Theorem, n: int, seed: int) -> Iterator[tuple[int, Instance]]:
    g = 0
    remaining = n
    while remaining > 0:
        size = min(theorem.group_size, remaining)
        yield g, draw_group(theorem, seed, g, None if size == theorem.group_size else range(size))
        remaining -= size
        g += 1


@dataclass(frozen=True, eq=False)
class Result:
    """What running one entry on ``instances`` instances found.

    ``worst_margin`` is the smallest margin over instances, except for
    existential claims, where it is the margin of the best witness.
    ``witness`` locates that witness (existential) or the worst instance
    (others): ``{"group", "index", "entropy", "spawn_key", "margin"}``.
    ``inconclusive`` counts the instances that could not be decided, with the
    checks' ``inconclusive_reasons``; ``p_value`` and ``fraction_lower_bound``
    (the Clopper–Pearson bound at level 1e-3) describe an empirical claim's run.
    """

    theorem: Theorem
    instances: int
    holding: int
    passed: bool
    worst_margin: float
    seconds: float
    witness: dict[str, Any] | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    derivation: str = "none"
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    inconclusive: int = 0
    inconclusive_reasons: list[str] = field(default_factory=list)
    p_value: float | None = None
    fraction_lower_bound: float | None = None

    @property
    def status(self) -> str:
        """``"fails"`` (a counterexample, a rejected empirical claim, an error, a failed derivation),
        ``"inconclusive"`` (nothing against the claim, but some theorem instances, or every instance,
        undecided) or ``"holds"``; see :data:`STATUSES`."""
        if not self.passed:
            return "fails"
        if self.inconclusive and (self.theorem.kind == "theorem" or self.inconclusive == self.instances):
            return "inconclusive"
        return "holds"

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data (see :data:`linfa.cli.JSON_SCHEMA`)."""
        t = self.theorem
        return {
            **t.to_json(),
            "instances": self.instances,
            "holding": self.holding,
            "passed": self.passed,
            "status": self.status,
            "inconclusive": self.inconclusive,
            "inconclusive_reasons": list(self.inconclusive_reasons),
            "p_value": self.p_value,
            "fraction_lower_bound": self.fraction_lower_bound,
            "worst_margin": _finite_or_none(self.worst_margin),
            "seconds": self.seconds,
            "witness": self.witness,
            "failures": self.failures,
            "derivation": {"name": t.derivation, "claim": t.derivation_claim, "status": self.derivation},
            "error": self.error,
            "details": self.details,
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _summary(values: list[np.ndarray]) -> dict[str, float]:
    flat = np.concatenate([np.ravel(v) for v in values]).astype(np.float64)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {}
    return {"min": float(flat.min()), "median": float(np.median(flat)), "max": float(flat.max())}


_DERIVATION_CACHE: dict[str, Any] = {}


def verify_derivation(theorem: Theorem) -> str:
    """Build the entry's derivation and verify the chain to its claim, and the numerical cross-checks.

    Returns ``"verified"`` (every step proved for all dimensions, every cross-check
    passed, and the entry's claim step reached from earlier steps),
    ``"checked at sizes (<scope>)"`` (some steps proved exactly only at stated
    sizes, or only tested numerically, see :attr:`linfa.symbolic.Report.scope`: not a
    proof for every size), ``"failed: ..."`` (a step or cross-check failed, the steps
    do not form a chain to the claims, the entry names no claim of the derivation, or
    the derivation returned no report) or ``"none"``.
    """
    if theorem.derivation is None:
        return "none"
    try:
        if theorem.derivation not in _DERIVATION_CACHE:
            derivation = theorem.load_derivation()
            report = derivation.verify(cross_check=True, rng=np.random.default_rng(0))
            _DERIVATION_CACHE[theorem.derivation] = report
        report = _DERIVATION_CACHE[theorem.derivation]
        if report is None:
            return "failed: the derivation returned no report"
        claims = tuple(getattr(report, "claims", ()))
        claim = theorem.derivation_claim or (claims[-1] if claims else None)
        if claim is None or claim not in claims:
            return (f"failed: {theorem.derivation} has no claim step {claim!r} "
                    f"(its claims: {', '.join(claims) or 'none'})")
        if not bool(report):
            return "failed: " + ", ".join(str(n) for n in getattr(report, "failed", ["verification"]))
        scope_of = getattr(report, "scope_of", None)
        scope = scope_of(claim) if scope_of is not None else getattr(report, "scope", None)
        if scope is None:
            return "failed: the report does not say what it covers (no scope)"
        return "verified" if scope == "dimension-free" else f"checked at sizes ({scope})"
    except (ImportError, AttributeError) as exc:
        return f"unavailable: {exc}"
    except Exception as exc:  # a failing step raises; report it, don't crash the run
        return f"failed: {type(exc).__name__}: {exc}"


def run(
    theorem: Theorem,
    *,
    instances: int | None = None,
    seed: int = 0,
    fast: bool = False,
    derivation: bool = True,
) -> Result:
    """Check ``theorem`` on ``instances`` seeded random instances.

    Parameters
    ----------
    theorem : Theorem
    instances : int, optional
        Defaults to ``theorem.instances`` (``theorem.fast_instances`` if ``fast``).
    seed : int
        Run seed; see the module docstring for how groups are seeded.
    fast : bool
        Use the fast default number of instances.
    derivation : bool
        Also build and verify the symbolic derivation (imports sympy).

    Returns
    -------
    Result
        An exception raised by the check is caught and reported in
        ``Result.error`` (and the entry fails).
    """
    if not isinstance(theorem, Theorem):
        raise TypeError(f"theorem: expected a Theorem, got {type(theorem).__name__}")
    fast = flag("fast", fast)
    derivation = flag("derivation", derivation)
    n = (theorem.fast_instances if fast else theorem.instances) if instances is None else count(
        "instances", instances, minimum=1)
    seed = count("seed", seed)
    start = time.perf_counter()
    holding = 0
    total = 0
    undecided = 0
    reasons: list[str] = []
    best: tuple[float, dict[str, Any]] | None = None
    worst: tuple[float, dict[str, Any]] | None = None
    failures: list[dict[str, Any]] = []
    detail_values: dict[str, list[np.ndarray]] = {}
    error = None
    try:
        for g, inst in draw_groups(theorem, int(n), int(seed)):
            verdict = _reexamined(theorem, inst, theorem.check(inst))
            assert inst.seed is not None and verdict.inconclusive is not None
            if verdict.inconclusive.any() and verdict.reason and verdict.reason not in reasons:
                reasons.append(verdict.reason)
            for i, (ok, m, bad) in enumerate(zip(verdict.holds, verdict.margin, verdict.counterexample, strict=True)):
                where = {**inst.seed, "group": g, "index": i, "margin": float(m)}
                if best is None or m > best[0]:
                    best = (float(m), where)
                if (ok or bad) and (worst is None or m < worst[0]):
                    worst = (float(m), where)
                if bad and len(failures) < 5:
                    failures.append(where)
            holding += int(np.sum(verdict.holds))
            undecided += int(np.sum(verdict.inconclusive))
            total += int(verdict.holds.size)
            for k, v in verdict.details.items():
                arr = np.asarray(v)
                if arr.dtype.kind in "fiub":
                    detail_values.setdefault(k, []).append(arr)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    deriv = verify_derivation(theorem) if derivation else "skipped"
    passed = error is None and theorem.passes(holding, total, undecided) and not deriv.startswith("failed")
    p_value = theorem.p_value(holding, total - undecided)
    lower = (clopper_pearson_lower(holding, total - undecided)
             if theorem.kind == "empirical" and total > undecided else None)
    if theorem.kind == "existential":
        margin, witness = (best[0], best[1]) if best is not None else (math.nan, None)
        if witness is not None and not passed:
            witness = None
    else:
        margin, witness = (worst[0], worst[1]) if worst is not None else (math.nan, None)
    return Result(
        theorem=theorem,
        instances=total,
        holding=holding,
        passed=passed,
        worst_margin=margin,
        seconds=time.perf_counter() - start,
        witness=witness,
        failures=failures,
        derivation=deriv,
        error=error,
        details={k: _summary(v) for k, v in detail_values.items()},
        inconclusive=undecided,
        inconclusive_reasons=reasons,
        p_value=p_value,
        fraction_lower_bound=lower,
    )


def _reexamined(theorem: Theorem, inst: Instance, verdict: Verdict) -> Verdict:
    """``verdict`` with its counterexamples decided again by ``theorem.reexamine`` (if any)."""
    bad = np.flatnonzero(verdict.counterexample)
    if theorem.reexamine is None or bad.size == 0:
        return verdict
    sub = Instance({k: a[bad] for k, a in inst.arrays.items()}, inst.params, inst.seed, int(bad.size), inst.name)
    second = theorem.reexamine(sub)
    if not isinstance(second, Verdict) or second.holds.shape != (bad.size,):
        raise ValueError(f"{theorem.id}: reexamine must return a Verdict of shape ({bad.size},)")
    assert verdict.inconclusive is not None and second.inconclusive is not None
    holds, margin, undecided = verdict.holds.copy(), verdict.margin.copy(), verdict.inconclusive.copy()
    holds[bad], margin[bad], undecided[bad] = second.holds, second.margin, second.inconclusive
    reason = "; ".join(r for r in (verdict.reason if verdict.inconclusive.any() else "",
                                   second.reason if second.inconclusive.any() else "") if r)
    details = {**verdict.details, **{f"reexamined_{k}": v for k, v in second.details.items()
                                     if not (np.ndim(v) >= 1 and np.shape(v)[0] == bad.size)}}
    return Verdict(holds, margin, details, undecided, reason)


def replay(theorem: Theorem, seed_info: Mapping[str, Any]) -> Instance:
    """Redraw the single instance ``seed_info`` (a :attr:`Result.witness` or failure) of ``theorem``."""
    ss = np.random.SeedSequence(int(seed_info["entropy"]), spawn_key=tuple(int(k) for k in seed_info["spawn_key"]))
    inst = theorem.draw(np.random.default_rng(ss), theorem.group_size)
    seed = {"entropy": int(seed_info["entropy"]), "spawn_key": list(ss.spawn_key), "group": seed_info.get("group")}
    batch = Instance(inst.arrays, inst.params, seed, inst.size, theorem.id)
    return batch.take(int(seed_info["index"]))
