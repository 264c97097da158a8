"""The one batched loop: explicit Runge–Kutta with per-instance step control.

Every instance has its own time, step size and accept/reject decision; they
only share the calls of the vector field, which are batched over the
*active* instances. When instances finish (they reach ``t1``, meet a
stopping condition or fail) the active set is compacted, so they stop
costing work.

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

Step-size control is the classical one (Hairer, Nørsett & Wanner II.4;
scipy's ``RungeKutta``): ``h ← h · min(10, max(0.2, 0.9 err^{-1/(q+1)}))``,
no growth right after a rejection, the starting step from the same
heuristic as scipy's ``select_initial_step``.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from linfa.integrate._kernels import lincomb_nz, scale_rows, scaled_error
from linfa.integrate._problem import Problem, Raw
from linfa.integrate._solution import Status
from linfa.integrate._tableaus import AbstractRungeKutta, lincomb

__all__ = ["run"]

SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
ROOT_MAXITER = 100


def run(p: Problem, m: AbstractRungeKutta, threads: int = 1) -> Raw:
    """Integrate ``p`` with method ``m``; see :func:`linfa.integrate.integrate`.

    With ``threads > 1`` the instances are cut into that many contiguous
    shards, each integrated by its own loop in its own thread (numpy releases
    the GIL in the array work). Instances never interact, so the result is
    bit-identical to one loop over all of them. When a shard raises (a failure
    with ``throw=True``), the others stop at their next step and the first
    exception raised is re-raised: with several threads that is the first
    failure in wall-clock time, which may be another instance than the one a
    single loop reports first.
    """
    raw = Raw(p)
    shards = [r for r in np.array_split(np.arange(p.K), max(1, min(threads, p.K))) if r.size]
    cancel = threading.Event()
    loops = [_Loop(p, m, raw, rows, cancel) for rows in shards]
    if len(loops) <= 1:
        for loop in loops:
            loop.run()
    else:
        with ThreadPoolExecutor(len(loops)) as pool:
            futures = [pool.submit(loop.run) for loop in loops]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:  # e.g. throw=True: stop the other shards at their next step, raise this one
                cancel.set()
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


class _Loop:
    """One batched loop over the instances ``rows`` of ``p``, writing into ``raw``."""

    def __init__(self, p: Problem, m: AbstractRungeKutta, raw: Raw, rows: np.ndarray,
                 cancel: threading.Event) -> None:
        self.p, self.m = p, m
        self.cancel = cancel
        self.raw = raw
        self.rows0 = rows
        self.n_calls = 0
        self.layout = p.layout
        self.nev = len(p.events)
        self.S = m.n_stages
        K, D = rows.size, p.layout.D
        self._hk_buf = np.empty((self.S + 2) * K * D)
        self._bufs = [np.empty(K * D) for _ in range(4)]
        # Extra dense-output stages act on the rows [y, hk_0, ..., hk_S, extras before them].
        self._a_extra = [np.concatenate(([1.0], m.A_extra[j, : self.S + 1 + j]))
                         for j in range(len(m.C_extra))]
        self._ndims = tuple(len(c) for c in p.layout.cores)
        # Stage inputs, new state and error estimates as (row indices, non-zero coefficients) over
        # the rows [y, hk_0, ..., hk_S]: the stage inputs and the new state take y with weight 1,
        # the error weights (on hk) are shifted by one.
        self._a_nz = [_nonzero(np.concatenate(([1.0], m.A[i, :i]))) for i in range(self.S)]
        self._b_nz = _nonzero(np.concatenate(([1.0], m.B)))
        self._ev_flow = any(ev.flow for ev in p.events)  # some event reads the flow at the new state
        self._w_nz = [_nonzero(np.concatenate(([0.0], w))) for w in m.error_weights]

    # ------------------------------------------------------------ plumbing
    def _call(self, t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...]) -> Any:
        self.n_calls += 1
        return self.p.vf(t, y, args)

    def _set_active(self, Ka: int) -> None:
        """(Re)build the buffer views for ``Ka`` active instances.

        One buffer holds the rows ``[y, hk_0, ..., hk_s]`` so that each stage
        input ``y + Σ_j a_ij hk_j`` is :func:`lincomb` of ``[1, a_i]`` and the rows
        (elementwise, so batched solves are bit-identical to single ones).
        """
        D = self.layout.D
        nrow = self.S + 2
        self.Ka = Ka
        self.rows = self._hk_buf[: nrow * Ka * D].reshape(nrow, Ka, D)
        self.rows2 = self.rows.reshape(nrow, Ka * D)
        self.y = self.rows[0]
        self.hk = self.rows[1:]
        self.out_views = [self.layout.views(self.hk[i]) for i in range(self.S + 1)]
        self.out_cols = [self.layout.columns(self.hk[i]) for i in range(self.S + 1)]
        self.ynew, self.ytmp, self.err, self._dyn = (b[: Ka * D].reshape(Ka, D) for b in self._bufs)
        self.ynew_views = self.layout.views(self.ynew)
        self.ytmp_views = self.layout.views(self.ytmp)
        self.dyn_views = self.layout.views(self._dyn)

    def _cols(self, h: np.ndarray) -> list[np.ndarray]:
        return [h.reshape(h.shape[0], *(1,) * nd) for nd in self._ndims]

    def _write(self, i: int, dy: Any, h: np.ndarray, hcols: list[np.ndarray]) -> None:
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

    # ---------------------------------------------------------------- run
    def run(self) -> None:
        with np.errstate(all="ignore"):  # thread-local: set in the thread that runs the loop
            self._run()

    def _run(self) -> None:
        p, m, raw, layout = self.p, self.m, self.raw, self.layout
        rows0, ts = self.rows0, p.ts
        K = rows0.size
        if K == 0:
            return
        self._set_active(K)
        self.idx = rows0.copy()
        self.args = p.make_args(rows0)
        y0 = p.y0[rows0]
        self.y[...] = y0
        self.t = np.full(K, p.t0)
        # Save points at t0.
        n0 = int(np.searchsorted(ts, p.t0, side="right"))
        raw.save[rows0, :n0] = y0[:, None, :]
        self.nxt = np.full(K, n0, dtype=np.int64)
        self.n_acc = np.zeros(K, dtype=np.int64)
        self.n_rej = np.zeros(K, dtype=np.int64)
        self.n_fev = np.zeros(K, dtype=np.int64)
        self.rejected = np.zeros(K, dtype=bool)
        self.saw_non_finite = np.zeros(K, dtype=bool)  # any attempted step with a non-finite error
        self.done = np.zeros(K, dtype=bool)

        args = self.args.current()
        dy0 = self._call(self.t, layout.views(self.y), args)
        f0 = self._check_first(dy0, K)
        self.n_fev += 1
        bad = ~np.isfinite(f0).all(axis=1)
        if bad.any():
            self._finish(np.flatnonzero(bad), Status.non_finite, self.t[bad], self.y[bad])
        # Events at t0.
        self.sigma = np.ones((self.nev, K))
        self.g_old = np.zeros((self.nev, K))
        if self.nev:
            g0 = self._events(self.t, layout.views(self.y), args, layout.views(f0))
            for e, ev in enumerate(p.events):
                self.sigma[e] = ev.orientation(g0[e])
            self.g_old = self.sigma * g0
            hit = ~self.done & (self.g_old <= 0).any(axis=0)
            for e in range(self.nev):
                rows = np.flatnonzero(hit & (self.g_old[e] <= 0))
                hit[rows] = False
                if rows.size:
                    self._finish(rows, p.events[e].status, self.t[rows], self.y[rows], e)
        if p.t1 == p.t0:
            rows = np.flatnonzero(~self.done)
            self._finish(rows, Status.success, self.t[rows], self.y[rows])
        # Initial step.
        if p.dt0 is not None:
            h = np.full(K, p.dt0)
        elif not m.adaptive:
            raise ValueError(f"dt0: the fixed-step method {m.name!r} needs a step size dt0")
        else:
            h = self._initial_step(f0, args)
        self.h = np.minimum(h, p.t1 - p.t0) if p.t1 > p.t0 else h
        np.multiply(f0, self.h[:, None], out=self.hk[0])
        self._compact()
        while self.Ka and not self.cancel.is_set():
            self._step()
            self._compact()

    def _check_first(self, dy: Any, K: int) -> np.ndarray:
        cores = self.layout.cores
        if not isinstance(dy, tuple | list) or len(dy) != len(cores):
            n = len(dy) if isinstance(dy, tuple | list) else type(dy).__name__
            raise ValueError(f"vf: expected a tuple of {len(cores)} arrays like the state, got {n}")
        for i, (d, c) in enumerate(zip(dy, cores, strict=True)):
            shape = np.shape(d)
            try:
                ok = np.broadcast_shapes(shape, (K, *c)) == (K, *c)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"vf: output leaf {i}: expected shape {(K, *c)}, got {shape}")
        return self.layout.flatten(dy, K)

    def _events(self, t: np.ndarray, y: tuple[np.ndarray, ...], args: tuple[Any, ...],
                dy: tuple[np.ndarray, ...] | None) -> np.ndarray:
        out = np.empty((self.nev, len(t)))
        for e, ev in enumerate(self.p.events):
            out[e] = ev(t, y, args, dy)
        return out

    def _initial_step(self, f0: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        p, m, y0 = self.p, self.m, self.y
        D = self.layout.D
        interval = p.t1 - p.t0
        if interval == 0:
            return np.full(self.Ka, 1.0)
        scale = p.atol + np.abs(y0) * p.rtol
        d0 = np.sqrt(np.einsum("ij,ij->i", y0 / scale, y0 / scale) / D)
        d1 = np.sqrt(np.einsum("ij,ij->i", f0 / scale, f0 / scale) / D)
        h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.where(d1 > 0, d1, 1.0))
        h0 = np.minimum(h0, interval)
        y1 = y0 + h0[:, None] * f0
        f1 = self.layout.flatten(self._call(self.t + h0, self.layout.views(y1), args), self.Ka)
        self.n_fev += 1
        diff = (f1 - f0) / scale
        d2 = np.sqrt(np.einsum("ij,ij->i", diff, diff) / D) / h0
        dmax = np.maximum(d1, d2)
        small = (d1 <= 1e-15) & (d2 <= 1e-15)
        h1 = np.where(
            small,
            np.maximum(1e-6, h0 * 1e-3),
            (0.01 / np.where(small, 1.0, dmax)) ** (1.0 / (m.error_order + 1)),
        )
        h1 = np.where(np.isfinite(h1), h1, h0)
        return np.minimum(np.minimum(100 * h0, h1), interval)

    # ------------------------------------------------------- bookkeeping
    def _finish(self, rows: np.ndarray, status: Any, t: Any, y: np.ndarray, event: Any = -1) -> None:
        """End the active rows ``rows``."""
        rows = np.asarray(rows)
        if rows.size == 0:
            return
        self.done[rows] = True
        self.raw.finish(self.idx[rows], status, t, y, event)

    def _flush(self, rows: np.ndarray) -> None:
        k = self.idx[rows]
        self.raw.n_accepted[k] = self.n_acc[rows]
        self.raw.n_rejected[k] = self.n_rej[rows]
        self.raw.n_fev[k] = self.n_fev[rows]

    def _compact(self) -> None:
        if not self.done.any():
            return
        self._flush(np.flatnonzero(self.done))
        keep = np.flatnonzero(~self.done)
        Ka = len(keep)
        y, hk0 = self.y[keep], self.hk[0][keep]
        for name in ("idx", "t", "h", "nxt", "n_acc", "n_rej", "n_fev", "rejected", "saw_non_finite", "done"):
            setattr(self, name, getattr(self, name)[keep])
        self.g_old = self.g_old[:, keep]
        self.sigma = self.sigma[:, keep]
        self.args.compact(keep)
        self._set_active(Ka)
        self.y[...] = y
        self.hk[0] = hk0

    # -------------------------------------------------------------- a step
    def _step(self) -> None:
        p, m, layout = self.p, self.m, self.layout
        S, Ka, D = self.S, self.Ka, layout.D
        hk = self.hk
        y, ynew, ytmp = self.y, self.ynew, self.ytmp
        t = self.t
        args = self.args.current()
        remaining = p.t1 - t
        # a remainder within a few ulps of the step is the last step (no sliver step from
        # accumulated rounding: Euler with dt0 = 0.1 to t1 = 1 takes exactly 10 steps)
        last = self.h >= remaining - 4 * np.spacing(np.maximum(np.abs(t), abs(p.t1)))
        if last.any():
            h = np.where(last, remaining, self.h)
            hk[0] *= (h / self.h)[:, None]
        else:
            h = self.h
        hcols = self._cols(h)
        rows2 = self.rows2
        ytmp_flat = ytmp.reshape(-1)
        ytmp_views = self.ytmp_views
        C = m.C
        for i in range(1, S):
            lincomb_nz(*self._a_nz[i], rows2, ytmp_flat)
            self._write(i, self._call(t + C[i] * h, ytmp_views, args), h, hcols)
        lincomb_nz(*self._b_nz, rows2, ynew.reshape(-1))
        t_new = np.where(last, p.t1, t + h)
        ynew_views = self.ynew_views
        self._write(S, self._call(t_new, ynew_views, args), h, hcols)
        self.n_fev += S

        if m.adaptive:
            # err / scale, with scale = max(atol + rtol |y|, atol + rtol |y_new|), in one pass
            err, err_flat = self.err, self.err.reshape(-1)
            y_flat, ynew_flat = y.reshape(-1), ynew.reshape(-1)
            sq = []
            for w_nz in self._w_nz:
                scaled_error(*w_nz, rows2, y_flat, ynew_flat, p.rtol, p.atol, err_flat)
                sq.append(np.einsum("ij,ij->i", err, err))
            errn = m.error_norm(sq, D)
            finite = np.isfinite(errn)
            acc = errn <= 1.0  # False for a NaN norm: non-finite stages are never accepted
            self.saw_non_finite |= ~finite
            factor = SAFETY * errn ** (-1.0 / (m.error_order + 1))
            factor = np.where(errn == 0, MAX_FACTOR, factor)
            grow = np.minimum(np.where(self.rejected, 1.0, MAX_FACTOR), factor)
            shrink = np.where(finite, np.maximum(MIN_FACTOR, factor), MIN_FACTOR)
            factor = np.where(acc, grow, shrink)
        else:
            finite = np.isfinite(ynew).all(axis=1) & np.isfinite(hk[S]).all(axis=1)
            acc = finite
            factor = np.ones(Ka)
        all_acc = bool(acc.all())
        self.n_acc += acc
        self.n_rej += ~acc

        # Events and save points on the accepted steps, both on the interpolant.
        t_end = t_new
        ev_rows = np.zeros(0, dtype=np.intp)
        if self.nev:
            dy_new = None
            if self._ev_flow:
                np.divide(hk[S], h[:, None], out=self._dyn)
                dy_new = self.dyn_views
            g_new = self.sigma * self._events(t_new, ynew_views, args, dy_new)
            trig = (g_new <= 0) & acc
            ev_mask = trig.any(axis=0)
            ev_rows = np.flatnonzero(ev_mask)
        nxt_c = np.minimum(self.nxt, len(p.ts) - 1)
        need_save = acc & (self.nxt < len(p.ts)) & (p.ts[nxt_c] <= t_new)
        # The interpolant only where it is read: an event to locate, or a save point inside the
        # step. A save at the step's end is the new state (ts is sorted: the first pending point
        # decides), so saveat=[t1] never builds it (DOP853: no three extra flow evaluations).
        inner = need_save & (p.ts[nxt_c] < t_new)
        dense_rows = np.flatnonzero(inner | ev_mask if self.nev else inner)
        F = self._dense(dense_rows, h, args) if dense_rows.size else None
        if ev_rows.size:
            assert F is not None
            t_end = t_new.copy()
            theta_ev, which = self._locate(dense_rows, ev_rows, F, g_new, h, args)
            pos = np.searchsorted(dense_rows, ev_rows)
            y_ev = m.dense_eval(F[:, pos], y[ev_rows], theta_ev)
            at_end = theta_ev >= 1.0
            y_ev[at_end] = ynew[ev_rows[at_end]]
            t_ev = np.where(at_end, t_new[ev_rows], t[ev_rows] + theta_ev * h[ev_rows])
            t_end[ev_rows] = t_ev
        save_rows = np.flatnonzero(need_save | ev_mask if self.nev else need_save)
        if save_rows.size:
            self._save(save_rows, dense_rows, F, h, t_end, t_new)
        if ev_rows.size:
            status = np.array([int(p.events[e].status) for e in which])
            self._finish(ev_rows, status, t_ev, y_ev, which)
        # Reaching t1.
        reached = acc & last & ~self.done
        if reached.any():
            rows = np.flatnonzero(reached)
            self._finish(rows, Status.success, p.t1, ynew[rows])

        # Accept: move to the new state and rescale the first-same-as-last row.
        h_next = h * factor
        if all_acc:
            scale_rows(hk[S], factor, hk[0])
            np.copyto(y, ynew)
            self.t = t_new
        else:
            np.copyto(hk[0], hk[S], where=acc[:, None])
            hk[0] *= factor[:, None]
            np.copyto(y, ynew, where=acc[:, None])
            self.t = np.where(acc, t_new, t)
        if self.nev:
            self.g_old = np.where(acc, g_new, self.g_old)
        self.h = h_next
        self.rejected = ~acc

        # Failures.
        live = ~self.done
        if m.adaptive:
            tiny = live & (h_next < 10 * np.spacing(np.abs(self.t)))
            if tiny.any():
                rows = np.flatnonzero(tiny)
                # a step size driven to nothing by non-finite trial steps is a non-finite failure,
                # even if the last (tiny) trial happened to be finite
                codes = np.where(finite[rows] & ~self.saw_non_finite[rows], int(Status.stalled),
                                 int(Status.non_finite))
                self._finish(rows, codes, self.t[rows], self.y[rows])
                live = ~self.done
        else:
            bad = live & ~finite
            if bad.any():
                rows = np.flatnonzero(bad)
                self._finish(rows, Status.non_finite, self.t[rows], self.y[rows])
                live = ~self.done
        over = live & (self.n_acc + self.n_rej >= p.max_steps)
        if over.any():
            rows = np.flatnonzero(over)
            self._finish(rows, Status.max_steps, self.t[rows], self.y[rows])

    # --------------------------------------------------- dense output use
    def _dense(self, rows: np.ndarray, h: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
        """Interpolant coefficients ``(p, m, D)`` of the current step for ``rows``."""
        m, S = self.m, self.S
        full = rows.size == self.Ka
        y_new = self.ynew if full else self.ynew[rows]
        n_extra = len(m.C_extra)
        if not n_extra:
            hk = self.hk if full else self.hk[:, rows]
            return m.dense_coefficients(hk, self.y if full else self.y[rows], y_new)
        # One buffer of rows [y_old, hk_0, ..., hk_S, extras]: each extra stage input is
        # lincomb of [1, a_j] and its leading rows, and its scaled output is written in place.
        layout, n = self.layout, rows.size
        ext = np.empty((S + 2 + n_extra, n, layout.D))
        if full:
            ext[: S + 2] = self.rows
        else:
            np.take(self.rows, rows, axis=1, out=ext[: S + 2])
        hr = h[rows]
        hcols = self._cols(hr)
        tr = self.t[rows]
        sub = args if full else self.args.take(rows)
        yin, tmp = np.empty((n, layout.D)), np.empty((n, layout.D))
        yin_views = layout.views(yin)
        for j in range(n_extra):
            s = S + 1 + j
            lincomb(self._a_extra[j], ext[: s + 1], yin, tmp)
            dy = self._call(tr + m.C_extra[j] * hr, yin_views, sub)
            views = layout.views(ext[s + 1])
            if len(dy) != len(views):
                raise ValueError(f"vf: expected {len(views)} leaves like the state, got {len(dy)}")
            for d, c, v in zip(dy, hcols, views, strict=True):
                np.multiply(d, c, out=v)
        self.n_fev[rows] += n_extra
        return m.dense_coefficients(ext[1:], ext[0], y_new)

    def _save(self, rows: np.ndarray, dense_rows: np.ndarray, F: np.ndarray | None, h: np.ndarray,
              t_end: np.ndarray, t_new: np.ndarray) -> None:
        """Record this step's save points for ``rows``: the new state at the step's end, else the
        interpolant ``F`` (built for ``dense_rows``, which hold every row with a point inside)."""
        ts, nsave = self.p.ts, len(self.p.ts)
        save = self.raw.save
        while rows.size:
            j = self.nxt[rows]
            tj = ts[np.minimum(j, nsave - 1)]
            need = (j < nsave) & (tj <= t_end[rows])
            if not need.any():
                return
            rows, j, tj = rows[need], j[need], tj[need]
            val = self.ynew[rows]
            inside = tj != t_new[rows]
            if inside.any():
                assert F is not None
                r = rows[inside]
                theta = (tj[inside] - self.t[r]) / h[r]
                val[inside] = self.m.dense_eval(F[:, np.searchsorted(dense_rows, r)], self.y[r], theta)
            save[self.idx[rows], j] = val
            self.nxt[rows] += 1

    def _locate(self, dense_rows: np.ndarray, ev_rows: np.ndarray, F: np.ndarray,
                g_new: np.ndarray, h: np.ndarray, args: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Earliest event on the step for each of ``ev_rows``: ``(θ, event index)``."""
        theta = np.full(ev_rows.size, np.inf)
        which = np.full(ev_rows.size, -1, dtype=np.int64)
        for e in range(self.nev):
            sel = g_new[e, ev_rows] <= 0
            if not sel.any():
                continue
            rows = ev_rows[sel]
            th = self._root(e, rows, F[:, np.searchsorted(dense_rows, rows)], g_new[e, rows], h)
            better = th < theta[sel]
            idx = np.flatnonzero(sel)[better]
            theta[idx] = th[better]
            which[idx] = e
        return theta, which

    def _root(self, e: int, rows: np.ndarray, F: np.ndarray, g_hi: np.ndarray,
              h: np.ndarray) -> np.ndarray:
        """Illinois false position for the first ``θ`` with ``σ g ≤ 0`` (bracket ``[0, 1]``)."""
        ev = self.p.events[e]
        layout = self.layout
        n = rows.size
        lo, hi = np.zeros(n), np.ones(n)
        glo, ghi = self.g_old[e, rows].copy(), g_hi.copy()
        side = np.zeros(n)
        t0, hr, y0 = self.t[rows], h[rows], self.y[rows]
        sig = self.sigma[e, rows]
        sub = self.args.take(rows)
        tol = 4 * np.spacing(np.abs(t0) + hr) / hr
        for _ in range(ROOT_MAXITER):
            open_ = (hi - lo > np.maximum(tol, 1e-14)) & (ghi < 0)
            if not open_.any():
                break
            w = hi - lo
            denom = np.where(ghi != glo, ghi - glo, -1.0)
            th = hi - ghi * w / denom
            th = np.clip(th, lo + 1e-3 * w, hi - 1e-3 * w)
            th = np.where(np.isfinite(th), th, 0.5 * (lo + hi))
            yv = self.m.dense_eval(F, y0, th)
            tv = t0 + th * hr
            yv_views = layout.views(yv)
            dy = None
            if ev.flow:
                dy = self._call(tv, yv_views, sub)
                self.n_fev[rows[open_]] += 1  # only the rows still searching (independent of the batch)
            g = sig * ev(tv, yv_views, sub, dy)
            inside = (g <= 0) & open_
            outside = ~(g <= 0) & open_
            ghi = np.where(inside, g, np.where(outside & (side > 0), 0.5 * ghi, ghi))
            glo = np.where(outside, g, np.where(inside & (side < 0), 0.5 * glo, glo))
            hi = np.where(inside, th, hi)
            lo = np.where(outside, th, lo)
            side = np.where(inside, -1.0, np.where(outside, 1.0, side))
        return hi
