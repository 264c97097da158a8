"""Reproducible problem instances: named arrays, parameters and the seed that drew them.

An :class:`Instance` is what a catalogue check (:mod:`linfa.theorems`) or a
property test (:mod:`linfa.testing`) runs on. It is deliberately plain: a
mapping of named float arrays, a mapping of JSON-able parameters, and the seed
it was drawn from, so that it can be written to ``.npz`` and read back with
``allow_pickle=False``.

Learning-dynamics instances follow one naming convention, read by
:meth:`Instance.problem`:

=================  =============================================================
array              meaning
=================  =============================================================
``sxx, syx, syy``  the task's moments, shapes ``(*batch, n0, n0)``, ``(*batch, nL, n0)``, ``(*batch, nL, nL)``
``W1 .. WL``       initial weights, ``W_l`` of shape ``(*batch, n_l, n_{l-1})``
``B{first} ..``    the rule's feedback, named and shaped by its
                   :class:`~linfa.rules.FeedbackLayout` (DFA: ``B1 .. B{L-1}`` of shape
                   ``(*batch, n_l, n_L)``; FA, Kolen–Pollack: ``B2 .. BL`` of shape
                   ``(*batch, n_{l-1}, n_l)``)
=================  =============================================================

with ``params["rule"]`` the name of a registered rule (:func:`linfa.rules.get`)
and its declared parameters beside it (e.g. ``params["decay"]`` for
Kolen–Pollack). Encoding (:meth:`Instance.learning`,
:meth:`Instance.from_problem`) and decoding (:meth:`Instance.problem`) read
only the rule's declaration, so a user's registered rule round-trips like the
built-in ones. Other instances (e.g. quadratic energies) use their own names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linfa import rules
from linfa._validate import shape_str
from linfa.errors import UnknownNameError
from linfa.rules import AbstractRule
from linfa.tasks import Task

__all__ = ["Instance"]

_META_KEY = "__linfa_instance__"
_FORMAT = 1
Param = int | float | str | bool | None | list[Any]


def _json_safe(name: str, value: Any) -> Any:
    """Return ``value`` as plain JSON data, or raise naming the parameter."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        raise TypeError(
            f"params[{name!r}]: expected JSON data (numbers, strings, lists), got {type(value).__name__}"
        ) from None
    return value


@dataclass(frozen=True, eq=False)
class Instance:
    """A reproducible instance: named arrays, parameters and provenance.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        Finite float64 arrays. Batched instances share one leading axis of
        length ``size`` across all arrays.
    params : mapping of str to JSON data
        Dimensions, horizons, rule names and any other static settings.
    seed : dict, optional
        How the instance was drawn: ``{"entropy": int, "spawn_key": [int, ...]}``
        of a :class:`numpy.random.SeedSequence`, or ``{"hypothesis": ...}``.
    size : int or None
        Number of instances stacked along the leading axis; ``None`` for a
        single (unbatched) instance.
    name : str
        What drew it (a theorem id, a strategy name).

    Raises
    ------
    ValueError
        If an array has non-finite entries or lacks the leading batch axis.
    TypeError
        If an array is not numeric or a parameter is not JSON data.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> inst = Instance({"sxx": np.eye(2), "syx": np.ones((1, 2)), "syy": np.full((1, 1), 2.0),
    ...                  "W1": np.zeros((3, 2)), "W2": np.zeros((1, 3)), "B2": np.ones((3, 1))},
    ...                 {"rule": "FA"}, seed={"entropy": 0, "spawn_key": []})
    >>> rule, task, state = inst.problem()
    >>> path = os.path.join(tempfile.mkdtemp(), "inst.npz")
    >>> Instance.load(inst.save(path)).params["rule"]
    'FA'
    """

    arrays: Mapping[str, np.ndarray]
    params: Mapping[str, Param] = field(default_factory=dict)
    seed: Mapping[str, Any] | None = None
    size: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.arrays, Mapping):
            raise TypeError(f"arrays: expected a mapping of names to arrays, got {type(self.arrays).__name__}")
        if self.size is not None and (int(self.size) != self.size or self.size < 1):
            raise ValueError(f"size: expected a positive batch size or None, got {self.size!r}")
        arrays: dict[str, np.ndarray] = {}
        for key, a in self.arrays.items():
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("__"):
                raise ValueError(f"arrays: expected identifier names, got {key!r}")
            try:
                arr = np.array(a, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"arrays[{key!r}]: expected a real numeric array, got {type(a).__name__}") from exc
            if not np.all(np.isfinite(arr)):
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                raise ValueError(f"arrays[{key!r}]: expected finite entries, got {bad} NaN or infinite value(s)")
            if self.size is not None and (arr.ndim == 0 or arr.shape[0] != self.size):
                raise ValueError(
                    f"arrays[{key!r}]: expected a leading batch axis of length {self.size}, "
                    f"got shape {shape_str(arr.shape)}"
                )
            arr.setflags(write=False)
            arrays[key] = arr
        params = {str(k): _json_safe(str(k), v) for k, v in dict(self.params).items()}
        object.__setattr__(self, "arrays", arrays)
        object.__setattr__(self, "params", params)
        if self.seed is not None:
            object.__setattr__(self, "seed", _json_safe("seed", dict(self.seed)))

    # ----------------------------------------------------------- batching
    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("len() of an unbatched Instance (size is None)")
        return int(self.size)

    def take(self, index: int) -> Instance:
        """The ``index``-th instance of a batch, as an unbatched :class:`Instance`.

        Its seed records the index, so it can be replayed on its own.
        """
        if self.size is None:
            raise TypeError("take: this Instance is not batched (size is None)")
        if int(index) != index or not -self.size <= index < self.size:
            raise IndexError(f"index: expected an integer in [0, {self.size}), got {index!r}")
        i = int(index) % self.size
        seed = None if self.seed is None else {**self.seed, "index": i}
        return Instance({k: a[i] for k, a in self.arrays.items()}, self.params, seed, None, self.name)

    # ------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the instance to an uncompressed ``.npz`` file and return its path.

        The parameters, seed, size and name are stored as one JSON string so
        that :meth:`load` needs no pickling.
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        meta = {"format": _FORMAT, "params": self.params, "seed": self.seed, "size": self.size, "name": self.name}
        payload: dict[str, Any] = {_META_KEY: np.array(json.dumps(meta)), **self.arrays}
        np.savez(path, **payload)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Instance:
        """Read an instance written by :meth:`save` (with ``allow_pickle=False``).

        Raises
        ------
        ValueError
            If the file is not a linfa instance, or holds non-finite or
            misshapen arrays.
        """
        where = os.fspath(path)
        try:
            with np.load(where, allow_pickle=False) as data:
                if not hasattr(data, "files") or _META_KEY not in data.files:
                    raise ValueError(f"path: {where!r} is not a linfa instance file (no {_META_KEY} entry)")
                meta = json.loads(str(data[_META_KEY][()]))
                arrays = {k: data[k] for k in data.files if k != _META_KEY}
        except OSError as exc:
            raise ValueError(f"path: cannot read {where!r} ({exc.strerror or exc})") from None
        except Exception as exc:  # a truncated zip, a damaged member, bad JSON: all "not a readable instance"
            if isinstance(exc, ValueError) and str(exc).startswith("path:"):
                raise
            raise ValueError(f"path: {where!r} is not a readable linfa instance file "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            raise ValueError(f"path: unsupported instance format {fmt!r} in {where!r} (expected {_FORMAT})")
        params, name = meta.get("params", {}), meta.get("name", "")
        if not isinstance(params, dict) or not isinstance(name, str):
            raise ValueError(f"path: {where!r} holds malformed metadata (params {type(params).__name__}, "
                             f"name {type(name).__name__})")
        try:
            return cls(arrays, params, meta.get("seed"), meta.get("size"), name)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"path: {where!r} is not a valid linfa instance ({exc})") from None

    # ------------------------------------------------- learning dynamics
    @property
    def depth(self) -> int:
        """Number of weight layers ``L`` (from the arrays ``W1 .. WL``)."""
        depth = 0
        while f"W{depth + 1}" in self.arrays:
            depth += 1
        return depth

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n0, ..., nL)`` read from the weight arrays."""
        ws = self.weights()
        return (int(ws[0].shape[-1]), *(int(w.shape[-2]) for w in ws))

    def task(self) -> Task:
        """The :class:`~linfa.Task` of arrays ``sxx, syx, syy`` (validated)."""
        for key in ("sxx", "syx", "syy"):
            if key not in self.arrays:
                raise ValueError(
                    f"instance: expected an array {key!r} (task moments), got arrays {sorted(self.arrays)}"
                )
        return Task(self.arrays["sxx"], self.arrays["syx"], self.arrays["syy"])

    def weights(self) -> tuple[np.ndarray, ...]:
        """The weights ``(W_1, ..., W_L)``."""
        depth = self.depth
        if depth == 0:
            raise ValueError(
                f"instance: expected weight arrays 'W1', 'W2', ..., got arrays {sorted(self.arrays)}"
            )
        return tuple(self.arrays[f"W{l}"] for l in range(1, depth + 1))

    def rule_class(self) -> type[AbstractRule]:
        """The registered rule class named by ``params["rule"]``.

        Raises
        ------
        ValueError
            If no rule of that name is registered.
        """
        name = self.params.get("rule")
        if not isinstance(name, str):
            raise ValueError(f"params['rule']: expected the name of a registered rule, got {name!r}")
        try:
            return rules.get(name)
        except KeyError:
            raise ValueError(
                f"params['rule']: expected one of {rules.names()} (or a rule registered with "
                f"linfa.rules.register), got {name!r}"
            ) from None

    def feedback(self) -> tuple[np.ndarray, ...]:
        """The feedback arrays of ``params["rule"]``'s layout (empty for BP and sign symmetry)."""
        cls = self.rule_class()
        depth = self.depth
        keys = list(cls.feedback_names(depth))
        missing = [k for k in keys if k not in self.arrays]
        if missing:
            raise ValueError(
                f"instance: rule {cls.name!r} of depth {depth} needs feedback arrays {keys}, missing {missing}"
            )
        return tuple(self.arrays[k] for k in keys)

    def rule(self) -> AbstractRule:
        """The learning rule named by ``params["rule"]``, with this instance's feedback and parameters."""
        cls = self.rule_class()
        values = {}
        for p in cls.parameters:
            v = self.params.get(p)
            if isinstance(v, bool) or not isinstance(v, int | float | list):
                raise ValueError(f"params[{p!r}]: expected a number for {cls.name}, got {v!r}")
            values[p] = v
        return cls.build(self.feedback() if cls.holds_feedback() else (), **values)

    def problem(self) -> tuple[AbstractRule, Task, tuple[np.ndarray, ...]]:
        """``(rule, task, state0)`` of a learning-dynamics instance, validated.

        Raises
        ------
        ValueError
            If an array has the wrong shape for the widths, the rule or the task.
        """
        rule = self.rule()
        task = self.task()
        weights = self.weights()
        learned = self.feedback() if type(rule).learns_feedback else None
        state = rule.init_state(weights, learned)
        rule.validate(task, state, name="instance state")
        return rule, task, tuple(state)

    @classmethod
    def learning(
        cls,
        task: Task,
        weights: Sequence[np.ndarray],
        *,
        rule: str | type[AbstractRule],
        feedback: Sequence[np.ndarray] = (),
        size: int | None = None,
        seed: Mapping[str, Any] | None = None,
        name: str = "",
        **params: Any,
    ) -> Instance:
        """Encode a learning-dynamics instance (the inverse of :meth:`problem`).

        Parameters
        ----------
        task : Task
        weights : sequence of ndarray
            ``(W_1, ..., W_L)``, each ``(*batch, n_l, n_{l-1})``.
        rule : str or rule class
            A registered rule (its name is stored as ``params["rule"]``).
        feedback : sequence of ndarray
            The matrices of the rule's :class:`~linfa.rules.FeedbackLayout`, in
            its order (fixed or initial); stored as ``B{first}, ...``.
        size : int, optional
            Batch size: every array is broadcast to a leading axis ``size``.
        seed, name
            As for :class:`Instance`.
        **params
            JSON parameters: the rule's declared parameters (e.g. ``decay``)
            and anything else (e.g. ``t1``).

        Returns
        -------
        Instance
            With ``params = {"rule": name, "widths": [n0, ..., nL], **params}``.

        Raises
        ------
        ValueError
            If the number of feedback matrices does not match the layout.
        """
        try:
            rule_cls = rules.get(rule)
        except UnknownNameError:
            raise UnknownNameError("rule", rule, rules.names(), kind="rule") from None
        if rule_cls.name not in rules.names() or rules.get(rule_cls.name) is not rule_cls:
            raise ValueError(f"rule: {rule_cls.__qualname__} is not registered (use linfa.rules.register)")
        weights = tuple(np.asarray(w) for w in weights)
        if not weights:
            raise ValueError("weights: expected at least one weight matrix")
        keys = rule_cls.feedback_names(len(weights))
        if len(feedback) != len(keys):
            raise ValueError(
                f"feedback: rule {rule_cls.name!r} of depth {len(weights)} expects {len(keys)} matrices "
                f"{list(keys)}, got {len(feedback)}"
            )

        def put(a: Any) -> np.ndarray:
            a = np.asarray(a)
            return a if size is None else np.broadcast_to(a, (size, *a.shape[-2:]))

        arrays: dict[str, np.ndarray] = {"sxx": put(task.sxx), "syx": put(task.syx), "syy": put(task.syy)}
        for l, w in enumerate(weights, start=1):
            arrays[f"W{l}"] = put(w)
        for key, b in zip(keys, feedback, strict=True):
            arrays[key] = put(b)
        widths = [int(weights[0].shape[-1]), *(int(w.shape[-2]) for w in weights)]
        return cls(arrays, {"rule": rule_cls.name, "widths": widths, **params}, seed, size, name)

    @classmethod
    def from_problem(
        cls,
        rule: AbstractRule,
        task: Task,
        state: Sequence[np.ndarray],
        *,
        size: int | None = None,
        seed: Mapping[str, Any] | None = None,
        name: str = "",
        **params: Any,
    ) -> Instance:
        """Encode ``(rule, task, state)`` (its weights, feedback and parameters) as an instance.

        ``Instance.from_problem(rule, task, state).problem()`` gives back the same
        problem. See :meth:`learning` for the parameters.
        """
        if not isinstance(rule, AbstractRule):
            raise TypeError(f"rule: expected a linfa rule, got {type(rule).__name__}")
        state = tuple(state)
        return cls.learning(task, rule.weights(state), rule=type(rule), feedback=rule.feedback_of(state),
                            size=size, seed=seed, name=name, **rule.parameter_values(), **params)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{shape_str(a.shape)}" for k, a in self.arrays.items())
        return f"Instance(name={self.name!r}, size={self.size}, params={self.params}, arrays=[{shapes}])"
