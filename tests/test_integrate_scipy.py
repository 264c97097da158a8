"""The ``scipy:`` route: the exact Jacobian it hands to the implicit methods, and the batch solved as one
block-diagonal system against one instance at a time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

import linfa
from linfa.dynamics import prepare, solve
from linfa.dynamics.problem import vector_field
from linfa.integrate import StepSizeController, _scipy, integrate
from linfa.integrate.problem import Problem


def _fa(K: int, widths: tuple[int, ...], seed: int, cond: float = 1e3):
    rng = np.random.default_rng(seed)
    n0 = widths[0]
    q, _ = np.linalg.qr(rng.standard_normal((n0, n0)))
    sxx = (q * np.logspace(-np.log10(cond), 0, n0)) @ q.T
    task = linfa.Task.teacher(rng.standard_normal((K, widths[-1], n0)) / np.sqrt(n0), sxx=0.5 * (sxx + sxx.T))
    rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=0.3, batch=(K,)))
    w0 = tuple(0.3 * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(len(widths) - 1))
    return rule, task, w0


def _problem(rule, task, w0, t1: float, **kw) -> Problem:
    y0, args, batch, unpack = prepare(rule, task, w0)
    return Problem.build(vector_field(unpack), y0, t1, t0=0.0, args=args, batch_shape=batch, saveat=kw.get("saveat"),
                         observe=None, controller=StepSizeController(rtol=1e-7, atol=1e-10), max_steps=10_000,
                         until=None, throw=False)


def test_exact_jacobian_equals_central_differences_and_assembles_block_diagonally() -> None:
    p = _problem(*_fa(3, (5, 4, 3), 0), 1.0)
    args = p.make_args().current()
    jac = _scipy._exact_jacobian(p, args, p.y0, batched=True)
    got = jac(0.0, p.y0)  # (K, D, D)
    K, D = p.y0.shape
    fd = np.empty_like(got)
    eps = 1e-6
    for j in range(D):
        e = np.zeros(D)
        e[j] = eps
        hi = p.layout.flatten(p.vf(np.zeros(K), p.layout.views(p.y0 + e), args), K)
        lo = p.layout.flatten(p.vf(np.zeros(K), p.layout.views(p.y0 - e), args), K)
        fd[:, :, j] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    one = _scipy._exact_jacobian(p, p.make_args().take(np.array([1])), p.y0[1:2])
    assert one is not None
    np.testing.assert_allclose(one(0.0, p.y0[1]), got[1], rtol=1e-14, atol=1e-14)  # per instance = batched
    np.testing.assert_array_equal(_scipy.block_diagonal(got).toarray(), sla.block_diag(*got))


@pytest.mark.parametrize("name", ["BDF", "Radau"])
def test_joint_system_agrees_with_one_by_one_and_with_rodas4(name) -> None:
    rule, task, w0 = _fa(3, (5, 4, 3), 1)
    t1, ts = 1e3, np.array([0.0, 10.0, 1e3])
    p = _problem(rule, task, w0, t1, saveat=ts)
    assert _scipy.joint_size(p, name) == 3  # the rule: small states, one group
    joint = _scipy.run(p, name).solution(name)
    single = _scipy.run(p, name, joint=1).solution(name)
    ref = solve(rule, task, w0, t1, saveat=ts, method="rodas4", rtol=1e-8, atol=1e-11)
    for sol in (joint, single):
        assert (sol.status == 0).all()
        for a, b in zip(sol.states, ref.states, strict=True):
            rel = np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))
            assert np.all(rel < 2e-5), rel
    steps = joint.stats["num_accepted"]
    assert np.all(steps == steps[0])  # one system: shared steps
    # finite differences with the block-diagonal sparsity pattern: the same answer
    fd = _scipy.run(p, name, exact_jacobian=False).solution(name)
    for a, b in zip(fd.state_final, joint.state_final, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_joint_group_size_rule_and_fallback_to_one_by_one_on_failure() -> None:
    p = _problem(*_fa(40, (30, 20, 10), 2), 1.0)  # D = 800: 2**22 // 800**2 = 6 instances a group
    assert _scipy.joint_size(p, "BDF") == 6
    assert _scipy.joint_size(p, "LSODA") == 1
    # y' = a y^2 blows up at t = 1/a for a = 1 only: the joint solve fails, the batch is redone one by one
    a = np.array([0.1, 1.0, 0.2])

    def blow(t, y, args):
        return (args[0][:, None] * y[0] * y[0],)

    kw = dict(args=(a,), batch_shape=(3,), method="scipy:BDF", rtol=1e-8, atol=1e-10)
    sol = integrate(blow, (np.ones((3, 1)),), 3.0, **kw)
    assert sol.status[0] == 0 and sol.status[2] == 0 and sol.status[1] != 0
    np.testing.assert_allclose(sol.state_final[0][[0, 2], 0], 1 / (1 - 3.0 * a[[0, 2]]), rtol=1e-6)
    with pytest.raises(ValueError, match="joint"):
        _scipy.run(p, "LSODA", joint=4)
