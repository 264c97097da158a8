"""Validation and flattening shared by the integration routes.

:class:`Problem` holds a problem in the form every route works on: the batch
flattened to ``K`` instances, the state as one ``(K, D)`` array (instance
major: leaf after leaf within a row), the arguments either per instance
``(K, ...)`` or shared by all (stored once, broadcast on use), and the save
times. :class:`Raw` is what a route fills in (per-instance saved states,
endings and counters) and turns into a :class:`~linfa.integrate.Solution`,
evaluating the observables at the save points; a route of your own (a
discrete-time map such as :func:`linfa.sgd`) builds its result the same way.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import count, observables, real
from linfa.integrate.controller import StepSizeController
from linfa.integrate.events import Event
from linfa.integrate.solution import IntegrationError, Solution, Status

__all__ = ["Args", "Layout", "Problem", "Raw", "VectorField"]

VectorField = Callable[[np.ndarray, tuple[np.ndarray, ...], tuple[Any, ...]], Sequence[Any]]


@dataclass(frozen=True)
class Layout:
    """Where each state leaf lives in a row of the ``(K, D)`` state array."""

    cores: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]

    @classmethod
    def of(cls, cores: Sequence[tuple[int, ...]]) -> Layout:
        sizes = tuple(math.prod(c) for c in cores)
        offsets = tuple(int(o) for o in np.cumsum((0, *sizes))[:-1])
        return cls(tuple(tuple(c) for c in cores), offsets, sizes)

    @property
    def D(self) -> int:
        return sum(self.sizes)

    def views(self, flat: np.ndarray) -> tuple[np.ndarray, ...]:
        """Leaf views ``(m, *core)`` of an ``(m, D)`` array (no copies)."""
        m = flat.shape[0]
        return tuple(
            flat[:, o : o + s].reshape(m, *c)
            for o, s, c in zip(self.offsets, self.sizes, self.cores, strict=True)
        )

    def columns(self, flat: np.ndarray) -> tuple[np.ndarray, ...]:
        """Leaf column blocks ``(m, size_i)`` of an ``(m, D)`` array (no copies)."""
        return tuple(flat[:, o : o + s] for o, s in zip(self.offsets, self.sizes, strict=True))

    def flatten(self, leaves: Sequence[Any], m: int, *, name: str = "vf") -> np.ndarray:
        """Stack leaves ``(m, *core)`` (or broadcastable to it) into an ``(m, D)`` array."""
        if len(leaves) != len(self.cores):
            raise ValueError(
                f"{name}: expected {len(self.cores)} leaves like the state, got {len(leaves)}"
            )
        out = np.empty((m, self.D))
        for leaf, v in zip(leaves, self.views(out), strict=True):
            v[...] = leaf
        return out

    def unflatten(self, flat: np.ndarray, batch: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """Leaves ``(*batch, ..., *core)`` from an array ``(K, ..., D)`` (copies)."""
        mid = flat.shape[1:-1]
        return tuple(
            np.ascontiguousarray(flat[..., o : o + s]).reshape(*batch, *mid, *c)
            for o, s, c in zip(self.offsets, self.sizes, self.cores, strict=True)
        )


class Args:
    """The vector field's extra arguments, per instance or shared.

    An argument whose batch axes all have size 1 is stored once and
    broadcast (a view with stride 0) to however many instances are active;
    the others are stored as ``(K, ...)`` and sliced when the active set
    shrinks.
    """

    def __init__(self, values: Sequence[np.ndarray], shared: Sequence[bool], K: int) -> None:
        self.values = list(values)
        self.shared = list(shared)
        self.K = K
        self._cache: tuple[Any, ...] | None = None

    def current(self) -> tuple[Any, ...]:
        """The arguments for the active instances, each ``(K_active, ...)``."""
        if self._cache is None:
            self._cache = tuple(
                np.broadcast_to(v, (self.K, *v.shape)) if s else v
                for v, s in zip(self.values, self.shared, strict=True)
            )
        return self._cache

    def take(self, rows: np.ndarray) -> tuple[Any, ...]:
        """The arguments of some active rows, each ``(len(rows), ...)``."""
        m = len(rows)
        return tuple(
            np.broadcast_to(v, (m, *v.shape)) if s else v[rows]
            for v, s in zip(self.values, self.shared, strict=True)
        )

    def over(self, k_rows: np.ndarray, extra: tuple[int, ...]) -> tuple[Any, ...]:
        """Arguments for a batch ``(len(k_rows), *extra)``, broadcasting over ``extra``."""
        n = len(k_rows)
        out = []
        for v, s in zip(self.values, self.shared, strict=True):
            if s:
                out.append(np.broadcast_to(v, (n, *extra, *v.shape)))
            else:
                a = v[k_rows]
                a = a.reshape(n, *(1,) * len(extra), *a.shape[1:])
                out.append(np.broadcast_to(a, (n, *extra, *a.shape[1 + len(extra) :])))
        return tuple(out)

    def compact(self, keep: np.ndarray) -> None:
        """Keep only the rows ``keep`` of the per-instance arguments."""
        self.values = [v if s else v[keep] for v, s in zip(self.values, self.shared, strict=True)]
        self.K = len(keep)
        self._cache = None


@dataclass
class Problem:
    """A validated, flattened integration problem (see the module docstring)."""

    vf: VectorField
    layout: Layout
    y0: np.ndarray
    args: tuple[np.ndarray, ...]
    args_shared: tuple[bool, ...]
    batch_shape: tuple[int, ...]
    t0: float
    t1: float
    ts: np.ndarray
    controller: StepSizeController
    max_steps: int
    events: tuple[Event, ...]
    observe: dict[str, Callable[..., Any]]
    throw: bool

    @property
    def K(self) -> int:
        return int(self.y0.shape[0])

    def make_args(self, rows: np.ndarray | None = None) -> Args:
        """The arguments of all instances, or of the flat instances ``rows``."""
        if rows is None or rows.size == self.K:
            return Args(self.args, self.args_shared, self.K)
        values = [v if s else v[rows] for v, s in zip(self.args, self.args_shared, strict=True)]
        return Args(values, self.args_shared, rows.size)

    @classmethod
    def build(
        cls,
        vf: VectorField,
        y0: Any,
        t1: float,
        *,
        t0: float,
        args: Sequence[Any],
        batch_shape: Sequence[int],
        saveat: Any,
        observe: Mapping[str, Callable[..., Any]] | None,
        controller: StepSizeController,
        max_steps: int,
        until: Any,
        throw: bool,
    ) -> Problem:
        if not callable(vf):
            raise TypeError(f"vf: expected a callable vf(t, y, args), got {type(vf).__name__}")
        try:
            batch = tuple(operator.index(b) for b in batch_shape)
        except TypeError:
            raise TypeError(f"batch_shape: expected a tuple of ints, got {batch_shape!r}") from None
        if any(b < 0 for b in batch):
            raise ValueError(f"batch_shape: expected non-negative sizes, got {batch}")
        nb = len(batch)
        K = math.prod(batch)
        if not isinstance(y0, tuple | list):
            raise TypeError(f"y0: expected a tuple of arrays, got {type(y0).__name__}")
        if len(y0) == 0:
            raise ValueError("y0: expected at least one array, got an empty tuple")
        leaves = []
        for i, leaf in enumerate(y0):
            _real_array(f"y0[{i}]", leaf)
            a = np.asarray(leaf, dtype=np.float64)
            if a.shape[:nb] != batch:
                raise ValueError(
                    f"y0[{i}]: expected leading batch axes {batch}, got shape {a.shape}"
                )
            if 0 in a.shape[nb:]:
                raise ValueError(
                    f"y0[{i}]: expected a leaf with at least one entry per instance, got core shape "
                    f"{a.shape[nb:]} (a zero-size leaf has nothing to integrate)"
                )
            if not np.all(np.isfinite(a)):
                raise ValueError(f"y0[{i}]: expected finite entries, got NaN or inf")
            leaves.append(a)
        layout = Layout.of([a.shape[nb:] for a in leaves])
        flat = np.empty((K, layout.D))
        for a, v in zip(leaves, layout.views(flat), strict=True):
            v[...] = a.reshape(K, *a.shape[nb:])

        if not isinstance(args, tuple | list):
            raise TypeError(f"args: expected a tuple of arrays, got {type(args).__name__}")
        values, shared = [], []
        for i, arg in enumerate(args):
            a = _real_array(f"args[{i}]", arg)
            lead = a.shape[:nb]
            if a.ndim < nb or any(s not in (1, b) for s, b in zip(lead, batch, strict=True)):
                raise ValueError(
                    f"args[{i}]: expected leading axes broadcastable to the batch shape {batch}, "
                    f"got shape {a.shape}"
                )
            core = a.shape[nb:]
            if all(s == 1 for s in lead):
                values.append(a.reshape(core))
                shared.append(True)
            else:
                values.append(np.ascontiguousarray(np.broadcast_to(a, (*batch, *core))).reshape(K, *core))
                shared.append(False)

        t0f, t1f = _time("t0", t0), _time("t1", t1)
        if t1f < t0f:
            raise ValueError(f"t1: expected t1 >= t0 = {t0f}, got {t1f}")
        if saveat is None:
            ts = np.array([t1f])
        else:
            try:
                ts = np.atleast_1d(np.asarray(saveat, dtype=np.float64))
            except (TypeError, ValueError):
                raise TypeError(f"saveat: expected a 1-D array of times, got {saveat!r}") from None
            if ts.ndim != 1 or ts.size == 0:
                raise ValueError(f"saveat: expected a non-empty 1-D array of times, got shape {ts.shape}")
            if not np.all(np.isfinite(ts)):
                raise ValueError("saveat: expected finite times, got NaN or inf")
            if np.any(np.diff(ts) < 0):
                raise ValueError("saveat: expected times sorted in increasing order")
            if ts[0] < t0f or ts[-1] > t1f:
                raise ValueError(
                    f"saveat: expected times within [t0, t1] = [{t0f}, {t1f}], "
                    f"got [{ts[0]}, {ts[-1]}]"
                )
        if not isinstance(controller, StepSizeController):
            raise TypeError(
                f"stepsize: expected a linfa.integrate.StepSizeController, got {type(controller).__name__}"
            )
        max_steps = count("max_steps", max_steps, minimum=1)
        if until is None:
            events: tuple[Event, ...] = ()
        elif isinstance(until, Event):
            events = (until,)
        else:
            events = tuple(until)
        for i, ev in enumerate(events):
            if not isinstance(ev, Event):
                raise TypeError(f"until[{i}]: expected a linfa.integrate.Event, got {type(ev).__name__}")
        obs = observables(observe, what="a callable")
        return cls(
            vf=vf, layout=layout, y0=flat, args=tuple(values), args_shared=tuple(shared),
            batch_shape=batch, t0=t0f, t1=t1f, ts=ts, controller=controller,
            max_steps=max_steps, events=events,
            observe=obs, throw=bool(throw),
        )


def _real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as an array, refusing complex numbers (numpy would drop the imaginary part)."""
    a = np.asarray(x)
    if np.iscomplexobj(a):
        raise TypeError(f"{name}: expected real numbers, got complex dtype {a.dtype}")
    return a


def _time(name: str, t: Any) -> float:
    return real(name, t)  # a finite real number; strings, complex and None are refused


class Raw:
    """Per-instance results a route fills in, indexed by the flat instance number."""

    def __init__(self, problem: Problem) -> None:
        K, D, S = problem.K, problem.layout.D, len(problem.ts)
        self.problem = problem
        self.save = np.full((K, S, D), np.nan)
        self.t_final = np.full(K, np.nan)
        self.y_final = np.full((K, D), np.nan)
        self.status = np.full(K, -1, dtype=np.int64)
        self.event = np.full(K, -1, dtype=np.int64)
        self.n_accepted = np.zeros(K, dtype=np.int64)
        self.n_rejected = np.zeros(K, dtype=np.int64)
        self.n_fev = np.zeros(K, dtype=np.int64)
        self.n_calls = 0
        self.stiff = np.zeros(K, dtype=bool)  # ended at max_steps with steps at the stability limit
        self.max_norm: float | None = None  # set by a run that stops diverging states itself (sgd)

    def finish(self, k: np.ndarray, status: Any, t: Any, y: np.ndarray, event: Any = -1) -> None:
        """Record the end of instances ``k`` (flat indices); raise if asked to."""
        self.status[k] = status
        self.t_final[k] = t
        self.y_final[k] = y
        self.event[k] = event
        if self.problem.throw:
            codes = np.broadcast_to(np.asarray(status), np.shape(k))
            for kk, code in zip(np.atleast_1d(k), np.atleast_1d(codes), strict=True):
                st = Status(int(code))
                if st.failed:
                    index = np.unravel_index(int(kk), self.problem.batch_shape) if self.problem.batch_shape else ()
                    raise IntegrationError(st, tuple(int(i) for i in index), float(self.t_final[kk]),
                                           stiff=bool(self.stiff[kk]), max_norm=self.max_norm)

    def solution(self, method: str) -> Solution:
        """Evaluate the observables at the save points and shape everything by the batch."""
        p = self.problem
        batch = p.batch_shape
        observed = {name: _observe(name, fn, p, self.save) for name, fn in p.observe.items()}
        stats = {
            "num_steps": np.where(self.n_rejected >= 0, self.n_accepted + self.n_rejected, -1).reshape(batch),
            "num_accepted": self.n_accepted.reshape(batch),
            "num_rejected": self.n_rejected.reshape(batch),
            "num_flow_evals": self.n_fev.reshape(batch),
            "num_vf_calls": self.n_calls,
            "stiff": self.stiff.reshape(batch),
        }
        if self.max_norm is not None:
            stats["max_norm"] = self.max_norm
        return Solution(
            ts=p.ts.copy(),
            states=p.layout.unflatten(self.save, batch),
            observed={k: v.reshape(*batch, *v.shape[1:]) for k, v in observed.items()},
            status=self.status.reshape(batch),
            t_final=self.t_final.reshape(batch),
            state_final=p.layout.unflatten(self.y_final, batch),
            event=self.event.reshape(batch),
            stats=stats,
            method=method,
        )


def _observe(name: str, fn: Callable[..., Any], p: Problem, save: np.ndarray) -> np.ndarray:
    """Evaluate ``fn(t, y, args)`` at every finite saved state; NaN elsewhere."""
    K, S = save.shape[:2]
    args = Args(p.args, p.args_shared, K)
    valid = np.isfinite(save).all(axis=2)
    if valid.all():
        t = np.broadcast_to(p.ts, (K, S))
        y = tuple(v.reshape(K, S, *v.shape[1:]) for v in p.layout.views(save.reshape(K * S, p.layout.D)))
        return _values(name, fn(t, y, args.over(np.arange(K), (S,))), (K, S)).copy()
    kk, jj = np.nonzero(valid)
    full = None
    if kk.size:
        rows = save[kk, jj]
        vals = _values(name, fn(p.ts[jj], p.layout.views(rows), args.take(kk)), (kk.size,))
        full = np.full((K, S, *vals.shape[1:]), np.nan)
        full[kk, jj] = vals
    else:
        # Nothing finite to observe: call once on the initial state to learn the shape.
        probe = _values(name, fn(np.full(1, p.t0), p.layout.views(p.y0[:1]), args.take(np.arange(1))), (1,))
        full = np.full((K, S, *probe.shape[1:]), np.nan)
    return full


def _values(name: str, out: Any, lead: tuple[int, ...]) -> np.ndarray:
    """An observable's output as a float array with the leading axes ``lead``, or a clear error."""
    what = f"observe[{name!r}]"
    if out is None:
        raise TypeError(f"{what}: expected an array with leading axes {lead} (one value per instance "
                        "and save time), got None (does the function return its value?)")
    a = np.asarray(out)
    if np.iscomplexobj(a):
        raise TypeError(f"{what}: expected real values, got complex dtype {a.dtype}")
    if a.shape[: len(lead)] != lead:
        raise ValueError(
            f"{what}: expected an array with leading axes {lead} (one value per instance and save "
            f"time), got shape {a.shape}"
        )
    try:
        return a.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: expected real numbers, got dtype {a.dtype}") from None
