"""Fact 2 (BP analogue): balancedness A A^T − W^T W is conserved by gradient flow.

Run python proofs/bp_balancedness.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.bp_balancedness`.
"""

import sys

from linfa.symbolic.derivations import bp_balancedness

if __name__ == "__main__":
    sys.exit(bp_balancedness().run())
