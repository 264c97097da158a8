"""linfa: verify theory about the learning dynamics of linear networks.

Backprop, feedback alignment (FA), direct feedback alignment (DFA),
Kolen–Pollack and sign symmetry on deep linear networks, written once as
flows on population second moments (see ``DESIGN.md`` in the project).

``import linfa`` is light: sympy, matplotlib and hypothesis load only with
:mod:`linfa.symbolic`, :mod:`linfa.plot` and :mod:`linfa.testing`.
"""

from linfa import exact, feedback, integrate, observables
from linfa.integrate import IntegrationError, Solution, Status, solve
from linfa.networks import DeepLinear
from linfa.rules import BP, DFA, FA, AbstractRule, KolenPollack, SignSymmetry
from linfa.sgd import sgd
from linfa.tasks import Task, factors, spd_with_condition

__version__ = "0.1.0"

__all__ = [
    "BP",
    "DFA",
    "FA",
    "AbstractRule",
    "DeepLinear",
    "IntegrationError",
    "KolenPollack",
    "SignSymmetry",
    "Solution",
    "Status",
    "Task",
    "__version__",
    "exact",
    "factors",
    "feedback",
    "integrate",
    "observables",
    "sgd",
    "solve",
    "spd_with_condition",
]
