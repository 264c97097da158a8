"""One builder per fact of docs/design.md, each returning a :class:`~linfa.symbolic.Derivation`.

The catalogue (:mod:`linfa.theorems`) attaches these to its claims; the
scripts in ``proofs/`` run them.
"""

from linfa.symbolic.derivations.alignment import alignment_condition
from linfa.symbolic.derivations.conservation import bp_balancedness, fa_conservation, fa_discrete_drift
from linfa.symbolic.derivations.deep_alignment import deep_zero_init, kantorovich_bound
from linfa.symbolic.derivations.energy import quadratic_energy
from linfa.symbolic.derivations.factorization import fa_factorization
from linfa.symbolic.derivations.kolen_pollack import kolen_pollack_decay
from linfa.symbolic.derivations.saxe import saxe_modes
from linfa.symbolic.derivations.zero_init import fa_zero_init

__all__ = [
    "ALL",
    "alignment_condition",
    "bp_balancedness",
    "deep_zero_init",
    "fa_conservation",
    "fa_discrete_drift",
    "fa_factorization",
    "fa_zero_init",
    "kantorovich_bound",
    "kolen_pollack_decay",
    "quadratic_energy",
    "saxe_modes",
]

#: Every builder, by the name of its proof script.
ALL = {
    "alignment_condition": alignment_condition,
    "fa_conservation": fa_conservation,
    "bp_balancedness": bp_balancedness,
    "fa_discrete_drift": fa_discrete_drift,
    "fa_zero_init": fa_zero_init,
    "fa_factorization": fa_factorization,
    "deep_zero_init": deep_zero_init,
    "kantorovich_bound": kantorovich_bound,
    "saxe_modes": saxe_modes,
    "quadratic_energy": quadratic_energy,
    "kolen_pollack_decay": kolen_pollack_decay,
}
