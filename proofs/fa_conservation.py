"""Fact 2: A A^T − B W − W^T B^T is conserved by feedback alignment (any init, any Σxx, depth 2 and 3).

Run python proofs/fa_conservation.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.fa_conservation`.
"""

import sys

from linfa.symbolic.derivations import fa_conservation

if __name__ == "__main__":
    sys.exit(fa_conservation().run())
