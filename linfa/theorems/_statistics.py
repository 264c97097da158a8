"""Exact binomial statistics of the catalogue's empirical claims (no scipy needed).

An empirical entry claims that a fraction of *at least* ``p`` of its random
instances hold (a population claim). A run of ``n`` instances with ``k``
holding rejects the claim when the one-sided exact binomial test does,

.. math::

    P(K \\le k \\mid n, p) = \\sum_{j=0}^{k} \\binom{n}{j} p^j (1-p)^{n-j} < \\alpha ,

so a correct claim fails a run with probability at most ``α``
(:data:`ALPHA` ``= 10^{-3}``). The Clopper–Pearson lower confidence bound on
the fraction is reported alongside.
"""

from __future__ import annotations

import math

__all__ = ["ALPHA", "POPULATION_REASON", "binomial_cdf", "clopper_pearson_lower", "max_failures"]

#: Level of every catalogue statistical test: a correct claim fails a run with probability <= ALPHA.
ALPHA = 1e-3

#: How an empirical entry's fraction is judged (quoted in the entries' tolerance reasons).
POPULATION_REASON = (
    "a population claim judged by the one-sided binomial test at level 1e-3 (a correct claim fails a run with "
    "probability <= 1e-3 if instances were independent; those of a group share widths, hence a claimed "
    "fraction well below the measured one)"
)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(K <= k)`` for ``K ~ Binomial(n, p)``, summed term by term.

    Each term ``C(n, j) p^j (1 − p)^(n − j)`` is computed from its logarithm,
    so any ``n`` works (the binomial coefficient alone overflows a float
    beyond ``n ≈ 1030``).
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"n, p: expected n >= 0 and p in [0, 1], got {n!r}, {p!r}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    lp, lq, lgn = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    terms = (math.exp(lgn - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq)
             for j in range(k + 1))
    return float(min(1.0, math.fsum(terms)))


def clopper_pearson_lower(k: int, n: int, alpha: float = ALPHA) -> float:
    """One-sided ``1 − alpha`` Clopper–Pearson lower bound on a fraction with ``k`` of ``n`` successes.

    The ``p`` with ``P(K >= k | n, p) = alpha`` (0 when ``k = 0``), found by bisection.
    """
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"k, n: expected 0 <= k <= n and n >= 1, got {k!r}, {n!r}")
    if k == 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if 1.0 - binomial_cdf(k - 1, n, mid) < alpha:  # P(K >= k) too small: p is larger
            lo = mid
        else:
            hi = mid
    return lo


def max_failures(n: int, p: float, alpha: float = ALPHA) -> int:
    """The largest number of failing instances out of ``n`` that a claim of fraction ``p`` tolerates."""
    k = 0
    while k <= n and binomial_cdf(k, n, p) < alpha:
        k += 1
    return n - k
