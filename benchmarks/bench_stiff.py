"""W4: a stiff workload — linfa's stiff methods ``bdf``, ``ros34pw2``, ``rodas4`` against ``tsit5``, scipy, CVODE.

W4 (issue 16): FA, widths (30, 20, 10), Σxx with eigenvalues log-spaced from
1e-4 to 1 in a random orthonormal basis, teacher entries N(0, 1/30), feedback
and initial weights N(0, 0.01), K = 64 instances, t in [0, 1e6], rtol 1e-6,
atol 1e-9. The state has D = 800 entries per instance.

Routes:

* ``rodas4`` (batched Rosenbrock 4(3), exact Jacobian by dual numbers, a dense
  LU per instance and step) on ``--k-stiff`` instances (default 64), its time
  scaled linearly to 64 when fewer are run (its cost is per instance: one
  ``D x D`` Jacobian and LU per instance and step);
* ``ros34pw2`` (batched Rosenbrock-W 3(2), the same exact Jacobian, kept with
  its LU across steps) on ``--k-w`` instances (default: as ``--k-stiff``),
  scaled to 64 likewise; ``--skip-rodas4`` leaves rodas4 out;
* ``bdf`` (linfa's variable-order NDF/BDF, the same exact Jacobian and LU
  kept per instance until its Newton iteration needs new ones; by default on
  its compiled route, each instance stepped by one numba loop, see
  ``linfa/integrate/compiled_bdf.py``) and ``bdf-numpy`` (the same method on
  its batched numpy route, ``kernel="numpy"``) on ``--k-ndf`` instances
  (default: as ``--k-stiff``), scaled to 64 likewise; printed: steps,
  Jacobians, LUs and Newton failures per instance, the time per instance, the
  two routes' ratio and the difference of their final states, where the
  compiled route's time goes (its counts times the cost of one LU, solve,
  flow evaluation and Jacobian), and the ratios to ``tsit5`` and to
  ``ros34pw2``;
* ``bdf-q0.5``: ``bdf`` (compiled) with ``BDF(lu_contraction=0.5)``
  (:data:`WIDE_BOUND`): a kept LU serves a wider band of ``c`` than with the
  default 0.3, the better trade on network problems with large states (fewer
  LUs for a few more steps; ``bench_bdf_bound.py`` compares the bounds across
  problem families; left out with ``bdf``);
* ``tsit5`` on all 64 instances over the whole interval (about 4 minutes on 2
  cores with the compiled path). With ``--tsit5-steps N`` (``--quick``: 500) it
  stops after ``N`` steps and its time is projected to the whole interval from
  the time reached by the slowest instance. The projection overstates: the
  early steps are shorter (h about 2 against about 3 later); on 2026-12-01 it
  gave 441 s from 2000 steps where the whole run took 251 s;
* ``scipy:BDF`` on ``--k-bdf`` instances (default 4), in the variants of
  ``--bdf`` (comma-separated): ``default`` (the route's own rule: the exact
  Jacobian, and the instances in groups solved as one block-diagonal sparse
  system, see ``linfa/integrate/_scipy.py``), ``single`` (exact Jacobian,
  one instance at a time) and ``fd`` (one at a time with scipy's
  finite-difference Jacobian: the route as it was before the exact Jacobian);
* reference: ``rodas4`` at rtol 1e-8, atol 1e-11 on the first instance
  (``--k-ref``); printed: each route's relative difference of final states
  on it.

The script unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for itself
(see ``_blas_env.py``) and prints the BLAS kernel in use.

* ``--cvode N``: SUNDIALS CVODE (BDF, its own dense direct solver) through
  ``scikit-sundae`` (not a linfa dependency: ``pip install scikit-sundae``),
  one instance at a time on the first ``N`` instances, with the exact
  Jacobian (:func:`linfa.dual.jacobian` of the one flow definition) as a dense
  callback: the issue's yardstick. scikit-sundae reports steps, flow and
  Jacobian evaluations, not CVODE's linear-solver setups (its LUs).
* ``--blas-compare``: also run ``bdf`` and ``ros34pw2`` the way the stiff
  methods ran before ``linfa.integrate.linsolve`` (OpenBLAS with its own
  threads, the instances one after another) and print the ratio, and check
  that ``bdf``'s result does not depend on the number of threads.

``--scipy-grid`` instead times ``scipy:BDF`` as one system against one by one
on small FA problems (the measurements behind the group rule of the scipy
route), t in [0, 1e4], Σxx eigenvalues 1e-3..1.

``--skip rodas4,ros34pw2,tsit5,bdf,bdf-numpy`` leaves routes out; ``--t1`` shortens the
horizon (for profiling; the ratios are then not W4's).

Run: ``python benchmarks/bench_stiff.py [--quick]`` (``--quick``: 2 instances
for rodas4 and BDF, 500 tsit5 steps; a few minutes).
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import linfa  # noqa: E402
from linfa.dynamics import prepare, solve  # noqa: E402
from linfa.dynamics.problem import vector_field  # noqa: E402
from linfa.integrate import BDF, StepSizeController  # noqa: E402
from linfa.integrate import _scipy as scipy_route  # noqa: E402
from linfa.integrate.problem import Problem  # noqa: E402

T1, RTOL, ATOL = 1e6, 1e-6, 1e-9
#: bdf with a wider bound on a kept LU's contraction than the default 0.3 (the ``bdf-q0.5`` row)
WIDE_BOUND = BDF(lu_contraction=0.5)


def w4_problem(K: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    sxx = (q * np.logspace(-4, 0, 30)) @ q.T
    sxx = 0.5 * (sxx + sxx.T)
    task = linfa.Task.teacher(rng.standard_normal((K, 10, 30)) / np.sqrt(30), sxx=sxx)
    feedback = (0.1 * rng.standard_normal((K, 20, 10)),)
    w0 = (0.1 * rng.standard_normal((K, 20, 30)), 0.1 * rng.standard_normal((K, 10, 20)))
    return linfa.FA(feedback), task, w0


def subset(rule, task, w0, k: int):
    fb = tuple(b[:k] for b in rule.feedback)
    sxx = task.sxx[:k] if task.sxx.ndim == 3 else task.sxx
    return linfa.FA(fb), linfa.Task(sxx, task.syx[:k], task.syy[:k]), tuple(w[:k] for w in w0)


def _flat(state, k):
    return np.concatenate([np.asarray(s).reshape(k, -1) for s in state], axis=1)


GRID = [(16, (4, 3, 2)), (16, (6, 4, 3)), (64, (6, 4, 3)), (4, (10, 8, 5)), (16, (10, 8, 5)), (4, (16, 10, 5)),
        (16, (16, 10, 5))]


def fa_small(K: int, widths: tuple[int, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    n0 = widths[0]
    q, _ = np.linalg.qr(rng.standard_normal((n0, n0)))
    sxx = (q * np.logspace(-3, 0, n0)) @ q.T
    task = linfa.Task.teacher(rng.standard_normal((K, widths[-1], n0)) / np.sqrt(n0), sxx=0.5 * (sxx + sxx.T))
    rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=0.1, batch=(K,)))
    w0 = tuple(0.1 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(len(widths) - 1))
    return rule, task, w0


def scipy_grid() -> None:
    print("scipy:BDF, exact Jacobian: groups as one block-diagonal system vs one instance at a time; FA, "
          "Sigma_xx eigenvalues 1e-3..1, t in [0, 1e4], rtol 1e-6, atol 1e-9")
    for K, widths in GRID:
        rule, task, w0 = fa_small(K, widths)
        problem = (rule, task, w0)
        t_j, joint = timed(lambda p=problem: scipy_bdf(*p, 1e4, "default"))
        t_s, single = timed(lambda p=problem: scipy_bdf(*p, 1e4, "single"))
        a, b = _flat(single.state_final, K), _flat(joint.state_final, K)
        diff = np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1))
        print(f"    K = {K:3d}, widths {widths}, D = {a.shape[1]:4d}: one system {t_j:6.2f} s "
              f"({joint.stats['num_steps'].mean():.0f} steps), one by one {t_s:6.2f} s "
              f"({single.stats['num_steps'].mean():.0f} steps/instance): {t_s / t_j:5.2f}x; "
              f"final states differ {diff:.0e}", flush=True)


def scipy_bdf(rule, task, w0, t1, variant: str):
    """``scipy:BDF`` on the route's default rule, one by one with the exact Jacobian, or one by one with FD."""
    if variant == "default":
        return solve(rule, task, w0, t1, rtol=RTOL, atol=ATOL, method="scipy:BDF")
    y0, args, batch, unpack = prepare(rule, task, w0)
    p = Problem.build(vector_field(unpack), y0, t1, t0=0.0, args=args, batch_shape=batch, saveat=None, observe=None,
                      controller=StepSizeController(rtol=RTOL, atol=ATOL), max_steps=100_000, until=None,
                      throw=False)
    return scipy_route.run(p, "BDF", joint=1, exact_jacobian=variant == "single").solution("scipy:BDF")


def cvode(rule, task, w0, t1):
    """SUNDIALS CVODE BDF (scikit-sundae) one instance at a time, exact dense Jacobian; final states, steps."""
    from sksundae.cvode import CVODE

    from linfa import dual

    y0, args, batch, unpack = prepare(rule, task, w0)
    p = Problem.build(vector_field(unpack), y0, t1, t0=0.0, args=args, batch_shape=batch, saveat=None, observe=None,
                      controller=StepSizeController(rtol=RTOL, atol=ATOL), max_steps=100_000, until=None,
                      throw=False)
    layout, K = p.layout, p.K
    finals, steps, njev, nfev = [], [], [], []
    for k in range(K):
        sub = p.make_args().take(np.array([k]))

        def rhs(t, y, yp, sub):
            yp[:] = layout.flatten(p.vf(np.array([t]), layout.views(y[None, :]), sub), 1)[0]

        def jac(t, y, yp, jj, sub):
            jj[:, :] = dual.jacobian(lambda _, leaves: p.vf(np.array([t]), leaves, sub), t,
                                     layout.views(np.array(y)[None, :]), batch_ndim=1)[0]

        out = CVODE(rhs, method="BDF", rtol=RTOL, atol=ATOL, jacfn=jac, linsolver="dense", userdata=sub,
                    max_num_steps=1_000_000).solve(np.array([0.0, t1]), p.y0[k])
        if not out.success:
            raise RuntimeError(f"CVODE failed on instance {k}: {out.message}")
        finals.append(out.y[-1])
        steps.append(len(out.t) - 1)
        njev.append(out.njev)
        nfev.append(out.nfev)
    return np.array(finals), np.array(steps), np.array(njev), np.array(nfev)


def bdf_breakdown(rule, task, w0, stats) -> None:
    """Where compiled bdf's time goes, per instance: its counts times the cost of one operation.

    One LU of ``I - c J`` (single precision), one triangular solve, one flow
    evaluation (the tape) and one Jacobian (:func:`linfa.dual.jacobian`, as many
    instances a call as the route takes), each timed on one thread with
    its data in cache; solves and flow evaluations both counted as the flow
    evaluations of the steps.
    """
    from threadpoolctl import threadpool_limits

    from linfa import dual
    from linfa.integrate import compiled_bdf
    from linfa.integrate.compiled import _field
    from linfa.integrate.rosenbrock import _at

    rows = 3
    y0, args, batch, unpack = prepare(*subset(rule, task, w0, rows))
    p = Problem.build(vector_field(unpack), y0, T1, t0=0.0, args=args, batch_shape=batch, saveat=None,
                      observe=None, controller=StepSizeController(rtol=RTOL, atol=ATOL), max_steps=100_000,
                      until=None, throw=False)
    plan, _ = compiled_bdf.plan(p)
    D, tp = p.layout.D, plan.tape
    sgetrf, sgetrs, dgetrf, dgetrs = compiled_bdf._routines()

    per = max(1, min(rows, compiled_bdf.JACOBIAN_ENTRIES // (D * D)))  # instances a call, as the route does

    out = np.empty((per, D, D))

    def jac():  # into a reused array, as the route does
        return dual.jacobian(_at(p, np.zeros(per), p.make_args().take(np.arange(per))), 0.0,
                             p.layout.views(p.y0[:per]), batch_ndim=1, out=out)

    def per_call(fn, n):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    jt = jac()[0].reshape(-1)  # row-major J: the route factors M^T and solves with "T"
    store, piv = np.zeros(2 * D * D, np.float32), np.zeros(D, np.int32)
    ib, trans = np.array([D, 0, 1], np.int32), np.array([84], np.uint8)
    r, r32, f = np.random.default_rng(0).standard_normal(D), np.zeros(D, np.float32), np.empty(D)
    ws = tp.template.copy()
    ws[D : D + tp.A] = plan.args[0]
    tmp = np.empty(max(plan.tmp_size, 1))
    with threadpool_limits(1, user_api="blas"):
        t_lu = per_call(lambda: compiled_bdf._factor(jt, store, piv, 10.0, True, D, sgetrf, dgetrf, ib), 20)
        t_solve = per_call(lambda: compiled_bdf._solve(store, piv, r, True, r32, D, sgetrs, dgetrs, ib, trans), 300)
        t_flow = per_call(lambda: _field(tp.code, ws, tmp, D, D + tp.A, tp.out_off, plan.leaf_off, plan.leaf_size,
                                         0.0, p.y0[0], f), 1000)
        t_jac = per_call(jac, 5) / per
    n_lu, n_jac = stats["num_lu"].mean(), stats["num_jacobians"].mean()
    n_it = stats["num_flow_evals"].mean() - 2
    parts = {"LUs": n_lu * t_lu, "solves": n_it * t_solve, "flows": n_it * t_flow, "Jacobians": n_jac * t_jac}
    total = sum(parts.values())
    print(f"    bdf (compiled) per instance, one thread, data in cache: {n_lu:.1f} LUs x {t_lu * 1e3:.2f} ms = "
          f"{parts['LUs']:.3f} s, {n_it:.0f} solves x {t_solve * 1e3:.3f} ms = {parts['solves']:.3f} s, "
          f"{n_it:.0f} flows x {t_flow * 1e6:.1f} us = {parts['flows']:.3f} s, {n_jac:.1f} Jacobians x "
          f"{t_jac * 1e3:.1f} ms = {parts['Jacobians']:.3f} s; sum {total:.3f} s, LUs {parts['LUs'] / total:.0%} "
          f"of it", flush=True)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k-stiff", type=int, default=None)
    parser.add_argument("--k-bdf", type=int, default=None)
    parser.add_argument("--tsit5-steps", type=int, default=None)
    parser.add_argument("--k-ref", type=int, default=1, help="instances of the reference (0: none)")
    parser.add_argument("--k-w", type=int, default=None)
    parser.add_argument("--skip-rodas4", action="store_true")
    parser.add_argument("--skip", default="",
                        help="comma-separated routes to leave out: rodas4, ros34pw2, bdf, bdf-numpy, tsit5")
    parser.add_argument("--bdf", default="default", help="scipy:BDF variants: default, single, fd (comma-separated)")
    parser.add_argument("--t1", type=float, default=T1)
    parser.add_argument("--scipy-grid", action="store_true")
    parser.add_argument("--k-ndf", type=int, default=None, help="instances for linfa's bdf (default: --k-stiff)")
    parser.add_argument("--blas-compare", action="store_true",
                        help="also time bdf and ros34pw2 with OpenBLAS's own threads and the instances in series")
    parser.add_argument("--cvode", type=int, default=0, help="instances for SUNDIALS CVODE (scikit-sundae); 0: none")
    a = parser.parse_args()
    if a.scipy_grid:
        print(_blas_env.describe())
        scipy_grid()
        return
    skip = set(filter(None, a.skip.split(",")))
    if a.skip_rodas4:
        skip.add("rodas4")
    t1 = a.t1
    k_stiff = a.k_stiff or (2 if a.quick else 64)
    k_bdf = a.k_bdf if a.k_bdf is not None else (2 if a.quick else 4)
    n_tsit5 = a.tsit5_steps or (500 if a.quick else 10**6)
    print(_blas_env.describe())
    print(f"W4  FA (30,20,10), Sigma_xx eigenvalues 1e-4..1, K=64, t in [0, {t1:g}], rtol 1e-6, atol 1e-9 (D = 800); "
          "times are only comparable within one run (shared, loaded machine)")
    rule, task, w0 = w4_problem()
    k_ref = a.k_ref
    ref_final = np.zeros((0, 800))
    if k_ref:
        r_ref = subset(rule, task, w0, k_ref)
        t_ref, ref = timed(lambda: solve(*r_ref, t1, rtol=1e-8, atol=1e-11, method="rodas4"))
        ref_final = _flat(ref.state_final, k_ref)
        print(f"    reference rodas4 rtol 1e-8 on {k_ref} instance(s): {t_ref:.1f} s, status "
              f"{set(ref.status.tolist())}, steps {ref.stats['num_steps'].mean():.0f}", flush=True)
    else:
        print("    no reference (--k-ref 0): accuracy not reported", flush=True)

    def rel(sol, k_sol):
        k = min(k_sol, k_ref)
        if not k:
            return float("nan")
        got = _flat(sol.state_final, k_sol)[:k]
        return float(np.max(np.linalg.norm(got - ref_final[:k], axis=1) / np.linalg.norm(ref_final[:k], axis=1)))

    k_w = a.k_w or k_stiff
    t_w64 = t_st64 = t_ts_proj = float("nan")
    if "ros34pw2" not in skip:
        t_w, w = timed(lambda: solve(*subset(rule, task, w0, k_w), t1, rtol=RTOL, atol=ATOL, method="ros34pw2"))
        t_w64 = t_w * 64 / k_w
        print(f"    ros34pw2 on {k_w} instances: {t_w:.1f} s ({t_w / k_w:.2f} s per instance)"
              + (f" -> {t_w64:.0f} s projected for 64" if k_w != 64 else "")
              + f"; steps/instance {w.stats['num_steps'].mean():.0f} ({w.stats['num_rejected'].mean():.0f} rejected), "
              f"Jacobians {w.stats['num_jacobians'].mean():.0f}, LUs {w.stats['num_lu'].mean():.0f}; "
              f"max rel. diff {rel(w, k_w):.1e}", flush=True)
    k_ndf = a.k_ndf or k_stiff
    t_n64 = t_nn64 = float("nan")
    ndf_runs = {}
    if "bdf" not in skip:  # numba compiles the loop (or loads it from its disk cache) on the first call
        t_warm, _ = timed(lambda: solve(*subset(rule, task, w0, 1), 1.0, rtol=RTOL, atol=ATOL, method="bdf"))
        print(f"    bdf's first call (compiled loop built or loaded; not in the times below): {t_warm:.1f} s",
              flush=True)
    t_wide64 = None
    for route, kernel, method in (("bdf", None, "bdf"), ("bdf-numpy", "numpy", "bdf"),
                                  ("bdf-q0.5", None, WIDE_BOUND)):
        if route in skip or ("bdf" in skip and route == "bdf-q0.5"):
            continue
        prob = subset(rule, task, w0, k_ndf)
        t_n, nd = timed(lambda p=prob, k=kernel, m=method: solve(*p, t1, rtol=RTOL, atol=ATOL, method=m, kernel=k))
        ndf_runs[route] = nd
        if route == "bdf":
            t_n64 = t_n * 64 / k_ndf
        elif route == "bdf-numpy":
            t_nn64 = t_n * 64 / k_ndf
        else:
            t_wide64 = t_n * 64 / k_ndf
        st = nd.stats
        print(f"    {route} ({st['kernel']}) on {k_ndf} instances: {t_n:.1f} s ({t_n / k_ndf:.3f} s per instance)"
              + (f" -> {t_n * 64 / k_ndf:.0f} s projected for 64" if k_ndf != 64 else "")
              + f"; status {set(nd.status.tolist())}; steps/instance {st['num_steps'].mean():.0f} "
              f"({st['num_rejected'].mean():.0f} rejected, {st['num_newton_failures'].mean():.1f} of them Newton "
              f"failures), flow evaluations {st['num_flow_evals'].mean():.0f}, Jacobians "
              f"{st['num_jacobians'].mean():.1f}, LUs {st['num_lu'].mean():.1f}; max rel. diff {rel(nd, k_ndf):.1e}",
              flush=True)
    if len(ndf_runs) == 2:
        c, n = (_flat(ndf_runs[r].state_final, k_ndf) for r in ("bdf", "bdf-numpy"))
        diff = float(np.max(np.linalg.norm(c - n, axis=1) / np.linalg.norm(n, axis=1)))
        print(f"    bdf compiled vs numpy: {t_nn64 / t_n64:.2f}x faster; final states differ {diff:.1e} "
              "(relative, the worst instance)", flush=True)
    if "bdf" in ndf_runs:
        bdf_breakdown(rule, task, w0, ndf_runs["bdf"].stats)
    if a.blas_compare:
        from linfa.integrate import linsolve

        routes = [r for r in ("bdf", "ros34pw2") if r not in skip]
        for route in routes:  # bdf on its numpy route: the compiled one calls LAPACK itself, one thread each
            k_r = k_ndf if route == "bdf" else k_w
            kern = "numpy" if route == "bdf" else None
            prob = subset(rule, task, w0, k_r)
            t_new, new = timed(lambda p=prob, r=route, k=kern: solve(*p, t1, rtol=RTOL, atol=ATOL, method=r, kernel=k))
            linsolve.SERIAL_BLAS = False
            try:
                t_old, old = timed(lambda p=prob, r=route, k=kern: solve(*p, t1, rtol=RTOL, atol=ATOL, method=r,
                                                                         threads=1, kernel=k))
            finally:
                linsolve.SERIAL_BLAS = True
            print(f"    {route} on {k_r} instances: BLAS on one thread and the instances on {linsolve.cores()} "
                  f"threads {t_new:.1f} s; OpenBLAS's own threads, instances in series {t_old:.1f} s: "
                  f"{t_old / t_new:.2f}x; final states differ "
                  f"{np.max(np.abs(_flat(old.state_final, k_r) - _flat(new.state_final, k_r))):.1e}", flush=True)
            if route == "bdf":
                for kern in ("numpy", None):
                    prob_k = subset(rule, task, w0, k_r)
                    _, one = timed(lambda p=prob_k, k=kern: solve(*p, t1, rtol=RTOL, atol=ATOL, method="bdf",
                                                                 threads=1, kernel=k))
                    _, two = timed(lambda p=prob_k, k=kern: solve(*p, t1, rtol=RTOL, atol=ATOL, method="bdf",
                                                                 threads=linsolve.cores(), kernel=k))
                    same = all(np.array_equal(x, y) for x, y in zip(one.state_final, two.state_final, strict=True))
                    print(f"    bdf ({two.stats['kernel']}) with threads=1 and threads={linsolve.cores()}: "
                          f"bit-identical {same}", flush=True)
    if "rodas4" not in skip:
        t_st, st = timed(lambda: solve(*subset(rule, task, w0, k_stiff), t1, rtol=RTOL, atol=ATOL, method="rodas4"))
        t_st64 = t_st * 64 / k_stiff
        print(f"    rodas4 on {k_stiff} instances: {t_st:.1f} s"
              + (f" -> {t_st64:.0f} s projected for 64" if k_stiff != 64 else "")
              + f"; steps/instance {st.stats['num_steps'].mean():.0f}; max rel. diff {rel(st, k_stiff):.1e}",
              flush=True)
    if "tsit5" not in skip:
        t_ts, ts = timed(lambda: solve(rule, task, w0, t1, rtol=RTOL, atol=ATOL, method="tsit5", max_steps=n_tsit5))
        reached = float(np.min(ts.t_final))
        t_ts_proj = t_ts * t1 / reached
        steps = int(np.max(ts.stats["num_steps"]))
        how = ("the whole interval" if reached >= t1 else
               f"t >= {reached:.0f} -> {t_ts_proj:.0f} s projected to t = {t1:g} "
               "(an overestimate: early steps are shorter)")
        print(f"    tsit5 on 64 instances: {t_ts:.1f} s, {steps} steps (mean h {reached / steps:.2f}, "
              f"stability-limited); {how}", flush=True)
    bdf_times = {}
    for variant in filter(None, a.bdf.split(",")) if k_bdf else ():
        what = {"default": "exact Jacobian, groups as one sparse block-diagonal system",
                "single": "exact Jacobian, one instance at a time",
                "fd": "finite-difference Jacobian, one instance at a time (before)"}[variant]
        t_bdf, bdf = timed(lambda v=variant: scipy_bdf(*subset(rule, task, w0, k_bdf), t1, v))
        bdf_times[variant] = t_bdf
        print(f"    scipy:BDF ({what}) on {k_bdf} instances: {t_bdf:.1f} s -> {t_bdf * 64 / k_bdf:.0f} s for 64; "
              f"steps/instance {bdf.stats['num_accepted'].mean():.0f}, flow evaluations/instance "
              f"{bdf.stats['num_flow_evals'].mean():.0f}; status {set(bdf.status.tolist())}; "
              f"max rel. diff {rel(bdf, k_bdf):.1e}", flush=True)
    if a.cvode:
        try:
            t_cv, (cv_final, cv_steps, cv_jev, cv_fev) = timed(lambda: cvode(*subset(rule, task, w0, a.cvode), t1))
        except ImportError:
            print("    CVODE: scikit-sundae not installed (pip install scikit-sundae)")
        else:
            diff = float("nan")
            if k_ref:
                k = min(a.cvode, k_ref)
                diff = float(np.max(np.linalg.norm(cv_final[:k] - ref_final[:k], axis=1)
                                    / np.linalg.norm(ref_final[:k], axis=1)))
            print(f"    CVODE BDF (scikit-sundae, exact dense Jacobian) on {a.cvode} instance(s): {t_cv:.1f} s "
                  f"({t_cv / a.cvode:.2f} s per instance) -> {t_cv * 64 / a.cvode:.0f} s for 64; steps/instance "
                  f"{cv_steps.mean():.0f}, flow evaluations {cv_fev.mean():.0f}, Jacobians {cv_jev.mean():.0f} "
                  f"(linear-solver setups: not reported by scikit-sundae); max rel. diff {diff:.1e}", flush=True)
            if "ros34pw2" not in skip:
                print(f"    ros34pw2 vs CVODE (per instance): {t_cv / a.cvode / (t_w64 / 64):.2f}x")
            if "bdf" not in skip:
                print(f"    bdf vs CVODE (per instance): {t_cv / a.cvode / (t_n64 / 64):.2f}x")
    for v in ("single", "fd"):
        if v in bdf_times and "default" in bdf_times:
            print(f"    scipy:BDF default vs {v}: {bdf_times[v] / bdf_times['default']:.2f}x faster")
    if "tsit5" not in skip and "rodas4" not in skip:
        print(f"    rodas4 vs tsit5 (64 instances): {t_ts_proj / t_st64:.2f}x  (target >= 20x)")
    if "tsit5" not in skip and "ros34pw2" not in skip:
        print(f"    ros34pw2 vs tsit5 (64 instances): {t_ts_proj / t_w64:.2f}x  (target >= 20x)")
    if "tsit5" not in skip and "bdf" not in skip:
        print(f"    bdf vs tsit5 (64 instances): {t_ts_proj / t_n64:.2f}x  (target >= 20x)")
    if "tsit5" not in skip and t_wide64 is not None:
        print(f"    bdf-q0.5 ({WIDE_BOUND}) vs tsit5 (64 instances): {t_ts_proj / t_wide64:.2f}x")
    if "tsit5" not in skip and "bdf-numpy" not in skip:
        print(f"    bdf (numpy route) vs tsit5 (64 instances): {t_ts_proj / t_nn64:.2f}x")
    if "ros34pw2" not in skip and "bdf" not in skip:
        print(f"    bdf vs ros34pw2 (64 instances): {t_w64 / t_n64:.2f}x")


if __name__ == "__main__":
    main()
