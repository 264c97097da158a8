"""Fact 6 (Saxe et al.): BP mode dynamics τ du/dt = 2u(s − u) and the logistic solution.

Run ``python proofs/saxe_modes.py``: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.saxe_modes`.
"""

import sys

from linfa.symbolic.derivations import saxe_modes

if __name__ == "__main__":
    sys.exit(saxe_modes().run())
