"""Every rule's flow against an independent per-sample reference (:mod:`linfa.reference`).

Most catalogue claims (conservation laws, structure from zero init) hold for
*any* error matrix, so they would not notice a wrong flow. These entries pin
each rule's flow itself: on a finite data set ``{(x_i, y_i)}_{i=1..n}`` the
flow on the task of its empirical moments (:meth:`linfa.Task.from_samples`),

.. math::

    \\frac{dW_l}{dt} = M_l\\,(\\hat\\Sigma_{yx} - W \\hat\\Sigma_{xx})\\,W_{<l}^T,
    \\qquad \\hat\\Sigma_{yx} = \\frac1n\\sum_i y_i x_i^T,\\ \\hat\\Sigma_{xx} = \\frac1n\\sum_i x_i x_i^T,

must equal the mean over samples of the per-sample updates ``δ_{l,i} h_{l-1,i}^T``
computed by a plain forward pass and the rule's backward pass written out
layer by layer (:func:`linfa.reference.mean_update`), which shares no code
with :mod:`linfa.rules`. Backprop is also checked against a finite-difference
gradient of the mean loss, which ties the reference itself to the loss.

References: D. E. Rumelhart, G. E. Hinton, R. J. Williams, *Learning
representations by back-propagating errors*, Nature 323 (1986); Lillicrap et
al., Nat. Commun. 2016 (FA); Nøkland, NeurIPS 2016 (DFA); Kolen & Pollack,
IEEE ICNN 1994 and Akrout et al., NeurIPS 2019 (Kolen–Pollack); Liao, Leibo &
Poggio, AAAI 2016 (sign symmetry).
"""

from __future__ import annotations

import numpy as np

from linfa import observables as obs
from linfa import reference
from linfa.instances import Instance
from linfa.rules import AbstractRule
from linfa.tasks import Task
from linfa.theorems import _draw
from linfa.theorems._core import Theorem, Verdict, register
from linfa.theorems._numerics import bound, saveat, trajectory

__all__: list[str] = []


def _draw_flow(rng: np.random.Generator, size: int, rule: str) -> Instance:
    """A deep linear network (depth 2..4, widths 1..5), its feedback and a data set of 2..12 samples.

    Inputs are correlated Gaussians (``Σxx ≠ I``), targets a random linear teacher plus noise.
    """
    depth = _draw.integers(rng, 2, 4)
    widths = _draw.integers(rng, 1, 5, depth + 1)
    n = _draw.integers(rng, 2, 12)
    mix = rng.standard_normal((size, widths[0], widths[0]))
    x = rng.standard_normal((size, n, widths[0])) @ mix
    teacher = rng.standard_normal((size, widths[-1], widths[0]))
    y = x @ np.swapaxes(teacher, -1, -2) + 0.3 * rng.standard_normal((size, n, widths[-1]))
    weights = _draw.network(widths).gaussian(rng, 0.7, batch=(size,))
    params: dict[str, object] = {}
    if rule == "DFA":
        feedback = _draw.dfa_feedback(rng, widths, size)
    elif rule in ("FA", "KolenPollack"):
        feedback = _draw.fa_feedback(rng, widths, size)
    else:
        feedback = ()
    if rule == "KolenPollack":
        params["decay"] = float(rng.uniform(0.1, 1.0))
    task = Task.from_samples(x, y)
    inst = _draw.linear_instance(task, weights, rule=rule, feedback=feedback, size=size, samples=n, **params)
    return Instance({**inst.arrays, "X": x, "Y": y}, inst.params, size=size)


def _instance_arrays(inst: Instance, k: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    weights = [w[k] for w in inst.weights()]
    feedback = [b[k] for b in inst.feedback()]
    return weights, feedback, inst.arrays["X"][k], inst.arrays["Y"][k]


def _scale(rule: str, weights: list[np.ndarray], feedback: list[np.ndarray], x: np.ndarray, y: np.ndarray,
           decay: float) -> list[float]:
    """Per state entry: a bound on the size of every product summed, for the rounding tolerance.

    The per-sample terms with every matrix and vector replaced by its entrywise absolute value
    (``|W_l|``, ``|B_l|``, ``|x|``, ``|e| <= |y| + |ŷ|``): rounding errors are relative to these
    magnitudes, not to the update itself, which may cancel to zero (e.g. sign symmetry's integer
    products ``sign(W)^T``), plus the decay term's size.
    """
    abs_w = [np.abs(w) for w in weights]
    abs_b = [np.abs(b) for b in feedback]
    sizes = [0.0] * len(weights)
    for xi, yi in zip(x, y, strict=True):
        h = reference.forward(abs_w, np.abs(xi))
        delta = reference.backward(rule, abs_w, abs_b, np.abs(yi) + h[-1])
        for l, (d, a) in enumerate(zip(delta, h[:-1], strict=True)):
            sizes[l] += float(np.linalg.norm(d) * np.linalg.norm(a)) / x.shape[0]
    out = [s + decay * float(np.linalg.norm(w)) for s, w in zip(sizes, weights, strict=True)]
    if rule == "KolenPollack":
        out += [s + decay * float(np.linalg.norm(b)) for s, b in zip(sizes[1:], feedback, strict=True)]
    return out


def _flow_of_samples(inst: Instance) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``rule.flow`` on the task of the samples' empirical moments, and whether the integration route is valid."""
    rule, _, state = inst.problem()
    task = Task.from_samples(inst.arrays["X"], inst.arrays["Y"])
    return tuple(rule.flow(task)(0.0, state)), np.ones(inst.size or 1, dtype=bool)


def _check_against_reference(inst: Instance) -> Verdict:
    flow, valid = _flow_of_samples(inst)
    name = str(inst.params["rule"])
    decay = float(inst.params.get("decay", 0.0) or 0.0)  # type: ignore[arg-type]
    size = inst.size or 1
    err = np.zeros(size)
    for k in range(size):
        weights, feedback, x, y = _instance_arrays(inst, k)
        ref = reference.mean_update(name, weights, feedback, x, y, decay=decay)
        scale = _scale(name, weights, feedback, x, y, decay)
        if len(ref) != len(flow):
            raise ValueError(f"{inst.name}: the flow has {len(flow)} entries, the reference {len(ref)}")
        err[k] = max(float(np.linalg.norm(f[k] - r)) / max(s, 1e-300) for f, r, s in zip(flow, ref, scale,
                                                                                          strict=True))
    return bound(err, TOL_REFERENCE, valid, {"relative_difference": err})


TOL_REFERENCE = 1e-10
_WHY_REFERENCE = ("two float64 evaluations of the same finite sum (n <= 12 samples, widths <= 5, depth <= 4), "
                  "in different orders: they differ by rounding, a few ulp of the summed products' size (the "
                  "per-sample terms with every factor replaced by its absolute value; the update itself may "
                  "cancel exactly, e.g. through sign symmetry's integer products); measured <= 4e-16 of it "
                  "(64 instances per rule, seeds 0 and 40); any change of a rule's signals changes the update "
                  "at O(1) relative")

_RULES = {
    "BP": ("rumelhart1986.bp_flow_matches_reference", "Rumelhart et al. 1986",
           "Rumelhart, Hinton & Williams, Nature 323:533 (1986): backpropagation", r"W_{l+1}^T \delta_{l+1}"),
    "FA": ("lillicrap2016.fa_flow_matches_reference", "Lillicrap et al. 2016",
           "Lillicrap, Cownden, Tweed & Akerman, Nat. Commun. 7:13276 (2016), Fig. 1", r"B_{l+1} \delta_{l+1}"),
    "DFA": ("nokland2016.dfa_flow_matches_reference", "Nøkland 2016", "Nøkland, NeurIPS 2016, Eq. (DFA hidden update)",
            r"B_l\, e"),
    "KolenPollack": ("kolen_pollack.flow_matches_reference", "Kolen & Pollack 1994",
                     "Kolen & Pollack, IEEE ICNN 1994; Akrout et al., NeurIPS 2019 (the rule as a flow)",
                     r"B_{l+1} \delta_{l+1},\ \dot B_{l+1} = (\delta_{l+1} h_l^T)^T - \lambda B_{l+1}"),
    "SignSymmetry": ("liao2016.sign_symmetry_flow_matches_reference", "Liao et al. 2016",
                     "Liao, Leibo & Poggio, How important is weight symmetry in backpropagation?, AAAI 2016",
                     r"\operatorname{sign}(W_{l+1})^T \delta_{l+1}"),
}

for _rule, (_id, _paper, _ref, _signal) in _RULES.items():
    register(Theorem(
        id=_id,
        paper=_paper,
        title=f"{_rule}'s flow on a data set's moments equals the mean per-sample update (independent reference)",
        statement=(r"\dot W_l\big|_{\hat\Sigma} = \frac1n\sum_{i=1}^n \delta_{l,i}\,h_{l-1,i}^T,\quad "
                   r"\delta_{L,i} = y_i - \hat y_i,\ \ \delta_{l,i} = " + _signal),
        reference=_ref,
        hypotheses=(f"rule {_rule}, depth 2..4, widths 1..5, Gaussian weights (scale 0.7)"
                    + (", decay λ in [0.1, 1]" if _rule == "KolenPollack" else ""),
                    "a data set of 2..12 samples: correlated Gaussian inputs (Σxx ≠ I), a linear teacher plus "
                    "noise; the task is built by Task.from_samples",
                    "reference: linfa.reference.mean_update, a per-sample forward and backward pass sharing no "
                    "code with linfa.rules"),
        kind="theorem",
        tolerance=TOL_REFERENCE,
        tolerance_reason=_WHY_REFERENCE,
        draw=lambda rng, size, _r=_rule: _draw_flow(rng, size, _r),  # type: ignore[misc]
        check_batch=_check_against_reference,
        instances=32, fast_instances=8, group_size=8,
    ))


def _check_finite_difference(inst: Instance) -> Verdict:
    flow, valid = _flow_of_samples(inst)
    size = inst.size or 1
    err = np.zeros(size)
    for k in range(size):
        weights, feedback, x, y = _instance_arrays(inst, k)
        fd = reference.finite_difference_update(weights, x, y, step=FD_STEP)
        scale = _scale("BP", weights, feedback, x, y, 0.0)
        err[k] = max(float(np.linalg.norm(f[k] - g)) / max(s, 1e-300) for f, g, s in zip(flow, fd, scale,
                                                                                          strict=True))
    return bound(err, TOL_FD, valid, {"relative_difference": err})


FD_STEP = 1e-5
TOL_FD = 1e-6

register(Theorem(
    id="rumelhart1986.bp_flow_is_gradient",
    paper="Rumelhart et al. 1986",
    title="BP's flow on a data set's moments is minus the finite-difference gradient of the mean loss",
    statement=(r"\dot W_l\big|_{\hat\Sigma} = -\frac{\partial}{\partial W_l}\,"
               r"\frac1n\sum_i \tfrac12\lVert y_i - W_L\cdots W_1 x_i\rVert^2"),
    reference="Rumelhart, Hinton & Williams, Nature 323:533 (1986): backpropagation computes the gradient",
    hypotheses=("BP, depth 2..4, widths 1..5, Gaussian weights (scale 0.7)",
                "a data set of 2..12 samples, correlated inputs, noisy linear teacher (Task.from_samples)",
                "gradient by central differences of the per-sample loss (linfa.reference), step 1e-5"),
    kind="theorem",
    tolerance=TOL_FD,
    tolerance_reason="central differences with step s = 1e-5: truncation O(s² ‖∂³L‖) ~ 1e-9 and rounding "
                     "O(ε L / s) ~ 1e-10 relative to the summed products' size (measured <= 1e-9, 64 instances, "
                     "seeds 0 and 40); a wrong flow is off at O(1)",
    draw=lambda rng, size: _draw_flow(rng, size, "BP"),
    check_batch=_check_finite_difference,
    instances=16, fast_instances=4, group_size=4,
))


# ------------------------------------------------------------------ sign symmetry: a Lyapunov function
def _draw_sign_lyapunov(rng: np.random.Generator, size: int) -> Instance:
    n0, nh = _draw.integers(rng, 1, 5), _draw.integers(rng, 1, 6)
    widths = (n0, nh, 1)
    task = _draw.teacher_task(rng, n0, 1, size, noise=0.1)
    weights = _draw.network(widths).gaussian(rng, 0.5, batch=(size,))
    return _draw.linear_instance(task, weights, rule="SignSymmetry", size=size, t1=5.0, n_save=20)


def _sign_dldt(rule: AbstractRule, task: Task, state: tuple[np.ndarray, ...]) -> np.ndarray:
    """``(dL/dt along the flow, −‖w‖₁ ‖E‖² − ‖E A^T‖², ‖w‖₁‖E‖² + ‖E A^T‖²)`` stacked on the last axis.

    ``dL/dt = ⟨∂L/∂A, Ȧ⟩ + ⟨∂L/∂w, ẇ⟩`` with ``∂L/∂A = −w^T E``, ``∂L/∂w = −E A^T`` (``E = Σyx − w A Σxx``).
    """
    a, w = state
    da, dw = rule.dstate(task, state)
    e = task.syx - w @ a @ task.sxx
    dl = -np.einsum("...ij,...ij->...", np.swapaxes(w, -1, -2) @ e, da) - np.einsum("...ij,...ij->...",
                                                                                   e @ np.swapaxes(a, -1, -2), dw)
    l1 = np.sum(np.abs(w), axis=(-2, -1))
    terms = l1 * np.sum(e * e, axis=(-2, -1)) + np.sum((e @ np.swapaxes(a, -1, -2)) ** 2, axis=(-2, -1))
    return np.stack([dl, -terms, terms], axis=-1)


def _check_sign_lyapunov(inst: Instance) -> Verdict:
    rule, task, state = inst.problem()
    t1, ts = saveat(inst)
    _, out, ok = trajectory(rule, task, state, t1, saveat=ts, observe={"d": _sign_dldt, "loss": obs.loss})
    d = out["d"]
    scale = np.max(d[..., 2], axis=1)
    gap = np.max(np.abs(d[..., 0] - d[..., 1]), axis=1) / np.maximum(scale, 1e-300)
    rise = np.max(np.diff(out["loss"], axis=1), axis=1) / np.maximum(out["loss"][:, 0], 1e-300)
    return bound(np.maximum(gap, np.maximum(rise, 0.0)), TOL_SIGN, ok, {"formula_gap": gap, "loss_rise": rise})


TOL_SIGN = 1e-9

register(Theorem(
    id="liao2016.sign_symmetry_single_output_lyapunov",
    paper="Liao et al. 2016",
    title="Sign symmetry, two layers, one output: the loss is a Lyapunov function (dL/dt = −‖w‖₁‖E‖² − ‖EA^T‖²)",
    statement=(r"n_{out} = 1:\ \dot A = \operatorname{sign}(w)^T E,\ \dot w = E A^T \implies "
               r"\frac{dL}{dt} = -\lVert w\rVert_1 \lVert E\rVert^2 - \lVert E A^T\rVert^2 \le 0"),
    reference="Liao, Leibo & Poggio, AAAI 2016 (sign-concordant feedback learns); the linear single-output case: "
              "⟨w^T E, sign(w)^T E⟩ = ‖w‖₁ ‖E‖², so the hidden update is always a descent direction",
    hypotheses=("sign symmetry, widths (n0, n_h, 1), n0 in 1..5, n_h in 1..6", "Gaussian weights (scale 0.5)",
                "any Σxx (non-whitened teacher with noise)", "t in [0, 5], 21 saved times",
                "for several outputs W sign(W)^T need not be PSD and the claim does not follow"),
    kind="theorem",
    tolerance=TOL_SIGN,
    tolerance_reason="dL/dt from the flow and from the formula at integrated states agree to rounding, relative "
                     "to the formula's terms; the loss is sampled on the saved grid, where a rise would have to "
                     "exceed dopri5's error (rtol 1e-9) relative to L(0)",
    draw=_draw_sign_lyapunov,
    check_batch=_check_sign_lyapunov,
))
