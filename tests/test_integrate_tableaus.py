"""Every Runge–Kutta tableau against the order conditions (Butcher's rooted trees).

A method has order ``p`` when, for every rooted tree ``τ`` with at most ``p``
vertices, the elementary weight ``Σ_i b_i Φ_i(τ)`` equals ``1/γ(τ)``
(Hairer, Nørsett & Wanner I, Thm. II.2.13). The trees are generated here,
independently of the tableaus, so a mistyped coefficient fails the test of
the lowest order it breaks. The same conditions with ``b_i(θ)`` in place of
``b_i`` and ``θ^{|τ|}/γ(τ)`` on the right check the dense output.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from linfa.integrate import METHODS, Tsit5
from linfa.integrate.methods import _PolynomialDense

Tree = tuple  # a rooted tree: the sorted tuple of its root's subtrees; () is the single vertex


@functools.cache
def trees(order: int) -> tuple[Tree, ...]:
    """All rooted trees with exactly ``order`` vertices (unlabelled, each once)."""
    if order == 1:
        return ((),)
    out: set[Tree] = set()
    for children in _forests(order - 1, order - 1):
        out.add(tuple(sorted(children)))
    return tuple(sorted(out))


@functools.cache
def _forests(n: int, largest: int) -> tuple[tuple[Tree, ...], ...]:
    """Multisets of trees with ``n`` vertices in all, each tree of at most ``largest`` vertices."""
    if n == 0:
        return ((),)
    out = []
    for size in range(min(n, largest), 0, -1):
        for t in trees(size):
            for rest in _forests(n - size, size):
                # keep each multiset once: the rest uses trees no larger (in size, then order) than t
                if all(_size(r) < size or r <= t for r in rest):
                    out.append((t, *rest))
    return tuple(out)


def _size(t: Tree) -> int:
    return 1 + sum(_size(c) for c in t)


def _gamma(t: Tree) -> int:
    return _size(t) * math.prod(_gamma(c) for c in t)


def _phi(A: np.ndarray, t: Tree) -> np.ndarray:
    """Stage vector ``Φ(τ)``: ones for the single vertex, ``Π_children (A Φ(child))`` otherwise."""
    out = np.ones(A.shape[0])
    for c in t:
        out = out * (A @ _phi(A, c))
    return out


def _defect(A: np.ndarray, b: np.ndarray, t: Tree, theta: float = 1.0) -> float:
    return float(b @ _phi(A, t) - theta ** _size(t) / _gamma(t))


def test_tree_counts_match_oeis_a000081():
    # the number of rooted trees with n vertices: 1, 1, 2, 4, 9, 20, 48, 115
    assert [len(trees(n)) for n in range(1, 9)] == [1, 1, 2, 4, 9, 20, 48, 115]


def _extended(m):
    """Tableau with the first-same-as-last row: stage ``s`` is ``f(t + h, y_new)``, weight 0."""
    s = m.n_stages
    A = np.zeros((s + 1, s + 1))
    A[:s, :s] = m.A
    A[s, :s] = m.B
    return A, np.concatenate((m.B, [0.0]))


ORDERS = {name: m.order for name, m in METHODS.items()}  # the declared orders, checked below


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_consistency_c_is_row_sum_of_a(name):
    m = METHODS[name]
    np.testing.assert_allclose(m.A.sum(axis=1), m.C, atol=1e-15)
    np.testing.assert_allclose(np.tril(m.A, -1), m.A, atol=0)


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_order_conditions_hold_to_the_order_and_fail_above_it(name):
    m = METHODS[name]
    p = ORDERS[name]
    for n in range(1, p + 1):
        for t in trees(n):
            assert abs(_defect(m.A, m.B, t)) < 1e-13, (name, n, t)
    # the order is exactly p: some tree of order p + 1 is violated
    assert max(abs(_defect(m.A, m.B, t)) for t in trees(p + 1)) > 1e-6


# embedded estimates: b̂ = b - e (on the extended tableau), and their orders
EMBEDDED = {"dopri5": [4], "tsit5": [4], "dop853": [5, 3]}


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_estimates_have_their_orders(name):
    m = METHODS[name]
    A, b = _extended(m)
    for e, q in zip(m.error_weights, EMBEDDED[name], strict=True):
        bhat = b - e[: len(b)]
        for n in range(1, q + 1):
            for t in trees(n):
                assert abs(_defect(A, bhat, t)) < 1e-13, (name, q, n, t)
        assert max(abs(_defect(A, bhat, t)) for t in trees(q + 1)) > 1e-8


@pytest.mark.parametrize("name", ["dopri5", "tsit5"])
@pytest.mark.parametrize("theta", [0.13, 0.5, 0.77, 1.0])
def test_dense_output_has_order_four(name, theta):
    m = METHODS[name]
    assert isinstance(m, _PolynomialDense)
    A, _ = _extended(m)
    powers = theta ** np.arange(1, m.P.shape[1] + 1)
    b_theta = m.P @ powers  # b_i(θ) per stage (the last is the first-same-as-last row)
    for n in range(1, 5):
        for t in trees(n):
            assert abs(_defect(A, b_theta, t, theta)) < 1e-13, (name, theta, n, t)


def test_tsit5_interpolant_ends_at_the_step():
    b_one = Tsit5.P.sum(axis=1)
    np.testing.assert_allclose(b_one, np.concatenate((Tsit5.B, [0.0])), atol=2e-14)


def test_tsit5_error_constants_are_smaller_than_dopri5s():
    """Tsitouras' design aim: the sixth-order defects (the principal error) are smaller."""
    def principal(name):
        m = METHODS[name]
        return math.sqrt(sum(_defect(m.A, m.B, t) ** 2 for t in trees(6)))

    assert principal("tsit5") < principal("dopri5")
