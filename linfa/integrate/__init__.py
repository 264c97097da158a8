"""Continuous-time integration of batched learning dynamics.

* :func:`integrate` — the generic batched integrator for ``dy/dt = vf(t, y, args)``;
* :func:`solve` — a learning rule on a task (:mod:`linfa.rules`, :mod:`linfa.tasks`);
* :class:`Solution`, :class:`Status`, :class:`IntegrationError` — what comes back;
* :class:`Event`, :func:`norm_above`, :func:`flow_below` and :mod:`linfa.integrate.until`
  — stopping conditions.
"""

from linfa.integrate import until
from linfa.integrate._events import Event, flow_below, norm_above
from linfa.integrate._integrate import integrate
from linfa.integrate._solution import IntegrationError, Solution, Status
from linfa.integrate._tableaus import METHODS, AbstractRungeKutta, Dop853, Dopri5, Euler, Tsit5
from linfa.integrate.solve import solve

__all__ = [
    "METHODS",
    "AbstractRungeKutta",
    "Dop853",
    "Dopri5",
    "Euler",
    "Event",
    "IntegrationError",
    "Solution",
    "Status",
    "Tsit5",
    "flow_below",
    "integrate",
    "norm_above",
    "solve",
    "until",
]
