"""A generic batched integrator for ``dy/dt = vf(t, y, args)``.

It knows nothing of networks, rules or tasks: ``y`` is any tuple of arrays
with leading batch axes. The rule-level front end (:func:`linfa.solve`,
:func:`linfa.sgd`, stopping conditions) is :mod:`linfa.dynamics`.

* :func:`integrate` — the entry point;
* :mod:`~linfa.integrate.methods` — Runge–Kutta methods as data (``METHODS``,
  :class:`AbstractRungeKutta`, each with its ``order``);
* :mod:`~linfa.integrate.rosenbrock` — the stiff method ``rodas4`` (:class:`Rodas4`),
  with the exact Jacobian of ``vf`` (:mod:`linfa.dual`);
* :mod:`~linfa.integrate.wmethod` — the stiff Rosenbrock-W method ``ros34pw2``
  (:class:`Ros34PW2`), which keeps its Jacobian and LU across steps;
* :mod:`~linfa.integrate.bdf` — the stiff variable-order NDF/BDF method ``bdf``
  (:class:`BDF`), exact Jacobian and LU kept per instance until Newton needs new ones;
  :mod:`~linfa.integrate.compiled_bdf` — the same method compiled, one numba loop per instance
  (its default route);
* :mod:`~linfa.integrate.linsolve` — the stiff methods' per-instance dense LU
  (one BLAS thread, the instances on threads);
* :mod:`~linfa.integrate.controller` — :class:`StepSizeController` (tolerances, step rule);
* :mod:`~linfa.integrate.schedule` — the compiled path's threads; the numpy engine's threads and chunks;
* :mod:`~linfa.integrate.trace` and :mod:`~linfa.integrate.compiled` — the compiled path: the
  field traced once into a tape of matrix operations, each instance integrated by one numba loop;
* :mod:`~linfa.integrate.events` — :class:`Event`, :func:`norm_above`, :func:`flow_below`;
* :mod:`~linfa.integrate.solution` — :class:`Solution`, :class:`Status`,
  :class:`IntegrationError`.
"""

from typing import Any

from linfa.integrate._integrate import MAX_STEPS, integrate
from linfa.integrate.bdf import BDF
from linfa.integrate.controller import StepSizeController
from linfa.integrate.events import Event, flow_below, norm_above
from linfa.integrate.methods import METHODS, AbstractRungeKutta, Dop853, Dopri5, Euler, Tsit5, as_method
from linfa.integrate.rosenbrock import AbstractRosenbrock, Rodas4
from linfa.integrate.solution import IntegrationError, Solution, Status
from linfa.integrate.wmethod import AbstractRosenbrockW, Ros34PW2

__all__ = [
    "BDF",
    "MAX_STEPS",
    "METHODS",
    "AbstractRosenbrock",
    "AbstractRosenbrockW",
    "AbstractRungeKutta",
    "Dop853",
    "Dopri5",
    "Euler",
    "Event",
    "IntegrationError",
    "Rodas4",
    "Ros34PW2",
    "Solution",
    "Status",
    "StepSizeController",
    "Tsit5",
    "as_method",
    "flow_below",
    "integrate",
    "norm_above",
]

#: Names that lived here before the rule-level front end moved to :mod:`linfa.dynamics`.
_MOVED = {"solve": "linfa.dynamics.solve", "prepare": "linfa.dynamics.prepare", "until": "linfa.dynamics.until"}


class MovedError(ImportError):
    """A name that moved out of :mod:`linfa.integrate`; the message says where to."""


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        raise MovedError(
            f"linfa.integrate.{name} moved to {_MOVED[name]} (the rule-level front end above the "
            f"generic integrator); use linfa.solve / linfa.sgd, or import {name} from linfa.dynamics"
        )
    raise AttributeError(f"module 'linfa.integrate' has no attribute {name!r}")
