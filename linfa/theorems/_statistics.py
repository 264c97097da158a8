"""Exact binomial statistics of the catalogue's empirical claims (no scipy needed).

An empirical entry claims that a fraction of *at least* ``p`` of its random
instances hold (a population claim). A run of ``n`` instances with ``k``
holding rejects the claim when the one-sided exact binomial test does,

.. math::

    P(K \\le k \\mid n, p) = \\sum_{j=0}^{k} \\binom{n}{j} p^j (1-p)^{n-j} < \\alpha ,

so a correct claim fails a run with probability at most ``α``
(:data:`ALPHA` ``= 10^{-3}``). The Clopper–Pearson lower confidence bound on
the fraction is reported alongside.

The test can reject at all only from ``n`` instances on with ``(1 − p)^n < α``
(:func:`min_rejecting_instances`). Its power against a false claim whose true
fraction is ``p_1 < p`` is ``P(K <= k_c | n, p_1)``, ``k_c`` the largest rejected count
(:func:`power`). The catalogue's counts are chosen against the alternative
``p_1 = p/2`` (the property holds half as often as claimed): a ``--fast`` run has power at
least :data:`FAST_POWER` ``= 0.8``, a default run at least :data:`DEFAULT_POWER` ``= 0.9``
(:func:`instances_for_power` gives the smallest such ``n``), computed as if instances were
independent.
"""

from __future__ import annotations

import math

__all__ = [
    "ALPHA",
    "DEFAULT_POWER",
    "FAST_POWER",
    "POPULATION_REASON",
    "binomial_cdf",
    "claim_passes",
    "clopper_pearson_lower",
    "instances_for_power",
    "max_failures",
    "min_rejecting_instances",
    "power",
    "rejected_count",
]

#: Level of every catalogue statistical test: a correct claim fails a run with probability <= ALPHA.
ALPHA = 1e-3

#: Power of a ``--fast`` run of an empirical entry against a true fraction of half the claimed one.
FAST_POWER = 0.8
#: Power of a default run of an empirical entry against a true fraction of half the claimed one.
DEFAULT_POWER = 0.9

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


def claim_passes(kind: str, fraction: float, holding: int, total: int, inconclusive: int = 0,
                 alpha: float = ALPHA) -> bool:
    """Whether ``holding`` of ``total`` instances (``inconclusive`` of them undecided) meet a claim.

    A ``"theorem"`` passes without a counterexample (every decided instance
    holds); an ``"existential"`` claim with a witness; an ``"empirical"``
    claim of ``fraction`` unless the one-sided binomial test over the decided
    instances rejects it (``binomial_cdf(holding, decided, fraction) < alpha``).
    Inconclusive instances are never counterexamples: a run whose instances
    are all undecided passes (nothing speaks against the claim) and is
    reported as inconclusive, not as holding. No instance at all does not pass.

    This is the one decision rule of the catalogue (:meth:`linfa.theorems.Theorem.passes`)
    and of a sweep's summary (:attr:`linfa.sweep.Summary.passed`).
    """
    if kind not in ("theorem", "empirical", "existential"):
        raise ValueError(f"kind: expected 'theorem', 'empirical' or 'existential', got {kind!r}")
    if total <= 0:
        return False
    if kind == "existential":
        return holding >= 1
    decided = total - inconclusive
    if kind == "theorem":
        return holding == decided
    return decided < 1 or binomial_cdf(holding, decided, fraction) >= alpha


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


def rejected_count(n: int, p: float, alpha: float = ALPHA) -> int:
    """The largest number ``k`` of holding instances out of ``n`` at which the claim ``p`` is rejected (−1: none)."""
    return n - max_failures(n, p, alpha) - 1


def min_rejecting_instances(p: float, alpha: float = ALPHA) -> int:
    """The fewest instances at which a claim of fraction ``p`` can be rejected at all (all of them failing)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p: expected a fraction in (0, 1], got {p!r}")
    n = 1
    while rejected_count(n, p, alpha) < 0:
        n += 1
    return n


def power(n: int, p: float, p1: float, alpha: float = ALPHA) -> float:
    """Probability that a run of ``n`` independent instances rejects the claim ``p`` when the true fraction is ``p1``.

    .. math:: P(K \\le k_c \\mid n, p_1),\\quad k_c = \\max\\{k : P(K \\le k \\mid n, p) < \\alpha\\}
    """
    k = rejected_count(n, p, alpha)
    return binomial_cdf(k, n, p1) if k >= 0 else 0.0


def instances_for_power(p: float, target: float, p1: float | None = None, alpha: float = ALPHA) -> int:
    """The smallest ``n`` at which the test of the claim ``p`` has power ``>= target`` at ``p1`` (default ``p/2``)."""
    p1 = p / 2 if p1 is None else p1
    if not 0.0 <= p1 < p <= 1.0 or not 0.0 < target < 1.0:
        raise ValueError(f"p, p1, target: expected 0 <= p1 < p <= 1 and 0 < target < 1, got {p!r}, {p1!r}, {target!r}")
    n = min_rejecting_instances(p, alpha)
    while power(n, p, p1, alpha) < target:
        n += 1
    return n
