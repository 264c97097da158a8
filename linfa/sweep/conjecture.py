"""Conjectures (:mod:`linfa.testing`) as sweep targets: a predicate over seeded random instances.

Where :func:`linfa.testing.conjecture` lets hypothesis search (and shrink), a
sweep evaluates the predicate on ``N`` instances drawn from seeds, which scales
out and says how often and by how much the conjecture fails. Importing this
module imports neither hypothesis nor the integrator; :class:`Conjecture` runs
:func:`linfa.testing.conjecture.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linfa.sweep.catalogue import _npz_bytes
from linfa.sweep.seeds import instance_seeds, is_count
from linfa.sweep.targets import AbstractTarget, _fn_name

__all__ = ["Conjecture"]


class Conjecture(AbstractTarget):
    """A conjecture's predicate evaluated on instances drawn from per-instance seeds.

    Parameters
    ----------
    predicate : callable
        ``predicate(instance) -> bool | float`` or, with ``t1``,
        ``predicate(instance, solution)``; a float is a margin, ``>= 0`` where
        the conjecture holds (as for :func:`linfa.testing.conjecture`).
    draw : callable
        ``draw(rng) -> linfa.Instance``: one unbatched instance from a
        :class:`numpy.random.Generator`. (A hypothesis strategy cannot be drawn
        from a seed; write the generator function it stands for.)
    t1 : float, optional
        Integrate each instance to ``t1`` first (see :func:`linfa.testing.conjecture.evaluate`).
    n_save : int
        Saved times in ``[0, t1]`` besides 0.
    id : str, optional
        Name in the results store; ``module:qualname`` of the predicate by default.

    Both functions must be importable (module level) to run in worker processes.
    """

    def __init__(self, predicate: Callable[..., Any], draw: Callable[[np.random.Generator], Any], *,
                 t1: float | None = None, n_save: int = 8, id: str | None = None) -> None:
        if not callable(predicate):
            raise TypeError(f"predicate: expected a callable, got {type(predicate).__name__}")
        if not callable(draw):
            raise TypeError(
                f"draw: expected a function draw(rng) -> Instance, got {type(draw).__name__} "
                "(a hypothesis strategy cannot be drawn from a seed)"
            )
        if t1 is not None and (not np.isfinite(t1) or t1 <= 0):
            raise ValueError(f"t1: expected a finite positive time, got {t1!r}")
        if not is_count(n_save, 1):
            raise ValueError(f"n_save: expected a positive integer, got {n_save!r}")
        self.predicate, self.draw, self.t1, self.n_save = predicate, draw, t1, n_save
        module, qual = _fn_name(predicate)
        self.id = id if id is not None else f"{module}:{qual}"

    def config(self) -> dict[str, Any]:
        return {"kind": "conjecture", "draw": ":".join(_fn_name(self.draw)), "t1": self.t1, "n_save": self.n_save}

    def reference(self) -> tuple[str, str]:
        pm, pq = _fn_name(self.predicate)
        dm, dq = _fn_name(self.draw)
        mods = pm if pm == dm else f"{pm}, {dm}"
        # the replay command imports linfa.sweep.conjecture explicitly, before the functions' modules
        return f"linfa.sweep.conjecture, {mods}", (
            f"s.conjecture.Conjecture({pm}.{pq}, {dm}.{dq}, t1={self.t1!r}, n_save={self.n_save!r}, id={self.id!r})")

    def run(self, seed: int, indices: Sequence[int]) -> list[Any]:
        from linfa.testing.conjecture import evaluate

        out = []
        for ss in instance_seeds(seed, indices):
            inst = self.draw(np.random.default_rng(ss))
            outcome = evaluate(self.predicate, inst, t1=self.t1, n_save=self.n_save)
            result: dict[str, Any] = {
                "holds": outcome.holds,
                "margin": outcome.margin,
                "size": sum(int(np.size(a)) for a in inst.arrays.values()),
                "params": dict(inst.params),
            }
            if not outcome.holds:
                result["instance"] = _npz_bytes(inst)
            out.append(result)
        return out
