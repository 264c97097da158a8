"""Catalogue entries (:mod:`linfa.theorems`) as sweep targets.

A catalogue entry draws its instances in groups: ``draw(rng, group_size)``
draws ``group_size`` instances sharing their dimensions from one generator,
and ``check`` decides a whole group as one batch. A sweep keeps that unit:
instance ``i`` is instance ``i % group_size`` of group ``g = i // group_size``,
drawn from ``theorems.group_seed(id, seed, g)`` (a
``SeedSequence(seed, spawn_key=(crc32(id), g))``), exactly as ``linfa check
--seed S`` numbers them, and chunks hold whole groups. So instance ``i`` of a
sweep is instance ``i`` of ``linfa check`` with the same seed, whatever the
chunking, order or executor.

Importing this module does not import the catalogue; :class:`Catalogue` does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa.sweep.targets import AbstractTarget

__all__ = ["Catalogue"]


class Catalogue(AbstractTarget):
    """A catalogue entry (a :class:`linfa.theorems.Theorem`) as a sweep target.

    Parameters
    ----------
    theorem : str or Theorem
        A catalogue id such as ``"lillicrap2016.zero_init_alignment"``, or the entry.

    Each instance's record has the verdict's ``holds`` and ``margin`` (status
    ``"inconclusive"`` for an instance the check could not decide, with the
    verdict's reason in ``params["inconclusive_reason"]``), the
    verdict's per-instance ``details`` as metrics, the instance's parameters,
    its size (number of array entries: the smallest failure is the reported
    counterexample) and, for a failure, the instance as an ``.npz`` readable by
    :meth:`linfa.Instance.load`.
    """

    def __init__(self, theorem: Any) -> None:
        from linfa import theorems

        self.theorem = theorems.get(theorem) if isinstance(theorem, str) else theorem
        if not isinstance(self.theorem, theorems.Theorem):
            raise TypeError(
                f"theorem: expected a catalogue id or a linfa.theorems.Theorem, got {type(theorem).__name__}"
            )
        self.id = self.theorem.id
        self.group_size = int(self.theorem.group_size)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle by id: draw/check may be lambdas; workers import the catalogue and this process's plug-ins.
        from linfa import plugins

        return (_from_id, (self.id, plugins.loaded()))

    def __repr__(self) -> str:
        return f"Catalogue({self.id!r})"

    def config(self) -> dict[str, Any]:
        return {"kind": "catalogue", "group_size": self.group_size, "theorem_kind": self.theorem.kind,
                "fraction": float(self.theorem.fraction)}

    def reference(self) -> tuple[str, str]:
        return "linfa.sweep", f"s.catalogue.Catalogue({self.id!r})"

    def replay_command(self, seed: int, index: int) -> str:
        from linfa import plugins

        return f"linfa{plugins.cli_options()} sweep {self.id} --seed {seed} --replay {index}"

    def run(self, seed: int, indices: Sequence[int]) -> list[Any]:
        from linfa.theorems import draw_group

        gs = self.group_size
        out: dict[int, Any] = {}
        groups: dict[int, list[int]] = {}
        for i in indices:
            groups.setdefault(int(i) // gs, []).append(int(i) % gs)
        for g, positions in groups.items():
            inst = draw_group(self.theorem, seed, g, positions)
            verdict = self.theorem.check(inst)
            k = len(positions)
            per_metrics: dict[str, np.ndarray] = {}
            for name, value in verdict.details.items():
                arr = np.asarray(value)
                if arr.shape == (k,) and arr.dtype.kind in "fiub":
                    per_metrics[str(name)] = arr.astype(float)
            size = sum(int(np.prod(a.shape[1:])) for a in inst.arrays.values())
            undecided = (np.zeros(k, dtype=bool) if verdict.inconclusive is None
                         else np.asarray(verdict.inconclusive, dtype=bool))
            for j, p in enumerate(positions):
                holds = bool(verdict.holds[j])
                result: dict[str, Any] = {
                    "holds": holds,
                    "inconclusive": bool(undecided[j]),
                    "inconclusive_reason": verdict.reason if undecided[j] else None,
                    "margin": float(verdict.margin[j]),
                    "size": size,
                    "params": {**inst.params, "group": g, "position": p},
                    **{name: float(v[j]) for name, v in per_metrics.items()},
                }
                if not holds:
                    result["instance"] = _npz_bytes(inst.take(j))
                out[g * gs + p] = result
        return [out[int(i)] for i in indices]


def _from_id(theorem_id: str, plugin_specs: Sequence[str] = ()) -> Catalogue:
    from linfa import plugins

    plugins.load_all(plugin_specs)
    return Catalogue(theorem_id)


def _npz_bytes(instance: Any) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = instance.save(os.path.join(d, "instance.npz"))
        with open(path, "rb") as fh:
            return fh.read()
