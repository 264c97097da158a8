"""Throughput of ``linfa.sweep``: serial vs 2 local processes vs a 2-worker Dask cluster.

Prints instances per second and ratios (not a test)::

    python benchmarks/bench_sweep.py                     # a catalogue check over 10,000 instances
    python benchmarks/bench_sweep.py --instances 2000 --entry lillicrap2016.alignment_condition

Part 1 sweeps a catalogue entry (default ``lillicrap2016.zero_init_lyapunov``:
zero-init FA, integrated, checked in batches of the entry's group size) with
each executor. Part 2 measures the per-instance cost of running one instance
per task against chunks of 64 solved as one batch, with the batched FA check of
:mod:`linfa.sweep.examples` (the same check either way), and the sweep's own
cost per instance with a target that does nothing. The Dask cluster's
start-up is not timed (a cluster is long-lived); the process pool's is.

The script unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for itself
(see ``_blas_env.py``) and prints the BLAS kernel in use.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from linfa.sweep import Batched, sweep  # noqa: E402
from linfa.sweep.examples import FA_ALIGNMENT  # noqa: E402


def noop(seeds: list[np.random.SeedSequence]) -> dict[str, np.ndarray]:
    """A target that does nothing: what is left is the sweep's own cost (tasks, transfers, writes)."""
    return {"value": np.zeros(len(seeds))}


NOOP = Batched(noop)


def timed(target: Any, n: int, out: str, **kw: Any) -> float:
    t0 = time.perf_counter()
    s = sweep(target, n, out=out, seed=0, **kw)
    dt = time.perf_counter() - t0
    assert s.n_run == n and s.n_recorded == n, s
    return n / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=10_000)
    p.add_argument("--entry", default="lillicrap2016.zero_init_lyapunov")
    p.add_argument("--chunk-size", type=int, default=64)
    p.add_argument("--overhead-instances", type=int, default=2_000)
    args = p.parse_args()

    try:
        from linfa import theorems

        theorems.get(args.entry)
        target: Any = args.entry
    except (ImportError, KeyError):
        print(f"catalogue entry {args.entry} unavailable; using the batched FA check instead")
        target = FA_ALIGNMENT
    from distributed import Client, LocalCluster

    n, c = args.instances, args.chunk_size
    print(_blas_env.describe())
    print(f"cores: {os.cpu_count()}; target: {target if isinstance(target, str) else target.id}; "
          f"{n} instances, chunks of {c}")
    with tempfile.TemporaryDirectory() as d:
        rates: dict[str, float] = {}
        rates["serial"] = timed(target, n, f"{d}/serial.sqlite", chunk_size=c)
        print(f"  serial            {rates['serial']:9.1f} instances/s", flush=True)
        rates["processes"] = timed(target, n, f"{d}/proc.sqlite", chunk_size=c, workers=2)
        print(f"  2 processes       {rates['processes']:9.1f} instances/s", flush=True)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("linfa.sweep.catalogue") and __import__("linfa.theorems"))
            rates["dask"] = timed(target, n, f"{d}/dask.sqlite", chunk_size=c, scheduler=client)
            print(f"  2-worker Dask     {rates['dask']:9.1f} instances/s", flush=True)

            m = args.overhead_instances
            print(f"\nper-instance overhead, batched FA check ({FA_ALIGNMENT.id}), {m} instances:")
            per: dict[str, float] = {}
            for name, kw in (("serial", {}), ("2 processes", {"workers": 2}), ("2-worker Dask", {"scheduler": client})):
                one = timed(FA_ALIGNMENT, m, f"{d}/one-{name}.sqlite", chunk_size=1, **kw)
                many = timed(FA_ALIGNMENT, m, f"{d}/many-{name}.sqlite", chunk_size=64, **kw)
                per[name] = 1e3 / one - 1e3 / many
                print(f"  {name:15s} 1/task {one:8.1f}/s   64/task {many:8.1f}/s   "
                      f"speed-up {many / one:5.1f}x   extra cost of 1/task {per[name]:.3f} ms/instance", flush=True)
            print(f"\nthe sweep's own cost (a target that does nothing), {m} instances:")
            for name, kw in (("serial", {}), ("2 processes", {"workers": 2}), ("2-worker Dask", {"scheduler": client})):
                one = timed(NOOP, m, f"{d}/noop1-{name}.sqlite", chunk_size=1, **kw)
                many = timed(NOOP, m, f"{d}/noop64-{name}.sqlite", chunk_size=64, **kw)
                print(f"  {name:15s} 1/task {1e3 / one:7.3f} ms/instance   64/task {1e3 / many:7.3f} ms/instance",
                      flush=True)
        print("\nratios (catalogue check):")
        print(f"  2 processes / serial   {rates['processes'] / rates['serial']:.2f}")
        print(f"  2-worker Dask / serial {rates['dask'] / rates['serial']:.2f}")


if __name__ == "__main__":
    main()
