"""Where chunks run: in this process, in local processes, or on a Dask cluster.

An executor maps a function over tasks and yields the results as they
complete, keeping a bounded number of tasks in flight, so that results reach
the store as they arrive and a sweep of a million instances does not queue a
million tasks. Dask is imported only by :class:`DaskExecutor`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from linfa.sweep.seeds import is_count

__all__ = ["AbstractExecutor", "ClusterLost", "DaskExecutor", "ProcessExecutor", "SerialExecutor", "get_executor"]

_INSTALL = "pip install 'linfa[distributed]'"


class AbstractExecutor:
    """Runs ``fn(*task)`` for each task; :meth:`imap_unordered` yields results as they complete.

    Executors are context managers; leaving the context cancels what is still queued.
    """

    #: Tasks kept in flight per worker.
    per_worker = 2

    @property
    def workers(self) -> int:
        """Number of tasks that can run at once."""
        return 1

    def imap_unordered(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """Yield ``fn(*task)`` for every task, in completion order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> AbstractExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class SerialExecutor(AbstractExecutor):
    """Run every task in this process, in order (the default)."""

    def imap_unordered(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        for task in tasks:
            yield fn(*task)


def _bounded(submit: Callable[[tuple[Any, ...]], Future[Any]], tasks: Iterable[tuple[Any, ...]],
             window: int) -> Iterator[Any]:
    pending: set[Future[Any]] = set()
    it = iter(tasks)
    try:
        while True:
            for task in it:
                pending.add(submit(task))
                if len(pending) >= window:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        for fut in pending:
            fut.cancel()


def _exit_with_parent() -> None:
    """Worker initializer: a daemon thread that ends this process as soon as its parent is gone.

    A pool's idle workers block on a queue whose other end the parent holds; if
    the parent is killed (SIGKILL, OOM killer) that queue never closes, so
    without this they would sit idle forever.
    """
    import threading
    from multiprocessing.connection import wait as wait_for

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_for([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="linfa-parent-watch", daemon=True).start()


class ProcessExecutor(AbstractExecutor):
    """Run tasks in ``workers`` local processes (:class:`concurrent.futures.ProcessPoolExecutor`).

    Parameters
    ----------
    workers : int
        Number of processes.
    start_method : {"spawn", "forkserver", "fork"}
        How processes start; ``"spawn"`` (default) is safe when threads are
        running. Functions and targets must be importable (module level).

    Each worker exits by itself when this process dies, even by SIGKILL.
    """

    def __init__(self, workers: int, *, start_method: str = "spawn") -> None:
        if not is_count(workers, 1):
            raise ValueError(f"workers: expected a positive integer, got {workers!r}")
        self._workers = workers
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(start_method),
                                         initializer=_exit_with_parent)

    @property
    def workers(self) -> int:
        return self._workers

    def imap_unordered(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        return _bounded(lambda t: self._pool.submit(fn, *t), tasks, self.per_worker * self._workers)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"linfa.sweep: running on a Dask cluster needs dask.distributed ({exc}); install it with: {_INSTALL}"
        ) from None
    return distributed


class ClusterLost(RuntimeError):
    """The Dask cluster went away during a run: the scheduler died, or no worker was left for ``timeout`` s.

    What was already yielded is kept (a sweep's results file holds every chunk
    written before); running the same sweep again resumes.
    """


class DaskExecutor(AbstractExecutor):
    """Run tasks on a Dask distributed cluster.

    Parameters
    ----------
    client : distributed.Client or str
        A client (left open on :meth:`close`), or a scheduler address such as
        ``"tcp://10.0.0.5:8786"`` (a client is made and closed here).
    timeout : float
        Seconds to wait when the cluster has no worker (all lost, or none
        started yet) before giving up with :class:`ClusterLost`; also the
        time allowed to connect to a scheduler given by address.
    poll : float
        Seconds between checks of the cluster while waiting for results.

    Raises
    ------
    ValueError
        If ``client`` is a malformed or unreachable scheduler address.

    Eight tasks per worker thread are kept in flight to hide the round trip to
    the scheduler.
    """

    per_worker = 8

    def __init__(self, client: Any, *, timeout: float = 120.0, poll: float = 1.0) -> None:
        from linfa._validate import real

        self.timeout = real("timeout", timeout, positive=True)
        self.poll = real("poll", poll, positive=True)
        self._muted: dict[str, int] | None = None
        distributed = _import_distributed()
        self._owns = isinstance(client, str)
        if self._owns:
            try:  # a malformed address fails here, before a half-made Client complains while being collected
                distributed.comm.get_address_host_port(client)
            except ValueError as exc:
                if "know how to extract" not in str(exc):
                    raise ValueError(f"scheduler: malformed Dask scheduler address {client!r} ({exc}); "
                                     "expected e.g. tcp://host:8786") from None
            try:
                self.client = distributed.Client(client, timeout=self.timeout)
            except (OSError, ValueError, TypeError, TimeoutError) as exc:
                raise ValueError(f"scheduler: cannot connect to the Dask scheduler at {client!r} ({exc})") from None
        elif isinstance(client, distributed.Client):
            self.client = client
        else:
            raise TypeError(f"scheduler: expected a dask.distributed.Client or an address, got {type(client).__name__}")
        self._distributed = distributed

    @property
    def workers(self) -> int:
        return max(1, sum(self._nthreads().values()))

    def _nthreads(self) -> dict[str, int]:
        try:
            out: dict[str, int] = self.client.nthreads()
        except Exception as exc:
            raise self._lost(f"lost the Dask scheduler ({type(exc).__name__}: {exc})") from None
        return out

    def _lost(self, message: str) -> ClusterLost:
        """The error to raise; also quiets the client's own reconnection tracebacks until :meth:`close`."""
        import logging

        if self._muted is None:
            self._muted = {}
            for name in ("distributed", "distributed.client", "distributed.core", "distributed.comm"):
                log = logging.getLogger(name)
                self._muted[name] = log.level
                log.setLevel(logging.CRITICAL + 1)
        return ClusterLost(message)

    def imap_unordered(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        window = self.per_worker * self.workers
        it = iter(tasks)
        pending: set[Any] = set()
        idle_since: float | None = None
        try:
            while True:
                for task in it:
                    pending.add(self.client.submit(fn, *task, pure=False))
                    if len(pending) >= window:
                        break
                if not pending:
                    return
                try:
                    done = self._distributed.wait(list(pending), timeout=self.poll, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                except Exception as exc:  # futures cancelled because the scheduler connection was lost
                    raise self._lost(f"lost the Dask scheduler ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                                      ) from None
                if not done:
                    if self._nthreads():
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > self.timeout:
                        raise self._lost(f"the Dask cluster has had no worker for {self.timeout:g} s "
                                          "(all lost, or none started); start workers, or raise the timeout")
                    continue
                for fut in done:
                    pending.discard(fut)
                    if fut.status == "cancelled":
                        raise self._lost("lost the Dask scheduler (the running tasks were cancelled)")
                    try:
                        result = fut.result()
                    except Exception as exc:
                        if fut.status == "error":  # the task itself raised: that error is the caller's
                            raise
                        # finished, but its result could not be fetched: the scheduler went away meanwhile
                        # (e.g. CommClosedError)
                        raise self._lost(f"lost the Dask scheduler ({type(exc).__name__}: "
                                         f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from None
                    fut.release()
                    yield result
        finally:
            for fut in pending:
                try:
                    fut.cancel()
                except Exception:  # the cluster is gone; nothing left to cancel
                    pass

    def close(self) -> None:
        if self._owns:
            self._owns = False
            try:
                self.client.close(timeout=min(self.timeout, 10.0))
            except Exception:  # closing a client whose scheduler died
                pass
        if self._muted is not None:
            import logging

            for name, level in self._muted.items():
                logging.getLogger(name).setLevel(level)
            self._muted = None


def get_executor(*, workers: int | None = None, scheduler: Any = None,
                 executor: AbstractExecutor | None = None) -> tuple[AbstractExecutor, bool]:
    """Choose an executor from the sweep options.

    Parameters
    ----------
    workers : int, optional
        Local processes (``None`` or ``1``: serial).
    scheduler : distributed.Client or str, optional
        A Dask client or scheduler address.
    executor : AbstractExecutor, optional
        An executor built by the caller.

    Returns
    -------
    (executor, owned)
        ``owned`` tells whether the caller should close it.
    """
    given = [name for name, v in (("workers", workers), ("scheduler", scheduler), ("executor", executor))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"{', '.join(given)}: give at most one of workers, scheduler and executor")
    if executor is not None:
        if not isinstance(executor, AbstractExecutor):
            raise TypeError(f"executor: expected a linfa.sweep executor, got {type(executor).__name__}")
        return executor, False
    if scheduler is not None:
        return DaskExecutor(scheduler), True
    if workers is None or workers == 1:
        return SerialExecutor(), True
    return ProcessExecutor(workers), True
