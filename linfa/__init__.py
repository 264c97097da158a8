"""linfa: verify theory about the learning dynamics of linear networks.

Backprop, feedback alignment (FA), direct feedback alignment (DFA),
Kolen–Pollack and sign symmetry on deep linear networks, written once as
flows on population second moments (see ``DESIGN.md`` in the project).

``import linfa`` is light: sympy, matplotlib and hypothesis load only with
:mod:`linfa.symbolic`, :mod:`linfa.plot` and :mod:`linfa.testing`.
"""

from linfa import feedback, observables
from linfa.networks import DeepLinear
from linfa.rules import BP, DFA, FA, AbstractRule, KolenPollack, SignSymmetry
from linfa.tasks import Task, factors, spd_with_condition

__version__ = "0.1.0"

__all__ = [
    "BP",
    "DFA",
    "FA",
    "AbstractRule",
    "DeepLinear",
    "KolenPollack",
    "SignSymmetry",
    "Task",
    "__version__",
    "factors",
    "feedback",
    "observables",
    "spd_with_condition",
]
