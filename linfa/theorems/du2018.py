"""Du, Hu & Lee (2018): gradient flow keeps the layers of a deep linear network balanced.

Under backprop's gradient flow (any initialisation, any ``Σxx``)

.. math::

    \\frac{d}{dt}\\left(W_l W_l^T - W_{l+1}^T W_{l+1}\\right) = 0,

the BP analogue of the FA conservation law (docs/design.md, fact 2).

Reference: S. S. Du, W. Hu, J. D. Lee, *Algorithmic regularization in learning
deep homogeneous models: layers are automatically balanced*, NeurIPS 2018
(the linear-network case; see also Arora, Cohen & Hazan, ICML 2018).
"""

from __future__ import annotations

import numpy as np

from linfa.instances import Instance
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, register
from linfa.theorems._numerics import tighter_reexamine
from linfa.theorems.lillicrap2016 import TOL_CONSERVED, conservation_drift

__all__: list[str] = []


def _draw_balance(rng: np.random.Generator, size: int) -> Instance:
    _, task, weights = _draw.gaussian_teacher_network(rng, size, max_depth=4)
    return _draw.linear_instance(task, weights, rule="BP", size=size, t1=2.0, n_save=8)


register(Theorem(
    id="du2018.balancedness",
    paper="Du et al. 2018",
    title="BP gradient flow conserves W_l W_l^T − W_{l+1}^T W_{l+1}",
    statement=r"\frac{d}{dt}\left(W_l W_l^T - W_{l+1}^T W_{l+1}\right) = 0,\quad l = 1, \dots, L-1",
    reference="Du, Hu & Lee, NeurIPS 2018 (linear networks); docs/design.md, fact 2 (BP analogue of FA's law)",
    hypotheses=("BP (gradient flow), depth 2 to 4", "any initialisation", "any Σxx (non-whitened drawn)"),
    kind="theorem",
    tolerance=TOL_CONSERVED,
    tolerance_reason="dopri5 at rtol 1e-9, atol 1e-11 over t <= 2; the drift is global integration error, "
                     "measured <= 4e-10 of the terms' size (128 instances, seeds 0-3)",
    draw=_draw_balance,
    check_batch=conservation_drift,
    reexamine=tighter_reexamine(conservation_drift, TOL_CONSERVED),
    fact=2,
    derivation="bp_balancedness", derivation_claim="conserved",
))
