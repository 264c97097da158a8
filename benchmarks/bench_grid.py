"""G1: linfa across a grid of batch sizes and widths, against JAX + diffrax (a script, not a test).

Each row: FA with widths (n, n, n), Σxx = I, teacher entries N(0, 1/n),
feedback entries N(0, 1/n), initial weights N(0, 1e-6), K independent
instances, t in [0, 20], rtol 1e-6, atol 1e-9, ``tsit5``. Routes, interleaved
in one process (the order rotated from one repetition to the next, and
:data:`SETTLE` seconds of rest before each call, so that no route always
starts while the one before it still has threads spinning): linfa's default call (no ``threads=``,
no ``kernel=``: the compiled path wherever it applies; the column says which route ran), the default
with ``threads=1``, the numpy
engine forced (``kernel="numpy"``, its default threads), and JAX + diffrax
(Tsit5 + PIDController, ``vmap`` over the instances, ``jit``-compiled before
timing: compile time not counted) when ``jax`` and ``diffrax`` are installed
(``pip install -e '.[bench]'``). linfa's numba kernels are compiled (or loaded
from numba's disk cache) before timing too; the first call's cost is printed.

Goal (issue 16): the default call at least as fast as diffrax on every row,
and 2x faster at 256 x 16. Printed: times (best of N), each route's speed
against diffrax, and the largest relative difference of final states between
linfa and diffrax. Best-of-N alone cannot tell a small difference from the
machine's noise (on a shared 2-core VM the same computation varies by 10%
or more within minutes), so each row also prints the *paired* speed ratio:
the default call and diffrax run in the same repetition, a few seconds
apart at most, so a slow spell of the machine tends to hit both; the geometric mean of
the N per-repetition ratios diffrax / default with a 95% t-interval on their
logarithms, and the verdict it supports: ``faster`` or ``slower`` when the
interval excludes 1, ``tie`` when it does not (use ``--repeat 9`` or more
for a row whose ratio is near 1). The repetitions are not fully independent
(the machine's load drifts), which the rotation of the order only partly
undoes: read the interval as a guide, not an exact coverage.

The script unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for itself
(see ``_blas_env.py``) and prints the BLAS kernel in use.

Run: ``python benchmarks/bench_grid.py [--quick] [--repeat N] [--rows 256x16,1x512]
[--routes default,diffrax]``.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_integrate import w1_diffrax, w1_problem  # noqa: E402
from scipy import stats  # noqa: E402

from linfa.dynamics import solve  # noqa: E402

ROWS = [(1, 16), (16, 16), (256, 16), (4096, 16), (256, 4), (256, 64), (16, 128), (1, 512)]
QUICK = [(1, 16), (16, 16), (256, 16), (256, 4)]
T1, RTOL, ATOL = 20.0, 1e-6, 1e-9
#: Seconds of rest before each timed call. A route's worker threads spin for a while after it returns
#: (OpenBLAS's, XLA's), and a call started then shares the cores with them. With the routes always in
#: the same order, linfa's default call (always right after diffrax) ran 13% slower at 1 x 512 than
#: the same computation forced with kernel="numpy"; with the order rotated and this rest, the two
#: still differed by 0-11% from run to run, so that row's ratio is only good to about 10%.
SETTLE = 0.5


def _flat(state, K):
    return np.concatenate([np.asarray(s).reshape(K, -1) for s in state], axis=1)


def paired_ratio(fast: list[float], slow: list[float]) -> tuple[float, float, float]:
    """Geometric mean of ``slow[i] / fast[i]`` and its 95% t-interval: ``(mean, low, high)``.

    The interval is ``exp(m ± t_{0.975, N-1} s / sqrt(N))`` with ``m`` and ``s`` the mean and
    standard deviation of the log ratios (NaN bounds for fewer than three pairs).
    """
    logs = np.log(np.asarray(slow) / np.asarray(fast))
    m = float(np.mean(logs))
    if logs.size < 3:
        return math.exp(m), math.nan, math.nan
    half = float(stats.t.ppf(0.975, logs.size - 1)) * float(np.std(logs, ddof=1)) / math.sqrt(logs.size)
    return math.exp(m), math.exp(m - half), math.exp(m + half)


def verdict(low: float, high: float) -> str:
    """``faster`` / ``slower`` when the interval of diffrax / default excludes 1, else ``tie``."""
    if math.isnan(low):
        return "too few pairs"
    return "faster" if low > 1 else "slower" if high < 1 else "tie"


def bench_row(K: int, n: int, repeat: int, only: set[str] | None = None) -> dict:
    rule, task, w0 = w1_problem(K, n, seed=0)
    routes = {
        "default": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5"),
        "threads=1": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5", threads=1),
        "numpy": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5", kernel="numpy"),
    }
    if only is not None:
        routes = {k: v for k, v in routes.items() if k in only or k == "default"}
    t0 = time.perf_counter()
    dfx = w1_diffrax(rule, task, w0, T1, RTOL, ATOL) if only is None or "diffrax" in only else None
    compile_s = time.perf_counter() - t0
    if dfx is not None:
        routes["diffrax"] = dfx
    times: dict[str, list[float]] = {k: [] for k in routes}
    finals: dict[str, np.ndarray] = {}
    kernel = ""
    n_rep = repeat
    i = 0
    while i < n_rep:  # interleaved: a burst of load hits every route alike
        spent = 0.0
        names = list(routes)
        for name in names[i % len(names):] + names[: i % len(names)]:  # each route after each other one
            fn = routes[name]
            time.sleep(SETTLE)  # threads the last route left spinning (OpenBLAS's, XLA's) go to sleep
            t = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t)
            spent += times[name][-1]
            finals[name] = out if name == "diffrax" else _flat(out.state_final, K)
            if name == "default":
                kernel = out.stats["kernel"]
        if spent < 0.5:
            n_rep = max(repeat, 10)  # small rows: more repeats, they are cheap and noisy
        i += 1
    best = {k: min(v) for k, v in times.items()}
    rel = paired = None
    if "diffrax" in finals:
        scale = np.linalg.norm(finals["diffrax"], axis=1)
        rel = float(np.max(np.linalg.norm(finals["default"] - finals["diffrax"], axis=1) / scale))
        paired = paired_ratio(times["default"], times["diffrax"])
    same = bool(np.array_equal(finals["threads=1"], finals["default"])) if "threads=1" in finals else None
    rel_np = (float(np.max(np.linalg.norm(finals["default"] - finals["numpy"], axis=1)
                           / np.linalg.norm(finals["numpy"], axis=1))) if "numpy" in finals else None)
    return dict(K=K, n=n, best=best, rel=rel, rel_np=rel_np, same=same, repeats=n_rep, kernel=kernel,
                compile=compile_s if dfx else None, paired=paired, times=times)


def _fmt(t: float) -> str:
    return f"{t * 1e3:8.1f} ms" if t < 1 else f"{t:8.2f} s "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only the rows {QUICK}, best of 2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", help="comma-separated KxN, e.g. 256x16,1x512")
    parser.add_argument("--raw", action="store_true", help="also print every repetition's time per route")
    parser.add_argument("--routes", help="comma-separated routes to time besides the default call, from "
                        "threads=1, numpy, diffrax (default: all)")
    a = parser.parse_args()
    only = None if a.routes is None else {r.strip() for r in a.routes.split(",") if r.strip()}
    if only is not None and not only <= {"default", "threads=1", "numpy", "diffrax"}:
        parser.error(f"--routes: expected names from default, threads=1, numpy, diffrax; got {a.routes!r}")
    rows = QUICK if a.quick else ROWS
    if a.rows:
        rows = [tuple(int(x) for x in r.split("x")) for r in a.rows.split(",")]  # type: ignore[misc]
    repeat = 2 if a.quick else a.repeat
    warm_rule, warm_task, warm_w0 = w1_problem(4, 4, seed=1)  # compile numba's kernels before any timing
    t_first = time.perf_counter()
    solve(warm_rule, warm_task, warm_w0, 1.0, method="tsit5", kernel="compiled")
    t_first = time.perf_counter() - t_first
    for threads in (None, 1, 2):
        solve(warm_rule, warm_task, warm_w0, 1.0, method="tsit5", threads=threads, kernel="numpy")
    print(_blas_env.describe())
    print(f"first call of the compiled path in this process: {t_first:.2f} s (numba compiles, or loads its disk "
          "cache, once)")
    print(f"G1  FA (n,n,n), Sigma_xx = I, t in [0, 20], rtol 1e-6, atol 1e-9, tsit5; {os.cpu_count()} cores; "
          "best of N, interleaved; paired: diffrax / default per repetition")
    cols = ("default", "threads=1", "numpy", "diffrax")
    head = f"{'K x n':>9} | " + " | ".join(f"{c:>11}" for c in cols) + " | default vs diffrax"
    print(head)
    print("-" * len(head))
    for K, n in rows:
        r = bench_row(K, n, repeat, only)
        b = r["best"]
        dfx = b.get("diffrax")
        cells = [_fmt(b[c]) if c in b else "     --    " for c in cols]
        if dfx:
            ratio = dfx / b["default"]
            gm, lo, hi = r["paired"]
            tail = (f"{ratio:5.2f}x {'faster' if ratio >= 1 else 'slower'}  (paired {gm:.2f}x, 95% CI "
                    f"[{lo:.2f}, {hi:.2f}]: {verdict(lo, hi)}; "
                    + (f"numpy engine {dfx / b['numpy']:.2f}x; " if "numpy" in b else "")
                    + f"final states differ {r['rel']:.1e}; diffrax compile {r['compile']:.1f} s)")
        elif only is not None and "diffrax" not in only:
            tail = "(diffrax not asked for)"
        else:
            tail = "(diffrax not installed: pip install -e '.[bench]')"
        extra = "" if r["rel_np"] is None else f"; vs numpy engine {r['rel_np']:.1e}"
        extra += "" if r["same"] is None else f"; threads bit-identical: {r['same']}"
        print(f"{K:>4} x {n:<3} | " + " | ".join(cells) + f" | {tail}   "
              f"[default ran {r['kernel']}{extra}; N={r['repeats']}]", flush=True)
        if a.raw:
            for name, ts in r["times"].items():
                print(f"{'':>9}   {name:>9}: " + " ".join(f"{t:.3f}" for t in ts), flush=True)


if __name__ == "__main__":
    main()
