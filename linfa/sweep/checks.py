"""``linfa check --workers N``: catalogue checks run in parallel, one entry per task.

:func:`run_checks` runs :func:`linfa.theorems.run` for each entry on any
executor of :mod:`linfa.sweep.executors` and yields the results in the order
asked for. Each entry's instances are seeded by the catalogue itself, so the
results equal those of a serial run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from linfa.sweep.executors import AbstractExecutor, get_executor

__all__ = ["run_checks"]


def _check_entry(position: int, theorem_id: str, kwargs: dict[str, Any],
                 plugin_specs: Sequence[str] = ()) -> tuple[int, dict[str, Any]]:
    from linfa import plugins, theorems

    plugins.load_all(plugin_specs)
    result = theorems.run(theorems.get(theorem_id), **kwargs)
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "theorem"}
    return position, fields


def run_checks(entries: Sequence[Any], *, workers: int | None = None, scheduler: Any = None,
               executor: AbstractExecutor | None = None, **run_kwargs: Any) -> Iterator[Any]:
    """Run catalogue checks in parallel; yield each :class:`linfa.theorems.Result` in the order of ``entries``.

    Parameters
    ----------
    entries : sequence of Theorem or str
        Catalogue entries (or their ids).
    workers, scheduler, executor
        Where to run (see :func:`linfa.sweep.sweep`); serial by default.
    **run_kwargs
        Passed to :func:`linfa.theorems.run` (``instances``, ``seed``, ``fast``, ``derivation``).

    Examples
    --------
    >>> from linfa.sweep.checks import run_checks                          # doctest: +SKIP
    >>> for result in run_checks(theorems.catalogue(), workers=2, fast=True):  # doctest: +SKIP
    ...     print(result.theorem.id, result.passed)
    """
    from linfa import plugins, theorems

    chosen = [theorems.get(e) if isinstance(e, str) else e for e in entries]
    ex, owned = get_executor(workers=workers, scheduler=scheduler, executor=executor)
    done: dict[int, dict[str, Any]] = {}
    next_out = 0
    try:
        tasks = ((i, t.id, dict(run_kwargs), plugins.loaded()) for i, t in enumerate(chosen))
        for position, fields in ex.imap_unordered(_check_entry, tasks):
            done[position] = fields
            while next_out in done:
                yield theorems.Result(theorem=chosen[next_out], **done.pop(next_out))
                next_out += 1
    finally:
        if owned:
            ex.close()
