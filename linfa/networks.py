"""Deep linear networks ``ŷ = W_L ⋯ W_1 x`` and their initialisers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linfa._validate import as_generator, as_matrix, is_trusted, real, real_array, shape_str
from linfa._validate import batch as as_batch
from linfa._validate import widths as check_widths
from linfa.random_matrices import haar_orthonormal
from linfa.tasks import Task

__all__ = ["INITIALISERS", "DeepLinear"]

Weights = tuple[np.ndarray, ...]
INITIALISERS = ("zeros", "gaussian", "uniform", "balanced", "orthogonal", "aligned")


class DeepLinear:
    """A deep linear network of widths ``(n0, n1, ..., nL)``.

    Weight ``l`` (``l = 1..L``) has shape ``(n_l, n_{l-1})``; a batch of ``K``
    networks has weights of shape ``(K, n_l, n_{l-1})``. The network holds no
    weights itself: initialisers return a tuple ``(W_1, ..., W_L)``, which is
    the state the rules and the integrator work on.

    Parameters
    ----------
    widths : sequence of int
        ``(n0, ..., nL)`` with ``L >= 1``.

    Examples
    --------
    >>> import numpy as np
    >>> net = DeepLinear((4, 3, 2))
    >>> [w.shape for w in net.gaussian(np.random.default_rng(0), scale=0.1, batch=(5,))]
    [(5, 3, 4), (5, 2, 3)]
    """

    def __init__(self, widths: Sequence[int]) -> None:
        self.widths: tuple[int, ...] = check_widths("widths", widths)

    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.widths) - 1

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Weight shapes ``((n1, n0), ..., (nL, n_{L-1}))``."""
        return tuple((self.widths[l], self.widths[l - 1]) for l in range(1, len(self.widths)))

    def __repr__(self) -> str:
        return f"DeepLinear(widths={self.widths})"

    # ---------------------------------------------------------------- checks
    def check(self, weights: Sequence[Any], *, name: str = "weights") -> Weights:
        """Validate ``weights`` against the widths and return them as float arrays."""
        if not isinstance(weights, tuple | list):
            raise TypeError(f"{name}: expected a tuple (W_1, ..., W_L), got {type(weights).__name__}")
        if len(weights) != self.depth:
            raise ValueError(f"{name}: expected {self.depth} weight matrices, got {len(weights)}")
        out = tuple(
            as_matrix(f"{name}[{i}]", w, *shp) for i, (w, shp) in enumerate(zip(weights, self.shapes, strict=True))
        )
        try:
            np.broadcast_shapes(*(w.shape[:-2] for w in out))
        except ValueError:
            raise ValueError(
                f"{name}: batch shapes do not broadcast: "
                + ", ".join(shape_str(w.shape[:-2]) for w in out)
            ) from None
        return out

    def product(self, weights: Sequence[np.ndarray]) -> np.ndarray:
        """End-to-end map ``W = W_L ⋯ W_1``; shape ``(*batch, nL, n0)``.

        ``weights`` must have this network's shapes; NaN entries propagate.
        """
        weights = self._shapes_of(weights)
        out = weights[0]
        for w in weights[1:]:
            out = w @ out
        return out

    def forward(self, weights: Sequence[np.ndarray], X: np.ndarray) -> np.ndarray:
        """Outputs for inputs ``X`` of shape ``(*batch, n, n0)``; returns ``(*batch, n, nL)``."""
        x = as_matrix("X", X, cols=self.widths[0])
        return x @ np.swapaxes(self.product(weights), -1, -2)

    def _shapes_of(self, weights: Any, name: str = "weights") -> Weights:
        """``weights`` as real arrays with this network's shapes (not required finite)."""
        if is_trusted():
            return tuple(weights)
        if not isinstance(weights, tuple | list):
            raise TypeError(f"{name}: expected a tuple (W_1, ..., W_L), got {type(weights).__name__}")
        if len(weights) != self.depth:
            raise ValueError(f"{name}: expected {self.depth} weight matrices, got {len(weights)}")
        out = tuple(real_array(f"{name}[{i}]", w) for i, w in enumerate(weights))
        for i, (w, shp) in enumerate(zip(out, self.shapes, strict=True)):
            if w.shape[-2:] != shp:
                raise ValueError(f"{name}[{i}]: expected shape {shape_str(['*batch', *shp])}, got {shape_str(w.shape)}")
        try:
            np.broadcast_shapes(*(w.shape[:-2] for w in out))
        except ValueError:
            raise ValueError(f"{name}: batch shapes do not broadcast: "
                             + ", ".join(shape_str(w.shape[:-2]) for w in out)) from None
        return out

    # ---------------------------------------------------------- initialisers
    def init(self, kind: str, **kwargs: Any) -> Weights:
        """Dispatch to an initialiser by name (one of :data:`INITIALISERS`)."""
        if kind not in INITIALISERS:
            raise ValueError(f"kind: expected one of {INITIALISERS}, got {kind!r}")
        out: Weights = getattr(self, kind)(**kwargs)
        return out

    def zeros(self, *, batch: tuple[int, ...] = ()) -> Weights:
        """All-zero weights (the start of the zero-init structures)."""
        batch = as_batch("batch", batch)
        return tuple(np.zeros((*batch, *s)) for s in self.shapes)

    def gaussian(
        self, rng: np.random.Generator, scale: float, *, batch: tuple[int, ...] = ()
    ) -> Weights:
        """I.i.d. ``N(0, scale²)`` entries."""
        rng = as_generator("rng", rng)
        _check_scale(scale)
        batch = as_batch("batch", batch)
        return tuple(scale * rng.standard_normal((*batch, *s)) for s in self.shapes)

    def uniform(
        self, rng: np.random.Generator, scale: float, *, batch: tuple[int, ...] = ()
    ) -> Weights:
        """I.i.d. ``U[-scale, scale]`` entries (Lillicrap et al. use ``scale = 0.01``)."""
        rng = as_generator("rng", rng)
        _check_scale(scale)
        batch = as_batch("batch", batch)
        return tuple(rng.uniform(-scale, scale, size=(*batch, *s)) for s in self.shapes)

    def orthogonal(
        self, rng: np.random.Generator, scale: float = 1.0, *, batch: tuple[int, ...] = ()
    ) -> Weights:
        """``scale`` times Haar-random semi-orthogonal matrices.

        Each ``W_l`` has orthonormal columns when ``n_l >= n_{l-1}`` and
        orthonormal rows otherwise.
        """
        rng = as_generator("rng", rng)
        _check_scale(scale)
        batch = as_batch("batch", batch)
        out = []
        for rows, cols in self.shapes:
            if rows >= cols:
                out.append(scale * haar_orthonormal(rng, rows, cols, batch))
            else:
                out.append(scale * np.swapaxes(haar_orthonormal(rng, cols, rows, batch), -1, -2))
        return tuple(out)

    def balanced(
        self, rng: np.random.Generator, scale: float, *, batch: tuple[int, ...] = ()
    ) -> Weights:
        """Random balanced weights: ``W_{l+1}^T W_{l+1} = W_l W_l^T`` for every ``l``.

        Built as ``W_l = R_l D R_{l-1}^T`` with Haar ``R_l`` (``n_l × r``,
        orthonormal columns, ``r = min(widths)``) and one shared diagonal
        ``D = scale · |g|``, ``g ~ N(0, I_r)``.
        """
        rng = as_generator("rng", rng)
        _check_scale(scale)
        batch = as_batch("batch", batch)
        r = min(self.widths)
        d = scale * np.abs(rng.standard_normal((*batch, 1, r)))
        frames = [haar_orthonormal(rng, n, r, batch) for n in self.widths]
        return tuple(
            (frames[l] * d) @ np.swapaxes(frames[l - 1], -1, -2) for l in range(1, len(self.widths))
        )

    def aligned(
        self,
        task: Task,
        u0: Any,
        *,
        rng: np.random.Generator | None = None,
    ) -> Weights:
        """Weights aligned to the singular modes of ``task.syx`` (Saxe et al.).

        With ``Σyx = U S V^T`` (columns ordered by decreasing ``s``) and
        ``r = min(min(widths), rank slots)`` modes,

        .. math::

            W_1 = R_1 D V^T,\\quad W_l = R_l D R_{l-1}^T,\\quad W_L = U D R_{L-1}^T,
            \\quad D = \\operatorname{diag}(u_0^{1/L}),

        so ``W = U diag(u0) V^T`` and the network is balanced. ``R_l`` are the
        first ``r`` canonical basis vectors, or Haar-random if ``rng`` is given.
        For ``Σxx = I`` and two layers each mode then follows
        ``du/dt = 2u(s - u)`` exactly (:mod:`linfa.exact`).

        Parameters
        ----------
        task : Task
            Possibly batched; the weights take its batch shape.
        u0 : float or array_like, shape (r,)
            Initial mode strengths (``> 0``).
        rng : numpy.random.Generator, optional
        """
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a linfa.Task, got {type(task).__name__}")
        if task.n_in != self.widths[0] or task.n_out != self.widths[-1]:
            raise ValueError(
                f"task: expected n_in = {self.widths[0]} and n_out = {self.widths[-1]}, "
                f"got {task.n_in} and {task.n_out}"
            )
        r = min(self.widths)
        u0 = real_array("u0", u0)
        u = np.broadcast_to(u0, (r,)) if np.ndim(u0) == 0 or np.shape(u0) in ((1,), (r,)) else None
        if u is None or not np.all(np.isfinite(u)) or np.any(u <= 0):
            raise ValueError(f"u0: expected a positive scalar or {r} positive values, got {u0!r}")
        batch = task.batch_shape
        uu, _, vt = np.linalg.svd(np.broadcast_to(task.syx, (*batch, *task.syx.shape[-2:])))
        U = uu[..., :, :r]
        V = np.swapaxes(vt, -1, -2)[..., :, :r]
        d = u ** (1.0 / self.depth)
        frames: list[np.ndarray] = [V]
        for n in self.widths[1:-1]:
            if rng is None:
                frames.append(np.broadcast_to(np.eye(n)[:, :r], (*batch, n, r)))
            else:
                frames.append(haar_orthonormal(as_generator("rng", rng), n, r, batch))
        frames.append(U)
        return tuple(
            np.ascontiguousarray((frames[l] * d) @ np.swapaxes(frames[l - 1], -1, -2))
            for l in range(1, len(self.widths))
        )


def _check_scale(scale: float) -> None:
    real("scale", scale, minimum=0.0)
