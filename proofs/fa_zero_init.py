"""Fact 3: feedback alignment from zero initialisation.

A = BM, W = NB^T, N + N^T = MM^T; with B^T B = cI, e^T W B e = (c/2)‖M^T e‖²
and the loss is a Lyapunov function; one output: W^T is a non-negative
multiple of B. Counterexample: without B^T B = cI, e^T W B e < 0 happens.

Run python proofs/fa_zero_init.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.fa_zero_init`.
"""

import sys

from linfa.symbolic.derivations import fa_zero_init

if __name__ == "__main__":
    sys.exit(fa_zero_init().run())
