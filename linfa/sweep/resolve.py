"""From what a user names to a sweep target: :func:`as_target`, and :func:`replay` of one instance.

Kept apart from :mod:`linfa.sweep.targets` (the target kinds) and
:mod:`linfa.sweep.catalogue` (catalogue entries as targets), which both sit
below it, so that neither imports the other's users.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from linfa.sweep.catalogue import Catalogue
from linfa.sweep.seeds import check_seed, instance_seed
from linfa.sweep.targets import AbstractTarget, PerInstance, Record, _run

__all__ = ["as_target", "replay"]


def as_target(target: Any) -> AbstractTarget:
    """Interpret ``target`` as a sweep target.

    Parameters
    ----------
    target : AbstractTarget, str, theorem or callable
        A target; a catalogue id such as ``"lillicrap2016.zero_init_alignment"``
        or a theorem/conjecture object (see :class:`Catalogue`); ``"module:function"``
        (a :class:`PerInstance` function, or a target object of that name); or a
        callable, taken as a :class:`PerInstance` function of ``rng``.
    """
    if isinstance(target, AbstractTarget):
        return target
    if isinstance(target, str):
        if ":" in target:
            import importlib

            module, _, attr = target.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"target: cannot import {target!r}: {exc}") from None
            return as_target(obj)
        from linfa.errors import UnknownNameError

        try:
            return Catalogue(target)
        except UnknownNameError as exc:
            raise UnknownNameError("target", exc.name, exc.known, kind=exc.kind, hint=exc.hint) from None
    if hasattr(target, "check") and hasattr(target, "id"):
        return Catalogue(target)
    if callable(target):
        return PerInstance(target)
    raise TypeError(
        "target: expected a catalogue id, 'module:function', a theorem, a callable or a "
        f"linfa.sweep target, got {type(target).__name__}"
    )


def replay(target: Any, *, seed: int, index: int) -> Record:
    """Re-run instance ``index`` of a sweep seeded with ``seed`` alone, keeping its arrays.

    Exceptions propagate (so a debugger stops at them), unlike in a sweep.
    """
    t = as_target(target)
    seed = check_seed(seed)
    instance_seed(seed, index)  # validates index
    rec = _run(t, seed, [int(index)], keep_instance=True)[0]
    return rec if rec.status == "ok" else replace(rec, replay=t.replay_command(seed, rec.index))
