"""``linfa sweep``: a target over many seeded instances, with a progress bar.

::

    linfa sweep ID --instances N [--seed S] [--chunk-size C] [--workers N | --scheduler ADDR] --out PATH
    linfa sweep ID --seed S --replay I        # re-run instance I alone, print its record
    linfa sweep --summary PATH                # read a results file back, run nothing

``ID`` is a catalogue id (``linfa list``) or ``module:object`` naming a sweep
target or a function of ``rng`` (e.g. ``linfa.sweep.examples:FA_ALIGNMENT``).
Running the same command again resumes an interrupted sweep; a finished one
does no work. Exit status (also of ``--summary``, for the sweep in the file):
0 if the claim holds (every instance recorded, none errored, and its criterion
met: all instances for a theorem, its fraction for an empirical claim, one
witness for an existential one), 1 if not, 2 for bad arguments (``--summary``
takes no target, ``--instances``, ``--out`` or ``--replay``), an unusable results file
or an unreachable scheduler, 3 for an internal error, 4 if the Dask cluster was
lost (the results file is intact: run again to resume), 130 if interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

__all__ = [
    "add_parser",
    "add_workers_arguments",
    "executor_from_args",
    "int_at_least",
    "main",
    "non_negative_int",
    "positive_int",
    "run",
]


def int_at_least(minimum: int, what: str) -> Any:
    """An ``argparse`` type: an integer ``>= minimum``; ``what`` names it in the messages."""

    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s}")
        return v

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "a non-negative integer")
_POSITIVE = positive_int
_NON_NEGATIVE = non_negative_int


def _seconds(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {s!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number of seconds, got {s}")
    return v


def add_workers_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the mutually exclusive ``--workers N`` / ``--scheduler ADDR`` options (also for ``linfa check``).

    ``--workers`` must be a positive integer (1 is this process) for both
    commands; ``--cluster-timeout S`` bounds the wait for Dask workers.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_POSITIVE, default=None, metavar="N",
                       help="run in N local processes (default: 1, in this process)")
    group.add_argument("--scheduler", default=None, metavar="ADDR",
                       help="run on the Dask cluster at ADDR, e.g. tcp://host:8786 (needs linfa[distributed])")
    parser.add_argument("--cluster-timeout", type=_seconds, default=120.0, metavar="S",
                        help="with --scheduler: seconds to wait for the scheduler, and for a worker when the "
                             "cluster has none, before giving up (default 120)")


def _drop_traceback(record: logging.LogRecord) -> bool:
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    return True


def _one_line_cluster_logs() -> None:
    """Keep the Dask client's log lines but not their tracebacks, for the rest of this command.

    When the scheduler dies, the client logs each failed reconnection with a
    traceback, from its own thread, before and after the sweep reports the lost
    cluster; on the command line a user error never shows a traceback.
    """
    for handler in logging.getLogger("distributed").handlers:
        handler.addFilter(_drop_traceback)


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor chosen by ``--workers`` / ``--scheduler`` (None: serial), connecting to Dask now.

    Raises
    ------
    ValueError
        If the scheduler address is malformed or unreachable.
    """
    from linfa.sweep.executors import DaskExecutor, ProcessExecutor

    if getattr(args, "scheduler", None):
        executor = DaskExecutor(args.scheduler, timeout=getattr(args, "cluster_timeout", 120.0))
        _one_line_cluster_logs()
        return executor
    workers = getattr(args, "workers", None)
    if workers is not None and workers > 1:
        return ProcessExecutor(workers)
    return None


LOST = ("the Dask cluster was lost: {exc}. The results file {out} is intact (every finished chunk is "
        "recorded); run the same command again to resume")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Sets ``func=run`` as a parser default, as :mod:`linfa.cli` expects.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep", help="check a claim on many seeded instances, resumably, locally or on a Dask cluster",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _fill(p)
    p.set_defaults(func=run)
    return p


def _fill(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="catalogue id, or module:object (a sweep target or a function of rng)")
    p.add_argument("--instances", "-n", type=_NON_NEGATIVE, default=None, metavar="N", help="number of instances")
    p.add_argument("--seed", type=_NON_NEGATIVE, default=0, help="root seed (default 0)")
    p.add_argument("--chunk-size", type=_POSITIVE, default=64, metavar="C",
                   help="instances per batched task (default 64)")
    add_workers_arguments(p)
    p.add_argument("--out", "-o", default=None, metavar="PATH", help="results file (SQLite); resumed if it exists")
    p.add_argument("--replay", type=_NON_NEGATIVE, default=None, metavar="I",
                   help="re-run instance I alone and print it")
    p.add_argument("--summary", default=None, metavar="PATH", help="print the summary of a results file and exit")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _print_summary(summary: Any, as_json: bool) -> None:
    print(json.dumps(summary.to_dict(), indent=2) if as_json else summary)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    """Carry out ``linfa sweep`` for parsed ``args``; return the exit status."""
    from linfa.sweep.store import StoreError
    from linfa.sweep.summary import summarize

    try:
        if args.summary is not None:
            ignored = [opt for opt, given in (("a target", args.target is not None),
                                              ("--instances", args.instances is not None),
                                              ("--out", args.out is not None),
                                              ("--replay", args.replay is not None)) if given]
            if ignored:
                print(f"linfa sweep: error: --summary reads a results file and runs nothing; it does not take "
                      f"{', '.join(ignored)} (run `linfa sweep ID --seed S --replay I` separately)", file=sys.stderr)
                return 2
            summary = summarize(args.summary)
            _print_summary(summary, args.json)
            return 0 if summary.passed else 1
        if args.target is None:
            print("linfa sweep: error: a target (catalogue id or module:object) is required", file=sys.stderr)
            return 2
        from linfa.sweep.resolve import as_target, replay

        target = as_target(args.target)
        if args.replay is not None:
            rec = replay(target, seed=args.seed, index=args.replay)
            print(f"instance {rec.index} of {target.id} (seed {args.seed}): {rec.status}"
                  + ("" if rec.margin is None else f", margin {rec.margin:.6g}"))
            for k, v in {**rec.metrics, **rec.params}.items():
                print(f"  {k}: {v}")
            return 0 if rec.status == "ok" else 1
        if args.instances is None or args.out is None:
            print("linfa sweep: error: --instances N and --out PATH are required to run a sweep", file=sys.stderr)
            return 2
        from linfa.sweep.executors import ClusterLost
        from linfa.sweep.run import sweep

        executor = executor_from_args(args)
        old = signal.signal(signal.SIGTERM, _sigterm)
        try:
            summary = sweep(target, args.instances, out=args.out, seed=args.seed, chunk_size=args.chunk_size,
                            executor=executor, progress=not args.no_progress)
        except KeyboardInterrupt:
            print(f"linfa sweep: interrupted; run the same command again to resume ({args.out})", file=sys.stderr)
            return 130
        except ClusterLost as exc:
            print(f"linfa sweep: error: {LOST.format(exc=exc, out=args.out)}", file=sys.stderr)
            return 4
        finally:
            signal.signal(signal.SIGTERM, old)
            if executor is not None:
                executor.close()
        _print_summary(summary, args.json)
        return 0 if summary.passed else 1
    except (StoreError, ValueError, TypeError, KeyError, ImportError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"linfa sweep: error: {msg}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m linfa.sweep.cli ...`` (same options as ``linfa sweep``)."""
    from linfa.cli import main as linfa_main

    return linfa_main(["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
