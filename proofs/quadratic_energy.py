"""Fact 7 (Scellier & Bengio, linear case): two-phase learning with a quadratic energy.

Fixed points and the closed-form nudged relaxation s(t) = s^β + e^{−H_β t}(s(0) − s^β);
d/dβ ∂F/∂θ(s^β) at β = 0 equals dJ/dθ for θ = (b, U, W); the one-sided
estimate's error β c_1 + O(β²) and the centred one's β² c_2 + O(β⁴), with
explicit remainders; the nudged transient (1/β) ds/dt = −e^{−H_β t} P^T e and
its β → 0 limit −e^{−At} P^T e. A chain: each claim is checked only from the
earlier steps it names.

Run ``python proofs/quadratic_energy.py``: prints every step with its reason, verifies
each (exactly unless labelled numeric), runs the numerical cross-checks
against linfa.eqprop, and exits non-zero if anything fails. The derivation
itself lives in :func:`linfa.symbolic.derivations.quadratic_energy`.
"""

import sys

from linfa.symbolic.derivations import quadratic_energy

if __name__ == "__main__":
    sys.exit(quadratic_energy().run())
