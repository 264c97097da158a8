"""Learning rules for deep linear networks, each as a flow on the weights.

Every rule has the form (docs/design.md)

.. math::

    \\frac{dW_l}{dt} = M_l \\, E \\, W_{<l}^T, \\qquad E = \\Sigma_{yx} - W\\Sigma_{xx},

with ``W = W_L ⋯ W_1``, ``W_{<l} = W_{l-1} ⋯ W_1`` and a backward matrix ``M_l``
(``n_l × n_L``, ``M_L = I``) that is what distinguishes the rules:

==================  ==========================================================
rule                backward matrix :math:`M_l`
==================  ==========================================================
:class:`BP`         :math:`W_{>l}^T = W_{l+1}^T ⋯ W_L^T` (gradient flow on L)
:class:`FA`         :math:`B_{l+1} B_{l+2} ⋯ B_L`, fixed ``B_k`` for ``W_k^T``
:class:`DFA`        :math:`B_l` for ``l < L``
:class:`SignSymmetry`  :math:`\\operatorname{sign}(W_{l+1})^T ⋯ \\operatorname{sign}(W_L)^T`
:class:`KolenPollack`  FA whose ``B_k`` learn (state carries them), with decay
==================  ==========================================================

The flow is computed through the backward signals ``δ_l = M_l E`` (shape
``n_l × n_0``), recursively from the output, then ``dW_l = δ_l W_{<l}^T``.
It is written once with the operations of :mod:`linfa._ops` and so evaluates
on batched numpy arrays and on sympy matrices alike.

One rule identity
-----------------
A rule class declares, once, everything the rest of the toolkit needs to know
about it:

* :attr:`AbstractRule.name`, the name it is registered (and stored in an
  :class:`linfa.Instance`) under;
* :attr:`AbstractRule.feedback_layout`, a :class:`FeedbackLayout` saying which
  feedback matrices ``B_l`` it uses and their shapes for given widths (``None``
  for a rule without feedback matrices);
* :attr:`AbstractRule.learns_feedback`: whether the feedback is part of the
  *state* (it moves under the flow) rather than fixed arrays held by the rule;
* :attr:`AbstractRule.parameters`: the names of its scalar constructor
  arguments (e.g. Kolen–Pollack's ``decay``).

From the declaration :class:`AbstractRule` derives the state layout
(:meth:`~AbstractRule.init_state`, :meth:`~AbstractRule.weights`,
:meth:`~AbstractRule.feedback_of`), validation, construction from stored
arrays (:meth:`~AbstractRule.build`) and the array plumbing of the
integrator. A state is a tuple of arrays: the weights ``(W_1, ..., W_L)``,
each of shape ``(*batch, n_l, n_{l-1})``, followed, when the rule learns its
feedback, by the feedback matrices of its layout.

Rules are found by name in a registry (:func:`register`, :func:`get`,
:func:`names`); the built-in rules register themselves exactly as a user's
rule does::

    @linfa.rules.register
    class MyRule(linfa.AbstractRule):
        name = "MyRule"
        feedback_layout = linfa.rules.FeedbackLayout.direct()

        def _signals(self, state, e):
            return [b @ e for b in self.feedback] + [e]

Installed packages can also provide rules through the ``importlib.metadata``
entry-point group ``linfa.rules`` (entry name = rule name, value = the
class); they are loaded only when an unknown name is looked up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

import numpy as np

from linfa._ops import is_symbolic, matmul, sign, transpose
from linfa._validate import (
    as_matrix,
    is_symbolic_problem,
    is_trusted,
    problem_state,
    real,
    shape_str,
    trusted,
)
from linfa.errors import UnknownNameError
from linfa.products import prefix_products
from linfa.tasks import Task

__all__ = [
    "BP",
    "DFA",
    "FA",
    "AbstractRule",
    "FeedbackLayout",
    "KolenPollack",
    "SignSymmetry",
    "error",
    "get",
    "names",
    "prefix_products",
    "register",
    "unregister",
]

State = tuple[Any, ...]
Flow = Callable[[Any, State], State]
#: Entry-point group of rules provided by installed packages.
ENTRY_POINT_GROUP = "linfa.rules"


def error(task: Task, w_total: Any) -> Any:
    """Error–input correlation ``E = Σyx − W Σxx``; shape ``(*batch, nL, n0)``.

    When ``task.whitened`` (``Σxx = I`` exactly) the product is skipped.
    """
    if task.whitened:
        return task.syx - w_total
    return task.syx - matmul(w_total, task.sxx)


# --------------------------------------------------------------------------- layout
def _layer_shapes(widths: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(widths[l - 1], widths[l]) for l in range(2, len(widths))]


def _direct_shapes(widths: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(widths[l], widths[-1]) for l in range(1, len(widths) - 1)]


@dataclass(frozen=True)
class FeedbackLayout:
    """Which feedback matrices a rule uses, and their shapes for given widths.

    Parameters
    ----------
    shapes : callable
        ``shapes(widths) -> [(rows, cols), ...]``: for widths ``(n0, ..., nL)``
        the shapes of the feedback matrices ``B_first, B_{first+1}, ...`` in
        order. Their number may depend only on the depth ``L``.
    first : int
        Index of the first matrix: the matrices are named ``B{first}``,
        ``B{first+1}``, ... (in an :class:`linfa.Instance`, in messages).
    kind : str
        What a matrix ``B_l`` stands for. ``"layer"``: it replaces ``W_l^T`` on
        the backward pass (shape ``(n_{l-1}, n_l)``; read by
        :func:`linfa.observables.layer_alignment`); ``"direct"``: it carries
        the output error straight to layer ``l`` (shape ``(n_l, n_L)``); any
        other label for a layout of your own.
    description : str
        One line for error messages and documentation.

    Examples
    --------
    >>> FeedbackLayout.layerwise().shapes((3, 4, 5, 2))
    [(4, 5), (5, 2)]
    >>> FeedbackLayout.direct().names(3)
    ('B1', 'B2')
    """

    shapes: Callable[[tuple[int, ...]], Sequence[tuple[int, int]]]
    first: int = 1
    kind: str = "custom"
    description: str = ""

    @classmethod
    def layerwise(cls) -> FeedbackLayout:
        """``B_l`` of shape ``(n_{l-1}, n_l)`` for ``l = 2..L``, in place of ``W_l^T`` (FA)."""
        return cls(_layer_shapes, first=2, kind="layer",
                   description="B_l of shape (n_{l-1}, n_l) for l = 2..L")

    @classmethod
    def direct(cls) -> FeedbackLayout:
        """``B_l`` of shape ``(n_l, n_L)`` for ``l = 1..L-1``, from the output to layer ``l`` (DFA)."""
        return cls(_direct_shapes, first=1, kind="direct",
                   description="B_l of shape (n_l, n_L) for l = 1..L-1")

    def shapes_for(self, widths: Sequence[int]) -> list[tuple[int, int]]:
        """The shapes for ``widths = (n0, ..., nL)``, validated.

        Raises
        ------
        ValueError
            If ``widths`` is not at least two positive sizes.
        """
        ws = tuple(int(n) for n in widths)
        if len(ws) < 2 or any(n < 1 for n in ws):
            raise ValueError(f"widths: expected (n0, ..., nL) with L >= 1 positive sizes, got {tuple(widths)!r}")
        return [(int(r), int(c)) for r, c in self.shapes(ws)]

    def count(self, depth: int) -> int:
        """Number of feedback matrices of a network with ``depth`` layers."""
        return _count(self, int(depth))

    def names(self, depth: int) -> tuple[str, ...]:
        """Array names ``("B{first}", ...)`` for a network with ``depth`` layers."""
        return tuple(f"B{self.first + i}" for i in range(self.count(depth)))


@functools.lru_cache(maxsize=256)
def _count(layout: FeedbackLayout, depth: int) -> int:
    # the state split calls this on every evaluation of a learned-feedback flow
    return len(layout.shapes_for((1,) * (depth + 1)))


_DEPTHS: dict[tuple[type, int], int] = {}


def _learned_depth(cls: type[AbstractRule], n: int) -> int:
    """Depth ``L`` of a state of ``n`` entries: ``L`` weights then the layout's matrices for ``L``."""
    key = (cls, n)
    if key in _DEPTHS:
        return _DEPTHS[key]
    layout = cls.feedback_layout
    assert layout is not None
    for depth in range(1, n + 1):
        if depth + layout.count(depth) == n:
            _DEPTHS[key] = depth
            return depth
    lengths = [d + layout.count(d) for d in range(1, 5)]
    raise ValueError(
        f"state: expected the weights W_1..W_L followed by the learned feedback "
        f"({cls._layout_doc()}), i.e. {', '.join(map(str, lengths))}, ... entries, got {n}"
    )


# --------------------------------------------------------------------------- rules
class AbstractRule:
    """A learning rule: what backward signal each layer receives.

    Subclasses declare :attr:`name`, :attr:`feedback_layout`,
    :attr:`learns_feedback` and :attr:`parameters`, and implement
    :meth:`_signals` (the ``δ_l = M_l e``); everything else is derived from
    the declaration. A rule that learns its feedback also overrides
    :meth:`dstate` to give the feedback's own flow; a rule with a known
    conservation law overrides :meth:`conserved_quantities`. Concrete rules
    are final.

    Parameters
    ----------
    feedback : sequence of ndarray, optional
        For a rule with fixed feedback (a layout and ``learns_feedback =
        False``) only, and then required: the matrices of its layout, each
        ``(*batch, rows, cols)``, kept as ``rule.feedback``.
    **params
        Exactly the declared :attr:`parameters`, set as attributes.

    Raises
    ------
    TypeError
        On missing or unexpected feedback or parameters.
    """

    #: The rule's registry name (as stored in ``Instance.params["rule"]``).
    name: ClassVar[str] = "rule"
    #: The feedback matrices the rule uses; ``None`` for none.
    feedback_layout: ClassVar[FeedbackLayout | None] = None
    #: Whether the feedback is part of the state (it learns) rather than held by the rule.
    learns_feedback: ClassVar[bool] = False
    #: Names of the rule's scalar constructor arguments (attributes of the same name).
    parameters: ClassVar[tuple[str, ...]] = ()

    feedback: tuple[Any, ...]

    def __init__(self, feedback: Sequence[Any] | None = None, **params: Any) -> None:
        cls = type(self)
        if cls.holds_feedback():
            if feedback is None:
                raise TypeError(f"feedback: {cls.name} needs its feedback matrices ({cls._layout_doc()})")
            if not isinstance(feedback, tuple | list):
                raise TypeError(f"feedback: expected a tuple of matrices, got {type(feedback).__name__}")
            self.feedback = tuple(
                as_matrix(f"feedback[{i}]", b, allow_symbolic=True) for i, b in enumerate(feedback)
            )
        elif feedback is not None:
            raise TypeError(f"feedback: {cls.name} holds no fixed feedback matrices, got {type(feedback).__name__}")
        unknown = sorted(set(params) - set(cls.parameters))
        missing = [p for p in cls.parameters if p not in params]
        if unknown or missing:
            raise TypeError(
                f"params: {cls.name} takes parameters {list(cls.parameters)}, got {sorted(params)}"
            )
        for key, value in params.items():
            setattr(self, key, value)

    # ------------------------------------------------------------ declaration
    @classmethod
    def holds_feedback(cls) -> bool:
        """Whether instances hold fixed feedback matrices (a layout that does not learn)."""
        return cls.feedback_layout is not None and not cls.learns_feedback

    @classmethod
    def feedback_shapes(cls, widths: Sequence[int]) -> list[tuple[int, int]]:
        """Shapes of the rule's feedback matrices for ``widths`` (empty without a layout)."""
        if cls.feedback_layout is None:
            FeedbackLayout(_layer_shapes).shapes_for(widths)  # validates widths
            return []
        return cls.feedback_layout.shapes_for(widths)

    @classmethod
    def feedback_names(cls, depth: int) -> tuple[str, ...]:
        """Array names of the feedback matrices for ``depth`` layers (see :class:`FeedbackLayout`)."""
        return () if cls.feedback_layout is None else cls.feedback_layout.names(depth)

    @classmethod
    def build(cls, feedback: Sequence[Any] = (), **params: Any) -> AbstractRule:
        """The rule with ``feedback`` (if it holds fixed feedback) and ``params``.

        For a rule that learns its feedback, the feedback goes into the state
        (:meth:`init_state`) instead and ``feedback`` must be empty.
        """
        if cls.holds_feedback():
            return cls(tuple(feedback), **params)
        if len(feedback):
            raise TypeError(f"feedback: {cls.name} holds no fixed feedback (it is part of the state or absent)")
        return cls(**params)

    def parameter_values(self) -> dict[str, Any]:
        """``{name: value}`` of the declared :attr:`parameters`."""
        return {p: getattr(self, p) for p in self.parameters}

    @classmethod
    def _layout_doc(cls) -> str:
        layout = cls.feedback_layout
        return "no feedback" if layout is None else (layout.description or f"{layout.kind} feedback")

    # ------------------------------------------------------------- interface
    def flow(self, task: Task) -> Flow:
        """The vector field ``f(t, state) -> dstate`` of this rule on ``task``.

        Parameters
        ----------
        task : Task
            Population moments (numpy, possibly batched, or sympy via
            :meth:`Task.tree_unflatten`).

        Returns
        -------
        callable
            ``f(t, state)`` returning a tuple shaped like ``state``; it
            validates nothing (call :meth:`validate` once beforehand).
        """

        dstate = trusted(self.dstate)  # validated once by the caller; no per-step checks

        def f(t: Any, state: State) -> State:
            return dstate(task, state)

        return f

    def dstate(self, task: Task, state: State) -> State:
        """Evaluate the flow at ``state`` (``flow(task)(t, state)`` without ``t``).

        The weights move by ``δ_l W_{<l}^T``; a rule that learns its feedback
        overrides this to add the feedback's own flow. Called directly, it
        checks ``task`` and the shapes of ``state`` first (:meth:`flow`, used
        by the integrators, does not).
        """
        if not is_trusted() and not is_symbolic_problem(state, task):
            state = problem_state(self, task, state)
        weights = self.weights(state)
        prefix = prefix_products(weights)
        e = error(task, prefix[-1])
        deltas = self._signals(state, e)
        return tuple(
            d if p is None else matmul(d, transpose(p)) for d, p in zip(deltas, prefix[:-1], strict=True)
        )

    def depth(self, state: State) -> int:
        """Number of weight layers ``L`` of a state."""
        cls = type(self)
        return len(state) if not cls.learns_feedback else _learned_depth(cls, len(state))

    def weights(self, state: State) -> tuple[Any, ...]:
        """The forward weights ``(W_1, ..., W_L)`` of a state."""
        if not type(self).learns_feedback:
            return tuple(state)
        return tuple(state[: self.depth(state)])

    def feedback_of(self, state: State) -> tuple[Any, ...]:
        """The feedback matrices in use at ``state``, in the order of :attr:`feedback_layout`.

        Read from the state for a rule that learns its feedback, from the rule
        for fixed feedback; empty for a rule without a layout.
        """
        cls = type(self)
        if cls.learns_feedback:
            return tuple(state[self.depth(state):])
        return self.feedback if cls.holds_feedback() else ()

    def init_state(self, weights: Sequence[Any], feedback: Sequence[Any] | None = None) -> State:
        """Build a state from initial weights, and the initial feedback if the rule learns it.

        Parameters
        ----------
        weights : sequence of ndarray
            ``(W_1, ..., W_L)``.
        feedback : sequence of ndarray, optional
            The initial feedback (:attr:`feedback_layout`); required exactly
            when :attr:`learns_feedback`.

        Returns
        -------
        tuple
            ``(W_1, ..., W_L)`` followed by the learned feedback, if any.
        """
        cls = type(self)
        if not cls.learns_feedback:
            if feedback is not None:
                raise TypeError(f"feedback: {cls.name} does not learn its feedback; pass only the weights")
            return tuple(weights)
        if feedback is None:
            raise TypeError(f"feedback: {cls.name}.init_state needs the initial feedback ({cls._layout_doc()})")
        assert cls.feedback_layout is not None
        n = cls.feedback_layout.count(len(weights))
        if len(feedback) != n:
            raise ValueError(f"feedback: expected {n} matrices ({cls._layout_doc()}), got {len(feedback)}")
        return (*weights, *feedback)

    def backward_matrices(self, state: State) -> tuple[Any, ...]:
        """The backward matrices ``(M_1, ..., M_{L-1})``, each ``(*batch, n_l, n_L)``.

        ``M_L = I`` is omitted.
        """
        weights = self.weights(state)
        n_out = weights[-1].shape[-2]
        batch = np.broadcast_shapes(*(np.shape(w)[:-2] for w in weights))
        eye = np.broadcast_to(np.eye(n_out), (*batch, n_out, n_out))
        return tuple(self._signals(state, eye)[:-1])

    def conserved_quantities(self, state: State) -> tuple[Any, ...]:
        """Quantities the flow conserves, one per hidden layer (see :func:`linfa.observables.conserved_quantities`).

        Raises
        ------
        TypeError
            For a rule with no known conservation law (the default).
        """
        raise TypeError(f"rule: no conservation law is known for {type(self).__name__}")

    def validate(self, task: Task, state: State, *, name: str = "state") -> None:
        """Check a state against a task and this rule; raise a clear error if wrong.

        Raises
        ------
        TypeError
            If ``state`` is not a tuple or list of arrays.
        ValueError
            On a wrong number of entries, a wrong shape, a batch shape that
            does not broadcast, or non-finite entries.
        """
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a linfa.Task, got {type(task).__name__}")
        if not isinstance(state, tuple | list):
            raise TypeError(f"{name}: expected a tuple of weight matrices (W_1, ..., W_L), got {type(state).__name__}")
        if len(state) == 0:
            raise ValueError(f"{name}: expected at least one weight matrix, got an empty tuple")
        try:
            depth = self.depth(state)
        except ValueError as exc:
            raise ValueError(f"{name}{str(exc)[len('state'):]}") from None
        weights = state[:depth]
        prev = task.n_in
        batches = [task.batch_shape]
        for l, w in enumerate(weights, start=1):
            rows = task.n_out if l == depth else None
            arr = as_matrix(f"{name}[{l - 1}] (W_{l})", w, rows, prev)
            batches.append(arr.shape[:-2])
            prev = arr.shape[-2]
        widths = (task.n_in, *(np.shape(w)[-2] for w in weights))
        self._validate_feedback(widths, state, name, batches)
        try:
            np.broadcast_shapes(*batches)
        except ValueError:
            raise ValueError(
                f"{name}: batch shapes of the task, state and feedback do not broadcast: "
                + ", ".join(shape_str(b) for b in batches)
            ) from None

    def _validate_feedback(
        self, widths: tuple[int, ...], state: State, name: str, batches: list[tuple[int, ...]]
    ) -> None:
        cls = type(self)
        layout = cls.feedback_layout
        if layout is None:
            return
        expected = layout.shapes_for(widths)
        labels = layout.names(len(widths) - 1)
        if cls.learns_feedback:
            depth = len(widths) - 1
            for i, (shp, label) in enumerate(zip(expected, labels, strict=True)):
                arr = as_matrix(f"{name}[{depth + i}] ({label[0]}_{label[1:]})", state[depth + i], *shp)
                batches.append(arr.shape[:-2])
            return
        if len(self.feedback) != len(expected):
            raise ValueError(
                f"feedback: expected {len(expected)} matrices for widths {widths} "
                f"({cls._layout_doc()}), got {len(self.feedback)}"
            )
        for i, (b, shp) in enumerate(zip(self.feedback, expected, strict=True)):
            if tuple(b.shape[-2:]) != shp:
                raise ValueError(
                    f"feedback[{i}]: expected shape {shape_str(['*batch', *shp])}, got {shape_str(b.shape)}"
                )
            if not is_symbolic(b):
                batches.append(b.shape[:-2])

    # ----------------------------------------------------------- tree plumbing
    def tree_flatten(self) -> tuple[tuple[Any, ...], Any]:
        """Arrays the rule carries (its fixed feedback, each ``(*batch, a, b)``) and static data (its parameters)."""
        leaves = self.feedback if type(self).holds_feedback() else ()
        return tuple(leaves), tuple(self.parameter_values().items())

    @classmethod
    def tree_unflatten(cls, aux: Any, leaves: Sequence[Any]) -> AbstractRule:
        """Rebuild a rule from :meth:`tree_flatten` output, without validation."""
        obj = object.__new__(cls)
        if cls.holds_feedback():
            obj.feedback = tuple(leaves)
        for key, value in aux or ():
            setattr(obj, key, value)
        return obj

    # ----------------------------------------------------------- to implement
    def _signals(self, state: State, e: Any) -> list[Any]:
        """Backward signals ``[M_1 e, ..., M_L e]`` for ``e`` of shape ``(*batch, nL, k)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = []
        if type(self).holds_feedback():
            args.append("feedback=[" + ", ".join(shape_str(np.shape(b)) for b in self.feedback) + "]")
        args += [f"{k}={v!r}" for k, v in self.parameter_values().items()]
        return f"{type(self).__name__}({', '.join(args)})"


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[AbstractRule]] = {}
R = TypeVar("R", bound=type[AbstractRule])


@overload
def register(rule: R, *, replace: bool = False) -> R: ...
@overload
def register(rule: None = None, *, replace: bool = False) -> Callable[[R], R]: ...
def register(rule: R | None = None, *, replace: bool = False) -> R | Callable[[R], R]:
    """Register a rule class under its :attr:`~AbstractRule.name`; usable as a class decorator.

    Parameters
    ----------
    rule : subclass of AbstractRule
        The class (omit it to get a decorator: ``@register(replace=True)``).
    replace : bool
        Allow replacing another class registered under the same name.

    Returns
    -------
    The class itself (so ``@register`` leaves it unchanged).

    Raises
    ------
    TypeError
        If ``rule`` is not a subclass of :class:`AbstractRule`.
    ValueError
        If its name is not an identifier, its declaration is inconsistent, or
        the name is taken by another class and ``replace`` is false.

    Examples
    --------
    >>> @register
    ... class Scaled(AbstractRule):
    ...     name = "ScaledDFA_doc"
    ...     feedback_layout = FeedbackLayout.direct()
    ...     def _signals(self, state, e):
    ...         return [2.0 * (b @ e) for b in self.feedback] + [e]
    >>> get("ScaledDFA_doc") is Scaled
    True
    >>> _ = unregister("ScaledDFA_doc")
    """
    if rule is None:
        return lambda cls: register(cls, replace=replace)
    if not isinstance(rule, type) or not issubclass(rule, AbstractRule) or rule is AbstractRule:
        raise TypeError(f"rule: expected a subclass of linfa.AbstractRule, got {rule!r}")
    name = rule.name
    if not isinstance(name, str) or not name.isidentifier() or name == AbstractRule.name:
        raise ValueError(f"rule: {rule.__qualname__}.name must be an identifier of its own, got {name!r}")
    if rule.feedback_layout is not None and not isinstance(rule.feedback_layout, FeedbackLayout):
        raise TypeError(f"rule: {name}.feedback_layout must be a FeedbackLayout or None, "
                        f"got {type(rule.feedback_layout).__name__}")
    if rule.learns_feedback and rule.feedback_layout is None:
        raise ValueError(f"rule: {name} declares learns_feedback but no feedback_layout")
    if not all(isinstance(p, str) and p.isidentifier() for p in rule.parameters):
        raise ValueError(f"rule: {name}.parameters must be identifiers, got {rule.parameters!r}")
    old = _REGISTRY.get(name)
    if old is not None and old is not rule and not replace:
        raise ValueError(f"rule: name {name!r} is already registered to {old.__module__}.{old.__qualname__} "
                         "(pass replace=True)")
    _REGISTRY[name] = rule
    return rule


def unregister(name: str) -> type[AbstractRule]:
    """Remove and return the rule class registered as ``name``.

    Raises
    ------
    linfa.UnknownNameError
        (a ``KeyError`` and ``ValueError``) naming the registered rules, if there is no such rule.
    """
    try:
        return _REGISTRY.pop(name)
    except (KeyError, TypeError):
        raise UnknownNameError("name", name, _REGISTRY, kind="rule") from None


def _from_entry_points(name: str) -> type[AbstractRule] | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if _REGISTRY.get(name) is not cls:
                register(cls)
            return _REGISTRY[name]
    return None


def get(name: str | type[AbstractRule] | AbstractRule) -> type[AbstractRule]:
    """The rule class registered as ``name`` (a rule class or rule object gives its class).

    An unknown name is looked up among the installed packages' entry points
    (group ``linfa.rules``) before giving up.

    Raises
    ------
    linfa.UnknownNameError
        (a ``KeyError`` and ``ValueError``) naming the registered rules, if there is no such rule.
    TypeError
        If ``name`` is neither a string nor a rule.
    """
    if isinstance(name, AbstractRule):
        return type(name)
    if isinstance(name, type) and issubclass(name, AbstractRule):
        return name
    if not isinstance(name, str):
        raise TypeError(f"name: expected a rule name, got {type(name).__name__}")
    cls = _REGISTRY.get(name) or _from_entry_points(name)
    if cls is None:
        raise UnknownNameError("name", name, _REGISTRY, kind="rule")
    return cls


def names() -> tuple[str, ...]:
    """Names of the registered rules, in registration order (built-ins first)."""
    return tuple(_REGISTRY)


# --------------------------------------------------------------------------- built-ins
def _chain(mats: Sequence[Any], e: Any, *, transpose_each: bool) -> list[Any]:
    """``[m_1 ⋯ m_{L-1} e, ..., m_{L-1} e, e]`` for layer-to-layer backward matrices."""
    out = [e]
    for m in reversed(mats):
        out.append(matmul(transpose(m) if transpose_each else m, out[-1]))
    out.reverse()
    return out


@register
class BP(AbstractRule):
    """Backpropagation: gradient flow on the loss, :math:`M_l = W_{>l}^T`.

    Conserves the balancedness :math:`Q_l = W_l W_l^T - W_{l+1}^T W_{l+1}`.
    """

    name = "BP"

    def __init__(self) -> None:
        super().__init__()

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.weights(state)[1:], e, transpose_each=True)

    def conserved_quantities(self, state: State) -> tuple[Any, ...]:
        weights = self.weights(state)
        return tuple(
            matmul(weights[l], transpose(weights[l])) - matmul(transpose(weights[l + 1]), weights[l + 1])
            for l in range(len(weights) - 1)
        )


@register
class SignSymmetry(AbstractRule):
    """Sign-symmetric feedback: :math:`\\operatorname{sign}(W_k)^T` in place of :math:`W_k^T`."""

    name = "SignSymmetry"

    def __init__(self) -> None:
        super().__init__()

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain([sign(w) for w in self.weights(state)[1:]], e, transpose_each=True)


@register
class FA(AbstractRule):
    """Feedback alignment (Lillicrap et al. 2016): :math:`M_l = B_{l+1} ⋯ B_L`.

    Conserves :math:`Q_l = W_l W_l^T - B_{l+1} W_{l+1} - W_{l+1}^T B_{l+1}^T`.

    Parameters
    ----------
    feedback : tuple of ndarray
        ``(B_2, ..., B_L)``, ``B_l`` of shape ``(*batch, n_{l-1}, n_l)``
        standing for ``W_l^T`` (see :func:`linfa.feedback.fa`).
    """

    name = "FA"
    feedback_layout = FeedbackLayout.layerwise()

    def __init__(self, feedback: Sequence[Any]) -> None:
        super().__init__(feedback)
        for i in range(len(self.feedback) - 1):
            a, b = self.feedback[i], self.feedback[i + 1]
            if a.shape[-1] != b.shape[-2]:
                raise ValueError(
                    f"feedback[{i + 1}]: expected {a.shape[-1]} rows to chain with "
                    f"feedback[{i}] of shape {shape_str(a.shape)}, got {shape_str(b.shape)}"
                )

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.feedback, e, transpose_each=False)

    def conserved_quantities(self, state: State) -> tuple[Any, ...]:
        weights = self.weights(state)
        out = []
        for l in range(len(weights) - 1):
            bw = matmul(self.feedback[l], weights[l + 1])
            out.append(matmul(weights[l], transpose(weights[l])) - bw - transpose(bw))
        return tuple(out)


@register
class DFA(AbstractRule):
    """Direct feedback alignment (Nøkland 2016): :math:`M_l = B_l`, :math:`M_L = I`.

    Parameters
    ----------
    feedback : tuple of ndarray
        ``(B_1, ..., B_{L-1})``, ``B_l`` of shape ``(*batch, n_l, n_L)``
        (see :func:`linfa.feedback.dfa`).
    """

    name = "DFA"
    feedback_layout = FeedbackLayout.direct()

    def __init__(self, feedback: Sequence[Any]) -> None:
        super().__init__(feedback)
        for i in range(1, len(self.feedback)):
            if self.feedback[i].shape[-1] != self.feedback[0].shape[-1]:
                raise ValueError(
                    f"feedback[{i}]: expected {self.feedback[0].shape[-1]} columns (n_L) like "
                    f"feedback[0], got shape {shape_str(self.feedback[i].shape)}"
                )

    def _signals(self, state: State, e: Any) -> list[Any]:
        return [matmul(b, e) for b in self.feedback] + [e]


@register
class KolenPollack(AbstractRule):
    """Kolen–Pollack: feedback alignment whose feedback learns.

    The state is ``(W_1, ..., W_L, B_2, ..., B_L)``. With ``G_l = M_l E W_{<l}^T``
    the FA update through the current ``B``:

    .. math::

        \\frac{dW_l}{dt} = G_l - \\lambda W_l, \\qquad
        \\frac{dB_l}{dt} = G_l^T - \\lambda B_l ,

    so ``d(W_l - B_l^T)/dt = -λ (W_l - B_l^T)``: the mismatch decays as
    ``e^{-λ t}`` exactly.

    Parameters
    ----------
    decay : float
        Weight decay ``λ >= 0``.
    """

    name = "KolenPollack"
    feedback_layout = FeedbackLayout.layerwise()
    learns_feedback = True
    parameters = ("decay",)

    decay: Any

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay if is_symbolic(decay) else real("decay", decay, minimum=0.0))

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.feedback_of(state), e, transpose_each=False)

    def dstate(self, task: Task, state: State) -> State:
        if not is_trusted() and not is_symbolic_problem(state, task):
            state = problem_state(self, task, state)
        depth = self.depth(state)
        grads = super().dstate(task, state)
        lam = self.decay
        dws = tuple(g - lam * w for g, w in zip(grads, state[:depth], strict=True))
        dbs = tuple(
            transpose(g) - lam * b for g, b in zip(grads[1:], state[depth:], strict=True)
        )
        return dws + dbs
