"""Tasks: moments of the constructors, sampling, validation."""

from __future__ import annotations

import numpy as np
import pytest

import linfa
from linfa.tasks import Task, haar_orthonormal


def test_teacher_moments():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4))
    a = rng.standard_normal((4, 4))
    sxx = a @ a.T
    task = Task.teacher(w, sxx=sxx, noise=0.5)
    np.testing.assert_allclose(task.syx, w @ sxx)
    np.testing.assert_allclose(task.syy, w @ sxx @ w.T + 0.25 * np.eye(3), rtol=1e-13)
    np.testing.assert_allclose(task.optimum(), w, rtol=1e-8)
    np.testing.assert_allclose(task.min_loss(), 0.5 * 3 * 0.25, rtol=1e-8)


def test_random_teacher_has_the_requested_singular_values():
    rng = np.random.default_rng(1)
    task = Task.random_teacher(rng, 6, 4, singular_values=[5.0, 2.0, 0.5], batch=(3,))
    s = np.linalg.svd(task.syx, compute_uv=False)
    np.testing.assert_allclose(s[:, :3], np.broadcast_to([5.0, 2.0, 0.5], (3, 3)), rtol=1e-12)
    np.testing.assert_allclose(s[:, 3], 0, atol=1e-12)


def test_sample_moments_converge_to_the_task():
    rng = np.random.default_rng(2)
    task = Task.random_teacher(rng, 3, 2, noise=0.4, sxx=np.diag([2.0, 1.0, 0.5]))
    X, Y = task.sample(rng, 200_000)
    emp = Task.from_samples(X, Y)
    for a, b in zip(emp.tree_flatten(), task.tree_flatten(), strict=True):
        np.testing.assert_allclose(a, b, atol=0.02)


def test_from_samples_is_the_empirical_second_moment():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    Y = rng.standard_normal((50, 2))
    task = Task.from_samples(X, Y)
    np.testing.assert_allclose(task.syx, sum(np.outer(y, x) for x, y in zip(X, Y, strict=True)) / 50)


def test_factorization_loss_is_half_frobenius_residual():
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((5, 6))
    task = Task.factorization(Y)
    ws = linfa.DeepLinear((6, 3, 5)).gaussian(rng, 0.5)
    Z, W = linfa.factors(ws)
    np.testing.assert_allclose(
        linfa.observables.loss(linfa.BP(), task, ws), 0.5 * np.linalg.norm(Y - Z @ W) ** 2, rtol=1e-12
    )


@pytest.mark.parametrize(("n_in", "n_out"), [(6, 4), (3, 5)])
def test_output_correlated_task_has_exactly_the_prescribed_syy(n_in, n_out):
    rng = np.random.default_rng(5)
    syy = linfa.spd_with_condition(rng, n_out, 30.0)
    assert np.isclose(np.linalg.cond(syy), 30.0)
    task = Task.output_correlated(rng, n_in, syy)
    np.testing.assert_allclose(task.syy, syy, rtol=1e-12)
    # the realised part W W^T never exceeds syy (remainder is noise)
    lam = np.linalg.eigvalsh(syy - task.syx @ task.syx.T)
    assert lam.min() > -1e-10


def test_haar_orthonormal_columns():
    q = haar_orthonormal(np.random.default_rng(6), 5, 3, (2,))
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-13)


def test_same_seed_same_task():
    a = Task.random_teacher(np.random.default_rng(9), 4, 3, singular_values=[1, 2])
    b = Task.random_teacher(np.random.default_rng(9), 4, 3, singular_values=[1, 2])
    np.testing.assert_array_equal(a.syx, b.syx)


# ------------------------------------------------------------------ bad input


def test_bad_moments_are_rejected_with_the_argument_named():
    eye = np.eye(3)
    with pytest.raises(ValueError, match=r"syx, sxx: expected syx of shape \(\*batch, nL, 3\) to match the 3 "
                                         r"inputs of sxx, got \(2, 4\)"):
        Task(eye, np.zeros((2, 4)), np.eye(2))
    with pytest.raises(ValueError, match=r"syy, syx: expected syy of shape \(\*batch, 2, 2\) to match the 2 rows "
                                         r"of syx, got \(3, 3\)"):
        Task(eye, np.zeros((2, 3)), np.eye(3))
    with pytest.raises(ValueError, match="sxx: expected a symmetric matrix"):
        Task(np.triu(np.ones((3, 3))), np.zeros((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="sxx: expected a positive semi-definite matrix, got smallest eigenvalue -1"):
        Task(np.diag([1.0, -1.0, 1.0]), np.zeros((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="sxx: expected finite entries"):
        Task(np.full((3, 3), np.nan), np.zeros((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="syx: the joint second moment"):
        Task(eye, 5 * np.ones((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match=r"sxx: expected a matrix of shape"):
        Task(np.ones(3), np.zeros((2, 3)), np.eye(2))
    with pytest.raises(TypeError, match="sxx: expected a real numeric array"):
        Task("abc", np.zeros((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="batch shapes do not broadcast"):
        Task(np.broadcast_to(eye, (2, 3, 3)), np.zeros((3, 2, 3)), np.eye(2))
    with pytest.raises(TypeError, match=r"rng: expected a numpy\.random\.Generator"):
        Task.random_teacher(0, 3, 2)
    with pytest.raises(ValueError, match="singular_values"):
        Task.random_teacher(np.random.default_rng(0), 3, 2, singular_values=[1, 2, 3])
    with pytest.raises(ValueError, match="Y: expected as many samples"):
        Task.from_samples(np.zeros((5, 3)), np.zeros((4, 2)))


def test_repr_is_a_short_summary():
    rng = np.random.default_rng(0)
    task = Task.random_teacher(rng, 30, 10, batch=(4,))
    text = repr(task)
    assert len(text.splitlines()) == 1 and len(text) < 100
    assert "n_in=30" in text and "n_out=10" in text and "(4,)" in text and "sxx=I" in text
    assert "sxx=not I" in repr(Task.random_teacher(rng, 3, 2, sxx=np.diag([1.0, 2.0, 3.0])))
