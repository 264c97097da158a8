"""Benchmarks of linfa.integrate against peers, printed as ratios (a script, not a test).

W1 — many small instances: FA, widths (16, 16, 16), Σxx = I, teacher entries
N(0, 1/16), feedback entries N(0, 1/16), initial weights N(0, 1e-6), K = 256
independent instances, t in [0, 20], rtol 1e-6, atol 1e-9. Reference: a loop
of ``scipy.integrate.solve_ivp`` (RK45, same tolerances) over the instances,
each on its flattened state, in the same process. Target: linfa >= 15x
faster, final states agreeing to 1e-5 (relative). Printed for one thread
and for ``threads=N`` (N = the machine's cores, at least 2), whose results
must be bit-identical to one thread's; with ``dopri5``, ``tsit5`` and ``dop853``.

W2 — one large instance: FA, widths (512, 512, 512, 512). The cost of one
flow evaluation (as :func:`linfa.solve` makes it, through the packed
arguments) against the bare matrix products it needs. Target <= 1.3x.

The issue's yardstick for W1 is also JAX + diffrax (``Tsit5``, ``vmap`` over
the instances, compiled before timing): when ``jax`` and ``diffrax`` are
installed (``pip install -e '.[bench]'``) it runs interleaved with the others
and its ratio is printed too.

The script unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for itself
(see ``_blas_env.py``) and prints the BLAS kernel in use.

Run: ``python benchmarks/bench_integrate.py [--repeat N]``. Timings are the
best of ``N`` runs, interleaved, to damp the noise of a shared machine.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import linfa  # noqa: E402
from linfa.dynamics import prepare, solve  # noqa: E402


def w1_problem(K: int = 256, n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal((K, n, n)) / np.sqrt(n)
    task = linfa.Task.teacher(w_star)
    feedback = (rng.standard_normal((K, n, n)) / np.sqrt(n),)
    w0 = tuple(1e-3 * rng.standard_normal((K, n, n)) for _ in range(2))
    return linfa.FA(feedback), task, w0


def w1_reference(rule, task, w0, t1, rtol, atol):
    K, n = w0[0].shape[:2]
    out = np.empty((K, 2 * n * n))
    for k in range(K):
        flow = linfa.FA((rule.feedback[0][k],)).flow(linfa.Task(task.sxx[k], task.syx[k], task.syy[k]))

        def fun(t, y, flow=flow):
            d = flow(t, (y[: n * n].reshape(n, n), y[n * n :].reshape(n, n)))
            return np.concatenate([d[0].ravel(), d[1].ravel()])

        y0 = np.concatenate([w0[0][k].ravel(), w0[1][k].ravel()])
        sol = solve_ivp(fun, (0.0, t1), y0, method="RK45", rtol=rtol, atol=atol)
        out[k] = sol.y[:, -1]
    return out


def w1_diffrax(rule, task, w0, t1, rtol, atol):
    """A compiled JAX + diffrax solve of W1 (Tsit5, vmap), as a callable; None without jax/diffrax."""
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    assert task.whitened  # Σxx = I: E = Σyx − W2 W1

    def vf(t, y, args):
        w1, w2 = y
        b, syx = args
        e = syx - w2 @ w1
        return (b @ e, e @ w1.T)

    def one(y0, args):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Tsit5(), 0.0, t1, None, y0, args=args,
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=100_000,
            saveat=diffrax.SaveAt(t1=True),
        )
        return tuple(y[0] for y in sol.ys)

    solve_all = jax.jit(jax.vmap(one))
    y0 = tuple(jnp.asarray(w) for w in w0)
    args = (jnp.asarray(rule.feedback[0]), jnp.asarray(task.syx))
    K = w0[0].shape[0]

    def run():
        out = jax.block_until_ready(solve_all(y0, args))
        return np.concatenate([np.asarray(o).reshape(K, -1) for o in out], axis=1)

    run()  # compile
    return run


def best_of(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def bench_w1(repeat: int) -> None:
    rule, task, w0 = w1_problem()
    t1, rtol, atol = 20.0, 1e-6, 1e-9
    K = w0[0].shape[0]
    threads = max(2, min(os.cpu_count() or 1, 8))
    runs = {
        "dopri5": dict(method="dopri5"),
        f"dopri5, threads={threads}": dict(method="dopri5", threads=threads),
        "tsit5": dict(method="tsit5"),
        f"tsit5, threads={threads}": dict(method="tsit5", threads=threads),
        "dop853": dict(method="dop853"),
        f"dop853, threads={threads}": dict(method="dop853", threads=threads),
    }
    times: dict[str, list[float]] = {name: [] for name in ("ref", "diffrax", *runs)}
    sols = {}
    ref = None
    dfx = w1_diffrax(rule, task, w0, t1, rtol, atol)
    dfx_final = None
    for _ in range(repeat):  # interleaved, so that a burst of load hits every route alike
        t, ref = best_of(lambda: w1_reference(rule, task, w0, t1, rtol, atol), 1)
        times["ref"].append(t)
        if dfx is not None:
            t, dfx_final = best_of(dfx, 1)
            times["diffrax"].append(t)
        for name, kw in runs.items():
            t, sols[name] = best_of(lambda kw=kw: solve(rule, task, w0, t1, rtol=rtol, atol=atol, **kw), 1)
            times[name].append(t)
    assert ref is not None
    scale = np.linalg.norm(ref, axis=1)
    tr = min(times["ref"])
    print(f"W1  FA (16,16,16), K={K}, t in [0, 20], rtol 1e-6, atol 1e-9 (best of {repeat}; {os.cpu_count()} cores)")
    print(f"    solve_ivp RK45 loop          {tr:8.3f} s")
    if dfx_final is not None:
        td = min(times["diffrax"])
        rel = np.max(np.linalg.norm(dfx_final - ref, axis=1) / scale)
        print(f"    diffrax Tsit5, vmap (jit)    {td:8.3f} s   ratio {tr / td:6.1f}x   "
              f"max rel. diff of final states {rel:.1e}")
    else:
        td = None
        print("    (diffrax not installed: pip install -e '.[bench]' to compare with JAX + diffrax)")
    for name in runs:
        sol = sols[name]
        got = np.concatenate([s.reshape(K, -1) for s in sol.state_final], axis=1)
        rel = np.max(np.linalg.norm(got - ref, axis=1) / scale)
        tl = min(times[name])
        print(f"    linfa {name:22s} {tl:8.3f} s   ratio {tr / tl:6.1f}x   "
              f"max rel. diff of final states {rel:.1e}   steps/instance {sol.stats['num_steps'].mean():.1f}")
    if td is not None:
        best = min(runs, key=lambda name: min(times[name]))
        print(f"    (fastest linfa route, {best}: {td / min(times[best]):.2f}x faster than diffrax)")
    one, many = sols["dopri5"], sols[f"dopri5, threads={threads}"]
    same = all(np.array_equal(a, b) for a, b in zip(one.state_final, many.state_final, strict=True))
    print(f"    (threads={threads} bit-identical to one thread: {same})")
    flow = rule.flow(task)
    n_eval = 200
    t_flow, _ = best_of(lambda: [flow(0.0, w0) for _ in range(n_eval)], repeat)
    evals = one.stats["num_vf_calls"]
    tl = min(times["dopri5"])
    print(f"    (one batched flow evaluation {t_flow / n_eval * 1e3:.3f} ms; "
          f"{evals} of them in the one-thread dopri5 solve = {evals * t_flow / n_eval:.3f} s of its {tl:.3f} s)")


def bench_w2(repeat: int) -> None:
    rng = np.random.default_rng(1)
    widths = (512, 512, 512, 512)
    task = linfa.Task.random_teacher(rng, 512, 512)
    feedback = linfa.feedback.fa(widths, rng)
    rule = linfa.FA(feedback)
    w = linfa.DeepLinear(widths).gaussian(rng, 1.0 / np.sqrt(512))
    y0, args, _, unpack = prepare(rule, task, w)
    w1, w2, w3 = w
    b2, b3 = feedback
    sxx, syx = task.sxx, task.syx

    def bare():
        p2 = w2 @ w1
        p3 = w3 @ p2
        e = syx - p3 @ sxx
        d3 = b3 @ e
        d2 = b2 @ d3
        return d2, d3 @ w1.T, e @ p2.T

    t_arr = np.zeros(())

    def through_solve():
        r, tk = unpack(args)
        return r.flow(tk)(t_arr, y0)

    n = 5
    t_bare, t_flow = [], []
    for _ in range(repeat):
        t_bare.append(best_of(lambda: [bare() for _ in range(n)], 1)[0] / n)
        t_flow.append(best_of(lambda: [through_solve() for _ in range(n)], 1)[0] / n)
    ref = bare()
    got = through_solve()
    assert np.allclose(got[0], ref[0]) and np.allclose(got[2], ref[2])
    tb, tf = min(t_bare), min(t_flow)
    print("W2  FA (512,512,512,512), one instance")
    print(f"    bare matrix products (7)  {tb * 1e3:8.2f} ms")
    print(f"    flow evaluation          {tf * 1e3:8.2f} ms   ratio {tf / tb:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["W1", "W2"])
    a = parser.parse_args()
    print(_blas_env.describe())
    if a.only in (None, "W1"):
        bench_w1(a.repeat)
    if a.only in (None, "W2"):
        bench_w2(a.repeat)


if __name__ == "__main__":
    main()
