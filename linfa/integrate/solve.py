"""Moved: the rule-level front end lives in :mod:`linfa.dynamics` (this stub says where)."""

from linfa.integrate import MovedError

raise MovedError(
    "linfa.integrate.solve moved to linfa.dynamics.solve (the rule-level front end above the generic "
    "integrator): use linfa.solve / linfa.sgd, or 'from linfa.dynamics import solve'"
)
