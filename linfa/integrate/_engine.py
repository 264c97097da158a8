"""The one batched loop: explicit Runge–Kutta with per-instance step control.

Every instance has its own time, step size and accept/reject decision; they
only share the calls of the vector field, which are batched over the
*active* instances. When instances finish (they reach ``t1``, meet a
stopping condition or fail) the active set is compacted, so they stop
costing work.

The loop (:class:`_Loop`) is a sequence of named parts, each owning its state:

* :class:`_Instances` — the per-instance bookkeeping of the active set
  (flat index, time, step, counters, flags); compacted by taking rows;
* :class:`_StageBuffers` — the state and the scaled stages of the active
  instances, and the stage inputs built from them;
* :class:`~linfa.integrate.StepSizeController` — accept/reject and the next
  step (:mod:`linfa.integrate.controller`);
* :class:`_EventLocator` — the stopping conditions: their values, their
  orientation, and the root finder on the interpolant;
* :class:`_SavePoints` — which save time each instance waits for, and the
  recording of the state there.

Storage, for ``Ka`` active instances with ``D`` state components each: the
state ``y (Ka, D)`` and the scaled stages ``hk (s + 1, Ka, D)`` in one buffer
of rows ``[y, hk_0, ..., hk_s]``; each stage input ``y + Σ_j a_ij hk_j`` is
one compiled pass over the rows it needs (:mod:`linfa.integrate._kernels`,
elementwise, so batched solves are bit-identical to single ones). The vector
field reads leaf views of these buffers and its output is written, scaled by
each instance's step, into the stage buffer. Nothing grows with the number
of steps.

Threads: :func:`run` can cut the instances into contiguous shards, one loop
and one thread each. The loops share nothing but the output arrays (disjoint
rows), and numpy and the compiled passes release the GIL, so on several
cores the shards run concurrently; the result does not depend on the cut.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from linfa.integrate._kernels import lincomb_nz, scale_rows, scaled_error
from linfa.integrate.events import Event, first_root
from linfa.integrate.methods import AbstractRungeKutta, lincomb
from linfa.integrate.problem import Args, Layout, Problem, Raw
from linfa.integrate.solution import Status

__all__ = ["run"]

#: ``h ρ`` above this fraction of the stability limit counts as "at the limit" (one step's estimate).
STIFF_FRACTION = 0.5


def run(p: Problem, m: AbstractRungeKutta, threads: int = 1, chunk: int | None = None) -> Raw:
    """Integrate ``p`` with method ``m``; see :func:`linfa.integrate.integrate`.

    The instances are cut into contiguous chunks of ``chunk`` instances (default:
    ``K / threads``, one chunk a thread), each integrated by its own loop; with
    ``threads > 1`` the loops run on that many threads (numpy releases the GIL in
    the array work). Instances never interact, so the result is bit-identical to
    one loop over all of them. When a loop raises (a failure with
    ``throw=True``), the others stop at their next step and the first exception
    raised is re-raised: with several threads that is the first failure in
    wall-clock time, which may be another instance than the one a single loop
    reports first.
    """
    raw = Raw(p)
    threads = max(1, min(threads, p.K))
    n_chunks = threads if chunk is None else max(threads, -(-p.K // max(1, chunk)))
    shards = [r for r in np.array_split(np.arange(p.K), max(1, min(n_chunks, p.K))) if r.size]
    cancel = threading.Event()
    loops = [_Loop(p, m, raw, rows, cancel) for rows in shards]
    if threads <= 1 or len(loops) <= 1:
        for loop in loops:
            loop.run()
    else:
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(loop.run) for loop in loops]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:  # e.g. throw=True: stop the other loops at their next step, raise this one
                cancel.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                raise failed[0].exception()  # type: ignore[misc]
    raw.n_calls = sum(loop.n_calls for loop in loops)
    return raw


def _nonzero(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, values)`` of the non-zero entries of a coefficient row."""
    idx = np.flatnonzero(coeffs)
    if idx.size == 0:
        raise ValueError("a stage combination with no non-zero coefficient")  # not in any tableau
    return idx.astype(np.int64), np.ascontiguousarray(coeffs[idx], dtype=np.float64)


# ------------------------------------------------------------------ the parts
@dataclass
class _Instances:
    """Per-instance bookkeeping of the active set, one entry (last axis) per active instance."""

    idx: np.ndarray  # flat instance number in the problem
    t: np.ndarray
    h: np.ndarray  # the step to try next
    n_acc: np.ndarray
    n_rej: np.ndarray
    n_fev: np.ndarray
    rejected: np.ndarray  # the last step was rejected (no growth of the next one)
    saw_non_finite: np.ndarray  # some attempted step had a non-finite error
    done: np.ndarray

    @classmethod
    def start(cls, rows: np.ndarray, t0: float) -> _Instances:
        K = rows.size
        return cls(idx=rows.copy(), t=np.full(K, t0), h=np.full(K, np.nan),
                   n_acc=np.zeros(K, dtype=np.int64), n_rej=np.zeros(K, dtype=np.int64),
                   n_fev=np.zeros(K, dtype=np.int64), rejected=np.zeros(K, dtype=bool),
                   saw_non_finite=np.zeros(K, dtype=bool), done=np.zeros(K, dtype=bool))

    def take(self, keep: np.ndarray) -> _Instances:
        """The instances ``keep`` (a compacted copy)."""
        return _Instances(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def flush(self, raw: Raw, rows: np.ndarray) -> None:
        """Write the step counters of the active rows ``rows`` into ``raw``."""
        k = self.idx[rows]
        raw.n_accepted[k] = self.n_acc[rows]
        raw.n_rejected[k] = self.n_rej[rows]
        raw.n_fev[k] = self.n_fev[rows]


class _StageBuffers:
    """The state and scaled stages of the active instances, rows ``[y, hk_0, ..., hk_s]``.

    One buffer holds the rows so that each stage input ``y + Σ_j a_ij hk_j`` is
    one pass of :func:`lincomb_nz` over the rows it needs (elementwise, so
    batched solves are bit-identical to single ones). ``ynew``, ``ytmp``,
    ``err`` and ``dyn`` are scratch arrays of the same ``(Ka, D)`` shape.
    """

    def __init__(self, layout: Layout, n_stages: int, K: int) -> None:
        self.layout = layout
        self.S = n_stages
        D = layout.D
        self._rows_buf = np.empty((n_stages + 2) * K * D)
        self._scratch = [np.empty(K * D) for _ in range(4)]
        self._ndims = tuple(len(c) for c in layout.cores)
        self.resize(K)

    def resize(self, Ka: int) -> None:
        """(Re)build the views for ``Ka`` active instances (contents are not kept)."""
        D, layout = self.layout.D, self.layout
        nrow = self.S + 2
        self.Ka = Ka
        self.rows = self._rows_buf[: nrow * Ka * D].reshape(nrow, Ka, D)
        self.rows2 = self.rows.reshape(nrow, Ka * D)
        self.y = self.rows[0]
        self.hk = self.rows[1:]
        self.out_views = [layout.views(self.hk[i]) for i in range(self.S + 1)]
        self.out_cols = [layout.columns(self.hk[i]) for i in range(self.S + 1)]
        self.ynew, self.ytmp, self.err, self.dyn = (b[: Ka * D].reshape(Ka, D) for b in self._scratch)
        self.ynew_views = layout.views(self.ynew)
        self.ytmp_views = layout.views(self.ytmp)
        self.dyn_views = layout.views(self.dyn)

    def compact(self, keep: np.ndarray) -> None:
        """Keep the rows ``keep`` of the state and of the first-same-as-last stage."""
        y, hk0 = self.y[keep], self.hk[0][keep]
        self.resize(len(keep))
        self.y[...] = y
        self.hk[0] = hk0

    def cols(self, h: np.ndarray) -> list[np.ndarray]:
        """``h`` shaped to broadcast against each leaf ``(Ka, *core)``."""
        return [h.reshape(h.shape[0], *(1,) * nd) for nd in self._ndims]

    def write(self, i: int, dy: Any, h: np.ndarray, hcols: list[np.ndarray]) -> None:
        """Write ``h · dy`` into stage row ``i`` (leaf by leaf)."""
        views, cols = self.out_views[i], self.out_cols[i]
        if len(dy) != len(views):
            raise ValueError(f"vf: expected {len(views)} leaves like the state, got {len(dy)}")
        Ka = self.Ka
        for d, c, v, col, size in zip(dy, hcols, views, cols, self.layout.sizes, strict=True):
            if isinstance(d, np.ndarray) and d.dtype == np.float64 and d.shape == v.shape:
                scale_rows(d.reshape(Ka, size), h, col)
            else:  # a leaf that broadcasts (e.g. a shared zero) or of another dtype
                np.multiply(d, c, out=v)


class _EventLocator:
    """The stopping conditions of the active instances and the root finder on the interpolant.

    ``sigma[e]`` orients event ``e`` so that ``σ g <= 0`` means "stop"
    (:meth:`Event.orientation`); ``g_old[e]`` is ``σ g`` at each instance's
    current time. Both have the shape ``(n_events, Ka)``.
    """

    def __init__(self, events: tuple[Event, ...], K: int) -> None:
        self.events = events
        self.n = len(events)
        self.reads_flow = any(ev.flow for ev in events)  # some event reads the flow at the new state
        self.sigma = np.ones((self.n, K))
        self.g_old = np.zeros((self.n, K))

    def values(self, t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...],
               dy: tuple[np.ndarray, ...] | None) -> np.ndarray:
        """``g`` of every event, shape ``(n_events, len(t))`` (not oriented)."""
        out = np.empty((self.n, len(t)))
        for e, ev in enumerate(self.events):
            out[e] = ev(t, y, args, dy)
        return out

    def orient(self, g0: np.ndarray) -> None:
        """Fix ``σ`` from the values at ``t0`` and record ``σ g0``."""
        for e, ev in enumerate(self.events):
            self.sigma[e] = ev.orientation(g0[e])
        self.g_old = self.sigma * g0

    def advance(self, acc: np.ndarray, g_new: np.ndarray) -> None:
        """Move the accepted instances to their new values."""
        self.g_old = np.where(acc, g_new, self.g_old)

    def compact(self, keep: np.ndarray) -> None:
        self.g_old = self.g_old[:, keep]
        self.sigma = self.sigma[:, keep]

    def locate(self, loop: _Loop, dense_rows: np.ndarray, ev_rows: np.ndarray, F: np.ndarray,
               g_new: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Earliest event on the step for each of ``ev_rows``: ``(θ, event index)``."""
        theta = np.full(ev_rows.size, np.inf)
        which = np.full(ev_rows.size, -1, dtype=np.int64)
        for e in range(self.n):
            sel = g_new[e, ev_rows] <= 0
            if not sel.any():
                continue
            rows = ev_rows[sel]
            th = self._root(loop, e, rows, F[:, np.searchsorted(dense_rows, rows)], g_new[e, rows], h)
            better = th < theta[sel]
            idx = np.flatnonzero(sel)[better]
            theta[idx] = th[better]
            which[idx] = e
        return theta, which

    def _root(self, loop: _Loop, e: int, rows: np.ndarray, F: np.ndarray, g_hi: np.ndarray,
              h: np.ndarray) -> np.ndarray:
        """Illinois false position for the first ``θ`` with ``σ g ≤ 0`` (bracket ``[0, 1]``)."""
        ev = self.events[e]
        layout = loop.buf.layout
        inst = loop.inst
        t0, hr, y0 = inst.t[rows], h[rows], loop.buf.y[rows]
        sig = self.sigma[e, rows]
        sub = loop.args.take(rows)
        tol = 4 * np.spacing(np.abs(t0) + hr) / hr

        def g_at(th: np.ndarray, open_: np.ndarray) -> np.ndarray:
            yv = loop.m.dense_eval(F, y0, th)
            tv = t0 + th * hr
            yv_views = layout.views(yv)
            dy = None
            if ev.flow:
                dy = loop.call(tv, yv_views, sub)
                inst.n_fev[rows[open_]] += 1  # only the rows still searching (independent of the batch)
            return sig * ev(tv, yv_views, sub, dy)

        return first_root(g_at, self.g_old[e, rows], g_hi, tol)


class _SavePoints:
    """Which save time each active instance waits for (``nxt``), and the recording there."""

    def __init__(self, ts: np.ndarray, save: np.ndarray, rows0: np.ndarray, t0: float, y0: np.ndarray) -> None:
        self.ts = ts
        self.save = save
        n0 = int(np.searchsorted(ts, t0, side="right"))
        save[rows0, :n0] = y0[:, None, :]  # the save points at t0
        self.nxt = np.full(rows0.size, n0, dtype=np.int64)

    def due(self, acc: np.ndarray, t_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(need, inside)``: an accepted step passes a save point, and one strictly inside it."""
        ts = self.ts
        nxt_c = np.minimum(self.nxt, len(ts) - 1)
        need = acc & (self.nxt < len(ts)) & (ts[nxt_c] <= t_new)
        # ts is sorted: the first pending point decides whether the interpolant is needed
        return need, need & (ts[nxt_c] < t_new)

    def record(self, loop: _Loop, rows: np.ndarray, dense_rows: np.ndarray, F: np.ndarray | None,
               h: np.ndarray, t_end: np.ndarray, t_new: np.ndarray) -> None:
        """Record this step's save points for ``rows``: the new state at the step's end, else the
        interpolant ``F`` (built for ``dense_rows``, which hold every row with a point inside)."""
        ts, nsave = self.ts, len(self.ts)
        buf, inst = loop.buf, loop.inst
        while rows.size:
            j = self.nxt[rows]
            tj = ts[np.minimum(j, nsave - 1)]
            need = (j < nsave) & (tj <= t_end[rows])
            if not need.any():
                return
            rows, j, tj = rows[need], j[need], tj[need]
            val = buf.ynew[rows]
            inside = tj != t_new[rows]
            if inside.any():
                assert F is not None
                r = rows[inside]
                theta = (tj[inside] - inst.t[r]) / h[r]
                val[inside] = loop.m.dense_eval(F[:, np.searchsorted(dense_rows, r)], buf.y[r], theta)
            self.save[inst.idx[rows], j] = val
            self.nxt[rows] += 1

    def compact(self, keep: np.ndarray) -> None:
        self.nxt = self.nxt[keep]


# ------------------------------------------------------------------- the loop
class _Loop:
    """One batched loop over the instances ``rows`` of ``p``, writing into ``raw``."""

    def __init__(self, p: Problem, m: AbstractRungeKutta, raw: Raw, rows: np.ndarray,
                 cancel: threading.Event) -> None:
        self.p, self.m, self.raw = p, m, raw
        self.ctrl = p.controller
        self.cancel = cancel
        self.rows0 = rows
        self.n_calls = 0
        S = m.n_stages
        # Stage inputs, new state and error estimates as (row indices, non-zero coefficients) over
        # the rows [y, hk_0, ..., hk_S]: the stage inputs and the new state take y with weight 1,
        # the error weights (on hk) are shifted by one.
        self._a_nz = [_nonzero(np.concatenate(([1.0], m.A[i, :i]))) for i in range(S)]
        self._b_nz = _nonzero(np.concatenate(([1.0], m.B)))
        self._w_nz = [_nonzero(np.concatenate(([0.0], w))) for w in m.error_weights]
        # Extra dense-output stages act on the rows [y, hk_0, ..., hk_S, extras before them].
        self._a_extra = [np.concatenate(([1.0], m.A_extra[j, : S + 1 + j])) for j in range(len(m.C_extra))]

    def call(self, t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...]) -> Any:
        """One batched call of the vector field."""
        self.n_calls += 1
        return self.p.vf(t, y, args)

    # ---------------------------------------------------------------- run
    def run(self) -> None:
        with np.errstate(all="ignore"):  # thread-local: set in the thread that runs the loop
            if self.rows0.size:
                self._start()
                while self.buf.Ka and not self.cancel.is_set():
                    self._step()
                    self._compact()

    def _start(self) -> None:
        p, m, rows0 = self.p, self.m, self.rows0
        layout = p.layout
        K = rows0.size
        self.buf = buf = _StageBuffers(layout, m.n_stages, K)
        self.inst = inst = _Instances.start(rows0, p.t0)
        self.args: Args = p.make_args(rows0)
        self.events = ev = _EventLocator(p.events, K)
        y0 = p.y0[rows0]
        buf.y[...] = y0
        self.saves = _SavePoints(p.ts, self.raw.save, rows0, p.t0, y0)

        args = self.args.current()
        f0 = self._check_first(self.call(inst.t, layout.views(buf.y), args), K)
        inst.n_fev += 1
        bad = ~np.isfinite(f0).all(axis=1)
        if bad.any():
            self._finish(np.flatnonzero(bad), Status.non_finite, inst.t[bad], buf.y[bad])
        if ev.n:  # an instance already in a stopping region stops at t0
            ev.orient(ev.values(inst.t, layout.views(buf.y), args, layout.views(f0)))
            hit = ~inst.done & (ev.g_old <= 0).any(axis=0)
            for e in range(ev.n):
                rows = np.flatnonzero(hit & (ev.g_old[e] <= 0))
                hit[rows] = False
                if rows.size:
                    self._finish(rows, p.events[e].status, inst.t[rows], buf.y[rows], e)
        if p.t1 == p.t0:
            rows = np.flatnonzero(~inst.done)
            self._finish(rows, Status.success, inst.t[rows], buf.y[rows])
        # Initial step.
        if self.ctrl.dt0 is not None:
            h = np.full(K, self.ctrl.dt0)
        elif not m.adaptive:
            raise ValueError(f"dt0: the fixed-step method {m.name!r} needs a step size dt0")
        else:
            def vf(t: np.ndarray, y: np.ndarray) -> np.ndarray:
                inst.n_fev += 1
                return layout.flatten(self.call(t, layout.views(y), args), K)

            h, overflow = self.ctrl.initial_step(vf, inst.t, buf.y, f0, p.t1 - p.t0, m.error_order)
            inst.saw_non_finite |= overflow  # a flow whose norm overflows: the step that stalls is non-finite
        inst.h = np.minimum(h, p.t1 - p.t0) if p.t1 > p.t0 else h
        np.multiply(f0, inst.h[:, None], out=buf.hk[0])
        self._compact()

    def _check_first(self, dy: Any, K: int) -> np.ndarray:
        cores = self.p.layout.cores
        if not isinstance(dy, tuple | list) or len(dy) != len(cores):
            n = len(dy) if isinstance(dy, tuple | list) else type(dy).__name__
            raise ValueError(f"vf: expected a tuple of {len(cores)} arrays like the state, got {n}")
        for i, (d, c) in enumerate(zip(dy, cores, strict=True)):
            if np.iscomplexobj(d):
                raise TypeError(f"vf: output leaf {i}: expected real numbers, got complex dtype {np.asarray(d).dtype}")
            shape = np.shape(d)
            try:
                ok = np.broadcast_shapes(shape, (K, *c)) == (K, *c)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"vf: output leaf {i}: expected shape {(K, *c)}, got {shape}")
        return self.p.layout.flatten(dy, K)

    # ------------------------------------------------------- bookkeeping
    def _finish(self, rows: np.ndarray, status: Any, t: Any, y: np.ndarray, event: Any = -1) -> None:
        """End the active rows ``rows``."""
        rows = np.asarray(rows)
        if rows.size == 0:
            return
        self.inst.done[rows] = True
        self.raw.finish(self.inst.idx[rows], status, t, y, event)

    def _compact(self) -> None:
        """Drop the finished instances from every part."""
        done = self.inst.done
        if not done.any():
            return
        self.inst.flush(self.raw, np.flatnonzero(done))
        keep = np.flatnonzero(~done)
        self.inst = self.inst.take(keep)
        self.events.compact(keep)
        self.saves.compact(keep)
        self.args.compact(keep)
        self.buf.compact(keep)

    # -------------------------------------------------------------- a step
    def _step(self) -> None:
        p, m, buf, inst, ev = self.p, self.m, self.buf, self.inst, self.events
        S, Ka, D = buf.S, buf.Ka, p.layout.D
        hk = buf.hk
        y, ynew = buf.y, buf.ynew
        t = inst.t
        args = self.args.current()
        remaining = p.t1 - t
        # a remainder within a few ulps of the step is the last step (no sliver step from
        # accumulated rounding: Euler with dt0 = 0.1 to t1 = 1 takes exactly 10 steps)
        last = inst.h >= remaining - 4 * np.spacing(np.maximum(np.abs(t), abs(p.t1)))
        if last.any():
            h = np.where(last, remaining, inst.h)
            hk[0] *= (h / inst.h)[:, None]
        else:
            h = inst.h
        hcols = buf.cols(h)
        rows2 = buf.rows2
        ytmp_flat = buf.ytmp.reshape(-1)
        C = m.C
        for i in range(1, S):
            lincomb_nz(*self._a_nz[i], rows2, ytmp_flat)
            buf.write(i, self.call(t + C[i] * h, buf.ytmp_views, args), h, hcols)
        lincomb_nz(*self._b_nz, rows2, ynew.reshape(-1))
        t_new = np.where(last, p.t1, t + h)
        buf.write(S, self.call(t_new, buf.ynew_views, args), h, hcols)
        inst.n_fev += S

        if m.adaptive:
            # err / scale, with scale = max(atol + rtol |y|, atol + rtol |y_new|), in one pass
            err_flat = buf.err.reshape(-1)
            y_flat, ynew_flat = y.reshape(-1), ynew.reshape(-1)
            sq = []
            for w_nz in self._w_nz:  # each estimate's sums of squares, as the compiled path sums them
                sq.append(np.empty(Ka))
                scaled_error(*w_nz, rows2, y_flat, ynew_flat, self.ctrl.rtol, self.ctrl.atol, err_flat, sq[-1])
            acc, finite, factor = self.ctrl.factor(m.error_norm(sq, D), inst.rejected, m.error_order)
            inst.saw_non_finite |= ~finite
        else:
            finite = np.isfinite(ynew).all(axis=1) & np.isfinite(hk[S]).all(axis=1)
            acc = finite
            factor = np.ones(Ka)
        all_acc = bool(acc.all())
        inst.n_acc += acc
        inst.n_rej += ~acc

        # Events and save points on the accepted steps, both on the interpolant.
        t_end = t_new
        ev_rows = np.zeros(0, dtype=np.intp)
        if ev.n:
            dy_new = None
            if ev.reads_flow:
                np.divide(hk[S], h[:, None], out=buf.dyn)
                dy_new = buf.dyn_views
            g_new = ev.sigma * ev.values(t_new, buf.ynew_views, args, dy_new)
            ev_mask = ((g_new <= 0) & acc).any(axis=0)
            ev_rows = np.flatnonzero(ev_mask)
        need_save, inner = self.saves.due(acc, t_new)
        # The interpolant only where it is read: an event to locate, or a save point inside the
        # step. A save at the step's end is the new state, so saveat=[t1] never builds it
        # (DOP853: no three extra flow evaluations).
        dense_rows = np.flatnonzero(inner | ev_mask if ev.n else inner)
        F = self._dense(dense_rows, h, args) if dense_rows.size else None
        if ev_rows.size:
            assert F is not None
            t_end = t_new.copy()
            theta_ev, which = ev.locate(self, dense_rows, ev_rows, F, g_new, h)
            pos = np.searchsorted(dense_rows, ev_rows)
            y_ev = m.dense_eval(F[:, pos], y[ev_rows], theta_ev)
            at_end = theta_ev >= 1.0
            y_ev[at_end] = ynew[ev_rows[at_end]]
            t_ev = np.where(at_end, t_new[ev_rows], t[ev_rows] + theta_ev * h[ev_rows])
            t_end[ev_rows] = t_ev
        save_rows = np.flatnonzero(need_save | ev_mask if ev.n else need_save)
        if save_rows.size:
            self.saves.record(self, save_rows, dense_rows, F, h, t_end, t_new)
        if ev_rows.size:
            status = np.array([int(p.events[e].status) for e in which])
            self._finish(ev_rows, status, t_ev, y_ev, which)
        # Reaching t1.
        reached = acc & last & ~inst.done
        if reached.any():
            rows = np.flatnonzero(reached)
            self._finish(rows, Status.success, p.t1, ynew[rows])

        # Accept: move to the new state and rescale the first-same-as-last row.
        h_next = h * factor
        if all_acc:
            scale_rows(hk[S], factor, hk[0])
            np.copyto(y, ynew)
            inst.t = t_new
        else:
            np.copyto(hk[0], hk[S], where=acc[:, None])
            hk[0] *= factor[:, None]
            np.copyto(y, ynew, where=acc[:, None])
            inst.t = np.where(acc, t_new, t)
        if ev.n:
            ev.advance(acc, g_new)
        inst.h = h_next
        inst.rejected = ~acc
        self._failures(finite, h_next)

    def _failures(self, finite: np.ndarray, h_next: np.ndarray) -> None:
        """End the instances whose step vanished, turned non-finite, or ran out of steps."""
        p, inst, y = self.p, self.inst, self.buf.y
        live = ~inst.done
        if self.m.adaptive:
            tiny = live & (h_next < 10 * np.spacing(np.abs(inst.t)))
            if tiny.any():
                rows = np.flatnonzero(tiny)
                # a step size driven to nothing by non-finite trial steps is a non-finite failure,
                # even if the last (tiny) trial happened to be finite
                codes = np.where(finite[rows] & ~inst.saw_non_finite[rows], int(Status.stalled),
                                 int(Status.non_finite))
                self._finish(rows, codes, inst.t[rows], y[rows])
                live = ~inst.done
        else:
            bad = live & ~finite
            if bad.any():
                rows = np.flatnonzero(bad)
                self._finish(rows, Status.non_finite, inst.t[rows], y[rows])
                live = ~inst.done
        over = live & (inst.n_acc + inst.n_rej >= p.max_steps)
        if over.any():
            rows = np.flatnonzero(over)
            self.raw.stiff[inst.idx[rows]] = self._at_stability_limit(rows)
            self._finish(rows, Status.max_steps, inst.t[rows], y[rows])

    def _at_stability_limit(self, rows: np.ndarray) -> np.ndarray:
        """Whether the last step of ``rows`` sat at the method's stability limit (a stiff problem).

        The last two stages of the step are at the same time ``t + h`` (``c = 1``), so
        ``ρ = ‖k_s - k_{s-1}‖ / ‖y_new - y_{s-1}‖`` estimates the Jacobian's norm along
        them (Hairer & Wanner's test in DOPRI5): ``h ρ`` near the end of the stability
        interval means the step is limited by stability, not accuracy.
        """
        m, buf = self.m, self.buf
        S = buf.S
        if not m.adaptive or S < 2 or m.C[S - 1] != 1.0:
            return np.zeros(rows.size, dtype=bool)
        dk = np.linalg.norm(buf.hk[S][rows] - buf.hk[S - 1][rows], axis=1)
        dy = np.linalg.norm(buf.ynew[rows] - buf.ytmp[rows], axis=1)
        h_rho = dk / np.where(dy > 0, dy, np.inf)
        return np.isfinite(h_rho) & (h_rho >= STIFF_FRACTION * m.stability_limit)

    # --------------------------------------------------- dense output
    def _dense(self, rows: np.ndarray, h: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        """Interpolant coefficients ``(p, m, D)`` of the current step for ``rows``."""
        m, buf = self.m, self.buf
        S = buf.S
        full = rows.size == buf.Ka
        y_new = buf.ynew if full else buf.ynew[rows]
        n_extra = len(m.C_extra)
        if not n_extra:
            hk = buf.hk if full else buf.hk[:, rows]
            return m.dense_coefficients(hk, buf.y if full else buf.y[rows], y_new)
        # One buffer of rows [y_old, hk_0, ..., hk_S, extras]: each extra stage input is
        # lincomb of [1, a_j] and its leading rows, and its scaled output is written in place.
        layout, n = buf.layout, rows.size
        ext = np.empty((S + 2 + n_extra, n, layout.D))
        if full:
            ext[: S + 2] = buf.rows
        else:
            np.take(buf.rows, rows, axis=1, out=ext[: S + 2])
        hr = h[rows]
        hcols = buf.cols(hr)
        tr = self.inst.t[rows]
        sub = args if full else self.args.take(rows)
        yin, tmp = np.empty((n, layout.D)), np.empty((n, layout.D))
        yin_views = layout.views(yin)
        for j in range(n_extra):
            s = S + 1 + j
            lincomb(self._a_extra[j], ext[: s + 1], yin, tmp)
            dy = self.call(tr + m.C_extra[j] * hr, yin_views, sub)
            views = layout.views(ext[s + 1])
            if len(dy) != len(views):
                raise ValueError(f"vf: expected {len(views)} leaves like the state, got {len(dy)}")
            for d, c, v in zip(dy, hcols, views, strict=True):
                np.multiply(d, c, out=v)
        self.inst.n_fev[rows] += n_extra
        return m.dense_coefficients(ext[1:], ext[0], y_new)
