r"""Two-phase learning with quadratic energies (Scellier & Bengio, linear case).

The model (:class:`QuadraticEnergy`):

.. math::

    F_\beta(s) = \tfrac12 s^T (I - W) s - s^T (b + U x)
                 + \tfrac{\beta}{2}\lVert P s - d\rVert^2 .

* fixed points: :func:`fixed_point` (linear solves, free and nudged);
* gradients: :func:`gradient` (adjoint, exact), :func:`ep_gradient`
  (one-sided / centred two-phase estimate), :func:`ep_error_coefficient`
  (closed-form leading error terms), :func:`ep_gradient_closed_form`;
* relaxation: :func:`relax` (closed form), :func:`relax_ode` (through
  :func:`linfa.integrate.integrate`), the nudged transient
  :func:`nudged_transient`, :func:`transient_limit`, :func:`transient_coefficient`;
* learning: :func:`train` with rules ``"gradient"``, ``"ep"``, ``"ep_centered"``;
* observables: :func:`gradient_error`, :func:`update_angle`,
  :func:`energy_along`, :func:`loss_along`, ...

Data carry a sample axis: ``x`` is ``(*batch, m, n_in)``, ``d`` is
``(*batch, m, n_out)``, states are ``(*batch, m, n)``.
"""

from linfa.eqprop.energy import (
    QuadraticEnergy,
    check_beta,
    cost,
    energy,
    energy_gradient,
    nudged_matrix,
    total_energy,
)
from linfa.eqprop.fixed_points import fixed_point, output_error
from linfa.eqprop.gradients import (
    Params,
    adjoint,
    ep_error_coefficient,
    ep_gradient,
    ep_gradient_closed_form,
    gradient,
    loss,
    parameter_derivative,
)
from linfa.eqprop.observables import (
    energy_along,
    ep_error,
    gradient_error,
    loglog_slope,
    loss_along,
    min_eigenvalue,
    params_inner,
    params_norm,
    update_angle,
)
from linfa.eqprop.relaxation import (
    decay,
    nudged_transient,
    relax,
    relax_ode,
    relaxation_args,
    relaxation_vf,
    transient_coefficient,
    transient_limit,
)
from linfa.eqprop.training import (
    RULES,
    centered_ep_flow,
    ep_flow,
    gradient_flow,
    learning_args,
    models_along,
    population_samples,
    train,
)

__all__ = [
    "RULES",
    "Params",
    "QuadraticEnergy",
    "adjoint",
    "centered_ep_flow",
    "check_beta",
    "cost",
    "decay",
    "energy",
    "energy_along",
    "energy_gradient",
    "ep_error",
    "ep_error_coefficient",
    "ep_flow",
    "ep_gradient",
    "ep_gradient_closed_form",
    "fixed_point",
    "gradient",
    "gradient_error",
    "gradient_flow",
    "learning_args",
    "loglog_slope",
    "loss",
    "loss_along",
    "min_eigenvalue",
    "models_along",
    "nudged_matrix",
    "nudged_transient",
    "output_error",
    "parameter_derivative",
    "params_inner",
    "params_norm",
    "population_samples",
    "relax",
    "relax_ode",
    "relaxation_args",
    "relaxation_vf",
    "total_energy",
    "train",
    "transient_coefficient",
    "transient_limit",
    "update_angle",
]
