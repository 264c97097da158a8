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

A *state* is a tuple of arrays: the weights ``(W_1, ..., W_L)``, each of shape
``(*batch, n_l, n_{l-1})``, followed (for :class:`KolenPollack` only) by the
learned feedback ``(B_2, ..., B_L)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from linfa._ops import is_symbolic, matmul, sign, transpose
from linfa._validate import as_matrix, real, shape_str
from linfa.products import prefix_products
from linfa.tasks import Task

__all__ = [
    "BP",
    "DFA",
    "FA",
    "AbstractRule",
    "KolenPollack",
    "SignSymmetry",
    "error",
    "prefix_products",
]

State = tuple[Any, ...]
Flow = Callable[[Any, State], State]


def error(task: Task, w_total: Any) -> Any:
    """Error–input correlation ``E = Σyx − W Σxx``; shape ``(*batch, nL, n0)``.

    When ``task.whitened`` (``Σxx = I`` exactly) the product is skipped.
    """
    if task.whitened:
        return task.syx - w_total
    return task.syx - matmul(w_total, task.sxx)


class AbstractRule:
    """A learning rule: what backward signal each layer receives.

    Subclasses implement :meth:`_signals` (the ``δ_l = M_l E``) and, when
    they carry arrays, :meth:`tree_flatten`. Concrete rules are final.
    """

    name: ClassVar[str] = "rule"
    #: Number of trailing state entries that are not weights.
    learns_feedback: ClassVar[bool] = False

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

        def f(t: Any, state: State) -> State:
            return self.dstate(task, state)

        return f

    def dstate(self, task: Task, state: State) -> State:
        """Evaluate the flow at ``state`` (``flow(task)(t, state)`` without ``t``)."""
        weights = self.weights(state)
        prefix = prefix_products(weights)
        e = error(task, prefix[-1])
        deltas = self._signals(state, e)
        return tuple(
            d if p is None else matmul(d, transpose(p)) for d, p in zip(deltas, prefix[:-1], strict=True)
        )

    def weights(self, state: State) -> tuple[Any, ...]:
        """The forward weights ``(W_1, ..., W_L)`` of a state."""
        return tuple(state)

    def init_state(self, weights: Sequence[Any]) -> State:
        """Build a state from initial weights (rules with learned feedback add it)."""
        return tuple(weights)

    def backward_matrices(self, state: State) -> tuple[Any, ...]:
        """The backward matrices ``(M_1, ..., M_{L-1})``, each ``(*batch, n_l, n_L)``.

        ``M_L = I`` is omitted.
        """
        weights = self.weights(state)
        n_out = weights[-1].shape[-2]
        batch = np.broadcast_shapes(*(np.shape(w)[:-2] for w in weights))
        eye = np.broadcast_to(np.eye(n_out), (*batch, n_out, n_out))
        return tuple(self._signals(state, eye)[:-1])

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
        n_feedback = self._n_state_feedback(len(state))
        weights = state[: len(state) - n_feedback]
        depth = len(weights)
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

    def _n_state_feedback(self, n: int) -> int:
        return 0

    def _validate_feedback(
        self, widths: tuple[int, ...], state: State, name: str, batches: list[tuple[int, ...]]
    ) -> None:
        return None

    # ----------------------------------------------------------- tree plumbing
    def tree_flatten(self) -> tuple[tuple[Any, ...], Any]:
        """Arrays the rule carries (each ``(*batch, a, b)``) and static data."""
        return (), None

    @classmethod
    def tree_unflatten(cls, aux: Any, leaves: Sequence[Any]) -> AbstractRule:
        """Rebuild a rule from :meth:`tree_flatten` output, without validation."""
        return cls()

    # ----------------------------------------------------------- to implement
    def _signals(self, state: State, e: Any) -> list[Any]:
        """Backward signals ``[M_1 e, ..., M_L e]`` for ``e`` of shape ``(*batch, nL, k)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _chain(mats: Sequence[Any], e: Any, *, transpose_each: bool) -> list[Any]:
    """``[m_1 ⋯ m_{L-1} e, ..., m_{L-1} e, e]`` for layer-to-layer backward matrices."""
    out = [e]
    for m in reversed(mats):
        out.append(matmul(transpose(m) if transpose_each else m, out[-1]))
    out.reverse()
    return out


class BP(AbstractRule):
    """Backpropagation: gradient flow on the loss, :math:`M_l = W_{>l}^T`."""

    name = "BP"

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.weights(state)[1:], e, transpose_each=True)


class SignSymmetry(AbstractRule):
    """Sign-symmetric feedback: :math:`\\operatorname{sign}(W_k)^T` in place of :math:`W_k^T`."""

    name = "SignSymmetry"

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain([sign(w) for w in self.weights(state)[1:]], e, transpose_each=True)


class _FixedFeedback(AbstractRule):
    """Shared plumbing of rules holding a tuple of fixed feedback matrices."""

    def __init__(self, feedback: Sequence[Any]) -> None:
        if not isinstance(feedback, tuple | list):
            raise TypeError(
                f"feedback: expected a tuple of matrices, got {type(feedback).__name__}"
            )
        self.feedback = tuple(
            as_matrix(f"feedback[{i}]", b, allow_symbolic=True) for i, b in enumerate(feedback)
        )

    def tree_flatten(self) -> tuple[tuple[Any, ...], Any]:
        return self.feedback, None

    @classmethod
    def tree_unflatten(cls, aux: Any, leaves: Sequence[Any]) -> AbstractRule:
        obj = object.__new__(cls)
        obj.feedback = tuple(leaves)
        return obj

    def _expected_feedback_shapes(self, widths: tuple[int, ...]) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _validate_feedback(
        self, widths: tuple[int, ...], state: State, name: str, batches: list[tuple[int, ...]]
    ) -> None:
        expected = self._expected_feedback_shapes(widths)
        if len(self.feedback) != len(expected):
            raise ValueError(
                f"feedback: expected {len(expected)} matrices for widths {widths} "
                f"({self._feedback_doc}), got {len(self.feedback)}"
            )
        for i, (b, shp) in enumerate(zip(self.feedback, expected, strict=True)):
            if tuple(b.shape[-2:]) != shp:
                raise ValueError(
                    f"feedback[{i}]: expected shape {shape_str(['*batch', *shp])}, "
                    f"got {shape_str(b.shape)}"
                )
            if not is_symbolic(b):
                batches.append(b.shape[:-2])

    _feedback_doc = ""

    def __repr__(self) -> str:
        shapes = ", ".join(shape_str(np.shape(b)) for b in self.feedback)
        return f"{type(self).__name__}(feedback=[{shapes}])"


class FA(_FixedFeedback):
    """Feedback alignment (Lillicrap et al. 2016): :math:`M_l = B_{l+1} ⋯ B_L`.

    Parameters
    ----------
    feedback : tuple of ndarray
        ``(B_2, ..., B_L)``, ``B_l`` of shape ``(*batch, n_{l-1}, n_l)``
        standing for ``W_l^T`` (see :func:`linfa.feedback.fa`).
    """

    name = "FA"
    _feedback_doc = "B_l of shape (n_{l-1}, n_l) for l = 2..L"

    def __init__(self, feedback: Sequence[Any]) -> None:
        super().__init__(feedback)
        for i in range(len(self.feedback) - 1):
            a, b = self.feedback[i], self.feedback[i + 1]
            if a.shape[-1] != b.shape[-2]:
                raise ValueError(
                    f"feedback[{i + 1}]: expected {a.shape[-1]} rows to chain with "
                    f"feedback[{i}] of shape {shape_str(a.shape)}, got {shape_str(b.shape)}"
                )

    def _expected_feedback_shapes(self, widths: tuple[int, ...]) -> list[tuple[int, int]]:
        return [(widths[l - 1], widths[l]) for l in range(2, len(widths))]

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.feedback, e, transpose_each=False)


class DFA(_FixedFeedback):
    """Direct feedback alignment (Nøkland 2016): :math:`M_l = B_l`, :math:`M_L = I`.

    Parameters
    ----------
    feedback : tuple of ndarray
        ``(B_1, ..., B_{L-1})``, ``B_l`` of shape ``(*batch, n_l, n_L)``
        (see :func:`linfa.feedback.dfa`).
    """

    name = "DFA"
    _feedback_doc = "B_l of shape (n_l, n_L) for l = 1..L-1"

    def __init__(self, feedback: Sequence[Any]) -> None:
        super().__init__(feedback)
        for i in range(1, len(self.feedback)):
            if self.feedback[i].shape[-1] != self.feedback[0].shape[-1]:
                raise ValueError(
                    f"feedback[{i}]: expected {self.feedback[0].shape[-1]} columns (n_L) like "
                    f"feedback[0], got shape {shape_str(self.feedback[i].shape)}"
                )

    def _expected_feedback_shapes(self, widths: tuple[int, ...]) -> list[tuple[int, int]]:
        return [(widths[l], widths[-1]) for l in range(1, len(widths) - 1)]

    def _signals(self, state: State, e: Any) -> list[Any]:
        return [matmul(b, e) for b in self.feedback] + [e]


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
    learns_feedback = True

    def __init__(self, decay: float) -> None:
        if is_symbolic(decay):
            self.decay: Any = decay
            return
        self.decay = real("decay", decay, minimum=0.0)

    def init_state(self, weights: Sequence[Any], feedback: Sequence[Any] | None = None) -> State:
        """State ``(W_1, ..., W_L, B_2, ..., B_L)`` from weights and initial feedback."""
        if feedback is None:
            raise TypeError("feedback: KolenPollack.init_state needs the initial feedback (B_2, ..., B_L)")
        if len(feedback) != len(weights) - 1:
            raise ValueError(
                f"feedback: expected {len(weights) - 1} matrices (B_2, ..., B_L), got {len(feedback)}"
            )
        return (*weights, *feedback)

    def _n_state_feedback(self, n: int) -> int:
        return (n - 1) // 2

    def _depth(self, state: State) -> int:
        if len(state) % 2 != 1:
            raise ValueError(
                f"state: expected 2L-1 entries (W_1..W_L, B_2..B_L), got {len(state)}"
            )
        return (len(state) + 1) // 2

    def weights(self, state: State) -> tuple[Any, ...]:
        return tuple(state[: self._depth(state)])

    def feedback_of(self, state: State) -> tuple[Any, ...]:
        """The learned feedback ``(B_2, ..., B_L)`` of a state."""
        return tuple(state[self._depth(state) :])

    def _signals(self, state: State, e: Any) -> list[Any]:
        return _chain(self.feedback_of(state), e, transpose_each=False)

    def dstate(self, task: Task, state: State) -> State:
        depth = self._depth(state)
        grads = super().dstate(task, state)
        lam = self.decay
        dws = tuple(g - lam * w for g, w in zip(grads, state[:depth], strict=True))
        dbs = tuple(
            transpose(g) - lam * b for g, b in zip(grads[1:], state[depth:], strict=True)
        )
        return dws + dbs

    def _validate_feedback(
        self, widths: tuple[int, ...], state: State, name: str, batches: list[tuple[int, ...]]
    ) -> None:
        if len(state) != 2 * (len(widths) - 1) - 1:
            raise ValueError(
                f"{name}: expected 2L-1 = {2 * (len(widths) - 1) - 1} entries "
                f"(W_1..W_L, B_2..B_L), got {len(state)}"
            )
        depth = len(widths) - 1
        for l in range(2, depth + 1):
            i = depth + l - 2
            arr = as_matrix(f"{name}[{i}] (B_{l})", state[i], widths[l - 1], widths[l])
            batches.append(arr.shape[:-2])

    def tree_flatten(self) -> tuple[tuple[Any, ...], Any]:
        return (), self.decay

    @classmethod
    def tree_unflatten(cls, aux: Any, leaves: Sequence[Any]) -> AbstractRule:
        obj = object.__new__(cls)
        obj.decay = aux
        return obj

    def __repr__(self) -> str:
        return f"KolenPollack(decay={self.decay!r})"
