"""Bad input to the public API: every rejection is a ValueError/TypeError naming the argument; nothing slips by.

Each public function is called with valid arguments except one, which is replaced by a value that is
invalid for that argument (a shape, dtype, NaN/inf, string, None, empty or 0-d array, a number out of
its domain). A call is

* ``clean`` if it raises ``ValueError`` or ``TypeError`` (or a subclass) whose message names the argument;
* ``unclean`` if it raises anything else, or a message that does not name the argument;
* ``silent`` if it returns: the invalid input was accepted.

``test_every_bad_argument_is_rejected_cleanly`` tries every (function, argument, bad value) of the
table systematically; ``test_random_bad_arrays`` lets hypothesis draw bad arrays (random shapes,
dtypes and non-finite entries) for the array arguments. ``python tests/test_fuzz_api.py`` prints
the counts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import linfa
from linfa import eqprop, exact, feedback, observables
from linfa.dynamics import until

RNG = np.random.default_rng(0)
TASK = linfa.Task.random_teacher(np.random.default_rng(1), 3, 2)
NET = linfa.DeepLinear((3, 4, 2))
STATE = NET.gaussian(np.random.default_rng(2), 0.3)
B_FA = feedback.fa((3, 4, 2), np.random.default_rng(3))
B_DFA = feedback.dfa((3, 4, 2), np.random.default_rng(3))
MODEL = eqprop.QuadraticEnergy.random(np.random.default_rng(4), 4, 3, 2)
X = np.random.default_rng(5).standard_normal((5, 3))
D = np.random.default_rng(6).standard_normal((5, 2))
S = np.random.default_rng(7).standard_normal((5, 4))
RULES = {"BP": linfa.BP(), "FA": linfa.FA(B_FA), "DFA": linfa.DFA(B_DFA),
         "KolenPollack": linfa.KolenPollack(0.1), "SignSymmetry": linfa.SignSymmetry()}


def _with_nan(a: np.ndarray) -> np.ndarray:
    b = np.array(a, dtype=float)
    b.flat[0] = np.nan
    return b


def _with_inf(a: np.ndarray) -> np.ndarray:
    b = np.array(a, dtype=float)
    b.flat[-1] = np.inf
    return b


def bad_arrays(good: np.ndarray) -> list[tuple[str, Any]]:
    """Values invalid wherever an array like ``good`` (finite, real, that shape) is expected."""
    good = np.asarray(good, dtype=float)
    out: list[tuple[str, Any]] = [
        ("None", None), ("str", "abc"), ("NaN entry", _with_nan(good)), ("inf entry", _with_inf(good)),
        ("complex", good + 1j), ("numeric strings", good.astype(str)), ("0-d", np.array(1.0)),
        ("ragged", [[1.0, 2.0], [3.0]]),
        ("extra column", np.concatenate([good, good[..., :1]], axis=-1)),
    ]
    if good.ndim >= 2:
        out.append(("1-d", good.reshape(-1)))
        out.append(("extra row", np.concatenate([good, good[..., :1, :]], axis=-2)))
    return out


BAD_POSITIVE = [("NaN", math.nan), ("inf", math.inf), ("-1", -1.0), ("0", 0.0), ("None", None),
                ("numeric string", "0.5"), ("complex", 1j), ("list", [1.0]), ("bool", True)]
BAD_NONNEG = [("NaN", math.nan), ("inf", math.inf), ("-1", -1.0), ("None", None), ("numeric string", "0.5"),
              ("complex", 1j), ("bool", True)]
BAD_COUNT = [("2.5", 2.5), ("NaN", math.nan), ("inf", math.inf), ("-1", -1), ("None", None),
             ("numeric string", "3"), ("bool", True), ("complex", 2j)]
BAD_COUNT1 = [*BAD_COUNT, ("0", 0)]
BAD_RNG = [("None", None), ("int", 0), ("RandomState", np.random.RandomState(0)), ("str", "rng")]
BAD_WIDTHS = [("empty", ()), ("one", (3,)), ("float width", (2.5, 2)), ("zero width", (3, 0)),
              ("negative", (3, -1)), ("string", "32"), ("None", None), ("NaN", (3, math.nan)),
              ("inf", (3, math.inf)), ("bool", (True, 2)), ("numeric strings", ("3", "2"))]
BAD_BATCH = [("int", 3), ("negative", (-1,)), ("float", (2.5,)), ("string", "2"), ("NaN", (math.nan,))]
BAD_TASK = [("None", None), ("str", "task"), ("matrix", np.eye(3)),
            ("wrong sizes", linfa.Task.random_teacher(np.random.default_rng(0), 4, 2))]
BAD_RULE = [("None", None), ("str", "FA"), ("int", 3)]
BAD_STATE = [("None", None), ("empty", ()), ("str", "W"),
             ("wrong depth", STATE[:1]), ("NaN", (_with_nan(STATE[0]), STATE[1])),
             ("complex", (STATE[0] + 1j, STATE[1])), ("transposed", (STATE[0].T, STATE[1])),
             ("inf", (STATE[0], _with_inf(STATE[1])))]
# States along a trajectory may legitimately hold NaN/inf (a diverging run): flows and observables
# propagate them (the integrators report the divergence); everything else about a state must be right.
BAD_STATE_SHAPE = [x for x in BAD_STATE if x[0] not in ("NaN", "inf")]
BAD_MODEL = [("None", None), ("str", "model"), ("matrix", np.eye(4))]
BAD_CALLABLE = [("None", None), ("int", 3), ("str", "loss")]
BAD_TIMES = [("empty", np.array([])), ("NaN", np.array([0.0, math.nan])), ("inf", np.array([0.0, math.inf])),
             ("None", None), ("str", "1"), ("complex", np.array([1j])), ("negative", np.array([-1.0, 1.0]))]
BAD_KIND = [("unknown", "nosuch"), ("None", None), ("int", 3)]


@dataclass(frozen=True)
class Case:
    """``fn(**args)`` with ``args[arg]`` replaced by ``value`` (a value invalid for it)."""

    function: str
    fn: Callable[..., Any]
    args: dict[str, Any]
    arg: str
    label: str
    value: Any
    names: tuple[str, ...]  # any of these in the message counts as naming the argument

    def call(self) -> Any:
        kw = {**self.args, self.arg: self.value}
        return self.fn(**kw)


def _cases(function: str, fn: Callable[..., Any], args: dict[str, Any],
           bad: dict[str, list[tuple[str, Any]]], names: dict[str, tuple[str, ...]] | None = None) -> Iterator[Case]:
    # the base call must work, or the table is wrong
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(**args)
    for arg, values in bad.items():
        for label, value in values:
            yield Case(function, fn, args, arg, label, value, (names or {}).get(arg, (arg,)))


def _rule_problem(name: str) -> dict[str, Any]:
    return {"rule": RULES[name], "task": TASK, "state": STATE}


def _problem_bad() -> dict[str, list[tuple[str, Any]]]:
    return {"rule": BAD_RULE, "task": BAD_TASK, "state": BAD_STATE_SHAPE}


def all_cases() -> list[Case]:
    out: list[Case] = []
    add = out.extend
    w_star = np.random.default_rng(8).standard_normal((2, 3))
    sxx = np.eye(3)

    # ---------------------------------------------------------------- tasks
    add(_cases("Task", linfa.Task, {"sxx": TASK.sxx, "syx": TASK.syx, "syy": TASK.syy},
               {"sxx": bad_arrays(TASK.sxx), "syx": bad_arrays(TASK.syx), "syy": bad_arrays(TASK.syy)}))
    add(_cases("Task.teacher", linfa.Task.teacher, {"w_star": w_star, "sxx": sxx, "noise": 0.1},
               {"w_star": [x for x in bad_arrays(w_star) if x[0] != "extra row"],  # more outputs: another task
                "sxx": bad_arrays(sxx)[1:], "noise": BAD_NONNEG}))  # sxx=None means the identity
    add(_cases("Task.random_teacher", linfa.Task.random_teacher, {"rng": RNG, "n_in": 3, "n_out": 2},
               {"rng": BAD_RNG, "n_in": BAD_COUNT1, "n_out": BAD_COUNT1}))
    add(_cases("Task.from_samples", linfa.Task.from_samples, {"X": X, "Y": D},
               {"X": [x for x in bad_arrays(X) if x[0] != "extra column"],  # other widths: another task
                "Y": [x for x in bad_arrays(D) if x[0] != "extra column"]}))
    add(_cases("Task.factorization", linfa.Task.factorization, {"Y": w_star},
               {"Y": [x for x in bad_arrays(w_star) if not x[0].startswith("extra")]}))
    add(_cases("Task.output_correlated", linfa.Task.output_correlated, {"rng": RNG, "n_in": 3, "syy": np.eye(2)},
               {"rng": BAD_RNG, "n_in": BAD_COUNT1, "syy": bad_arrays(np.eye(2))}))
    add(_cases("Task.sample", TASK.sample, {"rng": RNG, "n": 4}, {"rng": BAD_RNG, "n": BAD_COUNT1}))
    add(_cases("spd_with_condition", linfa.spd_with_condition, {"rng": RNG, "n": 3, "condition": 2.0, "trace": 3.0},
               {"rng": BAD_RNG, "n": BAD_COUNT1, "condition": [*BAD_POSITIVE, ("below 1", 0.5)],
                "trace": [x for x in BAD_POSITIVE if x[0] != "None"], "batch": BAD_BATCH}))
    add(_cases("factors", linfa.factors, {"weights": STATE},
               {"weights": [x for x in BAD_STATE_SHAPE if x[0] not in ("wrong depth", "transposed")]}))

    # ---------------------------------------------------------------- networks
    add(_cases("DeepLinear", linfa.DeepLinear, {"widths": (3, 4, 2)}, {"widths": BAD_WIDTHS}))
    add(_cases("DeepLinear.product", NET.product, {"weights": STATE}, {"weights": BAD_STATE_SHAPE}))
    add(_cases("DeepLinear.forward", NET.forward, {"weights": STATE, "X": X},
               {"weights": BAD_STATE_SHAPE, "X": [x for x in bad_arrays(X) if x[0] != "extra row"]}))
    add(_cases("DeepLinear.gaussian", NET.gaussian, {"rng": RNG, "scale": 0.1},
               {"rng": BAD_RNG, "scale": BAD_NONNEG, "batch": BAD_BATCH}))
    add(_cases("DeepLinear.aligned", NET.aligned, {"task": TASK, "u0": 0.1},
               {"task": BAD_TASK, "u0": BAD_NONNEG}))

    # ---------------------------------------------------------------- feedback
    for name, fn in (("feedback.fa", feedback.fa), ("feedback.dfa", feedback.dfa)):
        add(_cases(name, fn, {"widths": (3, 4, 2), "rng": RNG},
                   {"widths": BAD_WIDTHS, "rng": BAD_RNG, "kind": BAD_KIND,
                    "scale": [x for x in BAD_POSITIVE if x[0] != "None"], "batch": BAD_BATCH}))
    add(_cases("feedback.sample", feedback.sample, {"rng": RNG, "shape": (3, 2)},
               {"rng": BAD_RNG, "shape": [x for x in BAD_WIDTHS if x[0] not in ("one",)], "kind": BAD_KIND,
                "batch": BAD_BATCH}))

    # ---------------------------------------------------------------- rules and observables
    for name in RULES:
        state = RULES[name].init_state(STATE, B_FA) if name == "KolenPollack" else STATE  # type: ignore[call-arg]
        add(_cases(f"{name}.dstate", RULES[name].dstate, {"task": TASK, "state": state},
                   {"task": BAD_TASK, "state": BAD_STATE_SHAPE}))
    for obs_name in ("loss", "nse", "update_angles", "alignment", "signal_angles", "weight_alignment",
                     "error_covariance", "layer_alignment"):
        add(_cases(f"observables.{obs_name}", getattr(observables, obs_name), _rule_problem("FA"), _problem_bad()))
    add(_cases("observables.conserved_quantities", observables.conserved_quantities,  # no task: one layer is fine
               {"rule": RULES["FA"], "state": STATE},
               {"rule": BAD_RULE, "state": [x for x in BAD_STATE_SHAPE if x[0] != "wrong depth"]}))
    add(_cases("observables.conserved_quantity", observables.conserved_quantity, {"layer": 1},
               {"layer": BAD_COUNT}))
    v = np.ones((2, 3))
    nonfinite = ("NaN entry", "inf entry")
    add(_cases("observables.angle", observables.angle, {"a": v, "b": v},
               {"a": [x for x in bad_arrays(v) if x[0] not in nonfinite],
                "b": [x for x in bad_arrays(v) if x[0] not in nonfinite]}, {"a": ("a",), "b": ("b",)}))

    # ---------------------------------------------------------------- exact
    add(_cases("exact.bp_fixed_point", exact.bp_fixed_point, {"task": TASK}, {"task": BAD_TASK[:3]}))
    add(_cases("exact.saxe_mode", exact.saxe_mode, {"t": np.linspace(0, 1, 3), "s": 2.0, "u0": 0.1},
               {"t": BAD_TIMES[1:], "s": [x for x in BAD_POSITIVE if x[0] not in ("0", "list")],
                "u0": [x for x in BAD_POSITIVE if x[0] != "list"], "tau": BAD_POSITIVE,
                "depth": [("1", 1), *BAD_COUNT]}))
    whitened = linfa.Task.random_teacher(np.random.default_rng(9), 3, 2)
    add(_cases("exact.saxe_weights", exact.saxe_weights, {"task": whitened, "t": 0.5, "u0": 0.1, "widths": (3, 2, 2)},
               {"task": BAD_TASK, "t": [x for x in BAD_NONNEG if x[0] != "bool"],
                "u0": [x for x in BAD_POSITIVE if x[0] != "list"],
                "widths": [*BAD_WIDTHS, ("inconsistent with the task", (4, 2, 2))]}))
    add(_cases("exact.kolen_pollack_mismatch", exact.kolen_pollack_mismatch,
               {"t": np.linspace(0, 1, 3), "mismatch0": np.ones((2, 3)), "decay": 0.5},
               {"t": BAD_TIMES, "mismatch0": bad_arrays(np.ones((2, 3)))[:6], "decay": BAD_NONNEG}))
    zeros = linfa.DeepLinear((3, 4, 2)).zeros()
    add(_cases("exact.fa_zero_init_structure", exact.fa_zero_init_structure, {"weights": zeros, "feedback": B_FA},
               {"weights": BAD_STATE, "feedback": [("None", None), ("str", "B"), ("NaN", (_with_nan(B_FA[0]),))]}))

    # ---------------------------------------------------------------- eqprop
    bad_model = {"model": BAD_MODEL}
    add(_cases("eqprop.fixed_point", eqprop.fixed_point, {"model": MODEL, "x": X, "d": D, "beta": 0.1},
               {**bad_model, "x": bad_arrays(X), "d": bad_arrays(D)[1:],
                "beta": [("NaN", math.nan), ("inf", math.inf), ("string", "0.1"), ("complex", 1j)]}))
    for name in ("ep_gradient", "ep_gradient_closed_form"):
        add(_cases(f"eqprop.{name}", getattr(eqprop, name), {"model": MODEL, "x": X, "d": D, "beta": 0.1},
                   {**bad_model, "d": [("None", None), *bad_arrays(D)[1:]],
                    "beta": [("NaN", math.nan), ("string", "0.1")]}))
    for name in ("gradient", "loss", "adjoint", "ep_error_coefficient"):
        add(_cases(f"eqprop.{name}", getattr(eqprop, name), {"model": MODEL, "x": X, "d": D},
                   {**bad_model, "x": bad_arrays(X), "d": [("None", None), *bad_arrays(D)[1:]]}))
    add(_cases("eqprop.energy", eqprop.energy, {"model": MODEL, "s": S, "x": X},
               {**bad_model, "s": bad_arrays(S), "x": bad_arrays(X)}))
    add(_cases("eqprop.cost", eqprop.cost, {"model": MODEL, "s": S, "d": D},
               {**bad_model, "s": bad_arrays(S), "d": [("None", None), *bad_arrays(D)[1:]]}))
    add(_cases("eqprop.relax", eqprop.relax, {"model": MODEL, "s_init": S, "t": np.array([0.0, 0.5]), "x": X},
               {**bad_model, "s_init": bad_arrays(S), "t": [x for x in BAD_TIMES if x[0] != "complex"]}))
    add(_cases("eqprop.relax_ode", eqprop.relax_ode, {"model": MODEL, "s_init": S, "t": np.linspace(0, 1, 3), "x": X},
               {"t": BAD_TIMES, "s_init": bad_arrays(S)[:4]}))
    # pairs with a non-positive or non-finite entry are dropped by design (linfa.loglog); what is left must fit
    add(_cases("eqprop.loglog_slope", eqprop.loglog_slope, {"x": np.array([0.1, 0.01]), "y": np.array([1e-2, 1e-3])},
               {"x": [("one point", np.array([0.1])), ("all zero", np.array([0.0, 0.0])), ("None", None),
                      ("string", "0.1"), ("complex", np.array([0.1j, 0.2]))],
                "y": [("one point", np.array([0.1])), ("None", None), ("numeric strings", np.array(["1", "2"]))]},
               {"x": ("x",), "y": ("y",)}))

    batched = eqprop.QuadraticEnergy.random(np.random.default_rng(4), 4, 3, 2, batch=(2,))
    xb, db = np.ones((2, 5, 3)), np.ones((2, 5, 2))
    for name in ("fixed_point", "ep_gradient", "ep_gradient_closed_form"):  # beta's batch must match the model's
        add(_cases(f"eqprop.{name}[batched]", getattr(eqprop, name), {"model": batched, "x": xb, "d": db, "beta": 0.1},
                   {"beta": [("wrong batch", np.full(3, 0.1))], "d": [("None", None)] * (name != "fixed_point")}))

    # ---------------------------------------------------------------- stopping conditions and sgd
    add(_cases("until.when", until.when, {"observable": observables.loss, "threshold": 0.1},
               {"observable": BAD_CALLABLE, "threshold": [("NaN", math.nan), ("inf", math.inf), ("None", None),
                                                          ("numeric string", "0.1"), ("complex", 1j)],
                "direction": [("2", 2), ("None", None), ("string", "-1")],
                "status": [("99", 99), ("string", "event"), ("None", None)]}))
    add(_cases("solve", linfa.solve, {"rule": RULES["BP"], "task": TASK, "state0": STATE, "t1": 0.1},
               {"until": [("int", 3), ("str", "loss")],
                "t1": [x for x in BAD_POSITIVE[:-2] if x[0] != "0"],  # t1 = t0 is an empty run
                "max_steps": BAD_COUNT1, "threads": [x for x in BAD_COUNT1 if x[0] != "None"]}))  # None: chosen
    add(_cases("sgd", linfa.sgd, {"rule": RULES["BP"], "task": TASK, "state0": STATE, "lr": 0.01, "steps": 2,
                                  "batch_size": 2, "rng": RNG},
               {"lr": BAD_POSITIVE, "steps": BAD_COUNT, "batch_size": BAD_COUNT1, "rng": BAD_RNG,
                "every": BAD_COUNT1, "noise": BAD_NONNEG}))
    return out


# --------------------------------------------------------------------------- the research modules
# teacher_student, plot, theorems, sweep and the testing strategies, one table (``research_cases``).
_TMP: list[str] = []


def _tmpdir() -> str:
    import tempfile

    if not _TMP:
        import atexit
        import shutil

        _TMP.append(tempfile.mkdtemp(prefix="linfa-fuzz-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return _TMP[0]


def _fresh_out() -> str:
    import os

    d = _tmpdir()
    return os.path.join(d, f"r{len(os.listdir(d))}.sqlite")


_FRESH = "<fresh results file>"


def _sweep(target: Any, n_instances: Any, *, out: Any = _FRESH, **kw: Any) -> Any:
    from linfa.sweep import sweep

    return sweep(target, n_instances, out=_fresh_out() if out == _FRESH else out, **kw)


def _sweep_target(rng: np.random.Generator) -> dict[str, Any]:
    x = float(rng.standard_normal())
    return {"holds": True, "margin": x * x}


def _draw(strategy_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Build the strategy and draw one example: a bad option must fail at one of the two."""
    from hypothesis import find
    from hypothesis import settings as hsettings

    def call(**kw: Any) -> Any:
        return find(strategy_fn(**kw), lambda x: True, settings=hsettings(max_examples=1, database=None))

    call.__name__ = strategy_fn.__name__
    return call


BAD_BOOL = [("string", "no"), ("None", None), ("int", 2)]
BAD_NAME = [("unknown", "nosuch"), ("None", None), ("int", 3)]


def research_cases() -> list[Case]:
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linfa import plot, sweep, theorems
    from linfa import teacher_student as ts
    from linfa.teacher_student import averages
    from linfa.testing import strategies

    out: list[Case] = []
    add = out.extend

    # ---------------------------------------------------------------- teacher_student
    K, M = 2, 2
    Q, R, T = 0.1 * np.eye(K), np.zeros((K, M)), np.eye(M)
    v, vstar, b = np.full(K, 0.1), np.ones(M), np.array([1.0, -1.0])
    pkw = {"Q": Q, "R": R, "T": T, "v": v, "vstar": vstar, "rule": "DFA", "b": b, "eta": 0.5}
    bad_q = [*bad_arrays(Q), ("indefinite", np.diag([1.0, -1.0])), ("asymmetric", np.array([[1.0, 0.5], [0.0, 1.0]]))]
    add(_cases("teacher_student.Problem", ts.Problem, pkw,
               {"Q": bad_q, "R": [x for x in bad_arrays(R) if x[0] not in ("extra column", "extra row")],
                "T": [x for x in bad_q if x[0] not in ("extra column", "extra row")] + [("3x3", np.eye(3))],
                "v": [x for x in bad_arrays(v) if x[0] != "0-d"], "vstar": [x for x in bad_arrays(vstar)
                                                                       if x[0] != "0-d"],
                "b": [x for x in bad_arrays(b) if x[0] not in ("None", "0-d")], "rule": BAD_NAME,
                "eta": [x for x in BAD_POSITIVE if x[0] != "list"],  # a list is a batch of learning rates
                "sigma": BAD_NONNEG, "activation": [*BAD_NAME, ("one callable", np.tanh)],
                "train_second_layer": BAD_BOOL, "second_order": BAD_BOOL}))
    problem = ts.Problem(**pkw)
    w, wstar = ts.initial_weights(np.random.default_rng(0), 40, K, M, size=2, scale=0.3)
    add(_cases("teacher_student.Problem.from_weights", ts.Problem.from_weights,
               {"w": w, "wstar": wstar, "v": v, "vstar": vstar},
               {"w": [x for x in bad_arrays(w) if x[0] not in ("extra row", "0-d")],
                "wstar": [x for x in bad_arrays(wstar) if x[0] not in ("extra row", "0-d")]}))
    add(_cases("teacher_student.solve", ts.solve, {"problem": problem, "alpha": 1.0},
               {"problem": [("None", None), ("dict", pkw), ("str", "problem")],
                "alpha": [x for x in BAD_POSITIVE if x[0] not in ("0", "list")],
                "saveat": [x for x in BAD_TIMES[1:] if x[0] != "None"] + [("beyond alpha", np.array([0.0, 2.0]))],
                "observe": [("str", "eg"), ("unknown", ["nosuch"]), ("int", 3), ("not callable", {"eg": 3})],
                "until": [("int", 3), ("str", "eg")], "points": [x for x in BAD_COUNT1 if x[0] != "None"],
                "max_steps": BAD_COUNT1}))
    add(_cases("teacher_student.simulate", ts.simulate,
               {"w": w, "wstar": wstar, "v": v, "vstar": vstar, "alphas": np.array([0.0, 0.5]),
                "rng": np.random.default_rng(0)},
               {"w": [x for x in bad_arrays(w) if x[0] not in ("extra row",)],
                "wstar": [x for x in bad_arrays(wstar) if x[0] not in ("extra row",)],
                "v": [x for x in bad_arrays(v) if x[0] != "0-d"], "vstar": [x for x in bad_arrays(vstar)
                                                                       if x[0] != "0-d"],
                "alphas": [*BAD_TIMES, ("unsorted", np.array([1.0, 0.5]))], "rng": BAD_RNG, "rule": BAD_NAME,
                "b": [("None with DFA", None)] * 0 + [x for x in bad_arrays(b) if x[0] not in ("None", "0-d")],
                "eta": BAD_POSITIVE, "sigma": BAD_NONNEG, "activation": BAD_NAME,
                "train_second_layer": BAD_BOOL}))
    add(_cases("teacher_student.initial_weights", ts.initial_weights, {"rng": RNG, "n": 10, "k": 2, "m": 2},
               {"rng": BAD_RNG, "n": BAD_COUNT1, "k": BAD_COUNT1, "m": BAD_COUNT1, "size": BAD_COUNT1,
                "scale": BAD_NONNEG},
               {"k": ("k", "K"), "m": ("m", "M")}))
    add(_cases("teacher_student.order_parameters", ts.order_parameters, {"w": w, "wstar": wstar},
               {"w": [x for x in bad_arrays(w) if x[0] not in ("extra row",)],
                "wstar": [x for x in bad_arrays(wstar) if x[0] not in ("extra row",)]}))
    # like flows, covariance and the observables propagate NaN/inf (a diverged run); shapes and types must be right
    add(_cases("teacher_student.covariance", ts.covariance, {"Q": Q, "R": R, "T": T},
               {"Q": bad_arrays(Q)[:2] + bad_arrays(Q)[4:], "R": bad_arrays(R)[:2] + bad_arrays(R)[4:],
                "T": bad_arrays(T)[:2] + bad_arrays(T)[4:]}))
    add(_cases("teacher_student.activation", ts.activation, {"spec": "erf"},
               {"spec": [*BAD_NAME, ("one callable", np.tanh), ("pair of non-callables", (1, 2))]},
               {"spec": ("activation",)}))  # the documented name of what spec is
    cov2 = np.array([[1.0, 0.3], [0.3, 1.0]])
    add(_cases("teacher_student.averages.average", averages.average, {"kind": "i2", "cov": cov2},
               {"kind": BAD_NAME, "cov": [*bad_arrays(cov2), ("indefinite", np.diag([1.0, -1.0]))],
                "act": BAD_NAME, "method": BAD_NAME,
                "points": [x for x in BAD_COUNT1 if x[0] != "None"]}))
    for name in ("i2", "j2"):
        add(_cases(f"teacher_student.averages.{name}", getattr(averages, name), {"cov": cov2},
                   {"cov": bad_arrays(cov2), "act": BAD_NAME}))
    op = problem.order_parameters()
    bad_op = [("None", None), ("tuple of arrays", (Q, R)), ("str", "op"), ("wrong K", op._replace(Q=np.eye(3))),
              ("wrong M", op._replace(vstar=np.ones(3)))]
    add(_cases("teacher_student.generalisation_error", ts.generalisation_error, {"op": op},
               {"op": bad_op, "act": BAD_NAME}))
    for name in ("alignment", "overlaps", "specialisation"):
        add(_cases(f"teacher_student.{name}", getattr(ts, name), {"op": op}, {"op": bad_op}))
    add(_cases("teacher_student.eg_below", ts.eg_below, {"tol": 0.01},
               {"tol": BAD_POSITIVE, "activation": BAD_NAME}))

    # ---------------------------------------------------------------- plot (figures with bad arrays)
    ts_good = np.linspace(0.0, 1.0, 4)
    scalar = np.abs(np.random.default_rng(10).standard_normal((3, 4))) + 0.1
    layers = np.abs(np.random.default_rng(11).standard_normal((3, 4, 2))) + 0.1
    # NaN values are instances that stopped early (drawn as gaps): only the times must be finite
    bad_t = [x for x in bad_arrays(ts_good) if x[0] not in ("extra column",)] + [
        ("2-d", np.ones((2, 4))), ("decreasing", ts_good[::-1].copy())]
    bad_times_arr = [x for x in bad_t if x[0] != "0-d"]

    def bad_values(good: np.ndarray) -> list[tuple[str, Any]]:
        return [x for x in bad_arrays(good) if x[0] not in ("NaN entry", "inf entry", "extra row")]

    figures: list[tuple[str, Callable[..., Any], np.ndarray, str]] = [
        ("quantile_band", plot.quantile_band, scalar, "values"),
        ("learning_curves", plot.learning_curves, scalar, "curves"),
        ("update_angles", plot.update_angles, layers, "angles"),
        ("alignment", plot.alignment, layers, "values"),
        ("weight_alignment", plot.weight_alignment, layers, "cosines"),
        ("condition_numbers", plot.condition_numbers, layers, "kappas"),
    ]
    for name, fn, good, argname in figures:
        args = {"ts": ts_good, argname: good}
        bad = bad_values(good)
        if good.ndim == 3:  # another number of layers is another network
            bad = [x for x in bad if x[0] != "extra column"]
        add(_cases(f"plot.{name}", fn, args,
                   {"ts": bad_times_arr, argname: bad,
                    "quantiles": [("reversed", (0.9, 0.1)), ("str", "ab"), ("None", None), ("NaN", (math.nan, 1.0)),
                                  ("three", (0.1, 0.5, 0.9))],
                    "ax": [("int", 3), ("str", "ax")]}))
    add(_cases("plot.mode_strengths", plot.mode_strengths, {"ts": ts_good, "strengths": layers},
               {"ts": bad_times_arr, "strengths": [x for x in bad_values(layers) if x[0] != "extra column"],
                "exact": [("str", "abc"), ("wrong shape", np.ones((5, 2))), ("complex", layers[0] + 1j)],
                "singular_values": [("str", "abc"), ("wrong length", np.ones(5)), ("NaN", np.array([1.0, math.nan])),
                                    ("complex", np.array([1j, 1.0]))]}))
    betas = np.array([0.1, 0.01, 0.001])
    add(_cases("plot.ep_error", plot.ep_error, {"betas": betas, "errors": 2 * betas ** 2},
               {"betas": [x for x in bad_arrays(betas) if x[0] not in ("extra column", "0-d")]
                + [("negative", -betas)],
                "errors": [x for x in bad_values(betas) if x[0] != "0-d"] + [("mapping to None", {"a": None})]}))
    plt.close("all")

    # ---------------------------------------------------------------- theorems
    cheap = "lillicrap2016.alignment_condition"
    entry = theorems.get(cheap)
    add(_cases("theorems.get", theorems.get, {"id": cheap},
               {"id": [("unknown", "nosuch.entry"), ("empty", ""), ("None", None), ("int", 3), ("list", [cheap])]}))
    add(_cases("theorems.catalogue", theorems.catalogue, {"ids": [cheap]},
               {"ids": [("unknown", ["nosuch"]), ("a bare string", "lillicrap2016"), ("int", 3),
                        ("list of None", [None]), ("list of int", [3])]}))
    add(_cases("theorems.run", theorems.run, {"theorem": entry, "instances": 1, "derivation": False},
               {"theorem": [("None", None), ("id string", cheap), ("int", 3)],
                "instances": [x for x in BAD_COUNT1 if x[0] != "None"], "seed": BAD_COUNT,
                "fast": BAD_BOOL, "derivation": BAD_BOOL}))
    add(_cases("theorems.draw_groups", lambda theorem, n, seed: list(theorems.draw_groups(theorem, n, seed)),
               {"theorem": entry, "n": 1, "seed": 0},
               {"theorem": [("None", None), ("id string", cheap)], "n": [x for x in BAD_COUNT if x[0] != "-1"],
                "seed": BAD_COUNT}))

    # ---------------------------------------------------------------- sweep
    done = os.path.join(_tmpdir(), "done.sqlite")
    sweep.sweep(_sweep_target, 2, out=done, chunk_size=2)
    not_sqlite = os.path.join(_tmpdir(), "notes.txt")
    with open(not_sqlite, "w") as f:
        f.write("not a results file\n")
    missing_dir = os.path.join(_tmpdir(), "no", "such", "dir", "r.sqlite")
    add(_cases("sweep.sweep", _sweep, {"target": _sweep_target, "n_instances": 2, "chunk_size": 2},
               {"target": [("None", None), ("int", 3), ("unknown id", "nosuch.entry"), ("bad module", "nosuch_mod:f"),
                           ("empty", "")],
                "n_instances": BAD_COUNT, "chunk_size": BAD_COUNT1, "seed": BAD_COUNT,
                "workers": [("0", 0), ("-1", -1), ("2.5", 2.5), ("numeric string", "2"), ("bool", True)],
                "out": [("None", None), ("int", 3), ("a directory", _tmpdir()), ("a text file", not_sqlite),
                        ("missing directory", missing_dir)],
                "keep_instances": BAD_BOOL, "progress": [("int", 3), ("str", "yes")]},
               {"out": ("out", not_sqlite, _tmpdir(), missing_dir)}))
    add(_cases("sweep.summarize", sweep.summarize, {"path": done},
               {"path": [("None", None), ("int", 3), ("missing", os.path.join(_tmpdir(), "missing.sqlite")),
                         ("a directory", _tmpdir()), ("a text file", not_sqlite)],
                "n_worst": BAD_COUNT},
               {"path": ("path", not_sqlite, _tmpdir(), "missing.sqlite")}))

    # ---------------------------------------------------------------- testing strategies
    add(_cases("strategies.widths", _draw(strategies.widths), {},
               {"min_depth": BAD_COUNT1, "max_depth": [*BAD_COUNT1, ("below min_depth", 0)],
                "min_width": BAD_COUNT1, "max_width": BAD_COUNT1, "n_in": [x for x in BAD_COUNT1 if x[0] != "None"],
                "n_out": [x for x in BAD_COUNT1 if x[0] != "None"]}))
    add(_cases("strategies.tasks", _draw(strategies.tasks), {"n_in": 3, "n_out": 2},
               {"n_in": BAD_COUNT1, "n_out": BAD_COUNT1, "structure": BAD_NAME, "whitened": BAD_BOOL,
                "rank": [x for x in BAD_COUNT if x[0] != "None"] + [("too large", 5)], "noise": BAD_NONNEG,
                "max_condition": [x for x in BAD_POSITIVE if x[0] != "inf"] + [("below 1", 0.5)],
                "values": BAD_NAME}))
    add(_cases("strategies.feedback", _draw(strategies.feedback), {"widths": (3, 4, 2)},
               {"widths": BAD_WIDTHS, "rule": BAD_NAME, "kind": BAD_NAME,
                "scale": [x for x in BAD_POSITIVE if x[0] != "None"]}))
    add(_cases("strategies.initial_states", _draw(strategies.initial_states), {"widths": (3, 4, 2)},
               {"widths": BAD_WIDTHS, "init": [*BAD_NAME, ("aligned without a task", "aligned")],
                "scale": [x for x in BAD_NONNEG if x[0] != "None"], "task": [("str", "task"), ("int", 3)]},
               {"init": ("init", "task")}))
    add(_cases("strategies.instances", _draw(strategies.instances), {"widths": (3, 4, 2)},
               {"rule": BAD_NAME, "widths": [x for x in BAD_WIDTHS if x[0] != "None"], "init": BAD_NAME,
                "init_scale": [x for x in BAD_NONNEG if x[0] != "None"], "feedback_kind": BAD_NAME,
                "feedback_scale": [x for x in BAD_POSITIVE if x[0] != "None"], "structure": BAD_NAME,
                "whitened": BAD_BOOL, "input_condition": [x for x in BAD_POSITIVE if x[0] != "None"]
                + [("below 1", 0.5)], "rank": [x for x in BAD_COUNT if x[0] != "None"],
                "noise": BAD_NONNEG, "values": BAD_NAME, "decay": BAD_NONNEG}))
    return out


def _linfa_errors() -> tuple[type[Exception], ...]:
    """linfa's own input errors that are not ValueError/TypeError (documented in the functions' Raises)."""
    from linfa.sweep import StoreError

    return (StoreError,)


def classify(case: Case) -> tuple[str, str]:
    """``("clean" | "unclean" | "silent", detail)`` for one call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            case.call()
        except (ValueError, TypeError, *_linfa_errors()) as exc:
            msg = str(exc)
            if any(n in msg for n in case.names):
                return "clean", ""
            return "unclean", f"{type(exc).__name__} not naming {case.arg!r}: {msg[:160]}"
        except Exception as exc:
            return "unclean", f"{type(exc).__name__}: {str(exc)[:160]}"
    return "silent", "accepted"


def counts(cases: list[Case]) -> tuple[dict[str, int], list[str]]:
    tally = {"tried": 0, "clean": 0, "unclean": 0, "silent": 0}
    problems = []
    for case in cases:
        verdict, detail = classify(case)
        tally["tried"] += 1
        tally[verdict] += 1
        if verdict != "clean":
            problems.append(f"{case.function}({case.arg}={case.label}): {verdict}: {detail}")
    return tally, problems


def test_every_bad_argument_is_rejected_cleanly() -> None:
    tally, problems = counts(all_cases())
    assert tally["tried"] > 600
    assert not problems, f"{tally}\n" + "\n".join(problems)


def test_research_modules_reject_bad_arguments_cleanly() -> None:
    """teacher_student, plot, theorems, sweep and the testing strategies (``research_cases``)."""
    tally, problems = counts(research_cases())
    assert tally["tried"] > 900
    assert not problems, f"{tally}\n" + "\n".join(problems)


# --------------------------------------------------------------------------- hypothesis: random bad arrays
# (name, call, argument named in the error, a good shape, rows fixed by the other arguments, finite required)
ARRAY_ARGS: list[tuple[str, Callable[[Any], Any], str, tuple[int, ...], bool, bool]] = [
    ("Task(sxx)", lambda a: linfa.Task(a, TASK.syx, TASK.syy), "sxx", (3, 3), True, True),
    ("Task.teacher(w_star)", lambda a: linfa.Task.teacher(a, sxx=np.eye(3)), "w_star", (2, 3), False, True),
    ("DeepLinear.product", lambda a: NET.product((a, STATE[1])), "weights", (4, 3), True, False),
    ("observables.loss", lambda a: observables.loss(RULES["BP"], TASK, (a, STATE[1])), "state", (4, 3), True, False),
    ("FA.dstate", lambda a: RULES["FA"].dstate(TASK, (STATE[0], a)), "state", (2, 4), True, False),
    ("eqprop.fixed_point(x)", lambda a: eqprop.fixed_point(MODEL, a), "x", (5, 3), False, True),
    ("eqprop.energy(s)", lambda a: eqprop.energy(MODEL, a, X), "s", (5, 4), True, True),
]


@st.composite
def bad_array(draw: st.DrawFn, good: tuple[int, ...], fixed_rows: bool, finite: bool) -> np.ndarray:
    """An array wrong for an argument whose float64 matrices have shape ``good`` (rows free unless ``fixed_rows``):
    a wrong trailing shape (or too few axes), non-finite entries (if ``finite`` is required), or a non-real dtype."""
    how = draw(st.sampled_from(["shape", "nonfinite", "dtype"] if finite else ["shape", "dtype"]))
    if how == "shape":
        def wrong(s: tuple[int, ...]) -> bool:
            return len(s) < 2 or s[-1] != good[-1] or (fixed_rows and s[-2] != good[-2])

        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5).filter(wrong))
        return draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    if how == "nonfinite":
        a = draw(hnp.arrays(np.float64, good, elements=st.floats(-10, 10)))
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return a
    dtype = draw(st.sampled_from(["complex", "str", "object", "datetime", "bool"]))
    if dtype == "str":
        return np.full(good, "1.5")
    if dtype == "object":
        return np.full(good, None, dtype=object)
    if dtype == "datetime":
        return np.zeros(good, dtype="datetime64[s]")
    if dtype == "bool":
        return np.ones(good, dtype=bool)
    return np.ones(good) * (1 + 1j)


@pytest.mark.parametrize("name, call, argname, good, fixed_rows, finite", ARRAY_ARGS, ids=[a[0] for a in ARRAY_ARGS])
def test_random_bad_arrays(name: str, call: Callable[[Any], Any], argname: str, good: tuple[int, ...],
                           fixed_rows: bool, finite: bool) -> None:
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bad_array(good, fixed_rows, finite))
    def run(a: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                call(a)
            except (ValueError, TypeError) as exc:
                assert argname in str(exc), str(exc)
                return
        raise AssertionError(f"{name} accepted a bad array of shape {a.shape}, dtype {a.dtype}")

    run()


if __name__ == "__main__":
    import sys

    cases = research_cases() if "research" in sys.argv[1:] else all_cases()
    tally, problems = counts(cases)
    print("\n".join(problems))
    print(tally)
