"""Sweeps at scale: a check over many seeded instances, resumable, serial or distributed.

>>> from linfa.sweep import sweep, summarize                          # doctest: +SKIP
>>> s = sweep("lillicrap2016.zero_init_alignment", 100_000, seed=0,
...           out="alignment.sqlite", workers=2)                       # doctest: +SKIP
>>> print(summarize("alignment.sqlite"))                               # doctest: +SKIP

* :mod:`~linfa.sweep.seeds`: instance ``i`` comes from ``SeedSequence(seed).spawn(N)[i]``;
* :mod:`~linfa.sweep.targets`: what runs (per-instance or batched functions), with
  :mod:`~linfa.sweep.catalogue` (catalogue entries) and :mod:`~linfa.sweep.conjecture` (conjectures);
* :mod:`~linfa.sweep.store`: the SQLite results file, one row per instance;
* :mod:`~linfa.sweep.executors`: serial, local processes, Dask (imported only when asked);
* :mod:`~linfa.sweep.run`: :func:`sweep`; :mod:`~linfa.sweep.summary`: :func:`summarize`;
* :mod:`~linfa.sweep.cli`: ``linfa sweep`` (:func:`add_parser`, found by :mod:`linfa.cli`);
* :mod:`~linfa.sweep.checks`: :func:`run_checks`, catalogue checks in parallel (``linfa check --workers``).
"""

from linfa.sweep.catalogue import Catalogue
from linfa.sweep.checks import run_checks
from linfa.sweep.cli import add_parser
from linfa.sweep.conjecture import Conjecture
from linfa.sweep.executors import (
    AbstractExecutor,
    ClusterLost,
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    get_executor,
)
from linfa.sweep.resolve import as_target, replay
from linfa.sweep.run import sweep
from linfa.sweep.seeds import chunked, instance_seed, instance_seeds
from linfa.sweep.store import ResultStore, StoreError
from linfa.sweep.summary import Summary, summarize
from linfa.sweep.targets import AbstractTarget, Batched, PerInstance, Record, run_chunk

__all__ = [
    "AbstractExecutor",
    "AbstractTarget",
    "Batched",
    "Catalogue",
    "ClusterLost",
    "Conjecture",
    "DaskExecutor",
    "PerInstance",
    "ProcessExecutor",
    "Record",
    "ResultStore",
    "SerialExecutor",
    "StoreError",
    "Summary",
    "add_parser",
    "as_target",
    "chunked",
    "get_executor",
    "instance_seed",
    "instance_seeds",
    "replay",
    "run_checks",
    "run_chunk",
    "summarize",
    "sweep",
]
