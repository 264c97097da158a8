"""The catalogue of published claims, each with a numerical check (``linfa check``).

Importing this package registers every entry. See :mod:`linfa.theorems._core`
for :class:`Theorem`, :class:`Verdict` and how instances are seeded, and
:class:`linfa.Instance` (:mod:`linfa.instances`) for the reproducible instances checks run on.

Examples
--------
>>> from linfa import theorems
>>> thm = theorems.get("lillicrap2016.alignment_condition")
>>> thm.kind
'theorem'
>>> theorems.run(thm, instances=4, derivation=False).passed
True
"""

from linfa.instances import Instance
from linfa.theorems._core import (
    KINDS,
    Result,
    Theorem,
    Verdict,
    catalogue,
    draw_group,
    draw_groups,
    get,
    group_seed,
    register,
    replay,
    run,
    unregister,
)
from linfa.theorems._numerics import ATOL, RTOL, solve

__all__ = [
    "ATOL",
    "KINDS",
    "RTOL",
    "Instance",
    "Result",
    "Theorem",
    "Verdict",
    "catalogue",
    "draw_group",
    "draw_groups",
    "get",
    "group_seed",
    "register",
    "replay",
    "run",
    "solve",
    "unregister",
]

# Entries register themselves on import, in this order (the order of `linfa list`).
from linfa.theorems import (  # noqa: F401
    du2018,
    flows,
    garg_vempala,
    kolen_pollack,
    lillicrap2016,
    nokland2016,
    refinetti2021,
    refinetti2021_shallow,
    saxe2014,
    scellier_bengio2017,
)
