"""Property-test a conjecture: search instances, shrink a counterexample, report it reproducibly.

A conjecture is a predicate over an instance, or over an integrated run of
it. It returns ``True``/``False`` or a signed margin (``>= 0`` means the
conjecture holds on that instance). :func:`conjecture` lets hypothesis search
a strategy's instances for one where the predicate fails, shrinks it to the
smallest dimensions and simplest values it can, saves it as ``.npz`` and
gives the command that replays it (``linfa replay PATH --predicate MODULE:NAME``).

Numerical predicates are judged with a tolerance: an instance is a
counterexample only if its margin is below ``-(atol + rtol · scale)``
(defaults :data:`ATOL` and :data:`RTOL`), so rounding noise such as a margin
of ``-1e-15`` is not reported; with ``t1`` a failing instance is integrated
again at tighter tolerances (:data:`TIGHT_RTOL`, :data:`TIGHT_ATOL`) and
only counts if it still fails. ``conjecture(..., n_instances=N)`` also
answers "how often does it fail?": the failure fraction over ``N`` instances
with a 95 % Wilson interval.
"""

from __future__ import annotations

import importlib
import os
import random
import re
import shlex
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample
from hypothesis.strategies import SearchStrategy

from linfa import plugins, theorems
from linfa._validate import count, real
from linfa.instances import Instance

__all__ = ["ATOL", "RTOL", "ConjectureResult", "Outcome", "TrustedPredicateWarning", "UntrustedPredicateError",
           "conjecture", "evaluate", "replay"]

Predicate = Callable[..., Any]

#: Default absolute tolerance on a predicate's margin: a margin ``>= -ATOL`` holds.
ATOL = 1e-12
#: Default relative tolerance, times the scale ``max(|lhs|, |rhs|)`` of a predicate returning ``(lhs, rhs)``.
RTOL = 1e-9
#: Integration tolerances of the re-check of a failing instance (1000 times tighter than the catalogue's).
TIGHT_RTOL, TIGHT_ATOL = 1e-12, 1e-14
#: Default directory of saved counterexamples, relative to the current directory.
RESULTS_DIR = "linfa-results"

@dataclass(frozen=True)
class Outcome:
    """The predicate's value on one instance: ``holds`` and the ``margin`` (None for a bare bool)."""

    holds: bool
    margin: float | None
    tolerance: float = 0.0

    def __str__(self) -> str:
        m = "" if self.margin is None else f", margin {self.margin:.3g}"
        tol = f" (tolerance {self.tolerance:.1g})" if self.margin is not None and self.tolerance else ""
        return f"{'holds' if self.holds else 'FAILS'}{m}{tol}"


def _outcome(value: Any, atol: float = ATOL, rtol: float = RTOL) -> Outcome:
    """Judge a predicate's value: a bool; a margin ``m`` (holds iff ``m >= -atol``); or ``(lhs, rhs)`` for
    ``lhs >= rhs`` (margin ``lhs - rhs``, holds iff it is ``>= -(atol + rtol · max(|lhs|, |rhs|))``)."""
    if isinstance(value, bool | np.bool_):
        return Outcome(bool(value), None)
    scale = 0.0
    try:
        if isinstance(value, tuple) and len(value) == 2:
            lhs, rhs = float(value[0]), float(value[1])
            m, scale = lhs - rhs, max(abs(lhs), abs(rhs))
        else:
            m = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"predicate: expected a bool or a float margin (or a pair (lhs, rhs) meaning lhs >= rhs), "
                        f"got {type(value).__name__}") from None
    if np.isnan(m):
        raise ValueError("predicate: returned NaN; return a number (>= 0 where the conjecture holds) or a bool")
    tol = float(atol) + float(rtol) * scale
    return Outcome(bool(m >= -tol), m, tol)


def _tolerances(atol: Any, rtol: Any) -> tuple[float, float]:
    for name, v in (("atol", atol), ("rtol", rtol)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.floating) or not np.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(atol), float(rtol)


def evaluate(predicate: Predicate, instance: Instance, *, t1: float | None = None, n_save: int = 8,
             atol: float = ATOL, rtol: float = RTOL, tight: bool = False) -> Outcome:
    """Evaluate ``predicate`` on ``instance`` (after integrating it to ``t1`` if given).

    Parameters
    ----------
    predicate : callable
        ``predicate(instance)`` if ``t1`` is None, else
        ``predicate(instance, solution)`` with the :class:`linfa.integrate.Solution`
        of ``instance.problem()`` saved at ``n_save + 1`` equally spaced
        times in ``[0, t1]``, integrated by :func:`linfa.theorems.solve` (the
        catalogue's tolerances).
    instance : Instance
    t1 : float, optional
    n_save : int
    atol, rtol : float
        Tolerance on the margin (see :func:`conjecture`).
    tight : bool
        Integrate at :data:`TIGHT_RTOL`, :data:`TIGHT_ATOL` instead of the
        catalogue's tolerances.

    Returns
    -------
    Outcome

    Raises
    ------
    RuntimeError
        If the integration fails (the instance is neither a witness nor a
        counterexample then).
    """
    if not callable(predicate):
        raise TypeError(f"predicate: expected a callable, got {type(predicate).__name__}")
    if not isinstance(instance, Instance):
        raise TypeError(f"instance: expected a linfa Instance, got {type(instance).__name__}")
    atol, rtol = _tolerances(atol, rtol)
    if t1 is None:
        return _outcome(predicate(instance), atol, rtol)
    t1 = real("t1", t1, positive=True)
    n_save = count("n_save", n_save, minimum=1)
    rule, task, state = instance.problem()
    saveat = np.linspace(0.0, float(t1), int(n_save) + 1)
    if tight:
        from linfa.dynamics import solve

        sol = solve(rule, task, state, float(t1), saveat=saveat, rtol=TIGHT_RTOL, atol=TIGHT_ATOL)
    else:
        sol = theorems.solve(rule, task, state, float(t1), saveat=saveat)
    if not sol.ok.all():
        raise RuntimeError(f"instance: integration to t1 = {t1} failed with status {np.asarray(sol.status).tolist()}")
    return _outcome(predicate(instance, sol), atol, rtol)


def _reference(predicate: Predicate) -> str | None:
    """``module:qualname`` of an importable top-level function, else None."""
    module = getattr(predicate, "__module__", None)
    qual = getattr(predicate, "__qualname__", "")
    if not module or not qual or "<" in qual or module == "__main__":
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qual}" if obj is predicate else None


def _resolve(ref: str) -> Predicate:
    """Import the predicate ``ref`` (``module:function``); only ever called on a name the *user* gave."""
    module, _, qual = ref.partition(":")
    if not module or not qual:
        raise ValueError(f"predicate: expected 'module:function', got {ref!r}")
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ValueError(f"predicate: cannot import module {module!r} of {ref!r} ({exc})") from None
    except AttributeError:
        raise ValueError(f"predicate: module {module!r} has no attribute {qual!r}") from None
    if not callable(obj):
        raise TypeError(f"predicate: {ref!r} is not callable")
    return obj


class TrustedPredicateWarning(UserWarning):
    """``replay(..., trust=True)`` is importing and running a predicate named inside a file.

    Raised as a warning every time, so that a log shows which file's code ran; filter it
    (``warnings.filterwarnings("ignore", category=TrustedPredicateWarning)``) once you have
    decided to trust a source, without silencing other warnings.
    """


class UntrustedPredicateError(ValueError):
    """A saved instance names a predicate that the caller did not name and did not agree to trust.

    Attributes
    ----------
    recorded : str
        The ``module:function`` recorded in the file.
    """

    def __init__(self, recorded: str, source: str) -> None:
        self.recorded = recorded
        super().__init__(
            f"predicate: {source} asks to import and run {recorded!r}; linfa does not import code named inside "
            f"a data file. If you know that function, name it yourself: "
            f"linfa replay {shlex.quote(source)} --predicate {shlex.quote(recorded)} "
            f"(replay(..., predicate={recorded!r}) in Python), or, if you trust the file and everything "
            "importable from where you run it, pass --trust (trust=True)"
        )


@dataclass(frozen=True)
class ConjectureResult:
    """What :func:`conjecture` found.

    ``str(result)`` is a compact report (dimensions, seed, margin, where the
    full instance is saved, the replay command); the matrices are in the
    saved file, not on the screen.

    Attributes
    ----------
    name : str
    holds : bool
        True when no counterexample was found in ``examples`` tries.
    examples : int
        Instances evaluated (search and shrinking).
    counterexample : Instance or None
        The shrunk counterexample.
    outcome : Outcome or None
        The predicate's value on it (at the tight integration tolerances when
        the predicate integrates).
    path : str or None
        Where it was saved (``.npz``, an absolute path).
    command : str or None
        The shell command that replays it from any directory; None when the
        predicate cannot be imported (a lambda, a local function or one
        defined in ``__main__``), see ``note``.
    note : str
        Why there is no replay command, or what was discarded (failures that
        vanished at tighter integration tolerances).
    tried, failed : int
        With ``n_instances``: instances evaluated for the failure fraction
        and how many of them fail (0 and 0 otherwise).
    atol, rtol : float
        The tolerances the margins were judged with.
    """

    name: str
    holds: bool
    examples: int
    counterexample: Instance | None = None
    outcome: Outcome | None = None
    path: str | None = None
    command: str | None = None
    note: str = ""
    tried: int = 0
    failed: int = 0
    atol: float = ATOL
    rtol: float = RTOL

    @property
    def fraction(self) -> float | None:
        """Failure fraction ``failed / tried`` (None without ``n_instances``)."""
        return self.failed / self.tried if self.tried else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % Wilson score interval of the failure fraction (None without ``n_instances``)."""
        if not self.tried:
            return None
        n, z = self.tried, 1.959963984540054
        p = self.failed / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, float(centre - half)), min(1.0, float(centre + half))

    def _fraction_line(self) -> str:
        if not self.tried:
            return ""
        lo, hi = self.interval  # type: ignore[misc]
        return (f"fails on {self.failed} of {self.tried} instances "
                f"({self.failed / self.tried:.0%}; 95 % interval {lo:.0%}–{hi:.0%})")

    def __str__(self) -> str:
        frac = self._fraction_line()
        if self.holds:
            head = f"conjecture {self.name!r}: no counterexample in {self.examples} instances"
            lines = [head + (f"; {frac}" if frac else "")]
            if self.note:
                lines.append(f"  note: {self.note}")
            return "\n".join(lines)
        assert self.counterexample is not None
        inst = self.counterexample
        lines = [f"conjecture {self.name!r} is FALSE: {self.outcome} after {self.examples} instances"]
        if frac:
            lines.append(f"  {frac}")
        dims = f"widths {inst.widths}, rule {inst.params.get('rule')}" if inst.depth else \
            ", ".join(f"{k} {a.shape}" for k, a in inst.arrays.items())
        lines.append(f"  counterexample: {dims}, instance seed {(inst.seed or {}).get('seed', '?')}")
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  full instance: {self.path}")
        lines.append(f"  replay: {self.command}" if self.command else "  replay: not available (see note)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if self.holds:
            return f"ConjectureResult({self.name!r}, holds, examples={self.examples})"
        return f"ConjectureResult({self.name!r}, FALSE, {self.outcome}, path={self.path!r})"


def _module_root(module: str) -> str | None:
    """Directory that must be on ``sys.path`` to import ``module`` (its top-level package's parent)."""
    mod = sys.modules.get(module.split(".")[0])
    origin = getattr(mod, "__file__", None)
    if origin is None:
        return None
    path = os.path.dirname(os.path.abspath(origin))
    return os.path.dirname(path) if os.path.basename(origin).startswith("__init__.") else path


def _replay_command(path: str, ref: str | None) -> tuple[str | None, str]:
    """The replay command for a saved counterexample, runnable from any directory, and a note."""
    if ref is None:
        return None, ("the predicate cannot be imported (a lambda, a local function or one defined in "
                      "__main__): define it as a top-level function of a module to get a replay command; "
                      "linfa.testing.replay(path, predicate=fn) replays it in Python")
    command = f"linfa{plugins.cli_options()} replay {shlex.quote(path)} --predicate {shlex.quote(ref)}"
    root = _module_root(ref.partition(":")[0])
    # sys.path[0] is the script's directory or the current one: importable from there only, not from anywhere
    on_path = {os.path.abspath(p) for p in sys.path[1:] if p not in ("", ".")}
    if root is not None and root not in on_path:
        command = f"PYTHONPATH={shlex.quote(root)} {command}"  # say where the predicate's module lives
    return command, ""


def conjecture(
    predicate: Predicate,
    *,
    strategy: SearchStrategy[Instance],
    t1: float | None = None,
    n_save: int = 8,
    max_examples: int = 100,
    seed: int = 0,
    outdir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    n_instances: int | None = None,
) -> ConjectureResult:
    """Search for a counterexample to ``predicate``; shrink and save it if found.

    Parameters
    ----------
    predicate : callable
        ``predicate(instance)`` or, with ``t1``, ``predicate(instance,
        solution)``, returning a bool; a float margin (``>= 0`` where the
        conjecture holds); or a pair ``(lhs, rhs)`` meaning ``lhs >= rhs``
        (margin ``lhs - rhs``). To be replayable from the command line it must
        be a top-level function of an importable module.
    strategy : SearchStrategy of Instance
        E.g. :func:`linfa.testing.instances`.
    t1 : float, optional
        Integrate each instance to ``t1`` first (``n_save + 1`` saved times).
        A failing instance is integrated again at :data:`TIGHT_RTOL`,
        :data:`TIGHT_ATOL` and counts only if it still fails.
    n_save : int
    max_examples : int
        Instances hypothesis may try before declaring no counterexample.
    seed : int
        Seed of the search; the same seed gives the same counterexample.
    outdir : path, optional
        Where to save the counterexample (default ``./linfa-results``, created).
    name : str, optional
        Name of the conjecture (default: the predicate's name).
    atol, rtol : float
        Tolerance: an instance fails only if its margin is below
        ``-(atol + rtol · max(|lhs|, |rhs|))`` (the relative part applies to
        ``(lhs, rhs)`` pairs). Defaults :data:`ATOL` ``= 1e-12`` and
        :data:`RTOL` ``= 1e-9``: rounding is not a counterexample. Set both to
        0 for the exact sign.
    n_instances : int, optional
        Also evaluate ``n_instances`` instances of ``strategy`` (seeded by
        ``seed``, before the search) and report the failure fraction with a
        95 % Wilson interval. They are the strategy's instances as hypothesis
        generates them (it favours small and simple ones), not a uniform
        sample of a population.

    Returns
    -------
    ConjectureResult

    Examples
    --------
    >>> from linfa.testing import conjecture, instances
    >>> res = conjecture(lambda inst: inst.arrays["syy"].trace() >= 0,
    ...                  strategy=instances(rule="BP", widths=(2, 1)), max_examples=5)
    >>> res.holds
    True
    """
    if not callable(predicate):
        raise TypeError(f"predicate: expected a callable, got {type(predicate).__name__}")
    if not isinstance(strategy, SearchStrategy):
        raise TypeError(f"strategy: expected a hypothesis strategy of Instances, got {type(strategy).__name__}")
    if t1 is not None and (not np.isfinite(t1) or t1 <= 0):
        raise ValueError(f"t1: expected a finite positive time, got {t1!r}")
    for arg, v in (("n_save", n_save), ("max_examples", max_examples)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{arg}: expected a positive integer, got {v!r}")
    if n_instances is not None and (isinstance(n_instances, bool) or not isinstance(n_instances, int)
                                    or n_instances < 1):
        raise ValueError(f"n_instances: expected a positive integer or None, got {n_instances!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    atol, rtol = _tolerances(atol, rtol)
    label = str(name or getattr(predicate, "__name__", None) or "conjecture")
    count = 0
    vanished = 0

    def judge(inst: Instance) -> Outcome:
        out = evaluate(predicate, inst, t1=t1, n_save=n_save, atol=atol, rtol=rtol)
        if out.holds or t1 is None:
            return out
        tight = evaluate(predicate, inst, t1=t1, n_save=n_save, atol=atol, rtol=rtol, tight=True)
        if tight.holds:
            nonlocal vanished
            vanished += 1
        return tight

    def fails(inst: Instance) -> bool:
        nonlocal count
        count += 1
        return not judge(inst).holds

    tried = failed = 0
    if n_instances is not None:
        def record(inst: Instance) -> bool:
            nonlocal tried, failed
            tried += 1
            failed += not judge(inst).holds
            return False

        sample = settings(max_examples=n_instances, database=None, deadline=None, phases=(Phase.generate,),
                          suppress_health_check=list(HealthCheck))
        try:
            find(strategy, record, settings=sample, random=random.Random(seed))
        except NoSuchExample:
            pass
    cfg = settings(max_examples=max_examples, database=None, deadline=None, phases=(Phase.generate, Phase.shrink),
                   suppress_health_check=list(HealthCheck))
    common = {"tried": tried, "failed": failed, "atol": atol, "rtol": rtol}
    try:
        found = find(strategy, fails, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        note = (f"{vanished} failure(s) at the catalogue's integration tolerances vanished at tighter ones "
                f"(integration error, not counterexamples)") if vanished else ""
        return ConjectureResult(label, True, count, note=note, **common)  # type: ignore[arg-type]
    ref = _reference(predicate)
    inst = Instance(found.arrays, {**found.params, "conjecture": label, "predicate": ref, "t1": t1,
                                   "n_save": n_save, "atol": atol, "rtol": rtol},
                    found.seed, found.size, found.name)
    outcome = judge(inst)
    directory = os.path.abspath(os.fspath(outdir) if outdir is not None else RESULTS_DIR)
    os.makedirs(directory, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "conjecture"
    path = os.path.abspath(inst.save(os.path.join(directory, f"{slug}-seed{seed}.npz")))
    command, note = _replay_command(path, ref)
    return ConjectureResult(label, False, count, inst, outcome, path, command, note,
                            **common)  # type: ignore[arg-type]


def replay(instance: Instance | str | os.PathLike[str], *, predicate: Predicate | str | None = None,
           trust: bool = False) -> Outcome:
    """Re-evaluate a saved counterexample (or any instance) against its conjecture.

    A counterexample file records the ``module:function`` of its predicate, but
    a file is data: it may come from anyone. So the recorded name is imported
    only when the caller names the same predicate (``predicate="module:function"``
    or the function itself) or says the file is trusted (``trust=True``, which
    warns). Otherwise :class:`UntrustedPredicateError` says what the file asks for
    and how to allow it; nothing is imported.

    Parameters
    ----------
    instance : Instance or path
        As saved by :func:`conjecture`.
    predicate : callable or "module:function", optional
        The predicate to evaluate. A string is imported (it is the caller's
        choice, not the file's). Default: the predicate recorded in the
        instance, which needs ``trust=True``.
    trust : bool
        Import and run the predicate recorded in the file (with a
        :class:`TrustedPredicateWarning`). Only for files whose origin you trust.

    Returns
    -------
    Outcome

    Raises
    ------
    UntrustedPredicateError
        If ``predicate`` is None, the file records one, and ``trust`` is false.
    ValueError
        If no predicate is given or recorded, or a named one cannot be imported.
    """
    if predicate is not None and not callable(predicate) and not isinstance(predicate, str):
        raise TypeError(f"predicate: expected a callable or 'module:function', got {type(predicate).__name__}")
    if not isinstance(trust, bool | np.bool_):
        raise TypeError(f"trust: expected a bool, got {type(trust).__name__}")
    if isinstance(instance, Instance):
        inst, source = instance, "the instance"
    elif isinstance(instance, str | os.PathLike):
        inst, source = Instance.load(instance), os.fspath(instance)
    else:
        raise TypeError(f"instance: expected an Instance or a path to a .npz file, got {type(instance).__name__}")
    if predicate is None:
        ref = inst.params.get("predicate")
        if not isinstance(ref, str):
            raise ValueError("predicate: the instance records no importable predicate; pass one")
        if not trust:
            raise UntrustedPredicateError(ref, source)
        warnings.warn(f"replay: importing and running {ref!r}, named inside {source} (trust=True)",
                      TrustedPredicateWarning, stacklevel=2)
        predicate = ref
    fn = _resolve(predicate) if isinstance(predicate, str) else predicate
    t1 = inst.params.get("t1")
    n_save = inst.params.get("n_save", 8)
    return evaluate(fn, inst, t1=None if t1 is None else float(t1),  # type: ignore[arg-type]
                    n_save=int(n_save),  # type: ignore[arg-type]
                    atol=float(inst.params.get("atol", ATOL)), rtol=float(inst.params.get("rtol", RTOL)))  # type: ignore[arg-type]
