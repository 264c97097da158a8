"""Benchmark: the teacher–student ODEs by linfa's adaptive solver vs explicit Euler (a script, not a test).

Setting (issue "Shallow networks in the teacher–student limit"): K = M = 4, g = erf(·/√2),
DFA, 64 instances (initial order parameters of Gaussian weights at N = 100, student std 0.5,
second layer N(0, 0.25), v* = 1, feedback b ~ N(0, I), η ~ U(0.2, 0.8)), α ∈ [0, 1000],
η² terms kept.

* linfa: :func:`linfa.teacher_student.solve` (dopri5 and tsit5, rtol 1e-8, atol 1e-10), all
  instances in one batched solve;
* the authors' scheme: explicit Euler with dα = 1/N = 1e-3 in plain numpy on the same vector
  field (:class:`linfa.teacher_student.Flow`), all instances at once;
* reference: dop853 at rtol 1e-12, atol 1e-14.

Accuracy is the largest absolute error in ``(Q, R, v)`` over instances at the saved times.
A full Euler run is 10⁶ steps (tens of minutes here); by default Euler runs on
``α ∈ [0, --euler-alpha]`` and its time over ``[0, 1000]`` is extrapolated from the time per step
(constant for a fixed-step method), and both accuracies are compared on that window as well as
the adaptive solve's accuracy on the whole range. ``--full`` runs Euler over the whole range.

Run: ``python benchmarks/bench_teacher_student.py [--euler-alpha A] [--full]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from linfa import teacher_student as ts

ALPHA = 1000.0
DT = 1e-3


def problem(size: int = 64, k: int = 4, m: int = 4, seed: int = 0) -> ts.Problem:
    rng = np.random.default_rng(seed)
    w, wstar = ts.initial_weights(rng, 100, k, m, size=size, scale=0.5)
    v = 0.5 * rng.standard_normal((size, k))
    return ts.Problem.from_weights(w, wstar, v, np.ones((size, m)), rule="DFA", b=rng.standard_normal((size, k)),
                                   eta=rng.uniform(0.2, 0.8, size))


def euler(p: ts.Problem, alpha: float, saveat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Explicit Euler with step DT in plain numpy; states at ``saveat`` (multiples of DT), leaves (B, S, ...)."""
    flow = ts.Flow(p.activation, p.rule, p.train_second_layer, p.second_order)
    args = (p.T, p.vstar, p.b, p.eta, p.sigma)
    y = [p.Q.copy(), p.R.copy(), p.v.copy()]
    marks = np.rint(saveat / DT).astype(int)
    out: list[list[np.ndarray]] = [[], [], []]
    steps = round(alpha / DT)
    j = 0
    for n in range(steps + 1):
        while j < len(marks) and marks[j] == n:
            for i in range(3):
                out[i].append(y[i].copy())
            j += 1
        if n == steps:
            break
        d = flow(n * DT, y, args)
        for i in range(3):
            y[i] += DT * d[i]
    return tuple(np.stack(o, axis=1) for o in out)


def error(states: tuple[np.ndarray, ...], ref: tuple[np.ndarray, ...]) -> float:
    return float(max(np.max(np.abs(a - b)) for a, b in zip(states, ref, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--euler-alpha", type=float, default=2.0, help="Euler window [0, A] (default 2)")
    parser.add_argument("--full", action="store_true", help="run Euler over the whole range [0, 1000]")
    a = parser.parse_args()
    p = problem()
    window = ALPHA if a.full else a.euler_alpha
    save_all = np.array([0.0, 1.0, 10.0, 100.0, ALPHA])
    save_win = np.linspace(0.0, window, 5)

    ref_all = ts.solve(p, ALPHA, saveat=save_all, method="dop853", rtol=1e-12, atol=1e-14).states
    ref_win = ts.solve(p, window, saveat=save_win, method="dop853", rtol=1e-12, atol=1e-14).states

    t0 = time.perf_counter()
    eu = euler(p, window, save_win)
    t_euler = (time.perf_counter() - t0) * (ALPHA / window)
    err_euler = error(eu, ref_win)
    print(f"K = M = 4, erf, DFA, {p.batch_shape[0]} instances, alpha in [0, {ALPHA:g}]")
    print(f"euler dt={DT:g} (plain numpy): {'measured' if a.full else 'extrapolated'} time {t_euler:8.2f} s"
          f"   error on [0, {window:g}]: {err_euler:.2e}")
    for method in ("dopri5", "tsit5"):
        t0 = time.perf_counter()
        sol = ts.solve(p, ALPHA, saveat=save_all, method=method, rtol=1e-8, atol=1e-10)
        t_ad = time.perf_counter() - t0
        err_all = error(sol.states, ref_all)
        err_win = error(ts.solve(p, window, saveat=save_win, method=method, rtol=1e-8, atol=1e-10).states, ref_win)
        steps = int(np.max(sol.stats["num_steps"]))
        print(f"linfa {method:6s} rtol 1e-8:        time {t_ad:8.2f} s   error on [0, {window:g}]: {err_win:.2e}"
              f"   on [0, {ALPHA:g}]: {err_all:.2e}   (max {steps} steps)")
        print(f"  ratios: euler time / linfa time = {t_euler / t_ad:7.1f}x   "
              f"euler error / linfa error (window) = {err_euler / max(err_win, 1e-300):.1e}")


if __name__ == "__main__":
    main()
