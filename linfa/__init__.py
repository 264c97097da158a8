"""linfa: verify theory about the learning dynamics of linear networks.

Backprop, feedback alignment (FA), direct feedback alignment (DFA),
Kolen–Pollack and sign symmetry on deep linear networks, written once as
flows on population second moments (see ``docs/design.md`` in the repository;
:mod:`linfa.facts` holds the numbered facts the catalogue checks).

``import linfa`` is light: sympy, matplotlib and hypothesis load only with
:mod:`linfa.symbolic`, :mod:`linfa.plot` and :mod:`linfa.testing`.
"""

import importlib
from types import ModuleType

from linfa import dual, dynamics, eqprop, exact, feedback, integrate, observables, rules
from linfa.dynamics import sgd, solve
from linfa.errors import UnknownNameError
from linfa.instances import Instance
from linfa.integrate import IntegrationError, Solution, Status
from linfa.networks import DeepLinear
from linfa.random_matrices import spd_with_condition
from linfa.rules import BP, DFA, FA, AbstractRule, KolenPollack, SignSymmetry
from linfa.tasks import Task, factors

__version__ = "0.1.0"

__all__ = [
    "BP",
    "DFA",
    "FA",
    "AbstractRule",
    "DeepLinear",
    "Instance",
    "IntegrationError",
    "KolenPollack",
    "SignSymmetry",
    "Solution",
    "Status",
    "Task",
    "UnknownNameError",
    "__version__",
    "dual",
    "dynamics",
    "eqprop",
    "exact",
    "factors",
    "feedback",
    "integrate",
    "observables",
    "rules",
    "sgd",
    "solve",
    "spd_with_condition",
]

#: Sub-packages loaded on first attribute access (they import sympy, matplotlib,
#: hypothesis or the catalogue): ``linfa.symbolic``, ``linfa.plot``, ``linfa.teacher_student``, ...
_LAZY = ("cli", "plot", "reproduce", "sweep", "symbolic", "teacher_student", "testing", "theorems")


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        module = importlib.import_module(f"linfa.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'linfa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_LAZY])
