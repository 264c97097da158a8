"""Hypothesis strategies for linear-network learning problems.

Every strategy is a plain function with keyword-only options, validated when
it is called (a bad option raises ``ValueError``/``TypeError`` at once, not
at draw time). Random matrices come from a ``numpy.random.Generator`` seeded
by a drawn integer, so hypothesis shrinks them by shrinking the seed toward 0
and the dimensions toward their minimum; ``values="integers"`` draws matrix
entries directly as small integers instead, so a shrunk counterexample has
the simplest entries hypothesis can find (zeros and ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

from linfa import feedback as _feedback
from linfa import rules as _rules
from linfa._validate import real
from linfa.instances import Instance
from linfa.networks import DeepLinear
from linfa.random_matrices import spd_with_condition
from linfa.tasks import Task

__all__ = ["feedback", "initial_states", "instances", "seeds", "tasks", "widths"]

SearchStrategy = st.SearchStrategy
TASK_STRUCTURES = ("teacher", "factorization", "output_correlated")
FEEDBACK_KINDS = (*_feedback.KINDS, "integers")
INITS = ("zeros", "small", "gaussian", "uniform", "balanced", "orthogonal", "aligned")
VALUES = ("gaussian", "integers")
_MAX_SEED = 2**32 - 1


# ------------------------------------------------------------------ validation
def _int(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v}")
    return int(v)


def _choice(name: str, v: Any, options: Sequence[str]) -> str:
    if v not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {v!r}")
    return str(v)


def _rule(name: str, v: Any, *, with_feedback: bool = False) -> type[_rules.AbstractRule]:
    """A registered rule class from a name or class (with a feedback layout if asked)."""
    try:
        cls = _rules.get(v)
    except (KeyError, TypeError):
        raise ValueError(f"{name}: expected a registered rule, one of {_rules.names()}, got {v!r}") from None
    if _rules.get(cls.name) is not cls:
        raise ValueError(f"{name}: {cls.__qualname__} is not registered (use linfa.rules.register)")
    if with_feedback and cls.feedback_layout is None:
        with_layout = [n for n in _rules.names() if _rules.get(n).feedback_layout is not None]
        raise ValueError(f"{name}: expected a rule with feedback matrices, one of {with_layout}, got {cls.name!r}")
    return cls


def _positive(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer) or not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite positive number, got {v!r}")
    return float(v)


def _widths_arg(name: str, w: Any) -> tuple[int, ...]:
    try:
        out = tuple(_int(f"{name}[{i}]", n) for i, n in enumerate(w))
    except TypeError as exc:
        raise TypeError(f"{name}: expected a sequence of positive integers, got {w!r}") from exc
    if len(out) < 2:
        raise ValueError(f"{name}: expected (n0, ..., nL) with L >= 1, got {w!r}")
    return out


# ------------------------------------------------------------------ strategies
def seeds() -> SearchStrategy[int]:
    """Seeds for ``numpy.random.default_rng``; shrink toward 0.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(seeds())
    ... def test(seed):
    ...     assert 0 <= seed < 2**32
    >>> test()
    """
    return st.integers(0, _MAX_SEED)


def widths(
    *,
    min_depth: int = 1,
    max_depth: int = 3,
    min_width: int = 1,
    max_width: int = 5,
    n_in: int | None = None,
    n_out: int | None = None,
) -> SearchStrategy[tuple[int, ...]]:
    """Network widths ``(n0, ..., nL)``; shrinks toward shallow and narrow.

    Parameters
    ----------
    min_depth, max_depth : int
        Range of the number of weight layers ``L``.
    min_width, max_width : int
        Range of every width.
    n_in, n_out : int, optional
        Fix ``n0`` and/or ``nL``.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(widths(min_depth=2, max_depth=2, n_out=1))
    ... def test(w):
    ...     assert len(w) == 3 and w[-1] == 1
    >>> test()
    """
    min_depth = _int("min_depth", min_depth)
    max_depth = _int("max_depth", max_depth)
    min_width = _int("min_width", min_width)
    max_width = _int("max_width", max_width)
    if max_depth < min_depth:
        raise ValueError(f"max_depth: expected >= min_depth = {min_depth}, got {max_depth}")
    if max_width < min_width:
        raise ValueError(f"max_width: expected >= min_width = {min_width}, got {max_width}")
    fixed_in = None if n_in is None else _int("n_in", n_in)
    fixed_out = None if n_out is None else _int("n_out", n_out)
    size = st.integers(min_width, max_width)

    @st.composite
    def draw_widths(draw: Any) -> tuple[int, ...]:
        depth = draw(st.integers(min_depth, max_depth))
        ws = [draw(size) for _ in range(depth + 1)]
        if fixed_in is not None:
            ws[0] = fixed_in
        if fixed_out is not None:
            ws[-1] = fixed_out
        return tuple(ws)

    return draw_widths()


_any_widths = widths


def _integer_matrix(shape: tuple[int, ...], bound: int = 2) -> SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound)).map(lambda a: a.astype(np.float64))


def tasks(
    *,
    n_in: int,
    n_out: int,
    structure: str = "teacher",
    whitened: bool = True,
    rank: int | None = None,
    noise: float = 0.0,
    max_condition: float = 10.0,
    values: str = "gaussian",
) -> SearchStrategy[Task]:
    """Tasks :class:`~linfa.Task` of given dimensions.

    Parameters
    ----------
    n_in, n_out : int
        ``n0`` and ``nL``.
    structure : {"teacher", "factorization", "output_correlated"}
        A linear teacher ``y = W* x (+ noise)``; a matrix-factorisation target
        ``Y`` (``n_out × n_in``, :meth:`Task.factorization`, whitened input);
        or a whitened-input task with a random ``Σyy`` of condition number up
        to ``max_condition`` (:meth:`Task.output_correlated`).
    whitened : bool
        ``Σxx = I``; otherwise a random SPD ``Σxx`` with condition number up
        to ``max_condition`` (teacher only).
    rank : int, optional
        Rank of the teacher or of ``Y`` (at most ``min(n_in, n_out)``);
        singular values are drawn in ``[0.5, 2]``.
    noise : float
        Output noise standard deviation (teacher only).
    max_condition : float
        Upper bound of the drawn condition numbers (``>= 1``).
    values : {"gaussian", "integers"}
        ``"integers"`` draws the teacher (or ``Y``) entries as integers in
        ``[-2, 2]`` (shrinking toward zero); ``rank`` is then ignored.

    Examples
    --------
    >>> from hypothesis import given
    >>> import numpy as np
    >>> @given(tasks(n_in=3, n_out=2, whitened=False))
    ... def test(task):
    ...     assert task.syx.shape == (2, 3) and np.all(np.linalg.eigvalsh(task.sxx) > 0)
    >>> test()
    """
    n_in = _int("n_in", n_in)
    n_out = _int("n_out", n_out)
    structure = _choice("structure", structure, TASK_STRUCTURES)
    values = _choice("values", values, VALUES)
    if not isinstance(whitened, bool):
        raise TypeError(f"whitened: expected a bool, got {type(whitened).__name__}")
    if rank is not None:
        rank = _int("rank", rank, lo=0)
        if rank > min(n_in, n_out):
            raise ValueError(f"rank: expected at most min(n_in, n_out) = {min(n_in, n_out)}, got {rank}")
    real("noise", noise, minimum=0.0)
    real("max_condition", max_condition, minimum=1.0)
    if structure != "teacher" and not whitened:
        raise ValueError(f"whitened: structure {structure!r} has whitened input; pass whitened=True")

    @st.composite
    def draw_task(draw: Any) -> Task:
        rng = np.random.default_rng(draw(seeds()))
        w = draw(_integer_matrix((n_out, n_in))) if values == "integers" else None
        return _make_task(rng, n_in, n_out, structure, whitened, rank, noise, max_condition, w)

    return draw_task()


def _make_task(rng: np.random.Generator, n_in: int, n_out: int, structure: str, whitened: bool, rank: int | None,
               noise: float, max_condition: float, w: np.ndarray | None, condition: float | None = None) -> Task:
    if structure == "output_correlated":
        cond = float(rng.uniform(1.0, max_condition))
        return Task.output_correlated(rng, n_in, spd_with_condition(rng, n_out, cond))
    if w is None:
        w = _low_rank(rng, n_out, n_in, rank)
    if structure == "factorization":
        return Task.factorization(w)
    if condition is not None:  # exactly this condition number (1 for a single input: any SPD 1×1 is)
        return Task.teacher(w, sxx=spd_with_condition(rng, n_in, condition), noise=noise)
    sxx = None if whitened else spd_with_condition(rng, n_in, float(rng.uniform(1.0, max_condition)))
    return Task.teacher(w, sxx=sxx, noise=noise)


def _low_rank(rng: np.random.Generator, n: int, m: int, rank: int | None) -> np.ndarray:
    if rank is None:
        return rng.standard_normal((n, m)) / np.sqrt(m)
    s = rng.uniform(0.5, 2.0, size=rank)
    u = np.linalg.qr(rng.standard_normal((n, n)))[0][:, :rank]
    v = np.linalg.qr(rng.standard_normal((m, m)))[0][:, :rank]
    return np.asarray((u * s) @ v.T)


def feedback(
    *,
    widths: Sequence[int],
    rule: str | type[_rules.AbstractRule] = "FA",
    kind: str = "gaussian",
    scale: float | None = None,
) -> SearchStrategy[tuple[np.ndarray, ...]]:
    """The feedback matrices of a rule's :class:`~linfa.rules.FeedbackLayout`.

    FA's ``B_2..B_L``, DFA's ``B_1..B_{L-1}``, Kolen–Pollack's start, or those
    of any registered rule with a layout.

    Parameters
    ----------
    widths : sequence of int
        ``(n0, ..., nL)``.
    rule : str or rule class
        A registered rule with feedback (``"FA"``, ``"DFA"``, ``"KolenPollack"``, a user's).
    kind : {"gaussian", "uniform", "orthogonal", "row_normalized", "integers"}
        A sampler of :mod:`linfa.feedback`, or integer entries in ``[-2, 2]``
        (shrinking toward zero).
    scale : float, optional
        Passed to the sampler (see :mod:`linfa.feedback`).

    Examples
    --------
    >>> from hypothesis import given
    >>> import numpy as np
    >>> @given(feedback(widths=(3, 4, 2), kind="orthogonal"))
    ... def test(bs):
    ...     (b,) = bs
    ...     assert np.allclose(b.T @ b, np.eye(2))
    >>> test()
    """
    ws = _widths_arg("widths", widths)
    rule_cls = _rule("rule", rule, with_feedback=True)
    kind = _choice("kind", kind, FEEDBACK_KINDS)
    if scale is not None:
        scale = _positive("scale", scale)
    shapes = rule_cls.feedback_shapes(ws)

    @st.composite
    def draw_feedback(draw: Any) -> tuple[np.ndarray, ...]:
        ints = [draw(_integer_matrix(sh)) for sh in shapes] if kind == "integers" else None
        return _make_feedback(np.random.default_rng(draw(seeds())), shapes, kind, scale, ints)

    return draw_feedback()


def _make_feedback(rng: np.random.Generator, shapes: Sequence[tuple[int, int]], kind: str, scale: float | None,
                   ints: Sequence[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    if ints is not None:
        return tuple(ints)
    return tuple(_feedback.sample(rng, sh, kind=kind, scale=scale) for sh in shapes)


def initial_states(
    *,
    widths: Sequence[int],
    init: str = "small",
    scale: float | None = None,
    task: Task | None = None,
) -> SearchStrategy[tuple[np.ndarray, ...]]:
    """Initial weights ``(W_1, ..., W_L)``.

    Parameters
    ----------
    widths : sequence of int
    init : {"zeros", "small", "gaussian", "uniform", "balanced", "orthogonal", "aligned"}
        ``"small"`` is Gaussian with ``scale = 1e-3``; ``"aligned"`` needs
        ``task`` (mode-aligned, :meth:`~linfa.DeepLinear.aligned`, with mode
        strengths drawn in ``[1e-3, 0.1]``).
    scale : float, optional
        Entry scale (default 1e-3 for ``"small"``, 0.5 otherwise).
    task : Task, optional

    Examples
    --------
    >>> from hypothesis import given
    >>> import numpy as np
    >>> @given(initial_states(widths=(2, 3, 1), init="zeros"))
    ... def test(ws):
    ...     assert [w.shape for w in ws] == [(3, 2), (1, 3)] and not any(w.any() for w in ws)
    >>> test()
    """
    ws = _widths_arg("widths", widths)
    init = _choice("init", init, INITS)
    s = (1e-3 if init == "small" else 0.5) if scale is None else _positive("scale", scale)
    if init == "aligned" and not isinstance(task, Task):
        raise TypeError(f"task: init='aligned' needs a linfa.Task, got {type(task).__name__}")
    if task is not None and not isinstance(task, Task):
        raise TypeError(f"task: expected a linfa.Task or None, got {type(task).__name__}")
    net = DeepLinear(ws)

    @st.composite
    def draw_state(draw: Any) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(draw(seeds()))
        return _make_state(rng, net, init, s, task)

    return draw_state()


def _make_state(rng: np.random.Generator, net: DeepLinear, init: str, scale: float,
                task: Task | None) -> tuple[np.ndarray, ...]:
    if init == "zeros":
        return net.zeros()
    if init in ("small", "gaussian"):
        return net.gaussian(rng, scale)
    if init == "aligned":
        assert task is not None
        return net.aligned(task, rng.uniform(1e-3, 0.1, size=min(net.widths)))
    kinds: dict[str, Any] = {"uniform": net.uniform, "balanced": net.balanced, "orthogonal": net.orthogonal}
    out: tuple[np.ndarray, ...] = kinds[init](rng, scale)
    return out


def instances(
    *,
    rule: str | type[_rules.AbstractRule] = "FA",
    widths: Sequence[int] | SearchStrategy[tuple[int, ...]] | None = None,
    init: str = "small",
    init_scale: float | None = None,
    feedback_kind: str = "gaussian",
    feedback_scale: float | None = None,
    structure: str = "teacher",
    whitened: bool = True,
    input_condition: float | None = None,
    rank: int | None = None,
    noise: float = 0.0,
    values: str = "gaussian",
    decay: float = 0.5,
    rule_params: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> SearchStrategy[Instance]:
    """A complete, reproducible learning-dynamics :class:`~linfa.Instance`.

    It holds the task moments, the initial weights and the feedback of the
    rule's declared layout (naming of :mod:`linfa.instances`), records the
    seeds it was drawn from, and saves to / loads from ``.npz`` without pickling.

    Parameters
    ----------
    rule : str or rule class
        Any registered rule: ``"BP"``, ``"FA"``, ``"DFA"``, ``"KolenPollack"``,
        ``"SignSymmetry"`` or a user's (:func:`linfa.rules.register`).
    widths : sequence of int or strategy, optional
        Fixed widths or a :func:`widths` strategy (default ``widths()``).
    init, init_scale
        See :func:`initial_states`.
    feedback_kind, feedback_scale
        See :func:`feedback` (ignored for a rule without feedback matrices).
    structure, whitened, rank, noise, values
        See :func:`tasks` (with ``whitened=False`` the input condition number
        is drawn in ``[1, 10]``).
    input_condition : float, optional
        Give ``Σxx`` exactly this condition number ``κ >= 1``
        (:func:`linfa.random_matrices.spd_with_condition`; teacher tasks only;
        implies ``whitened=False``). A condition number above 1 needs at least
        two inputs: the default widths then draw ``n0 >= 2``, a widths strategy
        is filtered to ``n0 >= 2``, and fixed widths with ``n0 = 1`` are refused
        (``ValueError``). The feedback distribution and scale are
        ``feedback_kind`` and ``feedback_scale``.
    decay : float
        Kolen–Pollack's weight decay ``λ``: the value of a declared parameter
        ``decay`` of the rule unless ``rule_params`` gives one.
    rule_params : dict, optional
        Values of the rule's declared :attr:`~linfa.AbstractRule.parameters`
        (JSON numbers or lists), stored in the instance's parameters.
    params : dict, optional
        Extra JSON parameters stored in the instance (e.g. ``{"t1": 2.0}``
        read by the catalogue checks).

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(instances(rule="DFA", widths=(3, 4, 4, 2), init="zeros"))
    ... def test(inst):
    ...     rule, task, state = inst.problem()
    ...     assert inst.widths == (3, 4, 4, 2) and rule.name == "DFA"
    >>> test()
    """
    rule_cls = _rule("rule", rule)
    init = _choice("init", init, INITS)
    feedback_kind = _choice("feedback_kind", feedback_kind, FEEDBACK_KINDS)
    values = _choice("values", values, VALUES)
    structure = _choice("structure", structure, TASK_STRUCTURES)
    if rule_params is not None and not isinstance(rule_params, dict):
        raise TypeError(f"rule_params: expected a dict of the rule's parameters, got {type(rule_params).__name__}")
    rule_values = dict(rule_params or {})
    decay = real("decay", decay, minimum=0.0)  # checked even for a rule without a decay
    if "decay" in rule_cls.parameters and "decay" not in rule_values:
        rule_values["decay"] = decay
    if sorted(rule_values) != sorted(rule_cls.parameters):
        raise ValueError(
            f"rule_params: {rule_cls.name} takes parameters {list(rule_cls.parameters)}, got {sorted(rule_values)}"
        )
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"params: expected a dict of JSON parameters, got {type(params).__name__}")
    if widths is None:
        width_strategy: SearchStrategy[tuple[int, ...]] = _any_widths()
    elif isinstance(widths, SearchStrategy):
        width_strategy = widths
    else:
        fixed_widths = _widths_arg("widths", widths)
        width_strategy = st.just(fixed_widths)
    # validate the remaining options once, on a small example
    tasks(n_in=2, n_out=2, structure=structure, whitened=whitened, noise=noise, values=values)
    if rank is not None:
        _int("rank", rank, lo=0)
    if input_condition is not None:
        if isinstance(input_condition, bool) or not isinstance(input_condition, int | float) \
                or not np.isfinite(input_condition) or input_condition < 1:
            raise ValueError(f"input_condition: expected a finite condition number >= 1, got {input_condition!r}")
        if structure != "teacher":
            raise ValueError(f"input_condition: structure {structure!r} has whitened input; use structure='teacher'")
        input_condition = float(input_condition)
        if input_condition > 1:  # a single input has κ(Σxx) = 1 whatever is asked: draw at least 2
            if isinstance(widths, SearchStrategy):
                width_strategy = width_strategy.filter(lambda ws: ws[0] >= 2)
            elif widths is None:
                width_strategy = width_strategy.map(lambda ws: (max(ws[0], 2), *ws[1:]))
            elif fixed_widths[0] < 2:
                raise ValueError(f"input_condition: {input_condition!r} > 1 needs at least 2 inputs, "
                                 f"got widths {fixed_widths!r}")
    conditioned: dict[str, Any] = {} if input_condition is None else {"input_condition": input_condition}
    extra = dict(params or {})

    int_feedback = feedback_kind == "integers"
    fb_scale = None if feedback_scale is None else _positive("feedback_scale", feedback_scale)
    s_init = (1e-3 if init == "small" else 0.5) if init_scale is None else _positive("init_scale", init_scale)

    @st.composite
    def draw_instance(draw: Any) -> Instance:
        ws = draw(width_strategy)
        seed = draw(seeds())
        rng = np.random.default_rng(seed)
        r = None if rank is None else min(rank, ws[0], ws[-1])
        w = draw(_integer_matrix((ws[-1], ws[0]))) if values == "integers" else None
        shapes = rule_cls.feedback_shapes(ws)
        ints = [draw(_integer_matrix(sh)) for sh in shapes] if int_feedback else None
        task = _make_task(rng, ws[0], ws[-1], structure, whitened, r, noise, 10.0, w, input_condition)
        state = _make_state(rng, DeepLinear(ws), init, s_init, task)
        fb = _make_feedback(rng, shapes, feedback_kind, fb_scale, ints)
        return Instance.learning(task, state, rule=rule_cls, feedback=fb,
                                 seed={"seed": seed, "strategy": "linfa.testing.instances"},
                                 name="linfa.testing.instances",
                                 init=init, structure=structure, **extra, **rule_values, **conditioned)

    return draw_instance()
