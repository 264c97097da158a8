"""Exact Jacobian–vector products of the one flow definition (linfa.dual).

Three independent routes to the same derivative of every registered rule's
flow (built-ins and a rule registered here): dual numbers through the numpy
flow, central finite differences of the numpy flow, and sympy's derivative of
the same flow evaluated on explicit symbolic matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import linfa
from linfa import dual
from linfa.rules import FeedbackLayout
from linfa.tasks import Task

WIDTHS = (3, 4, 3, 2)


class _GainDFA(linfa.AbstractRule):
    """A user's rule: DFA whose output signal is amplified by ``I + W_L B_{L-1}`` (state-dependent, cubic flow)."""

    name = "GainDFA_test_dual"
    feedback_layout = FeedbackLayout.direct()

    def _signals(self, state: Any, e: Any) -> list[Any]:
        gain = state[len(self.feedback)] @ self.feedback[-1]  # W_L B_{L-1}: (nL, nL)
        return [b @ e for b in self.feedback] + [e + gain @ e]


@pytest.fixture(scope="module", autouse=True)
def _user_rule():
    linfa.rules.register(_GainDFA)
    yield
    linfa.rules.unregister(_GainDFA.name)


def _problem(name: str, rng: np.random.Generator, batch: tuple[int, ...] = (2,), widths: tuple[int, ...] = WIDTHS):
    cls = linfa.rules.get(name)
    n0, nl = widths[0], widths[-1]
    a = rng.standard_normal((*batch, n0, n0))
    sxx = a @ np.swapaxes(a, -1, -2) / n0 + 0.1 * np.eye(n0)  # not whitened: Σxx enters the flow
    syx = rng.standard_normal((*batch, nl, n0)) / np.sqrt(n0)
    task = Task(sxx, syx, syx @ np.linalg.solve(sxx, np.swapaxes(syx, -1, -2)) + np.eye(nl))
    fb = linfa.feedback.for_rule(name, widths, rng, batch=batch)
    params = {p: 0.3 for p in cls.parameters}
    weights = tuple(rng.standard_normal((*batch, widths[l + 1], widths[l])) / 2 for l in range(len(widths) - 1))
    if cls.learns_feedback:
        rule = cls.build(**params)
        state = rule.init_state(weights, fb)
    else:
        rule = cls.build(fb, **params)
        state = rule.init_state(weights)
    return rule, task, state


def _names() -> list[str]:
    return list(linfa.rules.names())


def test_user_rule_is_among_the_names() -> None:
    assert _GainDFA.name in linfa.rules.names()


@pytest.mark.parametrize("name", [*linfa.rules.names(), _GainDFA.name])
def test_jvp_matches_central_differences_and_the_value(name: str) -> None:
    rng = np.random.default_rng(1)
    rule, task, state = _problem(name, rng)
    f = rule.flow(task)
    v = tuple(rng.standard_normal(np.shape(s)) for s in state)
    value, der = dual.jvp(f, 0.0, state, v)
    for a, b in zip(value, f(0.0, state), strict=True):
        np.testing.assert_array_equal(a, b)  # the primal is the flow itself
    h = 1e-5
    plus = f(0.0, tuple(s + h * d for s, d in zip(state, v, strict=True)))
    minus = f(0.0, tuple(s - h * d for s, d in zip(state, v, strict=True)))
    for d, p, m in zip(der, plus, minus, strict=True):
        fd = (p - m) / (2 * h)  # error O(h^2 |f'''|) ~ 1e-9 for these sizes
        assert np.max(np.abs(d - fd)) < 1e-7 * (1 + np.max(np.abs(fd)))


@pytest.mark.parametrize("name", [*linfa.rules.names(), _GainDFA.name])
def test_jvp_matches_sympy_derivative_of_the_same_flow(name: str) -> None:
    sp = pytest.importorskip("sympy")
    rng = np.random.default_rng(2)
    rule, task, state = _problem(name, rng, batch=(), widths=(2, 3, 2, 2))  # small: sympy is slow
    v = tuple(rng.standard_normal(np.shape(s)) for s in state)
    _, der = dual.jvp(rule.flow(task), 0.0, state, v)
    # the same flow on explicit sympy matrices: state entries are symbols, all else numbers
    syms = [sp.Matrix(*np.shape(s), lambda i, j, k=k: sp.Symbol(f"x{k}_{i}_{j}")) for k, s in enumerate(state)]
    s_task = Task.tree_unflatten([sp.Matrix(a) for a in task.tree_flatten()])
    leaves, aux = rule.tree_flatten()
    s_rule = type(rule).tree_unflatten(aux, [sp.Matrix(b) for b in leaves])
    out = s_rule.dstate(s_task, tuple(syms))
    s = sp.Symbol("s")
    point = {}
    for m, val, d in zip(syms, state, v, strict=True):
        for (i, j), sym in np.ndenumerate(np.array(m.tolist(), dtype=object)):
            point[sym] = sp.Float(val[i, j]) + s * sp.Float(d[i, j])
    for o, got in zip(out, der, strict=True):
        expr = sp.Matrix(o).xreplace(point)
        # sign is piecewise constant: its derivative is 0 away from zero entries
        expr = expr.replace(sp.sign, lambda a: sp.sign(a.subs(s, 0)))
        want = np.array(sp.diff(expr, s).subs(s, 0).tolist(), dtype=float)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["BP", "KolenPollack", _GainDFA.name])
def test_batched_jacobian_columns_are_jvps_and_linear(name: str) -> None:
    rng = np.random.default_rng(3)
    rule, task, state = _problem(name, rng, batch=(3,))
    f = rule.flow(task)
    jac = dual.jacobian(f, 0.0, state, chunk=7)  # chunks not dividing N
    n = sum(int(np.prod(np.shape(s)[-2:])) for s in state)
    assert jac.shape == (3, n, n)
    np.testing.assert_array_equal(jac, dual.jacobian(f, 0.0, state))
    v = tuple(rng.standard_normal(np.shape(s)) for s in state)
    _, der = dual.jvp(f, 0.0, state, v)
    flat_v = np.concatenate([d.reshape(3, -1) for d in v], axis=-1)
    flat_der = np.concatenate([d.reshape(3, -1) for d in der], axis=-1)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", jac, flat_v), flat_der, rtol=1e-12, atol=1e-12)
    # each instance's Jacobian is that instance alone
    one = tuple(s[1] for s in state)
    jac1 = dual.jacobian(_instance_flow(rule, task, 1), 0.0, one)
    np.testing.assert_allclose(jac1, jac[1], rtol=1e-13, atol=1e-13)


def _instance_flow(rule: Any, task: Task, k: int) -> Any:
    leaves, aux = rule.tree_flatten()
    r = type(rule).tree_unflatten(aux, [b[k] for b in leaves])
    return r.flow(Task.tree_unflatten([a[k] for a in task.tree_flatten()]))


def test_bp_jacobian_is_symmetric_negative_hessian() -> None:
    """BP is gradient flow on the loss, so its Jacobian is -Hessian: symmetric."""
    rule, task, state = _problem("BP", np.random.default_rng(4), batch=(2,))
    jac = dual.jacobian(rule.flow(task), 0.0, state)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), atol=1e-12)


def test_unsupported_operations_and_bad_input_raise() -> None:
    y = (np.ones((2, 2)),)
    with pytest.raises(TypeError, match="exp"):
        dual.jvp(lambda t, s: (np.exp(s[0]),), 0.0, y, (np.ones((2, 2)),))
    with pytest.raises(TypeError, match="y"):
        dual.jvp(lambda t, s: s, 0.0, np.ones((2, 2)), (np.ones((2, 2)),))
    with pytest.raises(ValueError, match="v"):
        dual.jvp(lambda t, s: s, 0.0, y, (np.ones((3, 2)),))
    with pytest.raises(ValueError, match="chunk"):
        dual.jacobian(lambda t, s: s, 0.0, y, chunk=0)
