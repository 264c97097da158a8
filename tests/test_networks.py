"""Networks and feedback samplers: the structure each initialiser promises."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linfa
from linfa.tasks import Task

widths_st = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)


@settings(max_examples=30, deadline=None)
@given(widths=widths_st, seed=st.integers(0, 2**32 - 1))
def test_balanced_init_is_balanced(widths, seed):
    ws = linfa.DeepLinear(widths).balanced(np.random.default_rng(seed), 0.8, batch=(2,))
    for a, b in itertools.pairwise(ws):
        np.testing.assert_allclose(a @ np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2) @ b, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(widths=widths_st, seed=st.integers(0, 2**32 - 1))
def test_orthogonal_init_is_semi_orthogonal(widths, seed):
    ws = linfa.DeepLinear(widths).orthogonal(np.random.default_rng(seed), 2.0)
    for w in ws:
        g = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        np.testing.assert_allclose(g, 4.0 * np.eye(len(g)), atol=1e-12)


@pytest.mark.parametrize("widths", [(4, 5, 3), (5, 4, 6, 3), (3, 3)])
def test_aligned_init_has_end_to_end_map_on_the_task_modes(widths):
    rng = np.random.default_rng(0)
    task = Task.random_teacher(rng, widths[0], widths[-1], singular_values=[3.0, 2.0, 1.0][: min(widths)])
    u0 = np.array([0.1, 0.02, 0.003])[: min(widths)]
    net = linfa.DeepLinear(widths)
    ws = net.aligned(task, u0, rng=rng)
    U, _s, Vt = np.linalg.svd(task.syx)
    r = min(widths)
    np.testing.assert_allclose(net.product(ws), (U[:, :r] * u0) @ Vt[:r], atol=1e-12)
    for a, b in itertools.pairwise(ws):
        np.testing.assert_allclose(a @ a.T, b.T @ b, atol=1e-12)


def test_initialisers_are_reproducible_and_batched():
    net = linfa.DeepLinear((3, 4, 2))
    for kind, kw in [("gaussian", {"scale": 0.1}), ("uniform", {"scale": 0.01}),
                     ("balanced", {"scale": 0.3}), ("orthogonal", {})]:
        a = net.init(kind, rng=np.random.default_rng(5), batch=(7,), **kw)
        b = net.init(kind, rng=np.random.default_rng(5), batch=(7,), **kw)
        assert [w.shape for w in a] == [(7, 4, 3), (7, 2, 4)]
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert all(np.all(w == 0) for w in net.zeros(batch=(2,)))
    u = net.uniform(np.random.default_rng(1), 0.01)
    assert all(np.abs(w).max() <= 0.01 for w in u)


def test_forward_is_the_product_applied_to_rows():
    rng = np.random.default_rng(2)
    net = linfa.DeepLinear((3, 4, 2))
    ws = net.gaussian(rng, 1.0)
    X = rng.standard_normal((10, 3))
    np.testing.assert_allclose(net.forward(ws, X), X @ (ws[1] @ ws[0]).T, rtol=1e-13)


def test_bad_widths_and_weights():
    with pytest.raises(ValueError, match="widths: expected"):
        linfa.DeepLinear((3,))
    with pytest.raises(ValueError, match=r"widths\[1\]: expected an integer >= 1, got 0"):
        linfa.DeepLinear((3, 0, 2))
    with pytest.raises(TypeError, match=r"widths\[0\]: expected an integer"):
        linfa.DeepLinear(("a", 2))
    net = linfa.DeepLinear((3, 4, 2))
    with pytest.raises(ValueError, match=r"weights\[1\]: expected shape \(\*batch, 2, 4\), got \(2, 3\)"):
        net.check((np.zeros((4, 3)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="expected 2 weight matrices, got 1"):
        net.check((np.zeros((4, 3)),))
    with pytest.raises(ValueError, match="scale"):
        net.gaussian(np.random.default_rng(0), -1.0)
    with pytest.raises(ValueError, match="kind: expected one of"):
        net.init("xavier")
    with pytest.raises(ValueError, match="u0"):
        net.aligned(Task.random_teacher(np.random.default_rng(0), 3, 2), -1.0)


# ------------------------------------------------------------------ feedback


def test_feedback_shapes_and_kinds():
    rng = np.random.default_rng(0)
    widths = (5, 4, 6, 3)
    fa = linfa.feedback.fa(widths, rng, batch=(2,))
    assert [b.shape for b in fa] == [(2, 4, 6), (2, 6, 3)]
    dfa = linfa.feedback.dfa(widths, rng)
    assert [b.shape for b in dfa] == [(4, 3), (6, 3)]
    assert linfa.feedback.fa((3, 2), rng) == ()
    orth = linfa.feedback.sample(rng, (6, 3), kind="orthogonal", scale=2.0)
    np.testing.assert_allclose(orth.T @ orth, 4 * np.eye(3), atol=1e-12)
    wide = linfa.feedback.sample(rng, (3, 6), kind="orthogonal")
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)
    rows = linfa.feedback.sample(rng, (4, 7), kind="row_normalized", scale=3.0)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 3.0)
    uni = linfa.feedback.sample(rng, (50, 50), kind="uniform", scale=0.5)
    assert uni.min() >= -0.5 and uni.max() <= 0.5 and uni.max() > 0.45
    g = linfa.feedback.sample(rng, (400, 100))
    assert abs(g.std() - 0.1) < 0.005


def test_bad_feedback_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="kind: expected one of"):
        linfa.feedback.sample(rng, (2, 2), kind="laplace")
    with pytest.raises(ValueError, match="scale"):
        linfa.feedback.sample(rng, (2, 2), scale=0.0)
    with pytest.raises(ValueError, match="widths"):
        linfa.feedback.fa((3,), rng)
    with pytest.raises(TypeError, match="rng"):
        linfa.feedback.dfa((3, 2, 2), 42)
