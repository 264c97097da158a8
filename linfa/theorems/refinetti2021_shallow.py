"""Refinetti, d'Ascoli, Ohana & Goldt (2021): align, then memorise — shallow teacher–student networks.

A two-layer student ``ŷ = Σ_k v_k g(λ_k)``, ``g = erf(·/√2)``, learns a teacher with M
hidden units from one fresh Gaussian sample per step; as N → ∞ the overlaps
``Q, R`` and the second layer ``v`` follow the ODEs of :mod:`linfa.teacher_student`
(Saad & Solla 1995; Goldt et al. 2019), integrated here by :func:`linfa.teacher_student.solve`.
DFA replaces ``v_k`` in the first-layer update by a fixed random ``b_k``. Entries:

* ``align_then_memorise`` — under DFA from small weights, ``cos(v, b)`` reaches 90 % of its
  final value while :math:`\\epsilon_g` is still within 10 % of its initial value; then
  :math:`\\epsilon_g` falls below a tenth of it;
* ``degeneracy_breaking`` — K > M = 1: BP and DFA both reach (near) zero error, and DFA's second
  layer ends more aligned with ``b`` than BP's from the same initialisation. For M = 1 the
  alignment-maximising zero-error solution has :math:`\\cos(v, b) = 1` (every unit copies
  :math:`\\pm w^*`, with :math:`\\epsilon_k = \\operatorname{sign}(b_k)` and
  :math:`v = b\\, v^*/\\lVert b\\rVert_1`, using that erf is odd); the check reports
  :math:`1 - \\cos(v, b)` of DFA's solution;
* ``bp_realisable`` — BP from small weights reaches :math:`\\epsilon_g \\to 0` for K ≥ M without noise;
* ``ode_limit`` — the ODE is the N → ∞ limit of finite-N SGD: the gap in the order parameters
  and :math:`\\epsilon_g` between simulations and the ODE from the same initial weights shrinks
  with N (as :math:`N^{-1/2}`);
* ``ode_matches_mean_update`` — the ODE's right-hand side and :math:`\\epsilon_g` equal the Gaussian
  means of one SGD step's change and of the squared error, computed by :func:`mean_update` from
  the per-sample update alone (a joint Gauss–Hermite grid over all fields, no code shared with
  :mod:`linfa.teacher_student`), for BP and DFA through each route to the averages (erf closed
  forms, linear, cubature). This pins every term of the ODE (the η² and σ² terms included)
  where the first four, qualitative, claims would not notice a wrong one.

The first four are population claims (kind ``"empirical"``): each claims that at least 90 % of its
instances hold, judged like every empirical entry by the one-sided exact binomial test at level
1e-3 (:mod:`linfa.theorems._statistics`); each ``tolerance_reason`` quotes the measured rate.
With 24 instances (13 with ``--fast``, where the test rejects a claim that holds on only 45 % of
instances with probability 0.8) a run tolerates 8 failures (5), and ``ode_limit``'s 17 (13)
tolerate 6 (5), more than its group of 4 instances sharing ``K`` and ``M``; at the measured rates
(0.97-1.0) and independent instances a run fails with probability below 1e-6.
``ode_matches_mean_update`` is a theorem (every instance must hold).

Reference: M. Refinetti, S. d'Ascoli, R. Ohana, S. Goldt, *Align, then memorise: the dynamics
of learning with feedback alignment*, ICML 2021, section 3 (shallow networks); D. Saad,
S. A. Solla, Phys. Rev. E 52, 4225 (1995); S. Goldt et al., NeurIPS 2019.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from linfa import teacher_student as ts
from linfa.instances import Instance
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._statistics import POPULATION_REASON

__all__: list[str] = []

PAPER = "Refinetti et al. 2021"
REF = "Refinetti, d'Ascoli, Ohana & Goldt, ICML 2021, sec. 3 (shallow networks, teacher-student ODEs)"
FACT = "docs/design.md, fact 9"
#: The claimed population fraction of every entry below (measured rates 0.97-1.0, Clopper–Pearson bounds >= 0.93).
FRACTION = 0.9
#: Dimension of the weights drawn to make consistent initial order parameters.
N_DRAW = 100
#: Scale of the small initial weights (first and second layer).
INIT = 1e-2
#: Tolerances of the ODE solves (tsit5): the claims are qualitative, far above this accuracy.
RTOL, ATOL = 1e-7, 1e-10
METHOD = "tsit5"


def _small_init(rng: np.random.Generator, size: int, k: int, m: int, *, eta: float) -> Instance:
    """Order parameters of small random student weights and a random teacher (``T ≈ I``, ``v* = 1``)."""
    wstar = rng.standard_normal((size, m, N_DRAW))
    w = INIT * rng.standard_normal((size, k, N_DRAW))
    Q, R, T = ts.order_parameters(w, wstar)
    arrays = {"Q": Q, "R": R, "T": T, "v": INIT * rng.standard_normal((size, k)), "vstar": np.ones((size, m)),
              "b": rng.standard_normal((size, k)), "eta": np.full(size, eta)}
    return Instance(arrays, {"K": k, "M": m}, size=size)


def _problem(inst: Instance, rule: str) -> ts.Problem:
    a = inst.arrays
    return ts.Problem(a["Q"], a["R"], a["T"], a["v"], a["vstar"], rule=rule, b=a["b"], eta=a["eta"])


def _solve(inst: Instance, rule: str, alpha: float, saveat: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    sol = ts.solve(_problem(inst, rule), alpha, saveat=saveat, observe=["eg", "alignment"], rtol=RTOL, atol=ATOL,
                   method=METHOD)
    return dict(sol.observed), np.asarray(sol.ok)


# ----------------------------------------------------------------------- align, then memorise
ALIGNED, NEAR, FALLEN = 0.9, 0.9, 0.1
ALPHA_ATM = 1000.0


def _draw_atm(rng: np.random.Generator, size: int) -> Instance:
    return _small_init(rng, size, 2, 2, eta=float(rng.uniform(0.2, 0.8)))


def _check_atm(inst: Instance) -> Verdict:
    return atm_verdict(inst, "DFA")


def atm_verdict(inst: Instance, rule: str) -> Verdict:
    """The align-then-memorise verdict of ``rule`` (``"BP"`` is the control: its v need not turn to b)."""
    alphas = np.concatenate([[0.0], np.logspace(-2, np.log10(ALPHA_ATM), 121)])
    obs, ok = _solve(inst, rule, ALPHA_ATM, alphas)
    eg, cos = obs["eg"], obs["alignment"]
    final = cos[:, -1]
    reached = cos >= ALIGNED * final[:, None]
    first = np.argmax(reached, axis=1)  # first save with 90 % of the final alignment
    eg_then = eg[np.arange(eg.shape[0]), first] / eg[:, 0]
    eg_end = eg[:, -1] / eg[:, 0]
    margin = np.minimum.reduce([eg_then - NEAR, FALLEN - eg_end, final - 0.5])
    margin = np.where(ok, margin, -1.0)
    # v already within 90 % of its final alignment at α = 0 (a chance draw: K = 2, so about one
    # in seven): there is no alignment phase to observe, and the ordering would hold vacuously.
    # Undecided, unless the run failed or never aligned (final < 0.5), which is a counterexample.
    vacuous = ok & (first == 0) & (final >= 0.5)
    return Verdict((margin >= 0) & ~vacuous, margin, {"alpha_aligned": alphas[first], "eg_ratio_when_aligned": eg_then,
                                         "eg_ratio_final": eg_end, "final_alignment": final},
                   vacuous, "v starts within 90% of its final alignment with b: no alignment phase to observe")


register(Theorem(
    id="refinetti2021_shallow.align_then_memorise",
    paper=PAPER,
    title="DFA in a shallow teacher–student network: v aligns with b first, then ε_g falls",
    statement=(r"\alpha_A = \min\{\alpha : \cos(v(\alpha), b) \ge 0.9\cos(v(\alpha_1), b)\}:\ "
               r"\epsilon_g(\alpha_A) \ge 0.9\,\epsilon_g(0),\ \ \epsilon_g(\alpha_1) \le 0.1\,\epsilon_g(0),\ "
               r"\cos(v(\alpha_1), b) \ge 0.5"),
    reference=REF + ", fig. 2 (alignment phase, then memorisation phase); " + FACT,
    hypotheses=("erf activation, K = M = 2, no noise, v* = 1, T = w*w*ᵀ/N of a Gaussian teacher (N = 100)",
                "small initial weights (std 1e-2, both layers), DFA feedback b ~ N(0, I_K)",
                "η ~ U(0.2, 0.8), η² terms kept, α_1 = 1000, ODE by tsit5 at rtol 1e-7 saved on 121 log-spaced times",
                "an instance whose v is within 90 % of its final alignment already at α = 0 is inconclusive"),
    kind="empirical",
    fact=9,
    fraction=FRACTION,
    tolerance=ALIGNED,
    tolerance_reason="the thresholds (90 % of the final alignment, ε_g within 10 %, then below 10 %) formalise "
                     "'most', 'near' and 'falls' and were fixed before any run. At least 90% of instances: "
                     + POPULATION_REASON + "; measured 3843 of 3887 decided (default runs, seeds 0-199; "
                     "Clopper–Pearson bound 0.982). 913 of 4800 were inconclusive: v started within 90 % of its "
                     "final alignment (a chance draw with K = 2), so no alignment phase could be observed; "
                     "the fast count (16) keeps the test's power with about one in six undecided",
    draw=_draw_atm,
    check_batch=_check_atm,
    group_size=8,
    instances=24,
    fast_instances=16,
))


# ----------------------------------------------------------------------- degeneracy breaking
ALPHA_DEG = 1000.0
ZERO_ERROR = 1e-2


def _draw_deg(rng: np.random.Generator, size: int) -> Instance:
    k = int(rng.integers(2, 4))
    return _small_init(rng, size, k, 1, eta=float(rng.uniform(0.2, 0.8)))


def _check_deg(inst: Instance) -> Verdict:
    saveat = np.array([0.0, ALPHA_DEG])
    dfa, ok_d = _solve(inst, "DFA", ALPHA_DEG, saveat)
    bp, ok_b = _solve(inst, "BP", ALPHA_DEG, saveat)
    eg_d = dfa["eg"][:, -1] / dfa["eg"][:, 0]
    eg_b = bp["eg"][:, -1] / bp["eg"][:, 0]
    cos_d, cos_b = dfa["alignment"][:, -1], bp["alignment"][:, -1]
    margin = np.minimum.reduce([cos_d - cos_b, ZERO_ERROR - eg_d, ZERO_ERROR - eg_b])
    margin = np.where(ok_d & ok_b, margin, -1.0)
    return Verdict(margin > 0, margin, {"cos_dfa": cos_d, "cos_bp": cos_b, "gap_to_max_alignment": 1.0 - cos_d,
                                         "eg_ratio_dfa": eg_d, "eg_ratio_bp": eg_b})


register(Theorem(
    id="refinetti2021_shallow.degeneracy_breaking",
    paper=PAPER,
    title="K > M: among zero-error solutions DFA ends with v more aligned with b than BP",
    statement=(r"\epsilon_g^{\mathrm{DFA}}(\alpha_1),\ \epsilon_g^{\mathrm{BP}}(\alpha_1) \le 10^{-2}\epsilon_g(0),\ "
               r"\cos(v^{\mathrm{DFA}}(\alpha_1), b) > \cos(v^{\mathrm{BP}}(\alpha_1), b);\ "
               r"\max_{\epsilon_g = 0}\cos(v, b) = 1\ (M = 1)"),
    reference=REF + " (degeneracy breaking by the alignment phase); " + FACT,
    hypotheses=("erf activation, K in {2, 3} > M = 1, no noise, v* = 1",
                "the same small initial weights (std 1e-2) for BP and DFA, b ~ N(0, I_K)",
                "η ~ U(0.2, 0.8), α_1 = 1000, ODE by tsit5 at rtol 1e-7"),
    kind="empirical",
    fact=9,
    fraction=FRACTION,
    tolerance=ZERO_ERROR,
    tolerance_reason="'zero error' read as a 100-fold fall of ε_g by α = 1000 (fixed before any run); 'more "
                     "aligned' is strict. At least 90% of instances: " + POPULATION_REASON + "; measured "
                     "283 of 288 (default runs, seeds 0-11; Clopper–Pearson bound 0.94). Details report "
                     "1 - cos(v_DFA, b), the distance to the maximum alignment",
    draw=_draw_deg,
    check_batch=_check_deg,
    group_size=8,
    instances=24,
    fast_instances=13,
))


# ----------------------------------------------------------------------- BP reaches zero error
ALPHA_BP = 1000.0
BP_ZERO = 1e-3


def _draw_bp(rng: np.random.Generator, size: int) -> Instance:
    m = int(rng.integers(1, 3))
    k = m + int(rng.integers(0, 2))
    return _small_init(rng, size, k, m, eta=float(rng.uniform(0.2, 0.8)))


def _check_bp(inst: Instance) -> Verdict:
    obs, ok = _solve(inst, "BP", ALPHA_BP, np.array([0.0, ALPHA_BP]))
    ratio = obs["eg"][:, -1] / obs["eg"][:, 0]
    margin = np.where(ok, np.log10(BP_ZERO) - np.log10(np.maximum(ratio, 1e-300)), -1.0)
    return Verdict(margin >= 0, margin, {"eg_ratio": ratio})


register(Theorem(
    id="refinetti2021_shallow.bp_realisable",
    paper=PAPER,
    title="BP from small weights learns a realisable erf teacher (K ≥ M, no noise): ε_g → 0",
    statement=r"K \ge M,\ \sigma = 0:\quad \epsilon_g^{\mathrm{BP}}(\alpha_1) \le 10^{-3}\,\epsilon_g(0)",
    reference="Saad & Solla, Phys. Rev. E 52 (1995) (plateau, then specialisation); " + REF + "; " + FACT,
    hypotheses=("erf activation, M in {1, 2}, K in {M, M + 1}, no noise, v* = 1",
                "small initial weights (std 1e-2)", "η ~ U(0.2, 0.8), η² terms kept, α_1 = 1000"),
    kind="empirical",
    fact=9,
    fraction=FRACTION,
    tolerance=BP_ZERO,
    tolerance_reason="ε_g → 0 read as a 1000-fold fall by α = 1000 (past the symmetric plateau of small init; "
                     "fixed before any run; some draws may still sit on the plateau). At least 90% of instances: "
                     + POPULATION_REASON + "; measured 280 of 288 "
                     "(default runs, seeds 0-11; Clopper–Pearson bound 0.93)",
    draw=_draw_bp,
    check_batch=_check_bp,
    group_size=8,
    instances=24,
    fast_instances=13,
))


# ----------------------------------------------------------------------- the ODE as the N → ∞ limit
N_SMALL, N_LARGE, SEEDS, ALPHA_SIM = 100, 800, 32, 0.5
RATIO = 0.7  # expected (N_SMALL / N_LARGE) ** 0.5 = 0.35; a wrong ODE gives about 1


def _draw_limit(rng: np.random.Generator, size: int) -> Instance:
    k, m = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    arrays = {"eta": rng.uniform(0.5, 1.0, size), "seed": rng.integers(0, 2**31, size).astype(float),
              "dfa": (np.arange(size) % 2).astype(float)}  # BP and DFA in turn: a group has both
    return Instance(arrays, {"K": k, "M": m}, size=size)


def _gap(inst: Instance, n: int) -> np.ndarray:
    """Median over seeds of the RMS gap between SGD at size ``n`` and the ODE, per instance, shape (size,).

    The RMS runs over the saved times and every entry of ``Q``, ``R``, ``v`` and ``ε_g`` (the
    order parameters determine ε_g; many entries average the noise of one run). The median: a
    few seeds with a large second layer dominate a mean.
    """
    k, m = int(inst.params["K"]), int(inst.params["M"])  # type: ignore[arg-type]
    alphas = np.linspace(0.0, ALPHA_SIM, 4)
    out = []
    for i in range(len(inst)):
        rng = np.random.default_rng([int(inst.arrays["seed"][i]), n])
        rule = "DFA" if inst.arrays["dfa"][i] else "BP"
        eta = float(inst.arrays["eta"][i])
        w, wstar = ts.initial_weights(rng, n, k, m, size=SEEDS, scale=0.5)
        v, vstar, b = rng.standard_normal((SEEDS, k)), np.ones((SEEDS, m)), rng.standard_normal((SEEDS, k))
        sim = ts.simulate(w, wstar, v, vstar, alphas, rng, rule=rule, b=b, eta=eta)
        problem = ts.Problem.from_weights(w, wstar, v, vstar, rule=rule, b=b, eta=eta)
        sol = ts.solve(problem, ALPHA_SIM, saveat=alphas, observe=["eg"], rtol=RTOL, atol=ATOL, method=METHOD)
        q, r, vv = sol.states
        diffs = [(sim.Q - q).reshape(SEEDS, len(alphas), -1), (sim.R - r).reshape(SEEDS, len(alphas), -1),
                 sim.v - vv, (ts.generalisation_error(sim.order_parameters()) - sol.observed["eg"])[..., None]]
        sq = np.concatenate([d[:, 1:] for d in diffs], axis=-1) ** 2
        out.append(np.median(np.sqrt(np.mean(sq, axis=(1, 2)))))
    return np.array(out)


def _check_limit(inst: Instance) -> Verdict:
    small, large = _gap(inst, N_SMALL), _gap(inst, N_LARGE)
    ratio = large / small
    margin = np.nan_to_num(RATIO - ratio, nan=-1.0)
    return Verdict(margin >= 0, margin, {"gap_small_n": small, "gap_large_n": large, "ratio": ratio})


register(Theorem(
    id="refinetti2021_shallow.ode_limit",
    paper=PAPER,
    title="The order-parameter ODE is the N → ∞ limit of online SGD (gap in ε_g ∝ N^{-1/2})",
    statement=(r"G(N) = \operatorname{med}_{\rm seeds}\,\mathrm{rms}_{\alpha,\,(Q, R, v, \epsilon_g)}"
               r"(\mathrm{SGD}_N - \mathrm{ODE}):\quad G(800) \le 0.7\,G(100)"),
    reference="Saad & Solla 1995; Goldt et al., NeurIPS 2019 (the ODEs as the thermodynamic limit); " + REF + "; "
              + FACT,
    hypotheses=("erf activation, K, M in {1, 2}, BP and DFA in turn, η ~ U(0.5, 1), no noise",
                "32 seeds of Gaussian initial weights (student std 0.5) at N = 100 and N = 800, α <= 0.5",
                "the ODE from each seed's own initial order parameters"),
    kind="empirical",
    fact=9,
    fraction=FRACTION,
    tolerance=RATIO,
    tolerance_reason="expected ratio (100/800)^{1/2} = 0.35 (fluctuations of one run are O(N^{-1/2}); an "
                     "O(1/N) bias only lowers it); 0.7 leaves room for the noise of a 32-seed median; a wrong ODE "
                     "leaves an O(1) gap, ratio ~ 1 (a 50 % error in the I3 terms fails). At least 90% of "
                     "instances: " + POPULATION_REASON + "; 17 instances (13 with --fast) tolerate 6 failures "
                     "(5), more than a group of 4; BP and DFA take turns, so a fault in one rule's SGD fails half of "
                     "them; measured 203 of 204 (default runs, seeds 0-11; Clopper–Pearson bound 0.96)",
    draw=_draw_limit,
    check_batch=_check_limit,
    group_size=4,
    instances=17,
    fast_instances=13,
))


# ----------------------------------------------------------------------- the ODE is the mean step
#: The three routes to the Gaussian averages the ODE can take, one per instance in turn: the closed
#: forms for erf, the linear branch, and Gauss–Hermite cubature (erf given as a pair of callables).
ROUTES = ("erf", "linear", "cubature")
#: Cubature points per dimension of the cubature route (its quadrature error, not the claim, sets its tolerance).
CUBATURE_POINTS = 16
#: Gauss–Hermite points per dimension of the reference's joint quadrature over all K + M fields.
REFERENCE_POINTS = 40
MEAN_TOL = {"erf": 1e-7, "linear": 1e-7, "cubature": 1e-2}


def _erf_g(x: np.ndarray) -> np.ndarray:
    return np.asarray(erf(x / np.sqrt(2.0)))


def _erf_dg(x: np.ndarray) -> np.ndarray:
    return np.sqrt(2.0 / np.pi) * np.exp(-0.5 * x * x)


def mean_update(Q: np.ndarray, R: np.ndarray, T: np.ndarray, v: np.ndarray, vstar: np.ndarray, f: np.ndarray,
                eta: float, sigma: float, linear: bool, points: int = REFERENCE_POINTS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The mean change of ``(Q, R, v)`` per unit α of one online SGD step, and ε_g (one instance).

    Written from the per-sample update alone, sharing no code with :mod:`linfa.teacher_student`:
    the fields ``z = (λ, ν) = L ξ`` (``L Lᵀ = Ω``, Cholesky) on a tensor Gauss–Hermite grid in
    all ``K + M`` dimensions, ``Δ = Σ_k v_k g(λ_k) − Σ_m v*_m g(ν_m)``, the label noise averaged
    by ``<(Δ − σζ)²> = Δ² + σ²``, and ``f`` the first-layer feedback (``v`` or ``b``):

    .. math::

        \\frac{dR_{km}}{d\\alpha} = -\\eta f_k\\langle g'(\\lambda_k)\\Delta\\,\\nu_m\\rangle,\\quad
        \\frac{dv_k}{d\\alpha} = -\\eta\\langle g(\\lambda_k)\\Delta\\rangle,\\quad
        \\epsilon_g = \\tfrac12\\langle\\Delta^2\\rangle,

    .. math::

        \\frac{dQ_{kl}}{d\\alpha} = -\\eta\\langle f_k g'(\\lambda_k)\\Delta\\lambda_l
        + f_l g'(\\lambda_l)\\Delta\\lambda_k\\rangle
        + \\eta^2 f_k f_l\\langle g'(\\lambda_k) g'(\\lambda_l)(\\Delta^2 + \\sigma^2)\\rangle .
    """
    k = R.shape[0]
    d = k + R.shape[1]
    x, w = np.polynomial.hermite_e.hermegauss(points)
    xi = np.stack(np.meshgrid(*([x] * d), indexing="ij"), -1).reshape(-1, d)
    weight = np.prod(np.stack(np.meshgrid(*([w / np.sqrt(2.0 * np.pi)] * d), indexing="ij"), -1).reshape(-1, d), -1)
    z = xi @ np.linalg.cholesky(np.block([[Q, R], [R.T, T]])).T
    lam, nu = z[:, :k], z[:, k:]
    if linear:
        g, dg, gnu = lam, np.ones_like(lam), nu
    else:
        g, dg, gnu = _erf_g(lam), _erf_dg(lam), _erf_g(nu)
    delta = g @ v - gnu @ vstar
    a = weight[:, None] * f * dg * delta[:, None]  # f_k g'(λ_k) Δ, weighted
    x_kl = a.T @ lam
    second = ((weight * (delta**2 + sigma**2))[:, None] * dg).T @ dg
    dQ = -eta * (x_kl + x_kl.T) + eta**2 * np.outer(f, f) * second
    return dQ, -eta * (a.T @ nu), -eta * (g.T @ (weight * delta)), float(0.5 * weight @ delta**2)


def _draw_mean(rng: np.random.Generator, size: int) -> Instance:
    k, m = ((1, 1), (2, 1), (1, 2))[int(rng.integers(3))]
    wstar = 0.8 * rng.standard_normal((size, m, N_DRAW))
    w = rng.uniform(0.3, 1.0, (size, 1, 1)) * rng.standard_normal((size, k, N_DRAW))
    Q, R, T = ts.order_parameters(w, wstar)
    idx = np.arange(size)
    arrays = {"Q": Q, "R": R, "T": T, "v": rng.standard_normal((size, k)), "vstar": rng.standard_normal((size, m)),
              "b": rng.standard_normal((size, k)), "eta": rng.uniform(0.2, 1.5, size),
              "sigma": rng.uniform(0.5, 1.0, size), "route": (idx % len(ROUTES)).astype(float),
              "dfa": ((idx // len(ROUTES)) % 2).astype(float)}
    return Instance(arrays, {"K": k, "M": m}, size=size)


def _check_mean(inst: Instance, points: int = REFERENCE_POINTS) -> Verdict:
    a = inst.arrays
    cubature_erf = ts.Activation("erf by cubature", _erf_g, _erf_dg)  # not a closed-form name: cubature
    margins, drift_err, eg_err = [], [], []
    for i in range(len(inst)):
        route = ROUTES[int(a["route"][i])]
        rule = "DFA" if a["dfa"][i] else "BP"
        act = {"erf": ts.activation("erf"), "linear": ts.activation("linear"), "cubature": cubature_erf}[route]
        one = {key: a[key][i] for key in a}
        flow = ts.Flow(act, rule, points=CUBATURE_POINTS if route == "cubature" else None)
        drift = flow(0.0, (one["Q"][None], one["R"][None], one["v"][None]),
                     (one["T"][None], one["vstar"][None], one["b"][None], one["eta"][None], one["sigma"][None]))
        eg = float(ts.generalisation_error(ts.OrderParameters(one["Q"], one["R"], one["T"], one["v"], one["vstar"],
                                                              one["b"]), act))
        ref = mean_update(one["Q"], one["R"], one["T"], one["v"], one["vstar"],
                          one["v"] if rule == "BP" else one["b"], float(one["eta"]), float(one["sigma"]),
                          route == "linear", points=points)
        err = np.sqrt(sum(np.sum((x[0] - y) ** 2) for x, y in zip(drift, ref[:3], strict=True))
                      / sum(np.sum(y**2) for y in ref[:3]))
        drift_err.append(err)
        eg_err.append(abs(eg - ref[3]) / ref[3])
        margins.append(MEAN_TOL[route] - max(err, eg_err[-1]))
    margin = np.nan_to_num(np.array(margins), nan=-1.0)
    return Verdict(margin >= 0, margin, {"drift_rel_error": np.array(drift_err), "eg_rel_error": np.array(eg_err)})


#: Points per dimension of the reference when a failing instance is re-examined.
REEXAMINE_POINTS = 96


def _reexamine_mean(inst: Instance) -> Verdict:
    """Decide a failing instance again against a finer reference grid (its quadrature error, not the ODE's)."""
    return _check_mean(inst, points=REEXAMINE_POINTS)


register(Theorem(
    id="refinetti2021_shallow.ode_matches_mean_update",
    paper=PAPER,
    title="The order-parameter ODE is the Gaussian mean of one SGD step (BP, DFA; erf, linear, cubature)",
    statement=(r"\frac{d(Q, R, v)}{d\alpha} = N\,\mathbb E_{z \sim \mathcal N(0, \Omega),\,\zeta}"
               r"[\Delta(Q, R, v)_{\text{one step}}]\ (N \to \infty),\quad"
               r"\epsilon_g = \tfrac12\mathbb E[(\hat y - y_0)^2]"),
    reference="Saad & Solla 1995; Goldt et al., NeurIPS 2019 (derivation of the ODEs); " + REF + "; " + FACT,
    hypotheses=("any order parameters: Q, R, T of Gaussian weights (N = 100, student std U(0.3, 1), teacher "
                "std 0.8), v, v*, b ~ N(0, I), η ~ U(0.2, 1.5), σ ~ U(0.5, 1) (the η² and σ² terms kept)",
                "K, M in {(1, 1), (2, 1), (1, 2)}; BP and DFA; g = erf by its closed forms, by Gauss–Hermite "
                f"cubature ({CUBATURE_POINTS} points a dimension), and g linear",
                f"reference: a tensor Gauss–Hermite grid of {REFERENCE_POINTS} points a dimension over all "
                "K + M fields of the per-sample update"),
    kind="theorem",
    fact=9,
    tolerance=MEAN_TOL["cubature"],
    tolerance_reason="relative error of (dQ, dR, dv) and of ε_g against the reference, bounded by the quadrature "
                     "error of the two routes: 1e-7 for the erf closed forms and the linear branch (measured "
                     "<= 1.2e-8 and <= 3e-14, seeds 0-11), 1e-2 for the cubature route at 16 points a dimension "
                     "(its tensor rule converges slowly for I4 over a repeated field: measured <= 9.8e-4, seeds "
                     "0-11; 3.7e-8 at its default 36 points); an instance off by more is re-decided against a "
                     f"reference of {REEXAMINE_POINTS} points a dimension (seeds 39 and 176 of the default run "
                     "were off by 4e-8 and 5.5e-7 at 40 points: the reference's own quadrature error); "
                     "a wrong term (a sign, a dropped η² or σ² term, b "
                     "replaced by v, swapped indices) was measured off by 7e-4 to O(1) on the closed forms",
    draw=_draw_mean,
    check_batch=_check_mean,
    reexamine=_reexamine_mean,
    group_size=6,
    instances=12,
    fast_instances=6,
))
