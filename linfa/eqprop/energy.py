r"""The quadratic (linear-Hopfield) energy model of two-phase learning.

A network of ``n`` units with state :math:`s \in \mathbb R^n`, input
:math:`x \in \mathbb R^{n_{in}}` and target :math:`d \in \mathbb R^{n_{out}}` has

.. math::

    E(s) = \tfrac12 s^T A s - s^T (b + U x), \qquad A = I - W,

    C(s) = \tfrac12 \lVert P s - d \rVert^2, \qquad F = E + \beta C,

with a symmetric coupling :math:`W`, :math:`A \succ 0`, and a read-out
``P`` of shape ``(n_out, n)`` (a selection of output units, or any
projection). The parameters are :math:`\theta = (b, U, W)`.

Conventions
-----------
* Batches are leading axes: ``W`` is ``(*batch, n, n)``, ``b`` is
  ``(*batch, n)``, ``U`` is ``(*batch, n, n_in)`` and ``P`` is
  ``(*batch, n_out, n)``; they broadcast against each other.
* Data always carry a sample axis: ``x`` is ``(*batch, m, n_in)``,
  ``d`` is ``(*batch, m, n_out)`` and a state ``s`` is ``(*batch, m, n)``
  (``m = 1`` for a single input). Batch axes of data broadcast against the
  model's.
* ``beta`` is a float or an array of shape ``batch`` (so a sweep over β is
  one batched call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._validate import real_array, shape_str
from linfa.linalg import sym as _sym

__all__ = [
    "QuadraticEnergy",
    "check_beta",
    "cost",
    "energy",
    "energy_gradient",
    "nudged_matrix",
    "total_energy",
]

Batch = tuple[int, ...]


# ---------------------------------------------------------------- validation
_ABSENT: Any = object()  # an argument not given (``None`` is a wrong value for x and s)


def check_model(model: Any) -> QuadraticEnergy:
    """``model`` if it is a :class:`QuadraticEnergy`, else a ``TypeError`` naming it."""
    if not isinstance(model, QuadraticEnergy):
        raise TypeError(f"model: expected a linfa.eqprop.QuadraticEnergy, got {type(model).__name__}")
    return model


def _as_array(name: str, a: Any, core: Sequence[int | None], labels: Sequence[str]) -> np.ndarray:
    """``a`` as a finite float64 array whose trailing axes are ``core``."""
    arr = real_array(name, a)
    want = shape_str(["*batch", *(f"{lab}={c}" if c is not None else lab
                                  for lab, c in zip(labels, core, strict=True))])
    if arr.ndim < len(core) or any(
        c is not None and arr.shape[arr.ndim - len(core) + i] != c for i, c in enumerate(core)
    ):
        raise ValueError(f"{name}: expected shape {want}, got shape {shape_str(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite entries, got {bad} NaN or infinite value(s)")
    return arr


def _broadcast_batch(named: Sequence[tuple[str, np.ndarray, int]]) -> Batch:
    """Broadcast the batch shapes of ``(name, array, core_ndim)`` triples, or say which clash."""
    shapes = [a.shape[: a.ndim - k] for _, a, k in named]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        desc = ", ".join(f"{nm} {shape_str(s)}" for (nm, _, _), s in zip(named, shapes, strict=True))
        raise ValueError(f"batch shapes do not broadcast: {desc}") from None


def _where(batch_index: tuple[int, ...]) -> str:
    return f" (batch index {batch_index})" if batch_index else ""


def _as_beta(beta: Any) -> np.ndarray:
    arr = real_array("beta", beta)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"beta: expected finite values, got {beta!r}")
    return arr


# --------------------------------------------------------------------- model
@dataclass(frozen=True, eq=False)
class QuadraticEnergy:
    r"""A quadratic energy with a quadratic output cost.

    .. math::

        F_\beta(s) = \tfrac12 s^T (I - W) s - s^T (b + U x)
                     + \tfrac{\beta}{2} \lVert P s - d \rVert^2 .

    Parameters
    ----------
    W : ndarray, shape (*batch, n, n)
        Symmetric coupling with :math:`A = I - W \succ 0`. A matrix that is
        symmetric up to rounding is symmetrised.
    b : ndarray, shape (*batch, n)
        Bias (external field).
    U : ndarray, shape (*batch, n, n_in)
        Input weights: the input enters as the field :math:`U x`.
    P : ndarray, shape (*batch, n_out, n)
        Read-out of the output units (rows of the identity for a selection).
    w_mask : ndarray of bool, shape (n, n), optional
        Which entries of ``W`` are trainable couplings (symmetric); ``None``
        means all. Used by :mod:`linfa.eqprop.training` to keep a structure
        (e.g. a layered network) fixed.
    u_mask : ndarray of bool, shape (n, n_in), optional
        Which entries of ``U`` are trainable; ``None`` means all.
    widths : tuple of int, optional
        ``(n_in, n_1, ..., n_L)`` when built by :meth:`layered`.

    Raises
    ------
    ValueError
        On a shape mismatch (naming the argument, expected and given shape),
        non-finite entries, an asymmetric ``W`` (reporting ``max |W - W^T|``),
        or :math:`A = I - W` not positive definite (reporting its smallest
        eigenvalue and the batch index where it occurs).

    Examples
    --------
    >>> import numpy as np
    >>> model = QuadraticEnergy.from_coupling(0.3 * np.eye(3)[::-1], P=[[0.0, 0.0, 1.0]],
    ...                                       U=np.ones((3, 2)))
    >>> model.n, model.n_in, model.n_out, model.batch_shape
    (3, 2, 1, ())
    """

    W: np.ndarray
    b: np.ndarray
    U: np.ndarray
    P: np.ndarray
    w_mask: np.ndarray | None = None
    u_mask: np.ndarray | None = None
    widths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        W = _as_array("W", self.W, (None, None), ("n", "n"))
        n = W.shape[-1]
        if W.shape[-2] != n:
            raise ValueError(
                f"W: expected a square matrix of shape (*batch, n, n), got shape {shape_str(W.shape)}"
            )
        b = _as_array("b", self.b, (n,), ("n",))
        U = _as_array("U", self.U, (n, None), ("n", "n_in"))
        P = _as_array("P", self.P, (None, n), ("n_out", "n"))
        batch = _broadcast_batch([("W", W, 2), ("b", b, 1), ("U", U, 2), ("P", P, 2)])
        scale = max(1.0, float(np.max(np.abs(W), initial=0.0)))
        asym = float(np.max(np.abs(W - np.swapaxes(W, -1, -2)), initial=0.0))
        if asym > 1e-10 * scale:
            raise ValueError(
                f"W: expected a symmetric coupling, got max |W - W^T| = {asym:.3g}"
            )
        W = _sym(W)
        lam = np.linalg.eigvalsh(np.eye(n) - W) if n else np.ones((*W.shape[:-2], 1))
        lo = lam[..., 0]
        if np.any(lo <= 0):
            idx = np.unravel_index(int(np.argmin(lo)), lo.shape) if lo.ndim else ()
            raise ValueError(
                "W: A = I - W must be positive definite, got smallest eigenvalue "
                f"{float(np.min(lo)):.3g}{_where(tuple(int(i) for i in idx))}"
            )
        n_in = U.shape[-1]
        wm = self._mask("w_mask", self.w_mask, (n, n))
        if wm is not None and not np.array_equal(wm, wm.T):
            raise ValueError("w_mask: expected a symmetric mask (W is symmetric)")
        um = self._mask("u_mask", self.u_mask, (n, n_in))
        for name, arr, k in (("W", W, 2), ("b", b, 1), ("U", U, 2), ("P", P, 2)):
            full = np.broadcast_to(arr, (*batch, *arr.shape[arr.ndim - k:])).copy()
            object.__setattr__(self, name, full)
        object.__setattr__(self, "w_mask", wm)
        object.__setattr__(self, "u_mask", um)
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @staticmethod
    def _mask(name: str, mask: Any, shape: tuple[int, int]) -> np.ndarray | None:
        if mask is None:
            return None
        arr = np.asarray(mask)
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape_str(shape)}, got shape {shape_str(arr.shape)}")
        return arr.astype(bool)

    # ------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        """Number of units ``n``."""
        return int(self.W.shape[-1])

    @property
    def n_in(self) -> int:
        """Input dimension ``n_in``."""
        return int(self.U.shape[-1])

    @property
    def n_out(self) -> int:
        """Number of outputs ``n_out`` (rows of ``P``)."""
        return int(self.P.shape[-2])

    @property
    def batch_shape(self) -> Batch:
        """Batch shape of the model (``()`` for a single model)."""
        return tuple(self.W.shape[:-2])

    @property
    def A(self) -> np.ndarray:
        """The Hessian of the energy, :math:`A = I - W`; shape ``(*batch, n, n)``."""
        return np.eye(self.n) - self.W

    @property
    def Q(self) -> np.ndarray:
        """The Hessian of the cost, :math:`P^T P`; shape ``(*batch, n, n)``."""
        return np.swapaxes(self.P, -1, -2) @ self.P

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_coupling(
        cls,
        W: Any,
        *,
        P: Any = None,
        outputs: Sequence[int] | None = None,
        b: Any = None,
        U: Any = None,
        w_mask: Any = None,
        u_mask: Any = None,
    ) -> QuadraticEnergy:
        """Model from a general symmetric coupling.

        Parameters
        ----------
        W : array_like, shape (*batch, n, n)
            Symmetric coupling, :math:`I - W \\succ 0`.
        P : array_like, shape (*batch, n_out, n), optional
            Read-out matrix. Give exactly one of ``P`` and ``outputs``.
        outputs : sequence of int, optional
            Indices of the output units; ``P`` is then the matching rows of
            the identity.
        b : array_like, shape (*batch, n), optional
            Bias; zero if omitted.
        U : array_like, shape (*batch, n, n_in), optional
            Input weights; ``n_in = 0`` (no input) if omitted.
        w_mask, u_mask : array_like of bool, optional
            Trainable entries (see :class:`QuadraticEnergy`).
        """
        Wa = _as_array("W", W, (None, None), ("n", "n"))
        n = Wa.shape[-1]
        if (P is None) == (outputs is None):
            raise ValueError("P, outputs: give exactly one of the read-out P or the output indices")
        if outputs is not None:
            idx = np.asarray(outputs)
            if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"outputs: expected a non-empty 1-D sequence of unit indices, got {outputs!r}")
            if np.any(idx < 0) or np.any(idx >= n) or len(set(idx.tolist())) != idx.size:
                raise ValueError(f"outputs: expected distinct indices in [0, {n}), got {outputs!r}")
            P = np.eye(n)[idx]
        b = np.zeros(n) if b is None else b
        U = np.zeros((n, 0)) if U is None else U
        return cls(Wa, b, U, P, w_mask=w_mask, u_mask=u_mask)

    @classmethod
    def layered(cls, weights: Sequence[Any], *, biases: Sequence[Any] | None = None) -> QuadraticEnergy:
        r"""Model of a layered network with symmetric inter-layer couplings.

        Units are the hidden layers and the output layer, stacked:
        :math:`s = (h_1, \dots, h_L)` with :math:`n = n_1 + \dots + n_L`.
        The input feeds the first layer, :math:`U = (W_1; 0; \dots; 0)`;
        layers ``l`` and ``l + 1`` are coupled both ways by
        :math:`W_{l+1}` (block-tridiagonal ``W`` with zero diagonal blocks);
        ``P`` selects the last layer.

        .. math::

            E = \tfrac12 \lVert s \rVert^2 - \sum_{l=1}^{L} h_l^T W_l h_{l-1}
                - \sum_l b_l^T h_l, \qquad h_0 = x .

        Parameters
        ----------
        weights : sequence of ndarray
            ``W_1, ..., W_L`` with ``W_l`` of shape ``(*batch, n_l, n_{l-1})``
            (as :class:`linfa.networks.DeepLinear`).
        biases : sequence of ndarray, optional
            ``b_1, ..., b_L`` with ``b_l`` of shape ``(*batch, n_l)``; zero
            if omitted.

        Returns
        -------
        QuadraticEnergy
            With ``w_mask``/``u_mask`` marking the inter-layer blocks and
            ``widths = (n_0, ..., n_L)``.
        """
        if len(weights) < 1:
            raise ValueError("weights: expected at least one layer W_1, got none")
        ws = [_as_array(f"weights[{i}]", w, (None, None), (f"n{i + 1}", f"n{i}"))
              for i, w in enumerate(weights)]
        widths = [ws[0].shape[-1]] + [w.shape[-2] for w in ws]
        for i, w in enumerate(ws):
            if w.shape[-1] != widths[i]:
                raise ValueError(
                    f"weights[{i}]: expected shape (*batch, n{i + 1}, n{i}={widths[i]}), "
                    f"got shape {shape_str(w.shape)}"
                )
        batch = _broadcast_batch([(f"weights[{i}]", w, 2) for i, w in enumerate(ws)])
        n = sum(widths[1:])
        off = np.cumsum([0, *widths[1:]])
        W = np.zeros((*batch, n, n))
        wm = np.zeros((n, n), dtype=bool)
        for layer in range(1, len(ws)):  # couple layer `layer` (rows) with `layer - 1` block
            r = slice(off[layer], off[layer + 1])
            c = slice(off[layer - 1], off[layer])
            W[..., r, c] = ws[layer]
            W[..., c, r] = np.swapaxes(ws[layer], -1, -2)
            wm[r, c] = wm[c, r] = True
        U = np.zeros((*batch, n, widths[0]))
        U[..., : widths[1], :] = ws[0]
        um = np.zeros((n, widths[0]), dtype=bool)
        um[: widths[1], :] = True
        if biases is None:
            b = np.zeros(n)
        else:
            if len(biases) != len(ws):
                raise ValueError(f"biases: expected {len(ws)} bias vectors, got {len(biases)}")
            bs = [_as_array(f"biases[{i}]", v, (widths[i + 1],), (f"n{i + 1}",))
                  for i, v in enumerate(biases)]
            bb = _broadcast_batch([(f"biases[{i}]", v, 1) for i, v in enumerate(bs)])
            b = np.concatenate([np.broadcast_to(v, (*bb, v.shape[-1])) for v in bs], axis=-1)
        P = np.eye(n)[off[-2]:]
        return cls(W, b, U, P, w_mask=wm, u_mask=um, widths=tuple(widths))

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        n: int,
        n_in: int,
        n_out: int,
        *,
        radius: float = 0.6,
        readout: str = "selection",
        batch: Batch = (),
    ) -> QuadraticEnergy:
        """A random instance, for tests and examples.

        ``W`` is a symmetrised Gaussian matrix rescaled to spectral radius
        ``radius`` (so the eigenvalues of ``A`` lie in ``[1 - radius, 1 + radius]``),
        ``b ~ N(0, I)``, ``U`` has i.i.d. ``N(0, 1/n_in)`` entries, and ``P``
        selects ``n_out`` distinct random units (``readout="selection"``) or
        has i.i.d. ``N(0, 1/n)`` entries (``readout="gaussian"``).

        Parameters
        ----------
        rng : numpy.random.Generator
        n, n_in, n_out : int
            Units, inputs (may be 0) and outputs (``1 <= n_out <= n``).
        radius : float
            Spectral radius of ``W``, in ``[0, 1)``.
        readout : {"selection", "gaussian"}
        batch : tuple of int
            Batch shape; every instance is drawn independently.
        """
        from linfa._validate import as_generator

        rng = as_generator("rng", rng)
        if not 0 <= radius < 1:
            raise ValueError(f"radius: expected a spectral radius in [0, 1), got {radius!r}")
        if not (n >= 1 and n_in >= 0 and 1 <= n_out <= n):
            raise ValueError(
                f"n, n_in, n_out: expected n >= 1, n_in >= 0, 1 <= n_out <= n, got {n}, {n_in}, {n_out}"
            )
        batch = tuple(batch)
        G = rng.standard_normal((*batch, n, n))
        S = _sym(G)
        rho = np.max(np.abs(np.linalg.eigvalsh(S)), axis=-1)
        W = radius * S / np.where(rho > 0, rho, 1.0)[..., None, None]
        b = rng.standard_normal((*batch, n))
        U = rng.standard_normal((*batch, n, n_in)) / np.sqrt(max(n_in, 1))
        if readout == "selection":
            idx = rng.permuted(np.broadcast_to(np.arange(n), (*batch, n)), axis=-1)[..., :n_out]
            P = np.eye(n)[idx]
        elif readout == "gaussian":
            P = rng.standard_normal((*batch, n_out, n)) / np.sqrt(n)
        else:
            raise ValueError(f"readout: expected 'selection' or 'gaussian', got {readout!r}")
        return cls(W, b, U, P)

    def layer_weights(self) -> list[np.ndarray]:
        """The layer weights ``W_1, ..., W_L`` of a model built by :meth:`layered`."""
        if self.widths is None:
            raise ValueError("layer_weights: the model was not built by QuadraticEnergy.layered")
        off = np.cumsum([0, *self.widths[1:]])
        out = [self.U[..., : self.widths[1], :].copy()]
        for layer in range(1, len(self.widths) - 1):
            out.append(self.W[..., off[layer]:off[layer + 1], off[layer - 1]:off[layer]].copy())
        return out

    def replace(self, *, b: Any = None, U: Any = None, W: Any = None) -> QuadraticEnergy:
        """A copy with some parameters replaced (and validated again)."""
        return QuadraticEnergy(
            self.W if W is None else W,
            self.b if b is None else b,
            self.U if U is None else U,
            self.P,
            w_mask=self.w_mask,
            u_mask=self.u_mask,
            widths=self.widths,
        )

    # ------------------------------------------------------------ data checks
    def check_data(self, x: Any = _ABSENT, d: Any = None, s: Any = _ABSENT, *,
                   s_name: str = "s") -> tuple[Any, Any, Any]:
        """Validate data against the model: ``x`` is ``(*batch, m, n_in)``,
        ``d`` is ``(*batch, m, n_out)``, a state ``s`` is ``(*batch, m, n)``.

        Returns the float64 arrays; ``d=None`` (no target) passes through, as
        do ``x`` and ``s`` when not given. ``s_name`` names ``s`` in errors.
        """
        named: list[tuple[str, np.ndarray]] = []
        out: list[np.ndarray | None] = []
        for name, a, last, lab in (("x", x, self.n_in, "n_in"), ("d", d, self.n_out, "n_out"),
                                   (s_name, s, self.n, "n")):
            if a is _ABSENT or (a is None and name == "d"):
                out.append(None)
                continue
            arr = _as_array(name, a, (None, last), ("m", lab))
            named.append((name, arr))
            out.append(arr)
        ms = {nm: arr.shape[-2] for nm, arr in named}
        if len(set(ms.values())) > 1:
            desc = ", ".join(f"{nm} has {m}" for nm, m in ms.items())
            raise ValueError(f"{', '.join(ms)}: expected the same number of samples m, got {desc}")
        _broadcast_batch([("model", self.W, 2), *((nm, arr, 2) for nm, arr in named)])
        return out[0], out[1], out[2]


# ------------------------------------------------------------------ functions
def nudged_matrix(model: QuadraticEnergy, beta: Any = 0.0) -> np.ndarray:
    r"""The Hessian of the total energy, :math:`H_\beta = A + \beta P^T P`.

    Parameters
    ----------
    model : QuadraticEnergy
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, n, n)
    """
    bt = _as_beta(beta)
    return model.A + bt[..., None, None] * model.Q


def check_beta(model: QuadraticEnergy, beta: Any) -> np.ndarray:
    r"""Validate a nudging strength; return it as a float64 array.

    For :math:`\beta \ge 0`, :math:`H_\beta = A + \beta P^T P \succ 0`
    follows from :math:`A \succ 0`. A negative β requires
    :math:`A - |\beta| P^T P \succ 0` (else the nudged energy is unbounded
    below and has no minimum).

    Raises
    ------
    ValueError
        If β is not finite, or β < 0 and :math:`A - |\beta|P^TP` is not
        positive definite (reporting its smallest eigenvalue).
    """
    bt = _as_beta(beta)
    check_model(model)
    try:
        np.broadcast_shapes(bt.shape, model.W.shape[:-2])
    except ValueError:
        raise ValueError(f"beta: expected a scalar or an array of the model's batch shape "
                         f"{shape_str(model.W.shape[:-2])}, got shape {shape_str(bt.shape)}") from None
    if np.any(bt < 0):
        lo = np.linalg.eigvalsh(nudged_matrix(model, bt))[..., 0]
        bad = (bt < 0) & (lo <= 0)
        if np.any(bad):
            full = np.broadcast_to(np.where(bad, lo, np.inf), bad.shape)
            i = np.unravel_index(int(np.argmin(full)), full.shape) if full.ndim else ()
            bval = float(np.broadcast_to(bt, full.shape)[i])
            raise ValueError(
                f"beta: a negative beta = {bval:.3g} requires A - |beta| P^T P to be positive "
                f"definite, got smallest eigenvalue {float(full[i]):.3g}"
                f"{_where(tuple(int(j) for j in i))}"
            )
    return bt


def _field(b: np.ndarray, U: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per-sample external field :math:`b + U x`, shape ``(*batch, m, n)``.

    Unvalidated: ``b`` is ``(*batch, n)``, ``U`` ``(*batch, n, n_in)`` and
    ``x`` ``(*batch, m, n_in)``.
    """
    return b[..., None, :] + x @ np.swapaxes(U, -1, -2)


def _output_error(P: np.ndarray, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per-sample output error :math:`e = P s - d`, shape ``(*batch, m, n_out)`` (unvalidated)."""
    return s @ np.swapaxes(P, -1, -2) - d


def _check_target(d: np.ndarray | None, bt: np.ndarray) -> None:
    """Raise unless the target ``d`` is given or every nudging strength ``bt`` is zero."""
    if d is None and np.any(bt != 0):
        raise ValueError("d: the target is needed when beta != 0")


def _nudged_system(
    model: QuadraticEnergy, x: np.ndarray, d: np.ndarray | None, bt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""The linear system :math:`H_\beta s = c_\beta` of the fixed point, rowwise.

    Parameters
    ----------
    model : QuadraticEnergy
    x : ndarray, shape (*batch, m, n_in)
        Validated inputs.
    d : ndarray, shape (*batch, m, n_out), or None
        Validated targets; ``None`` is allowed only when ``bt`` is zero.
    bt : ndarray, shape batch
        Validated nudging strength (:func:`check_beta`).

    Returns
    -------
    H : ndarray, shape (*batch, n, n)
        :math:`A + \beta P^TP` (:func:`nudged_matrix`).
    c : ndarray, shape (*batch, m, n)
        Rows :math:`(b + Ux + \beta P^Td)^T`.

    Raises
    ------
    ValueError
        If ``d`` is ``None`` and ``bt`` is nonzero.
    """
    c = _field(model.b, model.U, x)
    _check_target(d, bt)
    if d is not None:
        c = c + bt[..., None, None] * (d @ model.P)
    return nudged_matrix(model, bt), c


def energy(model: QuadraticEnergy, s: Any, x: Any) -> np.ndarray:
    r"""The energy :math:`E(s) = \tfrac12 s^T A s - s^T(b + Ux)` per sample.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    x : ndarray, shape (*batch, m, n_in)

    Returns
    -------
    ndarray, shape (*batch, m)
    """
    x, _, s = check_model(model).check_data(x=x, s=s)
    As = s @ model.A  # A symmetric: rows of s @ A are (A s)^T
    return 0.5 * np.sum(s * As, axis=-1) - np.sum(s * _field(model.b, model.U, x), axis=-1)


def cost(model: QuadraticEnergy, s: Any, d: Any) -> np.ndarray:
    r"""The output cost :math:`C(s) = \tfrac12\lVert P s - d\rVert^2` per sample.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    d : ndarray, shape (*batch, m, n_out)

    Returns
    -------
    ndarray, shape (*batch, m)
    """
    _, d, s = check_model(model).check_data(d=d, s=s)
    e = _output_error(model.P, s, d)
    return 0.5 * np.sum(e * e, axis=-1)


def total_energy(
    model: QuadraticEnergy, s: Any, x: Any, d: Any = None, beta: Any = 0.0
) -> np.ndarray:
    r"""The total energy :math:`F = E + \beta C` per sample.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out), optional
        Needed unless ``beta == 0``.
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, m)
    """
    bt = _as_beta(beta)
    out = energy(model, s, x)
    _check_target(d, bt)
    if d is None:
        return out
    return out + bt[..., None] * cost(model, s, d)


def energy_gradient(
    model: QuadraticEnergy, s: Any, x: Any, d: Any = None, beta: Any = 0.0
) -> np.ndarray:
    r"""The gradient :math:`\partial F/\partial s = H_\beta s - b - Ux - \beta P^T d`.

    Parameters
    ----------
    model : QuadraticEnergy
    s : ndarray, shape (*batch, m, n)
    x : ndarray, shape (*batch, m, n_in)
    d : ndarray, shape (*batch, m, n_out), optional
        Needed unless ``beta == 0``.
    beta : float or ndarray, shape batch

    Returns
    -------
    ndarray, shape (*batch, m, n)
    """
    bt = _as_beta(beta)
    x, d, s = check_model(model).check_data(x=x, d=d, s=s)
    g = s @ model.A - _field(model.b, model.U, x)
    _check_target(d, bt)
    if d is None:
        return g
    return g + bt[..., None, None] * (_output_error(model.P, s, d) @ model.P)
