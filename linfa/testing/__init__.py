"""Hypothesis strategies and a conjecture helper for linear-network learning dynamics.

This module imports hypothesis (``import linfa`` does not). Use the
strategies in your own property tests:

>>> from hypothesis import given, settings
>>> from linfa.testing import instances
>>> @settings(max_examples=5, deadline=None)
... @given(instances(rule="FA", init="zeros"))
... def test_zero_init_is_zero(inst):
...     assert not any(w.any() for w in inst.weights())
>>> test_zero_init_is_zero()

and :func:`conjecture` to search for, shrink and save a counterexample.
"""

from linfa.instances import Instance
from linfa.testing.conjecture import (
    ConjectureResult,
    Outcome,
    TrustedPredicateWarning,
    UntrustedPredicateError,
    conjecture,
    evaluate,
    replay,
)
from linfa.testing.strategies import feedback, initial_states, instances, seeds, tasks, widths

__all__ = [
    "ConjectureResult",
    "Instance",
    "Outcome",
    "TrustedPredicateWarning",
    "UntrustedPredicateError",
    "conjecture",
    "evaluate",
    "feedback",
    "initial_states",
    "instances",
    "replay",
    "seeds",
    "tasks",
    "widths",
]
