"""Fact 2 (discrete time): one GD/SGD step of size η changes the FA law by exactly η² (BE)(BE)^T ⪰ 0.

Run python proofs/fa_discrete_drift.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.fa_discrete_drift`.
"""

import sys

from linfa.symbolic.derivations import fa_discrete_drift

if __name__ == "__main__":
    sys.exit(fa_discrete_drift().run())
