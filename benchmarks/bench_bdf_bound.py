"""``bdf``'s bound on a kept LU's contraction, ``BDF(lu_contraction=q_max)``, across stiff problem families.

A kept LU of ``I - c_LU J`` serves a step with ``c = r c_LU`` while ``q(r) =
|1 - r| / (1 + r) <= q_max`` (see ``linfa/integrate/bdf.py``): a larger bound
means fewer LUs for more Newton iterations, rejections and steps. The default
is 0.3. This script is the evidence for it: for each family it solves the
same instances with ``q_max`` in ``--bounds`` (default 0.2, 0.3, 0.5),
interleaved and best of
``--repeats``, on the default (compiled) route, and prints per instance: time,
its ratio to the first bound, steps, LUs, Jacobians, Newton failures,
rejected steps, failed instances and the largest relative difference of the
final states from a tight solve (``bdf`` at rtol 1e-10, atol 1e-13).

Families (rtol 1e-6, atol 1e-9 unless said):

* ``W4``: FA (30, 20, 10), Σxx eigenvalues 1e-4..1, t <= 1e6, D = 800 (8 instances);
* ``BP``, ``DFA``: the same sizes and data with backprop and direct feedback alignment (8 each);
* ``deep-FA``: FA (30, 20, 20, 10), D = 1200 (4);
* ``FA-small``: FA (16, 10, 5), Σxx eigenvalues 1e-3..1, D = 210 (16);
* ``brusselator``: the 1-D Brusselator on 200 points (Hairer & Wanner II, IV.1), D = 400, t <= 10 (4,
  diffusion α from 0.02 to 0.04);
* ``brusselator-400``: the same on 400 points, D = 800 (4);
* ``linear-600``: ``y' = A y``, ``A`` symmetric, eigenvalues -1..-1e4, D = 600, t <= 10 (4);
* ``allen-cahn``: ``u' = 0.01 N² Δu + u - u³``, Neumann, 256 points, D = 256, t <= 50 (4);
* ``van-der-pol``: ``ε y'' = (1 - y²) y' - y``, ε from 1e-6 to 1e-3, t <= 2, D = 2 (32);
* ``robertson``: Robertson's kinetics, rate constant 1e4..3e4, t <= 4e5, atol 1e-12, D = 3 (8).

Run: ``python benchmarks/bench_bdf_bound.py [--families W4,brusselator] [--bounds 0.2,0.5] [--repeats 2]``
(all families: about 2 minutes on 2 cores). Times are comparable within one run only.
"""

from __future__ import annotations

import _blas_env

_blas_env.clean()

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import linfa  # noqa: E402
from linfa.dynamics import solve  # noqa: E402
from linfa.integrate import BDF, integrate  # noqa: E402

Run = Callable[[BDF, float, float], Any]


def _flat(sol: Any, K: int) -> np.ndarray:
    return np.concatenate([np.asarray(x).reshape(K, -1) for x in sol.state_final], axis=1)


def _sxx(n: int, cond: float, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = (q * np.logspace(-np.log10(cond), 0, n)) @ q.T
    return 0.5 * (s + s.T)


def network(rule_name: str, widths: tuple[int, ...], K: int, cond: float, seed: int, t1: float = 1e6) -> Run:
    """A teacher task with ill-conditioned Σxx, trained by ``rule_name``; weights and feedback N(0, 0.01)."""
    rng = np.random.default_rng(seed)
    n0 = widths[0]
    task = linfa.Task.teacher(rng.standard_normal((K, widths[-1], n0)) / np.sqrt(n0), sxx=_sxx(n0, cond, rng))
    feedback = linfa.feedback.for_rule(rule_name, widths, rng, scale=0.1, batch=(K,))
    cls = getattr(linfa, rule_name)
    rule = cls(feedback) if feedback else cls()
    w0 = tuple(0.1 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(len(widths) - 1))
    return lambda m, rtol, atol: solve(rule, task, w0, t1, rtol=rtol, atol=atol, method=m)


def field(f: Callable[..., Any], y0: tuple[np.ndarray, ...], t1: float, args: tuple[np.ndarray, ...], K: int,
          atol_factor: float = 1.0) -> Run:
    return lambda m, rtol, atol: integrate(f, y0, t1, args=args, batch_shape=(K,), method=m, rtol=rtol,
                                           atol=atol * atol_factor)


def _laplacian(N: int) -> np.ndarray:
    return np.diag(-2.0 * np.ones(N)) + np.diag(np.ones(N - 1), 1) + np.diag(np.ones(N - 1), -1)


def brusselator(K: int = 4, N: int = 200, seed: int = 6) -> Run:
    rng = np.random.default_rng(seed)
    alpha = 0.02 * (1 + rng.random((K, 1, 1)))
    lap = alpha * (_laplacian(N) * (N + 1) ** 2)[None]
    bu = np.zeros((K, N, 1))
    bu[:, [0, -1]] = 1.0
    bu *= alpha * (N + 1) ** 2  # the boundary values u = 1, v = 3
    x = np.arange(1, N + 1) / (N + 1)
    u0 = np.broadcast_to((1 + np.sin(2 * np.pi * x))[None, :, None], (K, N, 1)).copy()

    def f(t: float, y: tuple[np.ndarray, ...], a: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        u, v = y
        uuv = u * u * v
        return (1 + uuv - 4 * u + a[0] @ u + a[1], 3 * u - uuv + a[0] @ v + a[2])

    return field(f, (u0, np.full((K, N, 1), 3.0)), 10.0, (lap, bu, 3 * bu), K)


def allen_cahn(K: int = 4, N: int = 256, seed: int = 7) -> Run:
    rng = np.random.default_rng(seed)
    lap = _laplacian(N)
    lap[0, 0] = lap[-1, -1] = -1.0
    lap = np.broadcast_to(lap * N**2 * 0.01, (K, N, N)).copy()

    def f(t: float, y: tuple[np.ndarray, ...], a: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        u = y[0]
        return (a[0] @ u + u - u * u * u,)

    return field(f, (0.1 * rng.standard_normal((K, N, 1)),), 50.0, (lap,), K)


def linear(K: int = 4, n: int = 600, seed: int = 9) -> Run:
    """``y' = A y``, ``A`` symmetric with eigenvalues log-spaced from -1 to -1e4 in a random basis."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((K, n, n)))
    a = -np.einsum("kij,j,klj->kil", q, np.logspace(0, 4, n), q)

    def f(t: float, y: tuple[np.ndarray, ...], args: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return (args[0] @ y[0],)

    return field(f, (rng.standard_normal((K, n, 1)),), 10.0, (a,), K)


def van_der_pol(K: int = 32) -> Run:
    def f(t: float, y: tuple[np.ndarray, ...], a: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return (y[1], ((1 - y[0] * y[0]) * y[1] - y[0]) / a[0])

    return field(f, (np.full((K, 1), 2.0), np.full((K, 1), -0.66)), 2.0, (np.logspace(-6, -3, K)[:, None],), K)


def robertson(K: int = 8) -> Run:
    def f(t: float, y: tuple[np.ndarray, ...], a: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        x, yy, z = y
        return (-0.04 * x + a[0] * yy * z, 0.04 * x - a[0] * yy * z - 3e7 * yy * yy, 3e7 * yy * yy)

    y0 = (np.ones((K, 1)), np.zeros((K, 1)), np.zeros((K, 1)))
    return field(f, y0, 4e5, (np.linspace(1e4, 3e4, K)[:, None],), K, atol_factor=1e-3)


FAMILIES: dict[str, Callable[[], Run]] = {
    "W4": lambda: network("FA", (30, 20, 10), 8, 1e4, 0),
    "BP": lambda: network("BP", (30, 20, 10), 8, 1e4, 1),
    "DFA": lambda: network("DFA", (30, 20, 10), 8, 1e4, 2),
    "deep-FA": lambda: network("FA", (30, 20, 20, 10), 4, 1e4, 3),
    "FA-small": lambda: network("FA", (16, 10, 5), 16, 1e3, 4),
    "brusselator": brusselator,
    "brusselator-400": lambda: brusselator(4, 400, 10),
    "linear-600": linear,
    "allen-cahn": allen_cahn,
    "van-der-pol": van_der_pol,
    "robertson": robertson,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--bounds", default="0.2,0.3,0.5")
    parser.add_argument("--repeats", type=int, default=2)
    a = parser.parse_args()
    bounds = [float(b) for b in a.bounds.split(",")]
    print(_blas_env.describe())
    print(f"bdf, compiled route, rtol 1e-6, atol 1e-9; default q_max {BDF().lu_contraction}; "
          "time per instance, best of the repeats, interleaved")
    warnings.simplefilter("ignore")
    for name in a.families.split(","):
        run = FAMILIES[name]()
        run(BDF(), 1e-3, 1e-6)  # compiles or loads the loop, traces the flow
        ref = run(BDF(), 1e-10, 1e-13)
        K = ref.status.size
        y_ref = _flat(ref, K)
        D = y_ref.shape[1]
        best = dict.fromkeys(bounds, np.inf)
        sols: dict[float, Any] = {}
        for _ in range(a.repeats):
            for b in bounds:
                t = time.perf_counter()
                sols[b] = run(BDF(lu_contraction=b), 1e-6, 1e-9)
                best[b] = min(best[b], time.perf_counter() - t)
        default = BDF().lu_contraction
        base = best[bounds[0]]
        print(f"== {name}: K = {K}, D = {D}, default q_max {default}; reference status all success: "
              f"{bool(np.all(ref.status == linfa.Status.success))}")
        for b in bounds:
            s, st = sols[b], sols[b].stats
            err = np.max(np.linalg.norm(_flat(s, K) - y_ref, axis=1) / np.linalg.norm(y_ref, axis=1))
            fail = int(np.sum(s.status != linfa.Status.success))
            print(f"  q_max {b:4.2f}{' (default)' if b == default else '          '} {1e3 * best[b] / K:8.1f} ms "
                  f"({base / best[b]:4.2f}x vs {bounds[0]})  steps {st['num_steps'].mean():7.1f}  "
                  f"LUs {st['num_lu'].mean():6.1f}"
                  f"  Jacobians {st['num_jacobians'].mean():5.1f}  Newton failures "
                  f"{st['num_newton_failures'].mean():5.1f}  rejected {st['num_rejected'].mean():6.1f}  failed {fail}"
                  f"  max rel. diff {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
