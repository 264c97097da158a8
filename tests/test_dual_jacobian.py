"""The dense Jacobian of linfa.dual and the tangent layouts under it.

Independent routes: the closed-form FA Jacobian (Kronecker blocks), central
finite differences of the numpy flow, JVPs with general (non-unit) directions,
a direct per-direction evaluation of the derivative formula (tangents of each
memory layout, and the low-rank tangents of jacobian through every operation);
and invariances of the computation itself: every chunk size, a batch against
each instance alone, repeated and concurrent calls.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import linfa
from linfa import dual
from linfa.tasks import Task


def _fa(rng: np.random.Generator, k: int, widths: tuple[int, int, int] = (5, 4, 3)) -> tuple[Any, Task, tuple]:
    n0, n1, n2 = widths
    a = rng.standard_normal((k, n0, n0))
    sxx = a @ np.swapaxes(a, -1, -2) / n0 + 0.1 * np.eye(n0)
    syx = rng.standard_normal((k, n2, n0))
    task = Task(sxx, syx, syx @ np.linalg.solve(sxx, np.swapaxes(syx, -1, -2)) + np.eye(n2))
    rule = linfa.FA((rng.standard_normal((k, n1, n2)),))
    w = (rng.standard_normal((k, n1, n0)) / 2, rng.standard_normal((k, n2, n1)) / 2)
    return rule, task, w


def _fa_closed_form(rule: Any, task: Task, w: tuple) -> np.ndarray:
    """FA, two layers: dW1 = B E, dW2 = E W1^T, E = Syx - W2 W1 Sxx; vec row-major, vec(A V C) = (A ⊗ C^T) vec V."""
    (b,), (w1, w2) = rule.feedback, w
    sxx, syx = task.sxx, task.syx
    e = syx - w2 @ w1 @ sxx
    k, n1, n0 = w1.shape
    n2 = w2.shape[-2]

    def t(m: np.ndarray) -> np.ndarray:
        return np.swapaxes(m, -1, -2)

    def kron(a: np.ndarray, c: np.ndarray) -> np.ndarray:  # per instance
        return np.einsum("kij,kab->kiajb", a, c).reshape(k, a.shape[-2] * c.shape[-2], -1)

    def eye(n: int) -> np.ndarray:
        return np.broadcast_to(np.eye(n), (k, n, n))

    j11 = -kron(b @ w2, t(sxx))  # d(B E)/dW1: -B W2 V Sxx
    j12 = -kron(b, t(w1 @ sxx))  # d(B E)/dW2: -B V W1 Sxx
    # d(E W1^T)/dW1: -W2 V Sxx W1^T + E V^T, the second a transpose: (E V^T)_{ij} = sum_c E_ic V_jc
    j21 = -kron(w2, t(sxx @ t(w1))) + np.einsum("kic,jl->kijlc", e, np.eye(n1)).reshape(k, n2 * n1, n1 * n0)
    j22 = -kron(eye(n2), t(w1 @ sxx @ t(w1)))  # d(E W1^T)/dW2: -V W1 Sxx W1^T
    return np.concatenate([np.concatenate([j11, j12], -1), np.concatenate([j21, j22], -1)], -2)


@pytest.mark.parametrize("chunk", [None, 1, 7, 19, 20, 31, 32, 100])
def test_fa_jacobian_is_the_closed_form_for_every_chunk(chunk: int | None) -> None:
    """N = 20 + 12 = 32: chunks of one direction, not dividing a leaf, a leaf exactly, N - 1, N, more than N."""
    rule, task, w = _fa(np.random.default_rng(0), 3)
    jac = dual.jacobian(rule.flow(task), 0.0, w, chunk=chunk)
    want = _fa_closed_form(rule, task, w)
    assert jac.shape == want.shape == (3, 32, 32)
    np.testing.assert_allclose(jac, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


def test_fa_jacobian_at_w4_widths_is_the_closed_form() -> None:
    """W4's widths (30, 20, 10), N = 800: the sizes where the default chunks split each leaf."""
    rule, task, w = _fa(np.random.default_rng(1), 2, (30, 20, 10))
    jac = dual.jacobian(rule.flow(task), 0.0, w)
    want = _fa_closed_form(rule, task, w)
    np.testing.assert_allclose(jac, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


@pytest.mark.parametrize("name", linfa.rules.names())
def test_jacobian_matches_central_differences(name: str) -> None:
    rng = np.random.default_rng(2)
    cls = linfa.rules.get(name)
    widths, k = (3, 4, 2), 2
    _, task, w = _fa(rng, k, widths)
    fb = linfa.feedback.for_rule(name, widths, rng, batch=(k,))
    params = {p: 0.3 for p in cls.parameters}
    rule = cls.build(**params) if cls.learns_feedback else cls.build(fb, **params)
    state = rule.init_state(w, fb) if cls.learns_feedback else rule.init_state(w)
    f = rule.flow(task)
    jac = dual.jacobian(f, 0.0, state, chunk=5)
    flat = np.concatenate([s.reshape(k, -1) for s in state], -1)
    sizes = np.cumsum([0, *(s[0].size for s in state)])

    def f_flat(x: np.ndarray) -> np.ndarray:
        leaves = tuple(x[:, a:b].reshape(s.shape) for a, b, s in zip(sizes[:-1], sizes[1:], state, strict=True))
        return np.concatenate([o.reshape(k, -1) for o in f(0.0, leaves)], -1)

    h = 1e-5
    fd = np.stack([(f_flat(flat + h * e) - f_flat(flat - h * e)) / (2 * h) for e in np.eye(flat.shape[1])], -1)
    np.testing.assert_allclose(jac, fd, atol=1e-7 * (1 + np.max(np.abs(fd))))


def test_batch_against_each_instance_alone_and_repeated_calls() -> None:
    rng = np.random.default_rng(3)
    rule, task, w = _fa(rng, 4, (6, 5, 4))
    f = rule.flow(task)
    first = dual.jacobian(f, 0.0, w, chunk=9)
    other = tuple(x + rng.standard_normal(x.shape) for x in w)
    dual.jacobian(f, 0.0, other, chunk=9)  # same shapes, other values: the buffers are reused
    np.testing.assert_array_equal(dual.jacobian(f, 0.0, w, chunk=9), first)
    for i in range(4):
        solo_rule = linfa.FA(tuple(b[i] for b in rule.feedback))
        solo_task = Task(task.sxx[i], task.syx[i], task.syy[i])
        solo = dual.jacobian(solo_rule.flow(solo_task), 0.0, tuple(x[i] for x in w))
        np.testing.assert_allclose(first[i], solo, rtol=1e-13, atol=1e-13 * np.max(np.abs(solo)))


def test_concurrent_calls_agree_with_serial_ones() -> None:
    rng = np.random.default_rng(4)
    problems = [_fa(rng, 3, (7, 5, 3)) for _ in range(4)]
    serial = [dual.jacobian(r.flow(t), 0.0, w, chunk=6) for r, t, w in problems]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            got = list(pool.map(lambda p: dual.jacobian(p[0].flow(p[1]), 0.0, p[2], chunk=6), problems))
            for a, b in zip(got, serial, strict=True):
                np.testing.assert_array_equal(a, b)


def test_jacobian_of_a_linear_flow_is_its_matrix() -> None:
    """``f(X, Y) = (2 X, -Y)``: the outputs are the (scaled) unit directions themselves."""
    state = (np.ones((3, 4, 5)), np.ones((3, 2, 2)))
    for chunk in (None, 3):
        jac = dual.jacobian(lambda t, s: (2.0 * s[0], -s[1]), 0.0, state, chunk=chunk)
        np.testing.assert_array_equal(jac, np.broadcast_to(np.diag([2.0] * 20 + [-1.0] * 4), (3, 24, 24)))


def test_jacobian_of_vector_cores_with_batch_ndim() -> None:
    """Cores that are not matrices (``batch_ndim``): elementwise flows, one leaf a constant in some chunks."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    c = rng.standard_normal(4)

    def f(t: Any, s: tuple) -> tuple:
        a, b = s
        return (a * a * c - 2.0 * a, b * b - b / 3.0)

    for chunk in (None, 1, 3, 5):
        jac = dual.jacobian(f, 0.0, (x, y), batch_ndim=1, chunk=chunk)
        want = np.zeros((3, 6, 6))
        want[:, :4, :4] = np.einsum("ki,ij->kij", 2 * x * c - 2.0, np.eye(4))
        want[:, 4:, 4:] = np.einsum("ki,ij->kij", 2 * y - 1 / 3, np.eye(2))
        np.testing.assert_allclose(jac, want, rtol=1e-14, atol=1e-14)


def _directions_last(t: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(t, 0, -1)), -1, 0)


@pytest.mark.parametrize("layout", ["directions first", "directions last", "broadcast batch"])
def test_tangent_layouts_give_the_derivative(layout: str) -> None:
    """``A X^T B X C`` and ``3 X ⊙ X - X / 2 + X ⊙ X / 2 - X`` on tangents of each memory layout.

    Against the derivative formula evaluated direction by direction.
    """
    rng = np.random.default_rng(6)
    k, m, n, nd = 3, 4, 5, 7
    x = rng.standard_normal((k, m, n))
    a, b, c = rng.standard_normal((k, 2, n)), rng.standard_normal((k, m, m)), rng.standard_normal((n, 3))
    v = rng.standard_normal((nd, k, m, n))
    if layout == "directions last":
        v = _directions_last(v)
    elif layout == "broadcast batch":  # one direction set for all instances
        v = np.broadcast_to(v[:, :1], v.shape)
    xd = dual.Dual(x, v)
    xt = np.swapaxes(x, -1, -2)
    g = a @ np.swapaxes(xd, -1, -2) @ b @ xd @ c
    h = 3.0 * xd * x - xd / 2.0 + (xd * xd) * 0.5 - x
    np.testing.assert_allclose(g.primal, a @ xt @ b @ x @ c, rtol=1e-13)
    np.testing.assert_allclose(h.primal, 3.0 * x * x - x / 2.0 + 0.5 * x * x - x, rtol=1e-13)
    q = xd @ c  # a right product straight on the given layout
    np.testing.assert_allclose(q.tangent, np.stack([vi @ c for vi in v]), rtol=1e-12, atol=1e-12)
    want_g = np.stack([a @ np.swapaxes(vi, -1, -2) @ b @ x @ c + a @ xt @ b @ vi @ c for vi in v])
    want_h = np.stack([3.0 * vi * x - vi / 2.0 + x * vi for vi in v])
    np.testing.assert_allclose(g.tangent, want_g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.tangent, want_h, rtol=1e-12, atol=1e-12)


def test_jvp_with_several_direction_axes() -> None:
    rng = np.random.default_rng(7)
    rule, task, w = _fa(rng, 2)
    f = rule.flow(task)
    v = tuple(rng.standard_normal((2, 3, *x.shape)) for x in w)
    _, der = dual.jvp(f, 0.0, w, v)
    for i in range(2):
        for j in range(3):
            _, one = dual.jvp(f, 0.0, w, tuple(d[i, j] for d in v))
            for got, want in zip(der, one, strict=True):
                np.testing.assert_allclose(got[i, j], want, rtol=1e-12, atol=1e-13)


def _every_operation(rng: np.random.Generator) -> Any:
    """A flow on ``(X (K, 3, 4), Y (K, 4, 2))`` using every supported operation, ranks past the low-rank limit."""
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((2, 3, 3)), rng.standard_normal((4, 4))
    p = rng.standard_normal((3, 4))
    left, right = rng.standard_normal((10, 3, 3)), rng.standard_normal((10, 4, 4))

    def f(t: Any, s: tuple) -> tuple:
        x, y = s
        xt = np.swapaxes(x, -1, -2)
        out1 = (a @ xt @ b @ x @ c) / 2.0 - 3.0 * (x @ y @ y.swapaxes(-1, -2)) + x * p + 0.5 * x - (-x)
        out1 = out1 + np.float64(2.0) * x  # numpy scalar first: its ufunc calls the Dual
        for i in range(10):  # a sum of rank 10 per direction
            out1 = out1 + left[i] @ x @ right[i]
        column = y @ np.ones((2, 1))  # (K, 4, 1), then broadcast along its columns
        out2 = xt @ x @ y - y / 4.0 + (y - 1.0) * 2.0 + (column + np.zeros((4, 2))) + np.sign(y) * y
        return out1, out2

    return f


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_jacobian_of_every_operation_matches_differences_and_dense_jvps(chunk: int | None) -> None:
    rng = np.random.default_rng(8)
    f = _every_operation(rng)
    k = 2
    state = (rng.standard_normal((k, 3, 4)), rng.standard_normal((k, 4, 2)))
    jac = dual.jacobian(f, 0.0, state, chunk=chunk)
    flat = np.concatenate([s.reshape(k, -1) for s in state], -1)

    def f_flat(x: np.ndarray) -> np.ndarray:
        leaves = (x[:, :12].reshape(k, 3, 4), x[:, 12:].reshape(k, 4, 2))
        return np.concatenate([o.reshape(k, -1) for o in f(0.0, leaves)], -1)

    h = 1e-5
    fd = np.stack([(f_flat(flat + h * e) - f_flat(flat - h * e)) / (2 * h) for e in np.eye(20)], -1)
    np.testing.assert_allclose(jac, fd, atol=1e-7 * (1 + np.max(np.abs(fd))))
    # dense directions (no factored tangents): the same Jacobian to rounding
    v = tuple(rng.standard_normal((5, *s.shape)) for s in state)
    _, der = dual.jvp(f, 0.0, state, v)
    flat_v = np.concatenate([d.reshape(5, k, -1) for d in v], -1)
    flat_der = np.concatenate([d.reshape(5, k, -1) for d in der], -1)
    np.testing.assert_allclose(np.einsum("kij,dkj->dki", jac, flat_v), flat_der, rtol=1e-12,
                               atol=1e-12 * np.max(np.abs(flat_der)))


def test_a_flow_of_many_dense_operations_keeps_numpys_peak_memory_plus_the_workspace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A kept buffer outlives its temporary; beyond the workspace budget the arrays are numpy's own, so
    40 rounds of dense tangents (1.3 MB each) do not all stay alive, and the Jacobian is the same."""
    import tracemalloc

    rng = np.random.default_rng(3)
    c = rng.standard_normal((20, 20))
    y = (rng.standard_normal((1, 20, 20)),)

    def f(t: Any, s: tuple) -> tuple:
        x = s[0]
        for _ in range(40):
            x = c * x + 0.5 * x  # an elementwise product by an array: a dense tangent
        return (x,)

    want = dual.jacobian(f, 0.0, y)
    monkeypatch.setattr(dual, "_WORKSPACE_BYTES", 4 * 2**20)
    monkeypatch.setattr(dual._local, "spare", None, raising=False)
    tracemalloc.start()
    got = dual.jacobian(f, 0.0, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    tangent = 400 * 400 * 8
    assert peak < 4 * 2**20 + 8 * tangent  # kept: about 80 tangents (100 MB)


@pytest.mark.parametrize("kind", ["constant adds a batch axis", "output of another shape"])
def test_an_output_unlike_its_leaf_is_named(kind: str) -> None:
    """Both the low-rank and the dense tangents of an output are checked against its leaf's shape."""
    rng = np.random.default_rng(4)
    y = (rng.standard_normal((1, 4, 4)),)
    if kind == "constant adds a batch axis":
        c = rng.standard_normal((3, 4, 4))

        def f(t: Any, s: tuple) -> tuple:
            return (s[0] + c,)
    else:
        m = np.ones((4, 3))

        def f(t: Any, s: tuple) -> tuple:
            return (s[0] @ m,)
    with pytest.raises(ValueError, match="f: output 0 has shape"):
        dual.jacobian(f, 0.0, y)
    with pytest.raises(ValueError, match="f: output 0 has shape"):
        dual.jvp(f, 0.0, y, (np.ones((1, 4, 4)),))


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_batch_ndim_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="batch_ndim"):
        dual.jacobian(lambda t, s: (s[0],), 0.0, (np.ones((2, 3, 3)),), batch_ndim=bad)
    with pytest.raises(ValueError, match="batch_ndim"):
        dual.jvp(lambda t, s: (s[0],), 0.0, (np.ones((2, 3, 3)),), (np.ones((2, 3, 3)),), batch_ndim=bad)


@pytest.mark.parametrize("chunk", [None, 7])
def test_out_receives_the_jacobian_whatever_it_held(chunk: int | None) -> None:
    """``out=`` is written in full (NaN-filled beforehand) and returned: the same numbers as a new array."""
    rule, task, w = _fa(np.random.default_rng(4), 3)
    want = dual.jacobian(rule.flow(task), 0.0, w, chunk=chunk)
    out = np.full((3, 32, 32), np.nan)
    got = dual.jacobian(rule.flow(task), 0.0, w, chunk=chunk, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)


def _read_only() -> np.ndarray:
    a = np.zeros((3, 32, 32))
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(("bad", "error", "said"), [
    (np.zeros((3, 32, 31)), ValueError, r"got a float64 array of shape \(3, 32, 31\)"),
    (np.zeros((3, 32, 32), dtype=np.float32), ValueError, "got a float32 array"),
    (np.zeros((3, 32, 64))[..., ::2], ValueError, r"got a float64 array of shape \(3, 32, 32\), not C-contiguous"),
    (_read_only(), ValueError, r"got a float64 array of shape \(3, 32, 32\), read-only"),
    ([[0.0]], TypeError, "got list"),
])
def test_out_is_checked(bad: Any, error: type, said: str) -> None:
    rule, task, w = _fa(np.random.default_rng(4), 3)
    with pytest.raises(error, match=r"out: expected a writeable C-contiguous float64 array of shape \(3, 32, 32\), "
                       + said):
        dual.jacobian(rule.flow(task), 0.0, w, out=bad)
