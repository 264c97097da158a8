"""Shared helpers: batched matrix operations, partial products, the alignment-matrix fit, log-log slopes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy as sp

import linfa
from linfa import exact, linalg
from linfa import observables as obs
from linfa.loglog import loglog_fit, loglog_slope
from linfa.products import prefix_products, suffix_products


def test_matrix_helpers_agree_with_numpy_per_instance() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4, 4))
    for k in range(3):
        assert np.array_equal(linalg.transpose(a)[k], a[k].T)
        assert np.allclose(linalg.sym(a)[k], (a[k] + a[k].T) / 2, rtol=0, atol=1e-15)
        assert np.isclose(linalg.trace(a)[k], np.trace(a[k]))
        assert np.isclose(linalg.inner(a, b)[k], np.trace(a[k].T @ b[k]))
        assert np.isclose(linalg.frobenius(a)[k], np.linalg.norm(a[k], "fro"))
    s = linalg.sym(a)
    assert np.array_equal(s, linalg.transpose(s))


def test_relative_residual_convention() -> None:
    x = np.array([[[3.0, 0.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    fit = np.array([[[3.0, 0.0], [0.0, 3.0]], [[0.0, 2.0], [0.0, 0.0]]])
    res = linalg.relative_residual(x, fit)
    assert res[0] == pytest.approx(1.0 / 5.0) and res[1] == pytest.approx(2.0)  # x = 0: the absolute residual
    assert np.isnan(linalg.relative_residual(x, fit, vanishing=np.nan)[1])


def test_partial_products_numeric_and_symbolic() -> None:
    rng = np.random.default_rng(1)
    widths = (2, 3, 4, 5)
    ws = [rng.standard_normal((6, widths[l + 1], widths[l])) for l in range(3)]
    pre, suf = prefix_products(ws), suffix_products(ws)
    assert pre[0] is None and suf[-1] is None and len(pre) == 4 and len(suf) == 3
    end = ws[2] @ ws[1] @ ws[0]
    assert np.allclose(pre[3], end)
    for l in range(1, 4):  # W = W_{>l} W_l W_{<l} for every layer l
        left = np.eye(5) if suf[l - 1] is None else suf[l - 1]
        right = np.eye(2) if pre[l - 1] is None else pre[l - 1]
        assert np.allclose(left @ ws[l - 1] @ right, end)
    sym_ws = [sp.MatrixSymbol(f"W{l}", widths[l], widths[l - 1]) for l in (1, 2, 3)]
    assert sp.simplify((suffix_products(sym_ws)[0] - sym_ws[2] * sym_ws[1]).as_explicit()) == sp.zeros(5, 3)
    assert linfa.rules.prefix_products is prefix_products and obs.suffix_products is suffix_products


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_alignment_fit_recovers_planted_matrices_and_both_readings_agree(depth: int) -> None:
    rng = np.random.default_rng(depth)
    widths = (3, *([4] * (depth - 1)), 2)
    fb = linfa.feedback.dfa(widths, rng, batch=(5,))
    n_out = widths[-1]
    planted = [rng.standard_normal((5, n_out, widths[0]))] + [rng.standard_normal((5, n_out, n_out))
                                                              for _ in range(depth - 1)]
    ws = [fb[0] @ planted[0]]
    ws += [fb[l - 1] @ planted[l - 1] @ linalg.transpose(fb[l - 2]) for l in range(2, depth)]
    ws += [planted[-1] @ linalg.transpose(fb[-1])]
    mats, fits = exact.alignment_fit(ws, fb)
    for a, p, w, f in zip(mats, planted, ws, fits, strict=True):
        assert np.allclose(a, p, atol=1e-9) and np.allclose(f, w, atol=1e-9)
    structure = exact.dfa_zero_init_structure(ws, fb)
    _, res = obs.alignment_matrices(linfa.DFA(fb), None, tuple(ws))  # type: ignore[arg-type]
    assert np.allclose(res, np.stack(list(structure.residuals.values()), axis=-1), atol=1e-12)
    assert structure.holds(1e-10).all()
    with pytest.raises(ValueError, match="backward"):
        exact.alignment_fit(ws, fb[:-1])


def _nan_backward() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [np.ones((3, 2)), np.ones((1, 3))], [np.full((3, 1), np.nan)]


@pytest.mark.parametrize(("args", "exc", "match"), [
    ((None, None), TypeError, r"^weights: expected a tuple of matrices, got NoneType"),
    (("ab", "cd"), TypeError, r"^weights: expected a tuple of matrices, got str"),
    (([np.ones((3, 2)), np.ones((1, 3))], "ab"), TypeError, r"^backward: expected a tuple"),
    (_nan_backward(), ValueError, r"^backward\[0\]: expected finite entries, got 3 NaN"),
    (([np.ones((3, 2)), np.ones((1, 3))], [np.ones((3, 2))]), ValueError,
     r"^backward\[0\]: expected M_1 of shape \(\*batch, 3, 1\), got \(3, 2\)"),
    (([np.ones((3, 2)), np.ones((1, 4))], [np.ones((3, 1))]), ValueError, r"^weights\[1\]: expected 3 columns"),
    (([np.ones((3, 2)), np.ones((1, 3))], [np.ones((3, 1), dtype=complex)]), TypeError, r"^backward\[0\]: .*complex"),
])
def test_alignment_fit_validates_its_arguments(args: tuple[Any, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        exact.alignment_fit(*args)


def test_bp_fixed_point_is_the_least_squares_optimum() -> None:
    rng = np.random.default_rng(3)
    task = linfa.Task.random_teacher(rng, 4, 2, sxx=linfa.spd_with_condition(rng, 4, 5.0), noise=0.1)
    w = exact.bp_fixed_point(task)
    assert np.array_equal(w, task.optimum())
    assert np.allclose(w @ task.sxx, task.syx)  # the normal equations
    with pytest.raises(ValueError, match="singular"):
        exact.bp_fixed_point(linfa.Task.tree_unflatten((np.diag([1.0, 1.0, 1.0, 0.0]), task.syx, task.syy)))


def test_loglog_slope_measures_the_order() -> None:
    h = np.geomspace(1e-4, 1e-1, 7)
    assert loglog_slope(h, 3 * h**2) == pytest.approx(2.0, abs=1e-9)
    _, intercept = loglog_fit(h, 3 * h**2)
    assert intercept == pytest.approx(np.log(3.0), abs=1e-8)
    assert loglog_slope(np.append(h, 1.0), np.append(h**1.5, 0.0)) == pytest.approx(1.5, abs=1e-9)  # zero dropped
    with pytest.raises(ValueError, match="x, y"):
        loglog_slope([1.0, 2.0], [0.0, 1.0])
