"""Fact 5 (cosine bound): with B^T B = cI and Λ SPD of condition number κ,
the angle between the DFA/FA signal and BP's has cos ≥ 2√κ/(1+κ) (Kantorovich).

Run ``python proofs/kantorovich_bound.py``: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.kantorovich_bound`.
"""

import sys

from linfa.symbolic.derivations import kantorovich_bound

if __name__ == "__main__":
    sys.exit(kantorovich_bound().run())
