"""Fact 4 (Garg & Vempala): matrix factorisation under FA.

Sym(B^T Z) − ½ W W^T is conserved; fixed points satisfy Z W = Y Π, Π the
projector onto the row space of B^T Y.

Run python proofs/fa_factorization.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.fa_factorization`.
"""

import sys

from linfa.symbolic.derivations import fa_factorization

if __name__ == "__main__":
    sys.exit(fa_factorization().run())
