"""Fact 5: DFA (depth 3 and 4) and deep FA (depth 3) from zero init.

The weights factor through small alignment matrices A_l (any Σxx, also under
discrete steps), and BP's backward matrix is M_l Λ_l^T with Λ_l built from the
A_l and the Gram matrices B_l^T B_l.

Run ``python proofs/deep_zero_init.py``: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.deep_zero_init`.
"""

import sys

from linfa.symbolic.derivations import deep_zero_init

if __name__ == "__main__":
    sys.exit(deep_zero_init().run())
