"""The per-sample reference implementation (linfa.reference), checked by hand and against the loss."""

from __future__ import annotations

import numpy as np
import pytest

from linfa import reference


def test_two_layer_scalar_updates_by_hand() -> None:
    # x = 2, y = 1, W1 = 3, W2 = 0.5: h1 = 6, ŷ = 3, e = -2
    w = [np.array([[3.0]]), np.array([[0.5]])]
    x, y = np.array([2.0]), np.array([1.0])
    assert reference.sample_updates("BP", w, [], x, y) == [pytest.approx(np.array([[-2.0]])),
                                                           pytest.approx(np.array([[-12.0]]))]
    # FA with B2 = -4: δ1 = -4 e = 8, ΔW1 = 8 * 2 = 16; ΔW2 = e h1 = -12
    fa = reference.sample_updates("FA", w, [np.array([[-4.0]])], x, y)
    assert fa[0][0, 0] == 16.0 and fa[1][0, 0] == -12.0
    # sign symmetry: sign(0.5) = 1, δ1 = e = -2, ΔW1 = -4
    assert reference.sample_updates("SignSymmetry", w, [], x, y)[0][0, 0] == -4.0
    # DFA with B1 = 0.25: δ1 = 0.25 e = -0.5, ΔW1 = -1
    assert reference.sample_updates("DFA", w, [np.array([[0.25]])], x, y)[0][0, 0] == -1.0


def test_kolen_pollack_mean_update_moves_both_sides() -> None:
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((3, 2)), rng.standard_normal((2, 3))]
    b = [rng.standard_normal((3, 2))]
    x, y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    dw1, dw2, db2 = reference.mean_update("KolenPollack", w, b, x, y, decay=0.3)
    fa1, fa2 = reference.mean_update("FA", w, b, x, y)
    np.testing.assert_allclose(dw1, fa1 - 0.3 * w[0], rtol=1e-14)
    np.testing.assert_allclose(db2, fa2.T - 0.3 * b[0], rtol=1e-14)
    # d(W2 - B2^T)/dt = -λ (W2 - B2^T)
    np.testing.assert_allclose(dw2 - db2.T, -0.3 * (w[1] - b[0].T), atol=1e-14)


def test_bp_reference_is_minus_the_loss_gradient() -> None:
    rng = np.random.default_rng(1)
    w = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 2))]
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    bp = reference.mean_update("BP", w, [], x, y)
    fd = reference.finite_difference_update(w, x, y)
    for a, b in zip(bp, fd, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-8)


def test_bad_input() -> None:
    w = [np.zeros((2, 2)), np.zeros((1, 2))]
    with pytest.raises(ValueError, match="rule"):
        reference.backward("bp", w, [], np.zeros(1))
    with pytest.raises(ValueError, match="feedback"):
        reference.backward("FA", w, [], np.zeros(1))
    with pytest.raises(ValueError, match="x: expected shape"):
        reference.forward(w, np.zeros(3))
    with pytest.raises(ValueError, match="X, Y"):
        reference.mean_update("BP", w, [], np.zeros((2, 2)), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="weights"):
        reference.forward(np.zeros((2, 2)), np.zeros(2))  # type: ignore[arg-type]
