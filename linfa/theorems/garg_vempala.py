"""Garg & Vempala (2022): how and when random feedback works — low-rank matrix factorisation.

Factorise ``Y ≈ Z W`` (``Y`` is ``n × m``, ``Z`` is ``n × r``, ``W`` is ``r × m``)
by a two-layer linear network with whitened input (:meth:`linfa.Task.factorization`:
``W_1 = W``, ``W_2 = Z``). Under FA the first layer learns through a fixed
random ``B^T`` (``r × n``, linfa's ``B_2``) in place of ``Z^T``:

.. math::

    \\dot Z = (Y - Z W) W^T, \\qquad \\dot W = B^T (Y - Z W).

Entries (docs/design.md, fact 4): the conserved quantity ``Sym(B^T Z) − ½ W W^T``;
fixed points with ``B^T Z`` invertible satisfy ``Z W = Y Π`` (``Π`` the
projector onto the row space of ``B^T Y``); FA reaches the optimum when
``r >= rank Y``, while with ``r < rank Y`` it ends more than 10% above the
optimum on at least half of generic instances (empirical) and arbitrarily far above it on
constructed ones (a separation from gradient descent, which is optimal); and,
from a small init, ``Z`` aligns with the feedback ``B^T`` (empirical). An
earlier entry claimed GD and FA find nearly orthogonal representations; it
compared first-layer weights by a Frobenius cosine, which hidden rotations
change, and under a rotation-invariant comparison (the kernels ``W^T W``) GD
and FA agree closely on the same instances, so it was replaced.

Reference: S. Garg, S. S. Vempala, *How and when random feedback works: a
case study of low-rank matrix factorization*, AISTATS 2022 (arXiv:2111.08706).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa import observables as obs
from linfa.instances import Instance
from linfa.linalg import inner
from linfa.random_matrices import haar_orthonormal
from linfa.rules import BP, FA, AbstractRule
from linfa.tasks import Task
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._numerics import bound, fro, solve, sym, t, tighter_reexamine, trajectory
from linfa.theorems._statistics import POPULATION_REASON

__all__: list[str] = []

PAPER = "Garg & Vempala 2022"
REF = "Garg & Vempala, AISTATS 2022 (arXiv:2111.08706)"


def _draw_factorization(rng: np.random.Generator, size: int, *, r_offset: tuple[int, int], scale: float,
                        **params: object) -> Instance:
    """``Y`` of rank ``k`` (singular values in [1, 2]) and width ``r = k + offset``."""
    k = _draw.integers(rng, 2, 4)
    r = max(1, k + _draw.integers(rng, *r_offset))
    n, m = _draw.integers(rng, k, 6, 2)
    s = rng.uniform(1.0, 2.0, size=(size, 1, k))
    y = (haar_orthonormal(rng, n, k, (size,)) * s) @ t(haar_orthonormal(rng, m, k, (size,)))
    task = Task.factorization(y)
    widths = (m, r, n)
    weights = _draw.network(widths).gaussian(rng, scale, batch=(size,))
    feedback = _draw.fa_feedback(rng, widths, size)
    return _draw.linear_instance(task, weights, rule="FA", feedback=feedback, size=size, rank=k, **params)


def _fg_quantity(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    assert isinstance(rule, FA)
    w, z = state
    return sym(rule.feedback[0] @ z) - 0.5 * w @ t(w)


def _check_conservation(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    ts = np.linspace(0.0, t1, 9)
    _, out, ok = trajectory(rule, task, state, t1, saveat=ts, observe={"q": _fg_quantity, "scale": _scale})
    q = out["q"]
    err = np.max(fro(q - q[:, :1]), axis=1) / np.max(out["scale"], axis=1)
    return bound(err, TOL_CONSERVED, ok, {"relative_drift": err})


def _scale(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    assert isinstance(rule, FA)
    w, z = state
    return np.asarray(fro(rule.feedback[0]) * fro(z) + 0.5 * fro(w) ** 2)


TOL_CONSERVED = 1e-8

register(Theorem(
    id="garg_vempala.conservation",
    paper=PAPER,
    title="FA on matrix factorisation conserves Sym(B^T Z) − ½ W W^T",
    statement=r"\frac{d}{dt}\Big(\operatorname{Sym}(B^T Z) - \tfrac12 W W^T\Big) = 0",
    reference=f"{REF}; docs/design.md, fact 4 (the factorisation form of FA's conservation law)",
    hypotheses=("FA on Y ≈ Z W, Σxx = I", "any initialisation (Gaussian, scale 0.5)", "any r",
                "with Σxx = I this is −½ times FA's two-layer law A A^T − B W − W^T B^T (lillicrap2016."
                "fa_conservation) with Lillicrap's A = W, W = Z and B = linfa's B_2 (the paper's B^T): "
                "not an independent law"),
    kind="theorem",
    tolerance=TOL_CONSERVED,
    tolerance_reason="dopri5 at rtol 1e-9 over t <= 3; drift relative to ‖B‖‖Z‖ + ½‖W‖², measured <= 4e-10 "
                     "(128 instances, seeds 0-3)",
    draw=lambda rng, size: _draw_factorization(rng, size, r_offset=(-1, 2), scale=0.5, t1=3.0),
    check_batch=_check_conservation,
    reexamine=tighter_reexamine(_check_conservation, TOL_CONSERVED),
    fact=4,
    derivation="fa_factorization", derivation_claim="conserved",
))


def _limit(inst: Instance, *, until: Any = None) -> tuple[FA, Task, tuple[np.ndarray, ...], np.ndarray,
                                                         dict[str, np.ndarray]]:
    """Integrate to ``t1`` (or ``until``); return the final state, the error of ``Z W = Y Π`` and the gap."""
    rule, task, state = inst.problem()
    assert isinstance(rule, FA)
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    sol = solve(rule, task, state, t1, until=until)
    ok = sol.ok
    w, z = sol.state_final
    y = task.syx
    b = rule.feedback[0]  # B^T in the paper's notation, r × n
    k = int(inst.params["rank"])  # type: ignore[arg-type]
    r = w.shape[-2]
    _, _, vt = np.linalg.svd(b @ y)
    rows = vt[..., : min(r, k), :]
    proj = t(rows) @ rows
    vel = np.sqrt(sum(fro(d) ** 2 for d in rule.dstate(task, (w, z))))
    sv = np.linalg.svd(y, compute_uv=False)
    best = 0.5 * np.sum(sv[..., r:] ** 2, axis=-1)  # Eckart–Young: the best rank-r loss
    loss = obs.loss(rule, task, (w, z))
    info = {
        "fixed_point_error": fro(z @ w - y @ proj) / fro(y),
        "velocity": vel,
        "sigma_min_BtZ": np.linalg.svd(b @ z, compute_uv=False)[..., -1],
        "loss_over_best": np.where(best > 0, loss / np.where(best > 0, best, 1.0), np.inf),
        "nse": 2 * loss / np.trace(task.syy, axis1=-2, axis2=-1),
        "t_final": np.asarray(sol.t_final),
    }
    return rule, task, (w, z), ok, info


def _check_fixed_point(inst: Instance) -> Verdict:
    _, _, _, ok, info = _limit(inst)
    margin = np.where(ok, TOL_FIXED - info["fixed_point_error"], -1.0)
    return Verdict(margin >= 0, margin, info)


def _fixed_point_error(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    """``‖Z W − Y Π‖ / ‖Y‖`` with ``Π`` the projector onto the top ``min(r, rank Y)`` rows of ``B^T Y``."""
    assert isinstance(rule, FA)
    w, z = state
    y = task.syx
    k = int(np.linalg.matrix_rank(y[(0,) * (y.ndim - 2)]))
    _, _, vt = np.linalg.svd(rule.feedback[0] @ y)
    rows = vt[..., : min(w.shape[-2], k), :]
    return np.asarray(fro(z @ w - y @ (t(rows) @ rows)) / fro(y))


def _reexamine_fixed_point(inst: Instance) -> Verdict:
    """Failing instances again, to t = 3000 or a flow norm of 1e-11, with the convergence criterion.

    A counterexample must have converged: flow norm <= 1e-9, and the distance to the predicted fixed
    point unchanged (within 1e-3 of itself) between t/2 and t, with ``B^T Z`` invertible (σ_min >= 1e-3).
    Anything else is still converging (or outside the hypotheses) and is inconclusive.
    """
    from linfa.dynamics.until import steady_state

    rule, task, state = inst.problem()
    sol = solve(rule, task, state, T_REEXAMINE, until=steady_state(1e-11))
    ok = sol.ok
    t_end = np.asarray(sol.t_final, dtype=float)
    final = sol.state_final
    err = _fixed_point_error(rule, task, final)
    half = solve(rule, task, state, float(np.max(t_end)) / 2).state_final
    err_half = _fixed_point_error(rule, task, half)
    vel = np.sqrt(sum(fro(d) ** 2 for d in rule.dstate(task, final)))
    assert isinstance(rule, FA)
    sigma = np.linalg.svd(np.asarray(rule.feedback[0] @ final[1], dtype=np.float64), compute_uv=False)[..., -1]
    holds = ok & (err <= TOL_FIXED)
    settled = ok & (vel <= 1e-9) & (np.abs(err - err_half) <= 1e-3 * err) & (sigma >= 1e-3)
    margin = np.where(holds, TOL_FIXED - err, np.where(ok, TOL_FIXED - err, -1.0))
    return Verdict(holds, np.nan_to_num(margin, nan=-1.0), {"fixed_point_error": err, "velocity": vel},
                   ~holds & ~settled,
                   f"FA on matrix factorisation still converging at t = {T_REEXAMINE:g} or flow norm 1e-11 "
                   "(a slow mode, σ_min(B^T Z) small): the fixed-point claim does not apply yet")


TOL_FIXED = 1e-6
T_REEXAMINE = 3000.0

register(Theorem(
    id="garg_vempala.fixed_point",
    paper=PAPER,
    title="FA fixed points with B^T Z invertible satisfy Z W = Y Π, Π the projector onto row(B^T Y)",
    statement=(r"B^T(Y - ZW) = 0,\ (Y - ZW)W^T = 0,\ B^T Z \text{ invertible} \implies "
               r"Z W = Y \Pi,\ \ \Pi = \text{projector onto } \operatorname{row}(B^T Y)"),
    reference=f"{REF}, analysis of the fixed points of FA (docs/design.md, fact 4)",
    hypotheses=("FA on Y ≈ Z W with r < rank Y (so B^T Z is invertible at the limit)",
                "rank Y in 2..4, singular values in [1, 2]", "Gaussian initialisation, scale 0.1",
                "integrated to t = 300 (final flow norm ~1e-9); an instance failing there is re-examined to "
                "t = 3000 (or flow norm 1e-11) and is a counterexample only if it has converged (flow norm "
                "<= 1e-9, distance unchanged between t/2 and t, σ_min(B^T Z) >= 1e-3), else inconclusive"),
    kind="theorem",
    tolerance=TOL_FIXED,
    tolerance_reason="the limit is reached to a flow norm of ~1e-9 by t = 300; the distance to the predicted "
                     "fixed point is of that order (observed <= 1e-8 relative to ‖Y‖)",
    draw=lambda rng, size: _draw_factorization(rng, size, r_offset=(-2, -1), scale=0.1, t1=300.0),
    check_batch=_check_fixed_point,
    fact=4,
    reexamine=_reexamine_fixed_point,
    derivation="fa_factorization", derivation_claim="fixed-point",
    instances=16, fast_instances=8, group_size=4,
))


def _check_optimal(inst: Instance) -> Verdict:
    from linfa.dynamics.until import when

    _, _, _, ok, info = _limit(inst, until=when(obs.nse, 0.1 * TOL_OPTIMAL))
    margin = np.where(ok, TOL_OPTIMAL - info["nse"], -1.0)
    return Verdict(margin >= 0, margin, {"nse": info["nse"], "time_to_nse_1e-4": info["t_final"]})


TOL_OPTIMAL = 1e-3


def _reexamine_optimal(inst: Instance) -> Verdict:
    """Failing instances again to t = 20000: a counterexample only if at rest (flow norm <= 1e-9) above NSE 1e-3."""
    from linfa.dynamics.until import when

    longer = Instance(inst.arrays, {**inst.params, "t1": 20000.0}, inst.seed, inst.size, inst.name)
    _, _, _, ok, info = _limit(longer, until=when(obs.nse, 0.1 * TOL_OPTIMAL))
    holds = ok & (info["nse"] <= TOL_OPTIMAL)
    at_rest = ok & (info["velocity"] <= 1e-9)
    return Verdict(holds, np.where(ok, TOL_OPTIMAL - info["nse"], -1.0), {"nse": info["nse"]},
                   ~holds & ~at_rest, "FA still moving at t = 20000 above NSE 1e-3 (a slow surplus direction)")

register(Theorem(
    id="garg_vempala.optimal_when_r_ge_rank",
    paper=PAPER,
    title="FA reaches the optimum of matrix factorisation when r >= rank Y",
    statement=r"r \ge \operatorname{rank} Y \implies \lim_{t\to\infty} \lVert Y - Z W\rVert_F = 0",
    reference=f"{REF}, main convergence result for r >= rank(Y)",
    hypotheses=("FA on Y ≈ Z W, r in rank Y .. rank Y + 2", "rank Y in 2..4, singular values in [1, 2]",
                "Gaussian initialisation, scale 0.1",
                "run until NSE <= 1e-4, at most to t = 2000 (an instance still above NSE 1e-3 then fails)"),
    kind="theorem",
    tolerance=TOL_OPTIMAL,
    tolerance_reason="the limit is asymptotic: slow when r > rank Y (surplus hidden directions decay "
                     "algebraically) and when σ_min(B^T Y) is small (time ~ 1/σ_min²); the horizon t = 2000 "
                     "covered all 384 stress instances (slowest reached NSE 1e-4 at t ≈ 460)",
    draw=lambda rng, size: _draw_factorization(rng, size, r_offset=(0, 2), scale=0.1, t1=2000.0),
    check_batch=_check_optimal,
    reexamine=_reexamine_optimal,
    fact=4,
    derivation="fa_factorization", derivation_claim="optimal-if-rank",
    instances=16, fast_instances=8, group_size=4,
))


def _predicted_loss_ratio(task: Task, b: np.ndarray) -> np.ndarray:
    """``‖Y(I − Π)‖² / Σ_{i>r} σ_i(Y)²``: the loss of the fixed point ``Z W = Y Π`` over the best rank-``r`` loss.

    ``Π`` projects onto the row space of ``B^T Y`` (``b`` is linfa's ``B_2``, shape ``(K, r, n)``, with
    ``r < rank Y``); shape ``(K,)``.
    """
    y = task.syx
    r = b.shape[-2]
    _, _, vt = np.linalg.svd(b @ y)
    rows = vt[..., :r, :]
    resid = y - y @ t(rows) @ rows
    sv = np.linalg.svd(y, compute_uv=False)
    return np.asarray(fro(resid) ** 2 / np.sum(sv[..., r:] ** 2, axis=-1))


def _check_suboptimal(inst: Instance) -> Verdict:
    """Generic instances (Gaussian ``B``): FA's limit is the fixed point ``Z W = Y Π``, > 10% above the optimum.

    The entry states what *generic* instances do, not how far FA can be from optimal: its instance holds
    when the limit's loss ratio equals the predicted ``‖Y(I − Π)‖²/Σ_{i>r}σ_i²`` (to 1e-6) and exceeds 1.1,
    and the claim is that at least half of the instances hold. How far above the optimum FA can end is
    the construction of ``garg_vempala.far_from_optimal`` (ratio ≈ s_1²).
    """
    rule, task, _, ok, info = _limit(inst)
    predicted = _predicted_loss_ratio(task, rule.feedback[0])
    converged = ok & (info["fixed_point_error"] <= TOL_FIXED)
    agrees = np.abs(info["loss_over_best"] / predicted - 1.0) <= 1e-6  # the limit is the predicted one
    margin = np.where(converged & agrees, info["loss_over_best"] - (1.0 + GAP), -1.0)
    return Verdict(margin > 0, np.nan_to_num(margin, nan=-1.0),
                   {**info, "predicted_loss_over_best": predicted},
                   ok & ~converged, "not at the fixed point Z W = Y Π by t = 300")


GAP = 0.1
FRACTION_SUBOPTIMAL = 0.5

register(Theorem(
    id="garg_vempala.suboptimal_when_r_lt_rank",
    paper=PAPER,
    title="With r < rank Y, FA from a generic (Gaussian) B ends > 10% above the optimum on at least half the instances",
    statement=(r"r < \operatorname{rank} Y,\ B \text{ Gaussian}:\quad "
               r"\frac{\lim_t \tfrac12\lVert Y - ZW\rVert_F^2}{\tfrac12\sum_{i > r}\sigma_i(Y)^2} = "
               r"\frac{\lVert Y(I - \Pi)\rVert_F^2}{\sum_{i > r}\sigma_i^2} > 1.1"
               r"\ \text{ on at least half of the instances}"),
    reference=f"{REF}, separation result for r < rank(Y) (generic instances; garg_vempala.far_from_optimal has "
              "the construction that makes the ratio as large as wanted)",
    hypotheses=("FA on Y ≈ Z W, rank Y = k in 2..4 with singular values U[1, 2], r in k − 2 .. k − 1 (r >= 1)",
                "generic instances, not a construction: Gaussian B and Gaussian initialisation, scale 0.1",
                "the limit must be the predicted fixed point Z W = Y Π (its loss ratio equal to "
                "‖Y(I − Π)‖²/Σ_{i>r}σ_i² to 1e-6); an instance not at the fixed point by t = 300 is inconclusive",
                "compared with the Eckart–Young optimum (which gradient descent reaches)"),
    kind="empirical",
    fraction=FRACTION_SUBOPTIMAL,
    tolerance=GAP,
    tolerance_reason="a loss ratio at least 10% above 1, far beyond integration error (the realised ratio "
                     "matches the predicted one to ~1e-14). At least half of the instances: " + POPULATION_REASON
                     + "; measured 127 of 179 decided (default runs, seeds 0-11; Clopper–Pearson bound 0.60; "
                     "ratios: median 1.22, smallest 1.0003, 172 of 179 above 1.01): a generic B is strictly "
                     "sub-optimal almost surely, but often by little",
    draw=lambda rng, size: _draw_factorization(rng, size, r_offset=(-2, -1), scale=0.1, t1=300.0),
    check_batch=_check_suboptimal,
    fact=4,
    derivation=None,
    instances=71, fast_instances=61, group_size=3,
))


def _kernel_similarity(wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """Cosine of the input kernels ``W^T W``: linear CKA of the hidden codes ``h = W x`` (whitened x).

    Invariant under hidden rotations ``W → R W`` (which leave the network function unchanged with
    ``Z → Z R^T``), unlike a cosine of the weights themselves.
    """
    ka, kb = t(wa) @ wa, t(wb) @ wb
    return inner(ka, kb) / np.maximum(fro(ka) * fro(kb), 1e-300)


def _alignment_terms(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    """``(tr(B Z), ½‖W‖², ‖Z‖ ‖B‖)`` stacked on the last axis (``B`` is linfa's ``B_2``, the paper's ``B^T``)."""
    assert isinstance(rule, FA)
    w, z = state
    b = rule.feedback[0]
    return np.stack([np.trace(b @ z, axis1=-2, axis2=-1), 0.5 * fro(w) ** 2, fro(z) * fro(b)], axis=-1)


def _check_feedback_alignment(inst: Instance) -> Verdict:
    """The trace of the conservation law, ``tr(B Z) = ½‖W‖² + tr C(0)``, gives the alignment exactly.

    Holds: the identity along the trajectory (relative error <= TOL_TRACE) and, at ``t1``,
    ``½‖W‖² > |tr C(0)|`` so that ``cos(Z^T, B) >= (½‖W‖² − |tr C(0)|) / (‖Z‖‖B‖) > 0``.
    Inconclusive: the identity holds but ``W`` has not outgrown ``|tr C(0)|`` (the sign is not implied).
    """
    rule, task, state = inst.problem()
    assert isinstance(rule, FA)
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    ts = np.linspace(0.0, t1, 11)
    sol = solve(rule, task, state, t1, saveat=ts, observe={"terms": _alignment_terms, "nse": obs.nse})
    bp = solve(BP(), task, state, t1)
    ok = sol.ok
    terms = np.asarray(sol.observed["terms"])  # (K, S, 3)
    trbz, half_w2, norms = terms[..., 0], terms[..., 1], terms[..., 2]
    trc0 = trbz[:, 0] - half_w2[:, 0]
    gap = np.max(np.abs(trbz - half_w2 - trc0[:, None]) / np.maximum(half_w2 + np.abs(trbz), 1e-300), axis=1)
    cos = trbz / np.maximum(norms, 1e-300)
    bound_end = (half_w2[:, -1] - np.abs(trc0)) / np.maximum(norms[:, -1], 1e-300)
    decided = half_w2[:, -1] > np.abs(trc0)
    identity = ok & (gap <= TOL_TRACE)
    holds = identity & decided & (cos[:, -1] >= bound_end) & (cos[:, -1] > 0)
    margin = np.where(identity, np.where(decided, np.minimum(TOL_TRACE - gap, cos[:, -1]), 0.0), -1.0)
    nse = np.asarray(sol.observed["nse"])
    return Verdict(holds, np.nan_to_num(margin, nan=-1.0), {
        "cos_Z_Bt_start": cos[:, 0], "cos_Z_Bt_end": cos[:, -1], "cos_lower_bound_end": bound_end,
        "trace_identity_error": gap, "abs_trC0_over_half_W2_end": np.abs(trc0) / np.maximum(half_w2[:, -1], 1e-300),
        "nse_fa": nse[:, -1], "nse_bp": obs.nse(BP(), task, bp.state_final),
        "kernel_similarity_fa_bp": _kernel_similarity(sol.state_final[0], bp.state_final[0]),
    }, identity & ~decided, "½‖W(t1)‖² <= |tr C(0)|: W has not outgrown the initial conserved trace, so the "
       "law does not fix the sign of the alignment")


TOL_TRACE = 1e-8


def _draw_feedback_alignment(rng: np.random.Generator, size: int) -> Instance:
    return _draw_factorization(rng, size, r_offset=(0, 10), scale=0.01, t1=50.0)


register(Theorem(
    id="garg_vempala.feedback_alignment",
    paper=PAPER,
    title="FA on matrix factorisation: Z aligns with the feedback B^T exactly as the conservation law implies",
    statement=(r"\cos\angle(Z^T, B)(t) = \frac{\tfrac12\lVert W(t)\rVert_F^2 + \operatorname{tr} C}"
               r"{\lVert Z(t)\rVert_F \lVert B\rVert_F} \ge "
               r"\frac{\tfrac12\lVert W(t)\rVert_F^2 - |\operatorname{tr} C|}{\lVert Z(t)\rVert_F\lVert B\rVert_F}"
               r" > 0\ \text{once}\ \tfrac12\lVert W\rVert_F^2 > |\operatorname{tr} C|,\quad "
               r"C = \operatorname{Sym}(B Z) - \tfrac12 W W^T\ \text{(conserved)}"),
    reference=f"{REF}, the alignment of the forward weights with the feedback under FA, as the trace of the "
              "conserved quantity (garg_vempala.conservation) implies it",
    hypotheses=("FA on Y ≈ Z W, Σxx = I, r in rank Y .. rank Y + 10, rank Y in 2..4, singular values in [1, 2]",
                "Gaussian initialisation, scale 0.01 (so |tr C| = O(1e-4)); Gaussian B (linfa's B_2, the "
                "paper's B^T, r × n)",
                "trained to t = 50; cos(Z^T, B) the Frobenius cosine; B Z is r × r",
                "an instance where ½‖W(50)‖² <= |tr C| is inconclusive (the law does not fix the sign there)",
                "replaces a fitted threshold (cos >= 0.5 on 75% of instances) by the exact consequence of the law; "
                "the NSE reached and the kernel similarity of FA's and GD's representations are in details",
                "negative control (tests): from a large init (scale 2) |tr C| is large and the bound says little"),
    kind="theorem",
    tolerance=TOL_TRACE,
    tolerance_reason="an identity along the trajectory: dopri5 at rtol 1e-9 over t <= 50, relative to "
                     "½‖W‖² + |tr(B Z)|; the sign then follows exactly",
    draw=_draw_feedback_alignment,
    check_batch=_check_feedback_alignment,
    derivation="fa_factorization", derivation_claim="conserved",
    instances=24, fast_instances=8, group_size=4,
))


# ------------------------------------------------------- constructed instances with r = 1 < rank Y = 2
def _draw_constructed(rng: np.random.Generator, size: int, *, s1: float, t1: float) -> Instance:
    """``Y = s1 u1 v1^T + u2 v2^T`` (n, m in 2..5) and a rank-1 FA network whose feedback points along ``u2``.

    ``B = (u2 + ε g)^T`` with ``g`` a random unit vector and ``ε`` in [0.01, 0.05]: the row space of
    ``B Y`` is then close to ``v2``, the *second* singular direction, so the fixed point ``Z W = Y Π``
    keeps the weaker mode and drops the stronger one.
    """
    n, m = _draw.integers(rng, 2, 5, 2)
    u = haar_orthonormal(rng, n, 2, (size,))
    v = haar_orthonormal(rng, m, 2, (size,))
    s = np.array([s1, 1.0])
    y = (u * s) @ t(v)
    g = rng.standard_normal((size, n))
    g /= np.linalg.norm(g, axis=-1, keepdims=True)
    eps = rng.uniform(0.01, 0.05, size=(size, 1))
    b = (u[..., 1] + eps * g)[:, None, :]  # (size, 1, n): linfa's B_2, the paper's B^T
    task = Task.factorization(y)
    weights = _draw.network((m, 1, n)).gaussian(rng, 0.1, batch=(size,))
    return _draw.linear_instance(task, weights, rule="FA", feedback=(b,), size=size, rank=2, t1=t1, s1=s1)


def _check_far_from_optimal(inst: Instance) -> Verdict:
    rule, task, _, ok, info = _limit(inst)
    predicted = _predicted_loss_ratio(task, rule.feedback[0])
    converged = ok & (info["fixed_point_error"] <= TOL_FIXED)
    agrees = np.abs(info["loss_over_best"] / predicted - 1.0) <= 1e-6  # the limit is the predicted one
    holds = converged & agrees & (info["loss_over_best"] >= RATIO_MIN)
    margin = np.where(converged, info["loss_over_best"] / RATIO_MIN - 1.0, -1.0)
    return Verdict(holds, np.nan_to_num(margin, nan=-1.0),
                   {**info, "predicted_loss_over_best": predicted,
                    "realised_over_predicted": info["loss_over_best"] / predicted},
                   ok & ~converged, "not at the fixed point Z W = Y Π by t = 300")


RATIO_MIN = 50.0

register(Theorem(
    id="garg_vempala.far_from_optimal",
    paper=PAPER,
    title="With r < rank Y, FA can end arbitrarily far from optimal: a construction with loss ≥ 50× the optimum",
    statement=(r"Y = s_1 u_1 v_1^T + u_2 v_2^T,\ r = 1,\ B \approx u_2^T:\quad "
               r"\frac{\lim_t \tfrac12\lVert Y - ZW\rVert^2}{\tfrac12\sigma_2(Y)^2} = "
               r"\frac{\lVert Y(I - \Pi)\rVert^2}{\sigma_2^2} \approx s_1^2 \ge 50\ \ (s_1 = 10)"),
    reference=f"{REF}: FA's fixed point keeps the modes B selects, not the largest ones; the ratio grows as "
              "s_1² (unbounded as s_1 → ∞ and B → u_2^T)",
    hypotheses=("FA on Y ≈ Z W, r = 1, rank Y = 2 with singular values s_1 = 10 and 1, n, m in 2..5",
                "B = (u_2 + ε g)^T, g a random unit vector, ε in [0.01, 0.05]: the predicted ratio "
                "‖Y(I − Π)‖²/σ_2² is 88-100 (reported in details); the realised ratio must equal it to 1e-6",
                "Gaussian initialisation, scale 0.1; integrated to t = 300; an instance not at the fixed point "
                "then is inconclusive",
                "gradient descent reaches the optimum ½σ_2² (ratio 1) on the same instances"),
    kind="theorem",
    tolerance=RATIO_MIN,
    tolerance_reason="a ratio of losses: the construction predicts 88-100 and the integration error of the "
                     "limit is ~1e-9, so 50 is decided far from the threshold",
    draw=lambda rng, size: _draw_constructed(rng, size, s1=10.0, t1=300.0),
    check_batch=_check_far_from_optimal,
    derivation=None,
    instances=8, fast_instances=4, group_size=4,
))


def _check_different_representations(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    t1 = float(inst.params["t1"])  # type: ignore[arg-type]
    fa = solve(rule, task, state, t1)
    gd = solve(BP(), task, state, t1)
    ok = fa.ok & gd.ok
    loss_fa = obs.loss(rule, task, fa.state_final)
    loss_gd = obs.loss(BP(), task, gd.state_final)
    ratio = loss_fa / np.maximum(loss_gd, 1e-300)
    similarity = _kernel_similarity(fa.state_final[0], gd.state_final[0])
    margin = np.minimum(LOSS_RATIO_MAX - ratio, SIMILARITY_MAX - similarity)
    return Verdict(ok & (margin >= 0), np.where(ok, margin, -1.0),
                   {"loss_fa_over_gd": ratio, "kernel_similarity_fa_gd": similarity})


LOSS_RATIO_MAX = 1.11
SIMILARITY_MAX = 0.01

register(Theorem(
    id="garg_vempala.different_representations",
    paper=PAPER,
    title="With r < rank Y, FA and GD can reach nearly equal error with nearly orthogonal representations",
    statement=(r"Y = 1.05\,u_1 v_1^T + u_2 v_2^T,\ r = 1,\ B \approx u_2^T:\quad "
               r"\frac{L^{FA}(\infty)}{L^{GD}(\infty)} \le 1.11,\quad "
               r"\frac{\langle W_{FA}^T W_{FA}, W_{GD}^T W_{GD}\rangle}{\lVert\cdot\rVert\lVert\cdot\rVert} \le 0.01"),
    reference=f"{REF}: FA and GD can learn very different representations; restored here in the regime "
              "r < rank Y with a rotation-invariant comparison (linear CKA of h = W x), after the r >= rank Y "
              "version (weight cosine, not rotation invariant) was retired",
    hypotheses=("FA and GD (BP) on Y ≈ Z W from the same Gaussian initialisation (scale 0.1), r = 1, "
                "rank Y = 2 with singular values 1.05 and 1", "B = (u_2 + ε g)^T, ε in [0.01, 0.05]",
                "GD keeps the top mode v_1, FA the mode v_2 B selects: losses ½ and ½·1.05² "
                "(ratio ≈ 1.10), kernels nearly orthogonal (similarity ~ε²)", "trained to t = 300"),
    kind="theorem",
    tolerance=SIMILARITY_MAX,
    tolerance_reason="the construction predicts a loss ratio 1.1025 and a similarity O(ε²) <= 2.5e-3 at the "
                     "limits; 1.11 and 0.01 leave room for the finite horizon",
    draw=lambda rng, size: _draw_constructed(rng, size, s1=1.05, t1=300.0),
    check_batch=_check_different_representations,
    instances=8, fast_instances=4, group_size=4,
))
