"""Shallow teacher–student networks trained online: order-parameter ODEs, simulation, observables.

A two-layer student :math:`\\hat y = \\sum_k v_k g(w_k\\cdot x/\\sqrt N)` learns a teacher of the
same form with M hidden units from one fresh Gaussian sample per step, by BP or by DFA (a fixed
feedback ``b`` in place of ``v`` in the first-layer update). As N → ∞ the overlaps
``Q = w wᵀ/N``, ``R = w w*ᵀ/N`` and ``v`` follow deterministic ODEs in ``α = steps/N``
(Saad & Solla 1995; Goldt et al. 2019; Refinetti et al. 2021).

* :class:`Problem` — a batch of initial conditions, teachers, feedbacks and learning rates;
* :func:`solve` — integrate the ODEs with :func:`linfa.integrate.integrate` (:class:`Flow` is the field;
  :func:`eg_below` a stopping condition);
* :func:`simulate` — the finite-N SGD they describe;
* :mod:`~linfa.teacher_student.averages` — the Gaussian averages ``I2, I3, I4, J2``
  (closed forms for erf and linear ``g``, cubature for any other);
* observables :func:`generalisation_error`, :func:`alignment`, :func:`overlaps`, :func:`specialisation`.

Examples
--------
>>> import numpy as np
>>> from linfa import teacher_student as ts
>>> p = ts.Problem(Q=0.01 * np.eye(2), R=np.zeros((2, 2)), T=np.eye(2), v=np.zeros(2), vstar=np.ones(2),
...                rule="DFA", b=np.array([1.0, -1.0]), eta=0.5)
>>> sol = ts.solve(p, 20.0, saveat=[0.0, 20.0], observe=["eg", "alignment"])
>>> bool(sol.observed["eg"][-1] < sol.observed["eg"][0])
True
"""

from linfa.teacher_student import averages
from linfa.teacher_student.activations import ACTIVATIONS, Activation, activation
from linfa.teacher_student.observables import alignment, generalisation_error, overlaps, specialisation
from linfa.teacher_student.ode import Flow, eg_below, solve
from linfa.teacher_student.order_parameters import (
    OrderParameters,
    Problem,
    covariance,
    initial_weights,
    order_parameters,
)
from linfa.teacher_student.simulate import Simulation, simulate

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Flow",
    "OrderParameters",
    "Problem",
    "Simulation",
    "activation",
    "alignment",
    "averages",
    "covariance",
    "eg_below",
    "generalisation_error",
    "initial_weights",
    "order_parameters",
    "overlaps",
    "simulate",
    "solve",
    "specialisation",
]
