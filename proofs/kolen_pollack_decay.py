"""Fact 8 (Kolen–Pollack): d/dt (W − B^T) = −λ (W − B^T), so the mismatch decays as e^{−λt}.

Run python proofs/kolen_pollack_decay.py: prints every step with its reason, verifies each
(exactly unless labelled numeric), runs the numerical cross-checks against
linfa's flows and observables, and exits non-zero if anything fails. The
derivation itself lives in :func:`linfa.symbolic.derivations.kolen_pollack_decay`.
"""

import sys

from linfa.symbolic.derivations import kolen_pollack_decay

if __name__ == "__main__":
    sys.exit(kolen_pollack_decay().run())
