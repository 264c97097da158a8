"""Learning dynamics of a rule on a task: the front end above :mod:`linfa.integrate`.

* :func:`solve` — the continuous-time flow ``d state/dt = rule.flow(task)(t, state)``;
* :func:`sgd` — discrete-time online learning with sampled minibatches;
* :mod:`~linfa.dynamics.until` — stopping conditions on ``(rule, task, state)``;
* :func:`prepare` — a ``(rule, task, state)`` problem packed for the generic integrator.

Both :func:`solve` and :func:`sgd` return a :class:`linfa.integrate.Solution`
built by the same route, with the same checks of the observables.
"""

from linfa.dynamics import until
from linfa.dynamics.flow import solve
from linfa.dynamics.problem import FailedInstancesWarning, prepare
from linfa.dynamics.sampled import sgd

__all__ = ["FailedInstancesWarning", "prepare", "sgd", "solve", "until"]
