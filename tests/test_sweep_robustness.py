"""Sweeps under adversity: concurrent starts, edited stores, a killed parent, a lost Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import _sweep_targets as tt
import numpy as np
import pytest

from linfa.sweep import ResultStore, StoreError, summarize, sweep
from linfa.sweep.executors import ClusterLost, DaskExecutor

IDENTITY = {"target": "t", "config": {"a": 1}, "seed": 3}


def _env() -> dict[str, str]:
    tests = str(Path(__file__).parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([tests, *sys.path])}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


# ---------------------------------------------------------------- creation and concurrent writers
def test_creation_is_checked_inside_the_creating_transaction(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    a = sqlite3.connect(path, isolation_level=None)
    b = sqlite3.connect(path, isolation_level=None)
    try:
        # both saw an empty file; the first creates, the second must notice and do nothing
        assert ResultStore._create(a, IDENTITY) is True
        assert ResultStore._create(b, IDENTITY) is False
        names = sorted(r[0] for r in b.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        assert names == ["instances", "metrics", "sweep"]
        assert b.execute("SELECT count(*) FROM sweep WHERE key = 'target'").fetchone()[0] == 1
    finally:
        a.close()
        b.close()


def test_simultaneous_opens_of_a_new_store_all_succeed_without_the_lock(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import linfa.sweep.store as store_module

    monkeypatch.setattr(store_module, "_writer_lock", lambda p, conn: None)  # e.g. a file system without flock
    for trial in range(5):
        path = tmp_path / f"race{trial}.sqlite"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def start(path: Path, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            barrier.wait()
            try:
                ResultStore.open(path, identity=IDENTITY).close()
            except BaseException as exc:  # pragma: no cover - the failure this test guards against
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(path, barrier, errors)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        with ResultStore.open(path, readonly=True) as s:
            assert s.target == "t" and s.seed == 3


def test_a_second_writer_is_refused_and_leaves_the_file_alone(tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    sweep(tt.FA_SMALL, 16, out=out, seed=0, chunk_size=8)
    identity = {"target": tt.FA_SMALL.id, "config": tt.FA_SMALL.config(), "seed": 0}
    with ResultStore.open(out, identity=identity):  # a sweep in progress holds the file
        before = out.read_bytes()
        with pytest.raises(StoreError, match="another linfa sweep is writing"):
            sweep(tt.FA_SMALL, 32, out=out, seed=0, chunk_size=8)
        assert out.read_bytes() == before
        assert summarize(out).n_recorded == 16  # reading is not blocked
    s = sweep(tt.FA_SMALL, 32, out=out, seed=0, chunk_size=8)  # released on close
    assert s.n_run == 16 and s.n_recorded == 32


def test_two_identical_sweeps_started_together_do_the_work_once(tmp_path: Path) -> None:
    out = tmp_path / "twice.sqlite"
    n = 64
    cmd = [sys.executable, "-m", "linfa", "sweep", "_sweep_targets:SLOW_FA", "-n", str(n), "--chunk-size", "8",
           "--out", str(out), "--no-progress", "--json"]
    env = {**_env(), "LINFA_TEST_SLEEP": "0.05"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2, 2], results
    for code, stdout, stderr in results:
        assert "Traceback" not in stderr
        if code == 2:
            assert "another linfa sweep is writing" in stderr
        else:
            assert json.loads(stdout)["n_run"] == n  # the winner did all of it ...
    with ResultStore.open(out, readonly=True) as s:  # ... once
        assert np.array_equal(s.recorded(), np.arange(n))


# ---------------------------------------------------------------- a store with a table dropped
@pytest.mark.parametrize("table", ["sweep", "instances", "metrics"])
def test_a_store_missing_a_table_is_refused_untouched(tmp_path: Path, table: str) -> None:
    out = tmp_path / "r.sqlite"
    sweep(tt.FA_SMALL, 16, out=out, seed=0, chunk_size=8)
    with sqlite3.connect(out) as c:
        c.execute(f"DROP TABLE {table}")
    c.close()
    before = out.read_bytes()
    with pytest.raises(StoreError, match=rf"without its table\(s\) \['{table}'\]"):
        sweep(tt.FA_SMALL, 32, out=out, seed=0, chunk_size=8)
    with pytest.raises(StoreError, match=table):
        summarize(out)
    assert out.read_bytes() == before
    wal = tmp_path / "r.sqlite-wal"  # a read-only reader may leave an empty log beside it, never pending writes
    assert not wal.exists() or wal.stat().st_size == 0


# ---------------------------------------------------------------- the parent killed
_ORPHANS = """
import sys, time
from linfa.sweep.executors import ProcessExecutor
ex = ProcessExecutor(2)
list(ex.imap_unordered(time.sleep, [(0.2,), (0.2,)]))  # both workers started
print(*[p.pid for p in ex._pool._processes.values()], flush=True)
time.sleep(600)
"""


def test_workers_exit_when_the_parent_is_killed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _ORPHANS], env=_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    pids = [int(x) for x in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for p in left:  # pragma: no cover - clean up after a failure
        os.kill(p, signal.SIGKILL)
    assert not left, "worker processes outlived their killed parent"


# ---------------------------------------------------------------- Dask: workers and scheduler lost
def test_a_cluster_without_workers_times_out_and_the_store_resumes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "r.sqlite"
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None, silence_logs=50) as lc, \
            distributed.Client(lc) as client:
        t0 = time.monotonic()
        with pytest.raises(ClusterLost, match=r"no worker for 0.5 s"):
            sweep(tt.FA_SMALL, 16, out=out, seed=0, chunk_size=8,
                  executor=DaskExecutor(client, timeout=0.5, poll=0.1))
        assert time.monotonic() - t0 < 30
    s = sweep(tt.FA_SMALL, 16, out=out, seed=0, chunk_size=8)  # intact, and resumable serially
    assert s.n_run == 16 and s.counts["ok"] == 16


def _start_scheduler(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    info = tmp_path / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(info)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return proc, json.loads(info.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the scheduler did not start")


def test_scheduler_death_says_the_store_is_intact_and_how_to_resume(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    sched, address = _start_scheduler(tmp_path)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--no-dashboard"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "r.sqlite"
    n = 400
    cmd = [sys.executable, "-m", "linfa", "sweep", "_sweep_targets:SLOW_FA", "-n", str(n), "--chunk-size", "8",
           "--out", str(out), "--no-progress", "--scheduler", address, "--cluster-timeout", "30"]
    sweeper = subprocess.Popen(cmd, env={**_env(), "LINFA_TEST_SLEEP": "0.05"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert sweeper.poll() is None, sweeper.communicate()
            try:
                with ResultStore.open(out, readonly=True) as s:
                    if s.count() >= 16:
                        break
            except StoreError:
                pass
            time.sleep(0.1)
        sched.kill()
        _, err = sweeper.communicate(timeout=120)
    finally:
        for p in (sched, worker, sweeper):
            p.kill()
            p.wait()
    assert sweeper.returncode == 4, err
    assert "Traceback" not in err and "intact" in err and "run the same command again to resume" in err
    with ResultStore.open(out, readonly=True) as s:
        partial = s.count()
    assert 16 <= partial < n
    monkeypatch.setenv("LINFA_TEST_SLEEP", "0")
    s2 = sweep(tt.SLOW_FA, n, out=out, seed=0, chunk_size=8)
    assert s2.n_run == n - partial and s2.n_recorded == n


# ---------------------------------------------------------------- reading a store without linfa
def test_the_readme_query_reads_every_record(tmp_path: Path) -> None:
    import math
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sql = re.search(r"```sql\n(.*?)```", readme, re.S)
    assert sql is not None
    out = tmp_path / "r.sqlite"
    sweep(tt.NOISY, 40, out=out, seed=2, chunk_size=16)
    with sqlite3.connect(out) as c:
        rows = c.execute(sql.group(1)).fetchall()
    c.close()
    by_idx: dict[int, dict[str, float]] = {}
    head: dict[int, tuple[object, ...]] = {}
    for idx, status, holds, margin, size, params, metric, value in rows:
        head[idx] = (status, None if holds is None else bool(holds), margin, size, json.loads(params))
        if metric is not None:
            by_idx.setdefault(idx, {})[metric] = math.nan if value is None else value
    with ResultStore.open(out, readonly=True) as store:
        records = list(store.records())
    assert sorted(head) == [r.index for r in records] == list(range(40))
    assert {r.status for r in records} == {"ok", "fail", "error"}
    for r in records:
        assert head[r.index] == (r.status, r.holds, r.margin, r.size, dict(r.params))
        assert by_idx.get(r.index, {}).keys() == r.metrics.keys()
        for k, v in r.metrics.items():
            assert by_idx[r.index][k] == v or (math.isnan(v) and math.isnan(by_idx[r.index][k]))


def test_a_summary_leaves_no_wal_files_unless_a_sweep_holds_them(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    ident = {"target": "x", "config": {}, "seed": 0}
    ResultStore.open(path, identity=ident).close()
    beside = lambda: sorted(p.name for p in tmp_path.iterdir())
    assert beside() == ["r.db"]
    with ResultStore.open(path, readonly=True) as store:
        assert store.target == "x"
        assert "r.db-wal" in beside()  # SQLite's reader made them
    assert beside() == ["r.db"]
    # a sweep writing meanwhile keeps its log: the reader must not take it away
    writer = ResultStore.open(path, identity=ident)
    with ResultStore.open(path, readonly=True):
        pass
    assert beside() == ["r.db", "r.db-shm", "r.db-wal"]
    writer.request(3, 1)
    writer.close()
    assert beside() == ["r.db"]
    with ResultStore.open(path, readonly=True) as store:
        assert store.n_instances == 3
