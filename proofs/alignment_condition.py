"""Fact 1 (Lillicrap et al.): the FA hidden update is within 90° of BP's iff e^T W B e > 0.

Run python proofs/alignment_condition.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.alignment_condition`.
"""

import sys

from linfa.symbolic.derivations import alignment_condition

if __name__ == "__main__":
    sys.exit(alignment_condition().run())
