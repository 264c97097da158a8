"""``sweep``: run a target over many seeded instances, resumably, on any executor."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from linfa._validate import flag, path
from linfa.sweep.executors import AbstractExecutor, get_executor
from linfa.sweep.resolve import as_target
from linfa.sweep.seeds import check_seed, chunked, is_count
from linfa.sweep.store import ResultStore
from linfa.sweep.summary import Summary, from_store
from linfa.sweep.targets import run_chunk

__all__ = ["sweep"]

Progress = Callable[[int], None]


def sweep(
    target: Any,
    n_instances: int,
    *,
    out: str | os.PathLike[str],
    seed: int = 0,
    chunk_size: int = 64,
    workers: int | None = None,
    scheduler: Any = None,
    executor: AbstractExecutor | None = None,
    keep_instances: bool = False,
    progress: bool | Progress = False,
) -> Summary:
    """Run ``target`` on instances ``0..n_instances-1`` and record each result in ``out``.

    Instance ``i`` is drawn from ``numpy.random.SeedSequence(seed).spawn(n_instances)[i]``
    (see :mod:`linfa.sweep.seeds`), so its result is the same bit for bit
    whatever ``chunk_size``, executor or number of workers (given a target that
    draws each instance from its own seed). Instances are grouped in chunks of
    ``chunk_size`` and each chunk is one call of a batched target.

    Results are written to ``out`` chunk by chunk as they arrive. Running the
    same sweep again (same target, configuration and seed) skips what is
    recorded: a sweep killed at any moment loses only the chunks in flight, a
    finished one does no work, and a larger ``n_instances`` extends it.

    Parameters
    ----------
    target : str, callable or linfa.sweep target
        A catalogue id, ``"module:function"``, a theorem, a function of ``rng``,
        or a :class:`~linfa.sweep.PerInstance` / :class:`~linfa.sweep.Batched`
        target (see :func:`~linfa.sweep.as_target`).
    n_instances : int
        Number of instances.
    out : path-like
        Results file (SQLite), created if missing.
    seed : int
        Root seed of the sweep.
    chunk_size : int
        Instances per chunk (one batched call, one task, one transaction).
    workers : int, optional
        Run chunks in this many local processes.
    scheduler : distributed.Client or str, optional
        Run chunks on a Dask cluster (a client, or a scheduler address).
    executor : AbstractExecutor, optional
        Any executor (left open).
    keep_instances : bool
        Also save the ``.npz`` of passing instances (failures always keep theirs).
    progress : bool or callable
        Show a progress bar (tqdm, with rate and ETA), or call ``progress(n)``
        after each chunk with the number of instances it recorded.

    Returns
    -------
    Summary
        Of everything recorded in ``out``; ``n_run`` counts this call's instances.

    Raises
    ------
    linfa.sweep.StoreError
        If ``out`` is not a results file of this sweep (it is then left untouched),
        or another sweep is writing to it right now.
    linfa.sweep.ClusterLost
        If the Dask cluster goes away (scheduler dead, or no worker for the
        executor's ``timeout``); ``out`` keeps every chunk written before, and
        the same call resumes.

    Examples
    --------
    >>> import tempfile, os
    >>> def f(rng):
    ...     x = rng.standard_normal()
    ...     return {"holds": x * x >= 0, "margin": x * x}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     s = sweep(f, 100, out=os.path.join(d, "r.sqlite"), seed=1, chunk_size=16)
    ...     s.counts, s.passed
    ({'ok': 100, 'fail': 0, 'inconclusive': 0, 'error': 0}, True)
    """
    t0 = time.perf_counter()
    out = path("out", out)
    keep_instances = flag("keep_instances", keep_instances)
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress: expected a bool or a callable, got {type(progress).__name__}")
    tgt = as_target(target)
    seed = check_seed(seed)
    if not is_count(n_instances, 0):
        raise ValueError(f"n_instances: expected a non-negative integer, got {n_instances!r}")
    if not is_count(chunk_size, 1):
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    # check where to run before touching the results file (a bad --workers must leave nothing behind)
    if workers is not None and not is_count(workers, 1):
        raise ValueError(f"workers: expected a positive number of processes, got {workers!r}")
    if sum(v is not None for v in (workers, scheduler, executor)) > 1:
        raise ValueError("workers, scheduler, executor: give at most one of them")
    identity = {"target": tgt.id, "config": tgt.config(), "seed": seed}
    n_run = 0
    with ResultStore.open(out, identity=identity) as store:
        store.request(n_instances, chunk_size)
        chunks = chunked(store.missing(n_instances), chunk_size, group_size=tgt.group_size)
        if chunks:
            bar, step = _progress(progress, total=n_instances, initial=n_instances - sum(map(len, chunks)))
            ex, owned = get_executor(workers=workers, scheduler=scheduler, executor=executor)
            try:
                tasks = ((tgt, seed, c, keep_instances) for c in chunks)
                for records in ex.imap_unordered(_run_task, tasks):
                    new = store.write(records)
                    n_run += new
                    if step is not None:
                        step(new)
            finally:
                if owned:
                    ex.close()
                if bar is not None:
                    bar.close()
        return from_store(store, n_run=n_run, seconds=time.perf_counter() - t0)


def _run_task(target: Any, seed: int, indices: tuple[int, ...], keep: bool) -> Any:
    return run_chunk(target, seed, indices, keep_instance=keep)


def _progress(progress: bool | Progress, *, total: int, initial: int) -> tuple[Any, Progress | None]:
    if progress is False or progress is None:
        return None, None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=initial, unit="inst", dynamic_ncols=True, smoothing=0.1)
        return bar, bar.update
    if callable(progress):
        return None, progress
    raise TypeError(f"progress: expected a bool or a callable, got {type(progress).__name__}")
