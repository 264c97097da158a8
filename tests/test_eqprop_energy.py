"""The quadratic energy model: construction, validation, energy, fixed points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linfa.eqprop import (
    QuadraticEnergy,
    check_beta,
    cost,
    energy,
    energy_gradient,
    fixed_point,
    total_energy,
)

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def instances(draw: st.DrawFn) -> tuple[QuadraticEnergy, np.ndarray, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 6))
    n_out = draw(st.integers(1, n))
    n_in = draw(st.integers(0, 4))
    m = draw(st.integers(1, 4))
    readout = draw(st.sampled_from(["selection", "gaussian"]))
    radius = draw(st.floats(0.0, 0.8))
    rng = np.random.default_rng(seed)
    model = QuadraticEnergy.random(rng, n, n_in, n_out, radius=radius, readout=readout)
    return model, rng.standard_normal((m, n_in)), rng.standard_normal((m, n_out))


# ------------------------------------------------------------- fixed points
@SETTINGS
@given(instances(), st.floats(-0.3, 2.0))
def test_fixed_point_is_stationary(inst, beta):
    model, x, d = inst
    s = fixed_point(model, x, d, beta)
    g = energy_gradient(model, s, x, d, beta)
    scale = 1 + np.abs(s).max() + np.abs(x).max(initial=0) + np.abs(d).max()
    assert np.abs(g).max() < 1e-11 * scale


@SETTINGS
@given(instances(), st.floats(0.0, 2.0))
def test_fixed_point_is_the_minimum(inst, beta):
    """F(s^β + v) - F(s^β) = ½ vᵀ H_β v > 0 for any perturbation v."""
    model, x, d = inst
    s = fixed_point(model, x, d, beta)
    v = np.random.default_rng(0).standard_normal(s.shape)
    H = model.A + beta * model.P.T @ model.P
    gap = total_energy(model, s + v, x, d, beta) - total_energy(model, s, x, d, beta)
    np.testing.assert_allclose(gap, 0.5 * np.einsum("mi,ij,mj->m", v, H, v), rtol=1e-9, atol=1e-11)
    assert np.all(gap > 0)


@SETTINGS
@given(instances())
def test_energy_and_cost_definitions(inst):
    model, x, d = inst
    s = np.random.default_rng(1).standard_normal((x.shape[0], model.n))
    for k in range(x.shape[0]):
        e_k = 0.5 * s[k] @ (np.eye(model.n) - model.W) @ s[k] - s[k] @ (model.b + model.U @ x[k])
        c_k = 0.5 * np.sum((model.P @ s[k] - d[k]) ** 2)
        assert energy(model, s, x)[k] == pytest.approx(e_k, rel=1e-12, abs=1e-12)
        assert cost(model, s, d)[k] == pytest.approx(c_k, rel=1e-12, abs=1e-12)
        assert total_energy(model, s, x, d, 0.7)[k] == pytest.approx(e_k + 0.7 * c_k, rel=1e-12,
                                                                     abs=1e-12)


def test_energy_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    model = QuadraticEnergy.random(rng, 5, 3, 2)
    x, d = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    s = rng.standard_normal((2, 5))
    g = energy_gradient(model, s, x, d, 0.4)
    h = 1e-6
    for i in range(5):
        ds = np.zeros_like(s)
        ds[:, i] = h
        fd = (total_energy(model, s + ds, x, d, 0.4) - total_energy(model, s - ds, x, d, 0.4)) / (2 * h)
        np.testing.assert_allclose(fd, g[:, i], rtol=1e-7, atol=1e-8)


# --------------------------------------------------------------- batching
@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 3))
def test_batched_fixed_points_equal_single(seed, n, k):
    rng = np.random.default_rng(seed)
    n_out = int(rng.integers(1, n + 1))
    model = QuadraticEnergy.random(rng, n, 2, n_out, batch=(k,))
    x = rng.standard_normal((k, 3, 2))
    d = rng.standard_normal((k, 3, n_out))
    betas = rng.uniform(0, 1, size=k)
    s = fixed_point(model, x, d, betas)
    for i in range(k):
        single = QuadraticEnergy(model.W[i], model.b[i], model.U[i], model.P[i])
        np.testing.assert_allclose(s[i], fixed_point(single, x[i], d[i], betas[i]), rtol=1e-12,
                                   atol=1e-12)


def test_beta_sweep_broadcasts_against_single_model():
    rng = np.random.default_rng(5)
    model = QuadraticEnergy.random(rng, 4, 2, 2)
    x, d = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    betas = np.array([0.0, 0.1, 1.0])
    s = fixed_point(model, x, d, betas)
    assert s.shape == (3, 3, 4)
    for i, b in enumerate(betas):
        np.testing.assert_allclose(s[i], fixed_point(model, x, d, b), rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------ constructors
def test_layered_structure():
    rng = np.random.default_rng(2)
    w1, w2, w3 = (0.3 * rng.standard_normal(s) for s in [(3, 2), (4, 3), (2, 4)])
    model = QuadraticEnergy.layered([w1, w2, w3], biases=[np.ones(3), 2 * np.ones(4), 3 * np.ones(2)])
    assert (model.n, model.n_in, model.n_out, model.widths) == (9, 2, 2, (2, 3, 4, 2))
    W = np.zeros((9, 9))
    W[3:7, 0:3], W[7:9, 3:7] = w2, w3
    W = W + W.T
    np.testing.assert_array_equal(model.W, W)
    np.testing.assert_array_equal(model.U[:3], w1)
    np.testing.assert_array_equal(model.U[3:], 0)
    np.testing.assert_array_equal(model.P, np.eye(9)[7:])
    np.testing.assert_array_equal(model.b, [1] * 3 + [2] * 4 + [3] * 2)
    np.testing.assert_array_equal(model.w_mask, W != 0)
    for got, want in zip(model.layer_weights(), [w1, w2, w3], strict=True):
        np.testing.assert_array_equal(got, want)
    # the energy is the layered one: ½|s|² - Σ h_l^T W_l h_{l-1} - b^T s
    x, s = rng.standard_normal((1, 2)), rng.standard_normal((1, 9))
    h = [x[0], s[0, :3], s[0, 3:7], s[0, 7:]]
    want = 0.5 * s[0] @ s[0] - sum(h[l + 1] @ w @ h[l] for l, w in enumerate([w1, w2, w3]))
    want -= model.b @ s[0]
    assert energy(model, s, x)[0] == pytest.approx(want, rel=1e-12)


def test_layered_single_layer_and_batch():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 2, 3))
    model = QuadraticEnergy.layered([w])
    assert model.batch_shape == (5,) and model.n == 2
    np.testing.assert_array_equal(model.W, 0)
    np.testing.assert_array_equal(model.U, w)


def test_from_coupling_outputs_and_symmetrisation():
    W = np.array([[0.0, 0.2, 0.0], [0.2 + 1e-14, 0.0, 0.1], [0.0, 0.1, 0.0]])
    model = QuadraticEnergy.from_coupling(W, outputs=[2, 0])
    np.testing.assert_array_equal(model.P, [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(model.W, model.W.T)
    assert model.n_in == 0 and np.all(model.b == 0)


# ------------------------------------------------------------- validation
def _raises(match: str):
    return pytest.raises(ValueError, match=match)


def test_asymmetric_coupling_reports_asymmetry():
    W = np.array([[0.0, 0.3], [0.1, 0.0]])
    with _raises(r"W: expected a symmetric coupling, got max \|W - W\^T\| = 0\.2"):
        QuadraticEnergy.from_coupling(W, outputs=[0])


def test_indefinite_A_reports_smallest_eigenvalue():
    W = np.diag([1.5, 0.2])  # A = diag(-0.5, 0.8)
    with _raises(r"W: A = I - W must be positive definite, got smallest eigenvalue -0\.5"):
        QuadraticEnergy.from_coupling(W, outputs=[0])
    Wb = np.stack([np.zeros((2, 2)), np.diag([0.0, 1.25])])
    with _raises(r"smallest eigenvalue -0\.25 \(batch index \(1,\)\)"):
        QuadraticEnergy.from_coupling(Wb, outputs=[0])
    with _raises("smallest eigenvalue 0"):  # singular A is not positive definite
        QuadraticEnergy.from_coupling(np.diag([1.0, 0.0]), outputs=[0])


def test_negative_beta_requires_positive_definite_nudged_hessian():
    model = QuadraticEnergy.from_coupling(np.zeros((2, 2)), outputs=[0])  # A = I, PᵀP = e1 e1ᵀ
    x, d = np.zeros((1, 0)), np.ones((1, 1))
    check_beta(model, -0.5)
    with _raises(r"beta: a negative beta = -3 requires A - \|beta\| P\^T P to be positive "
                 r"definite, got smallest eigenvalue -2"):
        fixed_point(model, x, d, -3.0)
    from linfa.eqprop import ep_gradient
    with _raises("beta: a negative beta = -1.5"):
        ep_gradient(model, x, d, 1.5, centered=True)
    with _raises("beta: expected finite"):
        fixed_point(model, x, d, np.nan)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"b": np.zeros(4)}, r"b: expected shape \(\*batch, n=3,?\), got shape \(4,\)"),
        ({"U": np.zeros((4, 2))}, r"U: expected shape \(\*batch, n=3, n_in\), got shape \(4, 2\)"),
        ({"P": np.zeros((1, 4))}, r"P: expected shape \(\*batch, n_out, n=3\), got shape \(1, 4\)"),
        ({"W": np.zeros((3, 2))}, r"W: expected a square matrix .* got shape \(3, 2\)"),
        ({"W": np.zeros(3)}, r"W: expected shape \(\*batch, n, n\), got shape \(3,\)"),
        ({"b": np.array([0.0, np.nan, 0.0])}, "b: expected finite entries, got 1 NaN"),
        ({"W": np.full((3, 3), np.inf)}, "W: expected finite entries"),
        ({"b": np.zeros((2, 3)), "U": np.zeros((3, 3, 1))}, r"batch shapes do not broadcast: "
                                                            r"W \(\), b \(2,\), U \(3,\)"),
        ({"w_mask": np.ones((2, 2))}, r"w_mask: expected shape \(3, 3\), got shape \(2, 2\)"),
    ],
)
def test_model_shape_errors_name_the_argument(kwargs, match):
    args = {"W": np.zeros((3, 3)), "b": np.zeros(3), "U": np.zeros((3, 1)), "P": np.eye(3)[:1]}
    args.update(kwargs)
    W, b, U, P = args.pop("W"), args.pop("b"), args.pop("U"), args.pop("P")
    with _raises(match):
        QuadraticEnergy(W, b, U, P, **args)


def test_data_shape_errors_name_the_argument():
    model = QuadraticEnergy.random(np.random.default_rng(0), 3, 2, 1)
    x, d = np.zeros((4, 2)), np.zeros((4, 1))
    with _raises(r"x: expected shape \(\*batch, m, n_in=2\), got shape \(4, 3\)"):
        fixed_point(model, np.zeros((4, 3)))
    with _raises(r"x: expected shape \(\*batch, m, n_in=2\), got shape \(2,\)"):
        fixed_point(model, np.zeros(2))
    with _raises(r"d: expected shape \(\*batch, m, n_out=1\), got shape \(4, 2\)"):
        fixed_point(model, x, np.zeros((4, 2)), 0.1)
    with _raises("x, d: expected the same number of samples m, got x has 4, d has 3"):
        fixed_point(model, x, np.zeros((3, 1)), 0.1)
    with _raises(r"s: expected shape \(\*batch, m, n=3\)"):
        energy(model, np.zeros((4, 2)), x)
    with _raises("d: the target is needed when beta != 0"):
        fixed_point(model, x, None, 0.1)
    with _raises(r"batch shapes do not broadcast: model \(\), x \(2,\), d \(3,\)"):
        fixed_point(model, np.zeros((2, 4, 2)), np.zeros((3, 4, 1)), 0.1)
    with pytest.raises(TypeError, match="x: expected a real numeric array"):
        fixed_point(model, "abc")
    assert d.shape == (4, 1)


def test_constructor_argument_errors():
    with _raises("P, outputs: give exactly one"):
        QuadraticEnergy.from_coupling(np.zeros((2, 2)))
    with _raises(r"outputs: expected distinct indices in \[0, 2\)"):
        QuadraticEnergy.from_coupling(np.zeros((2, 2)), outputs=[2])
    with _raises(r"weights\[1\]: expected shape \(\*batch, n2, n1=3\), got shape \(2, 4\)"):
        QuadraticEnergy.layered([np.zeros((3, 2)), np.zeros((2, 4))])
    with _raises("biases: expected 2 bias vectors, got 1"):
        QuadraticEnergy.layered([np.zeros((3, 2)), np.zeros((2, 3))], biases=[np.zeros(3)])
    with _raises("layer_weights: the model was not built by QuadraticEnergy.layered"):
        QuadraticEnergy.from_coupling(np.zeros((2, 2)), outputs=[0]).layer_weights()
    with pytest.raises(TypeError, match=r"rng: expected a numpy\.random\.Generator"):
        QuadraticEnergy.random(0, 3, 1, 1)  # type: ignore[arg-type]
    with _raises(r"radius: expected a spectral radius in \[0, 1\)"):
        QuadraticEnergy.random(np.random.default_rng(0), 3, 1, 1, radius=1.0)
