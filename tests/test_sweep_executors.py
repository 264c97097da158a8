"""linfa.sweep executors: serial, local processes and a local Dask cluster give identical results."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _sweep_targets as tt
import pytest
from _sweep_targets import fingerprint

from linfa.sweep import DaskExecutor, ProcessExecutor, SerialExecutor, sweep

N = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One two-worker local Dask cluster (worker processes) for the whole module."""
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as lc, distributed.Client(lc) as client:
        yield client


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    out = tmp_path_factory.mktemp("ref") / "serial.sqlite"
    s = sweep(tt.NOISY, N, out=out, seed=21, chunk_size=N)
    assert s.counts["fail"] and s.counts["error"] and s.counts["ok"]
    return fingerprint(out)


def test_processes_match_serial(tmp_path: Path, reference: list[tuple[Any, ...]]) -> None:
    s = sweep(tt.NOISY, N, out=tmp_path / "p.sqlite", seed=21, chunk_size=7, workers=2)
    assert s.n_run == N
    assert fingerprint(tmp_path / "p.sqlite") == reference


def test_dask_client_matches_serial(tmp_path: Path, reference: list[tuple[Any, ...]], cluster: Any) -> None:
    s = sweep(tt.NOISY, N, out=tmp_path / "d.sqlite", seed=21, chunk_size=5, scheduler=cluster)
    assert s.n_run == N
    assert fingerprint(tmp_path / "d.sqlite") == reference
    assert cluster.status == "running"  # a client passed in is left open


def test_dask_address_matches_serial_and_resumes(tmp_path: Path, reference: list[tuple[Any, ...]],
                                                 cluster: Any) -> None:
    out = tmp_path / "a.sqlite"
    address = cluster.scheduler.address
    sweep(tt.NOISY, N // 3, out=out, seed=21, chunk_size=11, scheduler=address)
    s = sweep(tt.NOISY, N, out=out, seed=21, chunk_size=13, scheduler=address)
    assert s.n_run == N - N // 3
    assert fingerprint(out) == reference


def test_batched_target_identical_on_every_executor(tmp_path: Path, cluster: Any) -> None:
    prints = []
    for name, kw in [("serial", {}), ("proc", {"workers": 2}), ("dask", {"scheduler": cluster})]:
        sweep(tt.FA_SMALL, 96, out=tmp_path / f"{name}.sqlite", seed=8, chunk_size=16 if name == "serial" else 12,
              **kw)
        prints.append(fingerprint(tmp_path / f"{name}.sqlite"))
    assert prints[0] == prints[1] == prints[2]


def test_executors_yield_every_result(cluster: Any) -> None:
    tasks = [(i,) for i in range(25)]
    for ex in (SerialExecutor(), ProcessExecutor(2), DaskExecutor(cluster)):
        with ex:
            assert sorted(ex.imap_unordered(abs, ((-i,) for (i,) in tasks))) == list(range(25))
            assert ex.workers >= 1


def test_a_task_error_is_the_tasks_own_not_a_lost_cluster(cluster: Any) -> None:
    """A task that raises reaches the caller as its own error on every executor (never as ClusterLost)."""
    for ex in (SerialExecutor(), ProcessExecutor(2), DaskExecutor(cluster)):
        with ex, pytest.raises(ValueError, match="math domain error"):
            list(ex.imap_unordered(math.sqrt, [(4.0,), (-1.0,)]))


def test_missing_dask_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'linfa\[distributed\]'"):
        sweep(tt.FA_SMALL, 4, out=tmp_path / "x.sqlite", scheduler="tcp://127.0.0.1:8786")


def test_import_linfa_sweep_stays_light() -> None:
    code = ("import sys, linfa, linfa.sweep, linfa.sweep.cli, linfa.sweep.catalogue; "
            "heavy = [m for m in ('dask', 'distributed', 'hypothesis', 'sympy', 'matplotlib', 'tqdm') "
            "if m in sys.modules]; print(heavy); sys.exit(bool(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
