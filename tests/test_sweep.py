"""linfa.sweep: seeds, results store, resume after a kill, failures, bad files, executors, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _sweep_targets as tt
import numpy as np
import pytest
from _sweep_targets import fingerprint

from linfa.sweep import (
    Batched,
    PerInstance,
    ResultStore,
    StoreError,
    chunked,
    instance_seed,
    replay,
    summarize,
    sweep,
)
from linfa.sweep.cli import main as cli_main
from linfa.sweep.examples import FA_ALIGNMENT, fa_alignment
from linfa.sweep.store import SCHEMA_VERSION
from linfa.sweep.summary import Summary
from linfa.sweep.targets import to_record

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


# ------------------------------------------------------------------ seeds
def test_instance_seed_is_the_spawned_child() -> None:
    children = np.random.SeedSequence(12345).spawn(40)
    for i in (0, 1, 17, 39):
        assert np.array_equal(instance_seed(12345, i).generate_state(8), children[i].generate_state(8))


def test_chunks_cover_indices_once_and_keep_groups_whole() -> None:
    idx = [0, 1, 2, 3, 8, 9, 10, 20, 21, 22, 23, 24]
    for size, group in [(1, 1), (5, 1), (3, 4), (8, 4), (100, 4)]:
        chunks = chunked(idx, size, group_size=group)
        assert [i for c in chunks for i in c] == idx
        assert all(len(c) <= max(size, group) for c in chunks)
        for c in chunks:  # no group split across chunks
            for other in chunks:
                if other is not c:
                    assert not {i // group for i in c} & {i // group for i in other}
    with pytest.raises(ValueError, match="chunk_size"):
        chunked(idx, 0)


def test_batched_example_does_not_depend_on_batch_composition() -> None:
    seeds = [instance_seed(3, i) for i in range(12)]
    whole = fa_alignment(seeds, steps=10)
    for i in (0, 5, 11):
        alone = fa_alignment(seeds[i : i + 1], steps=10)
        assert whole["margin"][i].tobytes() == alone["margin"][0].tobytes()
        assert whole["loss"][i].tobytes() == alone["loss"][0].tobytes()


# --------------------------------------------------------- chunking/order
def test_results_identical_for_any_chunking(tmp_path: Path) -> None:
    prints = []
    for chunk in (1, 7, 64):
        s = sweep(tt.FA_SMALL, 50, out=tmp_path / f"c{chunk}.sqlite", seed=11, chunk_size=chunk)
        assert s.counts == {"ok": 50, "fail": 0, "inconclusive": 0, "error": 0} and s.n_run == 50
        prints.append(fingerprint(tmp_path / f"c{chunk}.sqlite"))
    assert prints[0] == prints[1] == prints[2]
    assert len({p[3] for p in prints[0]}) == 50  # 50 distinct margins: instances really differ
    other = sweep(tt.FA_SMALL, 50, out=tmp_path / "seed12.sqlite", seed=12)
    assert fingerprint(tmp_path / "seed12.sqlite") != prints[0] and other.n_recorded == 50


def test_extending_a_sweep_keeps_its_instances(tmp_path: Path) -> None:
    out = tmp_path / "grow.sqlite"
    sweep(tt.FA_SMALL, 20, out=out, seed=5, chunk_size=8)
    s = sweep(tt.FA_SMALL, 45, out=out, seed=5, chunk_size=8)
    assert s.n_run == 25 and s.n_recorded == 45 and s.n_instances == 45
    sweep(tt.FA_SMALL, 45, out=tmp_path / "once.sqlite", seed=5, chunk_size=16)
    assert fingerprint(out) == fingerprint(tmp_path / "once.sqlite")


def test_finished_sweep_rerun_does_no_work(tmp_path: Path) -> None:
    out = tmp_path / "done.sqlite"
    first = sweep(tt.FA_SMALL, 30, out=out, seed=1, chunk_size=8)
    calls: list[int] = []
    again = sweep(tt.FA_SMALL, 30, out=out, seed=1, chunk_size=8, progress=calls.append)
    assert again.n_run == 0 and calls == []
    assert again.counts == first.counts and again.quantiles == first.quantiles
    assert fingerprint(out) and summarize(out).worst == first.worst


# --------------------------------------------------------------- failures
def test_failures_and_errors_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "noisy.sqlite"
    s = sweep(tt.NOISY, 200, out=out, seed=2, chunk_size=16)
    assert s.n_recorded == 200 and s.counts["fail"] > 5 and s.counts["error"] > 3
    with ResultStore.open(out, readonly=True) as store:
        fails = list(store.records("fail"))
        errors = list(store.records("error"))
        oks = list(store.records("ok"))
    for r in fails:
        assert r.holds is False and r.margin is not None and r.margin <= 0
        assert r.arrays()["x"].shape == (3,)  # the instance itself
        assert r.replay is not None and "seed=2" in r.replay and f"index={r.index}" in r.replay
    for r in errors:
        assert "FloatingPointError: bad draw" in (r.error or "") and r.replay is not None
        with pytest.raises(FloatingPointError):
            replay(tt.NOISY, seed=2, index=r.index)
    assert all(r.instance is None and r.replay is None for r in oks)
    # the smallest counterexample: smallest size, then lowest index
    best = min(fails, key=lambda r: (r.size, r.index))
    assert s.counterexample is not None and s.counterexample.index == best.index
    assert s.first_error is not None and s.first_error.index == min(r.index for r in errors)
    assert s.worst[0][1] == min(r.margin for r in fails if r.margin is not None)
    # the stored replay command reproduces the failure in a fresh interpreter
    cmd = fails[0].replay
    assert cmd is not None and cmd.startswith("python -c ")
    code = json.loads(cmd[len("python -c "):])
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"index={fails[0].index}, status='fail'" in res.stdout


def test_undecided_instances_are_inconclusive_never_counterexamples(tmp_path: Path) -> None:
    out = tmp_path / "undecided.sqlite"
    s = sweep(tt.UNDECIDED, 120, out=out, seed=3, chunk_size=16)
    assert s.counts["inconclusive"] > 10 and s.counts["fail"] == 0 and s.counts["ok"] > 60
    assert s.passed and s.counterexample is None
    text = str(s)
    assert f"holds on all {s.counts['ok']} decided instances ({s.counts['inconclusive']} inconclusive)" in text
    with ResultStore.open(out, readonly=True) as store:
        undecided = list(store.records("inconclusive"))
    assert all(r.holds is False and r.params["inconclusive_reason"] == "x0 too close to 0" for r in undecided)
    assert {i for i, _ in s.worst}.isdisjoint(r.index for r in undecided)  # their margin (-1) is not a worst case
    assert min(m for _, m in s.worst) > 5
    # every instance undecided: nothing against the claim, and said so
    allundecided = Summary(path="x", target="t", seed=0, n_instances=4, counts={"inconclusive": 4})
    assert allundecided.passed and "inconclusive: none of 4 instances decided" in str(allundecided)
    with pytest.raises(ValueError, match="cannot both hold and be inconclusive"):
        to_record(0, {"holds": True, "inconclusive": True})


def test_empirical_summary_uses_the_catalogues_binomial_test() -> None:
    from scipy.stats import binom

    for ok, fail, undecided in [(80, 20, 0), (75, 25, 0), (9, 1, 5), (70, 30, 40), (0, 4, 0)]:
        s = Summary(path="x", target="t", seed=0, n_instances=ok + fail + undecided, kind="empirical",
                    fraction=0.9, counts={"ok": ok, "fail": fail, "inconclusive": undecided})
        assert s.passed == (binom.cdf(ok, ok + fail, 0.9) >= 1e-3), (ok, fail, undecided)


def test_a_raising_batch_is_split_and_only_bad_instances_error(tmp_path: Path) -> None:
    out = tmp_path / "raise.sqlite"
    s = sweep(tt.FA_OR_RAISE, 64, out=out, seed=4, chunk_size=16)
    bad = {i for i in range(64) if np.random.default_rng(instance_seed(4, i)).random() < 0.1}
    assert bad and s.counts == {"ok": 64 - len(bad), "fail": 0, "inconclusive": 0, "error": len(bad)}
    with ResultStore.open(out, readonly=True) as store:
        assert {r.index for r in store.records("error")} == bad
        ok = {r.index: r for r in store.records("ok")}
    clean = sweep(tt.FA_SMALL, 64, out=tmp_path / "clean.sqlite", seed=4, chunk_size=16)
    assert clean.n_recorded == 64
    for r in fingerprint(tmp_path / "clean.sqlite"):
        if r[0] not in bad:
            assert float(ok[r[0]].margin).hex() == r[3]  # type: ignore[arg-type]


# -------------------------------------------------------------- bad files
def test_foreign_and_corrupt_files_are_reported_and_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("my precious notes\n")
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as c:
        c.execute("CREATE TABLE people (name TEXT)")
        c.execute("INSERT INTO people VALUES ('ada')")
    c.close()
    good = tmp_path / "good.sqlite"
    sweep(tt.FA_SMALL, 40, out=good, seed=0, chunk_size=8)
    damaged = tmp_path / "damaged.sqlite"
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 2000] = os.urandom(2000)
    raw[100:200] = b"\xff" * 100
    damaged.write_bytes(bytes(raw))
    newer = tmp_path / "newer.sqlite"
    newer.write_bytes(good.read_bytes())
    with sqlite3.connect(newer) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.close()
    cases = [(text, "not an SQLite database"), (foreign, "not a linfa sweep results file"),
             (damaged, "damaged"), (newer, "newer linfa")]
    for path, message in cases:
        before = path.read_bytes()
        with pytest.raises(StoreError, match=message) as err:
            sweep(tt.FA_SMALL, 10, out=path, seed=0)
        assert str(path) in str(err.value)
        with pytest.raises(StoreError, match=message):
            summarize(path)
        assert path.read_bytes() == before
    # the results of another sweep
    before = good.read_bytes()
    with pytest.raises(StoreError, match=r"different sweep.*seed"):
        sweep(tt.FA_SMALL, 40, out=good, seed=1)
    with pytest.raises(StoreError, match=r"different sweep.*target"):
        sweep(tt.NOISY, 40, out=good, seed=0)
    with pytest.raises(StoreError, match=r"different sweep.*config"):
        sweep(Batched(tt.fa_alignment, steps=21, id=tt.FA_SMALL.id), 40, out=good, seed=0)
    assert good.read_bytes() == before


# ------------------------------------------------------ kill and resume
def _wait_rows(path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as c:
                    rows = c.execute("SELECT count(*) FROM instances").fetchone()[0]
                c.close()
                if rows >= n:
                    return int(rows)
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("the sweep did not get going")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_sweep_resumes_with_every_instance_once(tmp_path: Path, sig: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "killed.sqlite"
    n = 400
    cmd = [sys.executable, "-m", "linfa.sweep.cli", "_sweep_targets:SLOW_FA", "-n", str(n), "--seed", "9",
           "--chunk-size", "8", "--out", str(out), "--no-progress"]
    if sig == signal.SIGTERM:
        cmd += ["--workers", "2"]
    proc = subprocess.Popen(cmd, env={**_env(), "LINFA_TEST_SLEEP": "0.03"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_rows(out, 40, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "run the same command again to resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    with ResultStore.open(out, readonly=True) as store:
        partial = store.count()
    assert 40 <= partial < n and partial % 8 == 0  # whole chunks only
    monkeypatch.setenv("LINFA_TEST_SLEEP", "0")
    s = sweep(tt.SLOW_FA, n, out=out, seed=9, chunk_size=8)
    assert s.n_run == n - partial and s.n_recorded == n and s.counts["ok"] == n
    with ResultStore.open(out, readonly=True) as store:
        assert np.array_equal(store.recorded(), np.arange(n))
    sweep(tt.SLOW_FA, n, out=tmp_path / "straight.sqlite", seed=9, chunk_size=50)
    assert fingerprint(out) == fingerprint(tmp_path / "straight.sqlite")


# ------------------------------------------------------------------ CLI
def test_cli_runs_resumes_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.sqlite"
    rc = cli_main(["_sweep_targets:NOISY", "-n", "60", "--seed", "2", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    failing = re.search(r"fails on (\d+) of 60 instances", text)  # not "FAILS on 60/60 [ok 57, fail 3]"
    assert rc == 1 and failing and "smallest counterexample" in text and "replay:" in text
    assert cli_main(["_sweep_targets:NOISY", "-n", "60", "--seed", "2", "--out", str(out), "--no-progress"]) == 1
    assert "this run" not in capsys.readouterr().out  # nothing re-run
    assert cli_main(["--summary", str(out), "--json"]) == 1  # the exit code of the sweep: a claim failed
    data = json.loads(capsys.readouterr().out)
    assert sum(data["counts"].values()) == 60 and data["counterexample"]["replay"]
    assert data["counts"]["fail"] == int(failing.group(1))
    ok = tmp_path / "ok.sqlite"
    assert cli_main(["linfa.sweep.examples:FA_ALIGNMENT", "-n", "20", "--out", str(ok), "--no-progress"]) == 0
    assert "holds on all 20 instances" in capsys.readouterr().out
    assert cli_main(["--summary", str(ok)]) == 0
    assert "holds on all 20 instances" in capsys.readouterr().out
    assert cli_main(["--summary", str(ok), "--replay", "3"]) == 2  # not silently ignored
    assert "--replay" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    assert cli_main(["linfa.sweep.examples:FA_ALIGNMENT", "-n", "5", "--out", str(bad)]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert cli_main(["no_such_module:x", "-n", "5", "--out", str(tmp_path / "y")]) == 2
    assert "cannot import" in capsys.readouterr().err


def test_progress_bar_shows_rate_and_eta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep(tt.FA_SMALL, 32, out=tmp_path / "bar.sqlite", chunk_size=8, progress=True)
    err = capsys.readouterr().err
    assert "32/32" in err and "inst/s" in err and "<" in err  # elapsed<remaining


def test_bad_arguments_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_instances"):
        sweep(tt.FA_SMALL, -1, out=tmp_path / "a")
    with pytest.raises(ValueError, match="chunk_size"):
        sweep(tt.FA_SMALL, 1, out=tmp_path / "a", chunk_size=0)
    with pytest.raises(ValueError, match="workers, scheduler"):
        sweep(tt.FA_SMALL, 1, out=tmp_path / "a", workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="workers"):
        sweep(tt.FA_SMALL, 5, out=tmp_path / "b", workers=0)
    with pytest.raises(TypeError, match="seed"):
        sweep(tt.FA_SMALL, 1, out=tmp_path / "a", seed=-3)
    with pytest.raises(TypeError, match="target"):
        sweep(42, 1, out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"result\['margin'\]: expected leading axis K = 1, got shape \(4,\)"):
        replay(Batched(_bad_batched), seed=0, index=0)  # K = 1 here: message names the key
    with pytest.raises(StoreError, match="does not exist"):
        sweep(tt.FA_SMALL, 1, out=tmp_path / "no" / "such" / "dir.sqlite")
    assert PerInstance(tt.noisy_claim).id == "_sweep_targets:noisy_claim"
    by_seed = PerInstance(_first_state, arg="seed", id="first-state")
    assert "arg='seed', id='first-state'" in by_seed.replay_command(0, 1)
    assert replay(by_seed, seed=7, index=2).metrics["value"] == float(instance_seed(7, 2).generate_state(1)[0])
    assert FA_ALIGNMENT.id == "linfa.sweep.examples:fa_alignment"


def _bad_batched(seeds: list[np.random.SeedSequence]) -> dict[str, Any]:
    return {"margin": np.zeros(len(seeds) + 3)}


def _first_state(seed: np.random.SeedSequence) -> float:
    return float(seed.generate_state(1)[0])


def test_bad_workers_leave_no_results_file(tmp_path):
    from linfa.sweep import sweep
    from linfa.sweep.examples import FA_ALIGNMENT

    out = tmp_path / "w.sqlite"
    with pytest.raises(ValueError, match="workers: expected a positive number"):
        sweep(FA_ALIGNMENT, 10, out=out, workers=0)
    assert not out.exists()


def test_resuming_with_another_numpy_or_linfa_version_is_refused(tmp_path, monkeypatch):
    import linfa
    from linfa.sweep import StoreError, summarize, sweep
    from linfa.sweep.examples import FA_ALIGNMENT

    out = tmp_path / "v.sqlite"
    sweep(FA_ALIGNMENT, 8, out=out, chunk_size=4)
    before = out.read_bytes()
    monkeypatch.setattr(np, "__version__", "0.0.1")
    with pytest.raises(StoreError, match=r"written with numpy .*this is numpy 0\.0\.1"):
        sweep(FA_ALIGNMENT, 16, out=out, chunk_size=4)
    monkeypatch.undo()
    monkeypatch.setattr(linfa, "__version__", "9.9")
    with pytest.raises(StoreError, match=r"this is linfa 9\.9"):
        sweep(FA_ALIGNMENT, 16, out=out, chunk_size=4)
    assert out.read_bytes() == before
    assert summarize(out).counts["ok"] + summarize(out).counts["fail"] == 8  # reading back is still allowed
