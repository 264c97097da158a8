"""G1: linfa across a grid of batch sizes and widths, against JAX + diffrax (a script, not a test).

Each row: FA with widths (n, n, n), Σxx = I, teacher entries N(0, 1/n),
feedback entries N(0, 1/n), initial weights N(0, 1e-6), K independent
instances, t in [0, 20], rtol 1e-6, atol 1e-9, ``tsit5``. Routes, interleaved
in one process (the order rotated from one repetition to the next, and
:data:`SETTLE` seconds of rest before each call, so that no route always
starts while the one before it still has threads spinning): linfa's default call (no ``threads=``, no ``kernel=``: the
compiled path or the numpy engine, as :func:`linfa.integrate.schedule.plan_kernel`
chooses; the column says which), the default with ``threads=1``, the numpy
engine forced (``kernel="numpy"``, its default threads), and JAX + diffrax
(Tsit5 + PIDController, ``vmap`` over the instances, ``jit``-compiled before
timing: compile time not counted) when ``jax`` and ``diffrax`` are installed
(``pip install -e '.[bench]'``). linfa's numba kernels are compiled (or loaded
from numba's disk cache) before timing too; the first call's cost is printed.

Goal (issue 16): the default call at least as fast as diffrax on every row,
and 2x faster at 256 x 16. Printed: times (best of N), each route's speed
against diffrax, and the largest relative difference of final states between
linfa and diffrax.

The script unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for itself
(see ``_blas_env.py``) and prints the BLAS kernel in use.

Run: ``python benchmarks/bench_grid.py [--quick] [--repeat N] [--rows 256x16,1x512]``.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_integrate import w1_diffrax, w1_problem  # noqa: E402

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


def bench_row(K: int, n: int, repeat: int) -> dict:
    rule, task, w0 = w1_problem(K, n, seed=0)
    routes = {
        "default": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5"),
        "threads=1": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5", threads=1),
        "numpy": lambda: solve(rule, task, w0, T1, rtol=RTOL, atol=ATOL, method="tsit5", kernel="numpy"),
    }
    t0 = time.perf_counter()
    dfx = w1_diffrax(rule, task, w0, T1, RTOL, ATOL)
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
    rel = None
    if "diffrax" in finals:
        scale = np.linalg.norm(finals["diffrax"], axis=1)
        rel = float(np.max(np.linalg.norm(finals["default"] - finals["diffrax"], axis=1) / scale))
    same = bool(np.array_equal(finals["threads=1"], finals["default"]))
    rel_np = float(np.max(np.linalg.norm(finals["default"] - finals["numpy"], axis=1)
                          / np.linalg.norm(finals["numpy"], axis=1)))
    return dict(K=K, n=n, best=best, rel=rel, rel_np=rel_np, same=same, repeats=n_rep, kernel=kernel,
                compile=compile_s if dfx else None)


def _fmt(t: float) -> str:
    return f"{t * 1e3:8.1f} ms" if t < 1 else f"{t:8.2f} s "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only the rows {QUICK}, best of 2")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", help="comma-separated KxN, e.g. 256x16,1x512")
    a = parser.parse_args()
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
          "best of N, interleaved")
    cols = ("default", "threads=1", "numpy", "diffrax")
    head = f"{'K x n':>9} | " + " | ".join(f"{c:>11}" for c in cols) + " | default vs diffrax"
    print(head)
    print("-" * len(head))
    for K, n in rows:
        r = bench_row(K, n, repeat)
        b = r["best"]
        dfx = b.get("diffrax")
        cells = [_fmt(b["default"]), _fmt(b["threads=1"]), _fmt(b["numpy"]), _fmt(dfx) if dfx else "     --    "]
        if dfx:
            ratio = dfx / b["default"]
            tail = (f"{ratio:5.2f}x {'faster' if ratio >= 1 else 'slower'}  (numpy engine "
                    f"{dfx / b['numpy']:.2f}x; final states differ {r['rel']:.1e}; diffrax compile "
                    f"{r['compile']:.1f} s)")
        else:
            tail = "(diffrax not installed: pip install -e '.[bench]')"
        print(f"{K:>4} x {n:<3} | " + " | ".join(cells) + f" | {tail}   "
              f"[default ran {r['kernel']}; vs numpy engine {r['rel_np']:.1e}; N={r['repeats']}, "
              f"threads bit-identical: {r['same']}]", flush=True)


if __name__ == "__main__":
    main()
