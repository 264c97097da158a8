r"""Symbolic derivations of the facts linfa verifies (imports sympy).

The flows of :mod:`linfa.rules` evaluate on sympy matrices, so every
derivation here is about the very dynamics that :func:`linfa.solve`
integrates. Main pieces:

* :mod:`~linfa.symbolic.matrices`: generic symbolic matrices and matrix symbols;
* :mod:`~linfa.symbolic.derivation`: :class:`Derivation`, :class:`Step`,
  :class:`Report` — steps that verify themselves and render as LaTeX/Markdown;
* :mod:`~linfa.symbolic.calculus`: time derivatives along a rule's flow;
* :mod:`~linfa.symbolic.numeric`: lambdify and numerical cross-checks;
* :mod:`~linfa.symbolic.derivations`: one builder per fact of docs/design.md.

Examples
--------
>>> import linfa
>>> from linfa.symbolic import symbols, task, is_conserved
>>> A, W, B, S, Y = symbols("A W B S Y", (3, 2), (2, 3), (3, 2), (2, 2), (2, 2))
>>> is_conserved(lambda st: st[0] * st[0].T - B * st[1] - st[1].T * B.T,
...              linfa.FA((B,)), task(S, Y), (A, W))
True
"""

from linfa.symbolic import derivations
from linfa.symbolic.calculus import (
    conservation_step,
    flow_rates,
    flow_steps,
    is_conserved,
    is_nonincreasing,
    placeholder,
    rate_step,
    time_derivative,
)
from linfa.symbolic.derivation import Counterexample, Derivation, Report, Step, StepResult, VerificationError
from linfa.symbolic.matrices import (
    antisymmetric,
    diagonal,
    explicit,
    frobenius,
    matrix,
    scalar,
    sq_norm,
    sym,
    symbols,
    symmetric,
    task,
    vector,
)
from linfa.symbolic.numeric import CheckResult, lambdify

__all__ = [
    "CheckResult",
    "Counterexample",
    "Derivation",
    "Report",
    "Step",
    "StepResult",
    "VerificationError",
    "antisymmetric",
    "conservation_step",
    "derivations",
    "diagonal",
    "explicit",
    "flow_rates",
    "flow_steps",
    "frobenius",
    "is_conserved",
    "is_nonincreasing",
    "lambdify",
    "matrix",
    "placeholder",
    "rate_step",
    "scalar",
    "sq_norm",
    "sym",
    "symbols",
    "symmetric",
    "task",
    "time_derivative",
    "vector",
]
