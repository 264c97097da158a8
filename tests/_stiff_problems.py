"""Small stiff FA problems shared by the tests of the stiff methods and their routes."""

from __future__ import annotations

import numpy as np

import linfa


def stiff_fa(K: int, rng: np.random.Generator, cond: float, scale: float = 0.5):
    """FA (6, 4, 3), Σxx with eigenvalues log-spaced from ``1/cond`` to 1 in a random basis.

    Returns ``(rule, task, w0)``; teacher entries N(0, 1/6), feedback and
    initial weights of entry scale ``scale``, batched over ``K``.
    """
    widths = (6, 4, 3)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    sxx = (q * np.logspace(-np.log10(cond), 0, 6)) @ q.T
    task = linfa.Task.teacher(rng.standard_normal((K, 3, 6)) / np.sqrt(6), sxx=0.5 * (sxx + sxx.T))
    rule = linfa.FA(linfa.feedback.for_rule("FA", widths, rng, scale=scale, batch=(K,)))
    w0 = tuple(scale * rng.standard_normal((K, widths[i + 1], widths[i])) for i in range(2))
    return rule, task, w0


def stiff_linear(K: int, n: int, rng: np.random.Generator, decades: float):
    """``y' = A y`` with ``A`` symmetric, eigenvalues log-spaced from ``-1`` to ``-10^decades``.

    Returns ``(a, y0)``: ``a`` of shape ``(K, n, n)``, ``y0`` of shape ``(K, n, 1)``.
    """
    q, _ = np.linalg.qr(rng.standard_normal((K, n, n)))
    a = -np.einsum("kij,j,klj->kil", q, np.logspace(0, decades, n), q)
    return a, rng.standard_normal((K, n, 1))


def fa_instance(rule, task, w0, i: int):
    """Instance ``i`` of a batched FA problem ``(rule, task, w0)``, as a batch of one."""
    one = slice(i, i + 1)
    return (linfa.FA(tuple(b[one] for b in rule.feedback)), linfa.Task(task.sxx, task.syx[one], task.syy[one]),
            tuple(w[one] for w in w0))
