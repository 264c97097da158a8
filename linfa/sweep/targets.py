"""What a sweep runs: targets, their per-instance records, and the chunk runner.

A *target* turns a chunk of per-instance seed sequences (:mod:`linfa.sweep.seeds`)
into one result per instance. Three kinds:

:class:`PerInstance`
    a user function ``f(rng, **params)`` called once per instance with
    ``numpy.random.default_rng(seed_i)`` (or ``f(seed_i, **params)`` with
    ``arg="seed"``);
:class:`Batched`
    a user function ``f(seeds, **params)`` called once per chunk with the list of
    ``K`` seed sequences, which draws the ``K`` instances and solves them as one
    batch (leading axis ``K``), so scaling out keeps the batching speed-up;
:class:`Catalogue`
    a theorem of :mod:`linfa.theorems` by id (or a conjecture), run through its
    own batched check.

A result (per instance, or per chunk with a leading axis ``K`` on every entry) is

* a mapping with the reserved keys ``"holds"`` (bool), ``"margin"`` (float,
  negative when the claim fails), ``"size"`` (int, how big the instance is: the
  smallest failing one is reported as *the* counterexample), ``"instance"`` (a
  mapping of arrays that is the instance itself, saved as ``.npz`` for failures),
  ``"params"`` (a mapping of JSON values describing the instance), ``"error"``
  (a message, or ``None``) and ``"inconclusive"`` (a bool: the check could not
  decide this instance, which is then neither a confirmation nor a
  counterexample; ``"inconclusive_reason"``, a string, may say why), all
  optional; every other key is a numeric metric;
* a ``bool`` (``holds``), a number (metric ``"value"``), or a verdict-like object
  with ``holds``, ``margin`` and ``details`` attributes.

An exception raised by a target does not stop a sweep: the chunk is re-run one
instance at a time, and each instance that raises is recorded with status
``"error"``, its traceback and the command that replays it.
"""

from __future__ import annotations

import io
import json
import numbers
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from linfa import plugins
from linfa.sweep.seeds import instance_seeds

__all__ = [
    "RESERVED",
    "STATUSES",
    "AbstractTarget",
    "Batched",
    "PerInstance",
    "Record",
    "run_chunk",
]

#: Status of a recorded instance: the claim held (or no claim), failed, could not be decided, or the target raised.
STATUSES = ("ok", "fail", "inconclusive", "error")
#: Result keys that are not metrics.
RESERVED = ("holds", "margin", "size", "instance", "params", "error", "inconclusive", "inconclusive_reason")


@dataclass(frozen=True)
class Record:
    """The result of one instance, as stored (one row of the results store).

    Attributes
    ----------
    index : int
        Instance index ``i``; its seed is ``SeedSequence(seed, spawn_key=(i,))``.
    status : {"ok", "fail", "inconclusive", "error"}
        ``"inconclusive"``: the check could not decide the instance (never a
        counterexample; its reason, if given, is ``params["inconclusive_reason"]``).
    holds : bool or None
        Whether the checked claim held (``None`` for plain metrics).
    margin : float or None
        Signed margin of the claim (negative when it fails).
    metrics : dict of str to float
    params : dict of str to JSON values
        Parameters describing the instance (drawn sizes, kinds, ...).
    size : int or None
        Size of the instance; the smallest failure is the reported counterexample.
    instance : bytes or None
        The instance as ``.npz`` bytes (kept for failures and errors only).
    error : str or None
        Traceback or message of an error.
    replay : str or None
        Shell command that re-runs this instance alone (failures and errors).
    """

    index: int
    status: str
    holds: bool | None = None
    margin: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    size: int | None = None
    instance: bytes | None = None
    error: str | None = None
    replay: str | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The saved instance as arrays (empty if none was saved)."""
        if self.instance is None:
            return {}
        with np.load(io.BytesIO(self.instance), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


# ------------------------------------------------------------------ targets
class AbstractTarget:
    """Something a sweep can run on chunks of seeded instances.

    Subclasses set :attr:`id`, and implement :meth:`run`,
    :meth:`config` and :meth:`reference`. Targets are pickled to worker
    processes, so the functions they hold must be importable (module level).
    """

    #: Stable name of the target (catalogue id, or ``module:function``).
    id: str = "target"
    #: Instances drawn together from one seed; chunks hold whole groups (see :class:`Catalogue`).
    group_size: int = 1

    def run(self, seed: int, indices: Sequence[int]) -> list[Any]:
        """Run instances ``indices`` of a sweep seeded with ``seed``; one result per index."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description; with the seed it identifies a sweep in a results store."""
        raise NotImplementedError

    def reference(self) -> tuple[str, str]:
        """``(module, expression)``: importing ``module`` and ``linfa.sweep as s``, the expression rebuilds
        this target (used in replay commands)."""
        raise NotImplementedError

    def replay_command(self, seed: int, index: int) -> str:
        """A shell command that re-runs instance ``index`` alone and prints its record."""
        module, expr = self.reference()
        code = f"import linfa.sweep as s, {module}; print(s.replay({expr}, seed={seed}, index={index}))"
        if plugins.loaded():  # the plug-ins first, as `linfa --plugin` loads them before the command
            code = f"import linfa.plugins; linfa.plugins.load_all({list(plugins.loaded())!r}); {code}"
        return f"python -c {json.dumps(code)}"


def _fn_name(fn: Callable[..., Any]) -> tuple[str, str]:
    module = getattr(fn, "__module__", None) or "__main__"
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return module, qual


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(dict(params), sort_keys=True, default=repr))
    return out


class _FunctionTarget(AbstractTarget):
    kind = "function"

    def __init__(self, fn: Callable[..., Any], *, id: str | None = None, **params: Any) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.params = dict(params)
        module, qual = _fn_name(fn)
        self._custom_id = id
        self.id = id if id is not None else f"{module}:{qual}"

    def _extra_args(self) -> dict[str, Any]:
        return {} if self._custom_id is None else {"id": self._custom_id}

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": _jsonable(self.params)}

    def reference(self) -> tuple[str, str]:
        module, qual = _fn_name(self.fn)
        args = "".join(f", {k}={v!r}" for k, v in sorted({**self._extra_args(), **self.params}.items()))
        return module, f"s.{type(self).__name__}({module}.{qual}{args})"

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{type(self).__name__}({self.id}{args})"


class PerInstance(_FunctionTarget):
    """A user function run once per instance.

    Parameters
    ----------
    fn : callable
        ``fn(rng, **params)`` with ``rng = numpy.random.default_rng(seed_i)``, or
        ``fn(seed_i, **params)`` with the :class:`numpy.random.SeedSequence` when
        ``arg="seed"``. Returns a result (see the module docstring).
    id : str, optional
        Name in the results store; ``module:qualname`` of ``fn`` by default.
    arg : {"rng", "seed"}
    **params
        Keyword arguments passed to every call (part of the sweep's identity).

    Examples
    --------
    >>> import numpy as np
    >>> def f(rng):
    ...     x = rng.standard_normal()
    ...     return {"holds": x * x >= 0, "margin": x * x}
    >>> replay(PerInstance(f), seed=0, index=3).status
    'ok'
    """

    kind = "per_instance"

    def __init__(self, fn: Callable[..., Any], *, id: str | None = None, arg: str = "rng", **params: Any) -> None:
        if arg not in ("rng", "seed"):
            raise ValueError(f"arg: expected 'rng' or 'seed', got {arg!r}")
        super().__init__(fn, id=id, **params)
        self.arg = arg

    def config(self) -> dict[str, Any]:
        return {**super().config(), "arg": self.arg}

    def _extra_args(self) -> dict[str, Any]:
        return {**super()._extra_args(), **({} if self.arg == "rng" else {"arg": self.arg})}

    def run(self, seed: int, indices: Sequence[int]) -> list[Any]:
        seeds = instance_seeds(seed, indices)
        if self.arg == "rng":
            return [self.fn(np.random.default_rng(s), **self.params) for s in seeds]
        return [self.fn(s, **self.params) for s in seeds]


class Batched(_FunctionTarget):
    """A user function run once per chunk, on all its instances as one batch.

    Parameters
    ----------
    fn : callable
        ``fn(seeds, **params)`` with ``seeds`` a list of ``K``
        :class:`numpy.random.SeedSequence`. It should draw instance ``k`` from
        ``numpy.random.default_rng(seeds[k])`` alone and return a mapping whose
        entries have leading axis ``K`` (or a list of ``K`` results), so every
        instance's result is the same whatever chunk it is in.
    id : str, optional
        Name in the results store; ``module:qualname`` of ``fn`` by default.
    **params
        Keyword arguments passed to every call (part of the sweep's identity).
    """

    kind = "batched"

    def run(self, seed: int, indices: Sequence[int]) -> list[Any]:
        return split_batched(self.fn(instance_seeds(seed, indices), **self.params), len(indices))


# ----------------------------------------------------------- normalisation
def _npz(arrays: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    named: dict[str, Any] = {str(k): np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(buf, **named)
    return buf.getvalue()


def split_batched(out: Any, k: int) -> list[Any]:
    """Turn one batched result (leading axis ``k``) into ``k`` per-instance results."""
    if isinstance(out, Mapping):
        per: list[dict[str, Any]] = [{} for _ in range(k)]
        for key, value in out.items():
            if key in ("instance", "params"):
                if not isinstance(value, Mapping):
                    raise TypeError(f"result[{key!r}]: expected a mapping of arrays, got {type(value).__name__}")
                for name, arr in value.items():
                    col = _column(f"result[{key!r}][{name!r}]", arr, k, numeric=key == "instance")
                    for j in range(k):
                        per[j].setdefault(key, {})[name] = col[j]
                continue
            col = _column(f"result[{key!r}]", value, k, numeric=key not in ("error", "inconclusive_reason"))
            for j in range(k):
                per[j][key] = col[j]
        return per
    if isinstance(out, Sequence) and not isinstance(out, str | bytes):
        if len(out) != k:
            raise ValueError(f"result: expected one result per instance, {k}, got {len(out)}")
        return list(out)
    raise TypeError(
        f"result: a batched target must return a mapping of arrays with leading axis K = {k} "
        f"or a list of {k} results, got {type(out).__name__}"
    )


def _column(name: str, value: Any, k: int, *, numeric: bool) -> Sequence[Any]:
    col: Any = value
    if numeric or not isinstance(value, list | tuple):
        col = np.asarray(value)
        if col.ndim == 0:
            raise ValueError(f"{name}: expected leading axis K = {k}, got a scalar")
    if len(col) != k:
        shape = getattr(col, "shape", (len(col),))
        raise ValueError(f"{name}: expected leading axis K = {k}, got shape {tuple(shape)}")
    return col


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    return float(value)


def to_record(index: int, result: Any, *, keep_instance: bool = False) -> Record:
    """Normalise one per-instance result (see the module docstring) to a :class:`Record`."""
    holds: bool | None = None
    margin: float | None = None
    size: int | None = None
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}
    instance: Mapping[str, Any] | None = None
    error: str | None = None
    undecided = False
    if isinstance(result, bool | np.bool_):
        holds = bool(result)
    elif isinstance(result, numbers.Real) or (isinstance(result, np.ndarray) and result.ndim == 0):
        metrics["value"] = _scalar("result", result)
    elif isinstance(result, Mapping):
        for key, value in result.items():
            if key == "holds":
                holds = None if value is None else bool(value)
            elif key == "margin":
                margin = None if value is None else _scalar("result['margin']", value)
            elif key == "size":
                size = None if value is None else int(value)
            elif key == "instance":
                instance = value
            elif key == "params":
                params = _jsonable(value)
            elif key == "error":
                error = None if value is None or value == "" else str(value)
            elif key == "inconclusive":
                if not isinstance(value, bool | np.bool_):
                    raise TypeError(f"result['inconclusive']: expected a bool, got {type(value).__name__}")
                undecided = bool(value)
            elif key == "inconclusive_reason":
                if value is not None:
                    params["inconclusive_reason"] = str(value)
            else:
                metrics[str(key)] = _scalar(f"result[{key!r}]", value)
    elif hasattr(result, "holds"):
        holds = bool(result.holds)
        m = getattr(result, "margin", None)
        margin = None if m is None else _scalar("verdict.margin", m)
        details = getattr(result, "details", None) or {}
        for key, value in dict(details).items():
            try:
                metrics[str(key)] = _scalar(key, value)
            except TypeError:
                if isinstance(value, str | int | bool | type(None)):
                    params[str(key)] = value
        inst = getattr(result, "instance", None)
        if isinstance(inst, Mapping):
            instance = inst
        elif inst is not None and hasattr(inst, "to_arrays"):
            instance = inst.to_arrays()
    else:
        raise TypeError(
            "result: expected a mapping, a bool, a number or a verdict (holds, margin, details), "
            f"got {type(result).__name__}"
        )
    if undecided and holds:
        raise ValueError("result: an instance cannot both hold and be inconclusive")
    status = ("error" if error is not None else "inconclusive" if undecided
              else "fail" if holds is False else "ok")
    blob = None
    if instance is not None and (keep_instance or status != "ok"):
        blob = instance if isinstance(instance, bytes) else _npz(instance)
    return Record(index=int(index), status=status, holds=holds, margin=margin, metrics=metrics,
                  params=params, size=size, instance=blob, error=error)


def _error_record(index: int, exc: BaseException) -> Record:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8))
    return Record(index=int(index), status="error", error=tb.strip())


def _run(target: AbstractTarget, seed: int, indices: Sequence[int], keep_instance: bool) -> list[Record]:
    per = list(target.run(seed, indices))
    if len(per) != len(indices):
        raise ValueError(f"result: expected {len(indices)} results, got {len(per)}")
    return [to_record(i, r, keep_instance=keep_instance) for i, r in zip(indices, per, strict=True)]


def run_chunk(target: AbstractTarget, seed: int, indices: Sequence[int], *,
              keep_instance: bool = False) -> list[Record]:
    """Run one chunk of instances; what a worker executes.

    The whole chunk runs as one call of the target. If that raises, each
    instance runs alone and each one that raises becomes an ``"error"`` record,
    so one bad instance never loses the others. Failures and errors get their
    replay command.

    Parameters
    ----------
    target : AbstractTarget
    seed : int
        The sweep's seed.
    indices : sequence of int
        Instance indices of this chunk.
    keep_instance : bool
        Keep the instance arrays of passing instances too (failures always keep them).

    Returns
    -------
    list of Record
        One per index, in the order of ``indices``.
    """
    try:
        records = _run(target, seed, indices, keep_instance)
    except Exception as exc:
        if len(indices) == 1:
            records = [_error_record(indices[0], exc)]
        else:
            records = []
            for i in indices:
                try:
                    records.extend(_run(target, seed, [i], keep_instance))
                except Exception as exc_i:
                    records.append(_error_record(i, exc_i))
    return [r if r.status == "ok" else replace(r, replay=target.replay_command(seed, r.index)) for r in records]
