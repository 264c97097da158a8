"""Property-test a conjecture: search instances, shrink a counterexample, report it reproducibly.

A conjecture is a predicate over an instance, or over an integrated run of
it. It returns ``True``/``False`` or a signed margin (``>= 0`` means the
conjecture holds on that instance). :func:`conjecture` lets hypothesis search
a strategy's instances for one where the predicate fails, shrinks it to the
smallest dimensions and simplest values it can, saves it as ``.npz`` and
gives the command that replays it (``linfa replay PATH``).
"""

from __future__ import annotations

import importlib
import os
import random
import re
import shlex
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample
from hypothesis.strategies import SearchStrategy

from linfa import theorems
from linfa._validate import count, real
from linfa.instances import Instance

__all__ = ["ConjectureResult", "Outcome", "UntrustedPredicateError", "conjecture", "evaluate", "replay"]

Predicate = Callable[..., Any]

@dataclass(frozen=True)
class Outcome:
    """The predicate's value on one instance: ``holds`` and the ``margin`` (None for a bare bool)."""

    holds: bool
    margin: float | None

    def __str__(self) -> str:
        m = "" if self.margin is None else f", margin {self.margin:.6g}"
        return f"{'holds' if self.holds else 'FAILS'}{m}"


def _outcome(value: Any) -> Outcome:
    if isinstance(value, bool | np.bool_):
        return Outcome(bool(value), None)
    try:
        m = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"predicate: expected a bool or a float margin, got {type(value).__name__}") from None
    if np.isnan(m):
        raise ValueError("predicate: returned NaN; return a number (>= 0 where the conjecture holds) or a bool")
    return Outcome(m >= 0, m)


def evaluate(predicate: Predicate, instance: Instance, *, t1: float | None = None, n_save: int = 8) -> Outcome:
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
    if t1 is None:
        return _outcome(predicate(instance))
    t1 = real("t1", t1, positive=True)
    n_save = count("n_save", n_save, minimum=1)
    rule, task, state = instance.problem()
    sol = theorems.solve(rule, task, state, float(t1), saveat=np.linspace(0.0, float(t1), int(n_save) + 1))
    if not sol.ok.all():
        raise RuntimeError(f"instance: integration to t1 = {t1} failed with status {np.asarray(sol.status).tolist()}")
    return _outcome(predicate(instance, sol))


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
        The predicate's value on it.
    path : str or None
        Where it was saved (``.npz``).
    command : str or None
        The shell command that replays it.
    """

    name: str
    holds: bool
    examples: int
    counterexample: Instance | None = None
    outcome: Outcome | None = None
    path: str | None = None
    command: str | None = None

    def __str__(self) -> str:
        if self.holds:
            return f"conjecture {self.name!r}: no counterexample in {self.examples} instances"
        assert self.counterexample is not None
        inst = self.counterexample
        lines = [f"conjecture {self.name!r} is FALSE: counterexample after {self.examples} instances "
                 f"({self.outcome})"]
        if inst.depth:
            lines.append(f"  widths {inst.widths}, rule {inst.params.get('rule')}")
        for k, a in inst.arrays.items():
            body = np.array2string(a, precision=4, suppress_small=True, separator=", ").replace("\n", "\n      ")
            lines.append(f"  {k} = {body}")
        lines.append(f"  saved to {self.path}")
        lines.append(f"  replay:  {self.command}")
        return "\n".join(lines)


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
) -> ConjectureResult:
    """Search for a counterexample to ``predicate``; shrink and save it if found.

    Parameters
    ----------
    predicate : callable
        ``predicate(instance) -> bool | float`` or, with ``t1``,
        ``predicate(instance, solution) -> bool | float``; a float is a
        margin, ``>= 0`` where the conjecture holds. To be replayable from the
        command line it must be a top-level function of an importable module.
    strategy : SearchStrategy of Instance
        E.g. :func:`linfa.testing.instances`.
    t1 : float, optional
        Integrate each instance to ``t1`` first (``n_save + 1`` saved times).
    n_save : int
    max_examples : int
        Instances hypothesis may try before declaring no counterexample.
    seed : int
        Seed of the search; the same seed gives the same counterexample.
    outdir : path, optional
        Where to save the counterexample (default: ``linfa-counterexamples``
        in the system's temporary directory).
    name : str, optional
        Name of the conjecture (default: the predicate's name).

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
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    label = str(name or getattr(predicate, "__name__", None) or "conjecture")
    count = 0

    def fails(inst: Instance) -> bool:
        nonlocal count
        count += 1
        return not evaluate(predicate, inst, t1=t1, n_save=n_save).holds

    cfg = settings(max_examples=max_examples, database=None, deadline=None, phases=(Phase.generate, Phase.shrink),
                   suppress_health_check=list(HealthCheck))
    try:
        found = find(strategy, fails, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        return ConjectureResult(label, True, count)
    ref = _reference(predicate)
    inst = Instance(found.arrays, {**found.params, "conjecture": label, "predicate": ref, "t1": t1,
                                   "n_save": n_save}, found.seed, found.size, found.name)
    outcome = evaluate(predicate, inst, t1=t1, n_save=n_save)
    directory = os.fspath(outdir) if outdir is not None else os.path.join(tempfile.gettempdir(),
                                                                          "linfa-counterexamples")
    os.makedirs(directory, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "conjecture"
    path = inst.save(os.path.join(directory, f"{slug}-seed{seed}.npz"))
    command = f"linfa replay {shlex.quote(path)} --predicate "
    command += (shlex.quote(ref) if ref is not None
                else "MODULE:FUNCTION  # the predicate is not importable; name one that is")
    return ConjectureResult(label, False, count, inst, outcome, path, command)


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
        :class:`UserWarning`). Only for files whose origin you trust.

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
                      UserWarning, stacklevel=2)
        predicate = ref
    fn = _resolve(predicate) if isinstance(predicate, str) else predicate
    t1 = inst.params.get("t1")
    n_save = inst.params.get("n_save", 8)
    return evaluate(fn, inst, t1=None if t1 is None else float(t1),  # type: ignore[arg-type]
                    n_save=int(n_save))  # type: ignore[arg-type]
