"""Learning tasks as population second moments.

A task is the triple of second moments of an input ``x`` (dimension ``n0``) and
a target ``y`` (dimension ``nL``):

.. math::

    \\Sigma_{xx} = \\langle x x^T \\rangle, \\quad
    \\Sigma_{yx} = \\langle y x^T \\rangle, \\quad
    \\Sigma_{yy} = \\langle y y^T \\rangle .

For a linear network they determine the loss and every learning rule's flow
(see :mod:`linfa.rules`):

.. math::

    L(W) = \\tfrac12 \\operatorname{tr}\\Sigma_{yy} - \\operatorname{tr}(W^T\\Sigma_{yx})
           + \\tfrac12 \\operatorname{tr}(W \\Sigma_{xx} W^T).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa._ops import is_symbolic
from linfa._validate import as_generator, as_matrix, check_symmetric_psd, count, real, real_array, shape_str
from linfa._validate import batch as as_batch
from linfa.linalg import sym, trace, transpose
from linfa.random_matrices import haar_orthonormal, spd_with_condition

__all__ = ["Task", "factors", "spd_with_condition"]

Batch = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Task:
    """Population second moments of a linear regression task.

    Parameters
    ----------
    sxx : ndarray, shape (*batch, n0, n0)
        Input second moment :math:`\\Sigma_{xx}`; symmetric positive semi-definite.
    syx : ndarray, shape (*batch, nL, n0)
        Target–input cross moment :math:`\\Sigma_{yx}`.
    syy : ndarray, shape (*batch, nL, nL)
        Target second moment :math:`\\Sigma_{yy}`; symmetric PSD, and the joint
        matrix :math:`[[\\Sigma_{xx}, \\Sigma_{yx}^T], [\\Sigma_{yx}, \\Sigma_{yy}]]`
        must be PSD (it is the second moment of ``(x, y)``).

    Leading batch axes describe a batch of K tasks; they broadcast against
    the batch axes of states and feedback.

    Examples
    --------
    >>> import numpy as np
    >>> task = Task.random_teacher(np.random.default_rng(0), 4, 3, singular_values=[3, 2, 1])
    >>> task.n_in, task.n_out
    (4, 3)
    """

    sxx: np.ndarray
    syx: np.ndarray
    syy: np.ndarray

    def __post_init__(self) -> None:
        sxx = as_matrix("sxx", self.sxx)
        n0 = sxx.shape[-1]
        if sxx.shape[-2] != n0:
            raise ValueError(f"sxx: expected a square matrix (*batch, n0, n0), got {shape_str(sxx.shape)}")
        if n0 == 0:
            raise ValueError(f"sxx: expected at least one input (n0 >= 1), got shape {shape_str(sxx.shape)}")
        syx = as_matrix("syx", self.syx)
        if syx.shape[-1] != n0:
            raise ValueError(f"syx, sxx: expected syx of shape (*batch, nL, {n0}) to match the {n0} inputs of sxx, "
                             f"got {shape_str(syx.shape)}")
        nl = syx.shape[-2]
        syy = as_matrix("syy", self.syy)
        if syy.shape[-2:] != (nl, nl):
            raise ValueError(f"syy, syx: expected syy of shape (*batch, {nl}, {nl}) to match the {nl} rows of syx, "
                             f"got {shape_str(syy.shape)}")
        check_symmetric_psd("sxx", sxx)
        check_symmetric_psd("syy", syy)
        try:
            np.broadcast_shapes(sxx.shape[:-2], syx.shape[:-2], syy.shape[:-2])
        except ValueError:
            raise ValueError(
                "sxx, syx, syy: batch shapes do not broadcast: "
                f"{shape_str(sxx.shape[:-2])}, {shape_str(syx.shape[:-2])}, {shape_str(syy.shape[:-2])}"
            ) from None
        joint = _joint(sxx, syx, syy)
        lam = np.linalg.eigvalsh(joint)
        scale = max(float(np.max(np.abs(joint), initial=0.0)), np.finfo(float).tiny)
        lo = float(lam.min(initial=np.inf))  # an empty batch (size 0) has nothing to check
        if lo < -1e-8 * scale * joint.shape[-1]:
            raise ValueError(
                "syx: the joint second moment [[sxx, syx^T], [syx, syy]] must be positive "
                f"semi-definite, got smallest eigenvalue {lo:.3g}; syy is too small for syx "
                "(no joint distribution of (x, y) has these moments)"
            )
        object.__setattr__(self, "sxx", sxx)
        object.__setattr__(self, "syx", syx)
        object.__setattr__(self, "syy", syy)
        object.__setattr__(self, "_whitened", bool(np.array_equal(sxx, np.broadcast_to(np.eye(n0), sxx.shape))))

    @property
    def whitened(self) -> bool:
        """True when ``Σxx`` is exactly the identity (for every instance).

        The flows then skip the product ``W Σxx`` (bit-identical result).
        """
        return bool(getattr(self, "_whitened", False))

    def __repr__(self) -> str:
        """A one-line summary: dimensions, batch, whether ``Σxx = I`` (the moments stay in the attributes)."""
        sxx = "I" if self.whitened else ("symbolic" if is_symbolic(self.sxx) else "not I")
        batch = f", batch={self.batch_shape}" if self.batch_shape else ""
        return f"Task(n_in={self.n_in}, n_out={self.n_out}{batch}, sxx={sxx})"

    # ------------------------------------------------------------------ shape
    @property
    def n_in(self) -> int:
        """Input dimension ``n0``."""
        return int(self.sxx.shape[-1])

    @property
    def n_out(self) -> int:
        """Output dimension ``nL``."""
        return int(self.syx.shape[-2])

    @property
    def batch_shape(self) -> Batch:
        """Broadcast batch shape of the three moments (``()`` for one task)."""
        if is_symbolic(self.sxx):
            return ()
        return tuple(np.broadcast_shapes(self.sxx.shape[:-2], self.syx.shape[:-2], self.syy.shape[:-2]))

    # ------------------------------------------------------------ tree plumbing
    def tree_flatten(self) -> tuple[Any, Any, Any]:
        """The moments ``(sxx, syx, syy)``, for integrators that slice batches."""
        return (self.sxx, self.syx, self.syy)

    @classmethod
    def tree_unflatten(cls, leaves: Sequence[Any], *, whitened: bool = False) -> Task:
        """Rebuild a task from :meth:`tree_flatten` leaves, without validation.

        Also the way to hold sympy matrices (see :mod:`linfa.symbolic`).
        Pass ``whitened=True`` only when ``sxx`` is exactly the identity (for
        example, a slice of a task whose :attr:`whitened` is true).
        """
        obj = object.__new__(cls)
        sxx, syx, syy = leaves
        object.__setattr__(obj, "sxx", sxx)
        object.__setattr__(obj, "syx", syx)
        object.__setattr__(obj, "syy", syy)
        object.__setattr__(obj, "_whitened", bool(whitened))
        return obj

    # -------------------------------------------------------------- derived
    def optimum(self) -> np.ndarray:
        """The loss minimiser of least norm, :math:`W^* = \\Sigma_{yx}\\Sigma_{xx}^{+}`.

        Returns
        -------
        ndarray, shape (*batch, nL, n0)
        """
        return self.syx @ np.linalg.pinv(self.sxx, hermitian=True)

    def min_loss(self) -> np.ndarray:
        """The smallest achievable loss, ``½ tr(Σyy − W* Σxx W*^T)``; shape ``batch``."""
        w = self.optimum()
        return 0.5 * (trace(self.syy) - trace(w @ self.sxx @ transpose(w)))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` samples of the zero-mean Gaussian ``(x, y)`` with these moments.

        Parameters
        ----------
        rng : numpy.random.Generator
        n : int
            Number of samples.

        Returns
        -------
        X : ndarray, shape (*batch, n, n0)
        Y : ndarray, shape (*batch, n, nL)
        """
        rng = as_generator("rng", rng)
        n = count("n", n, minimum=1)
        root = self.joint_root()
        xi = rng.standard_normal((*root.shape[:-2], n, root.shape[-1]))
        z = xi @ transpose(root)
        return z[..., : self.n_in], z[..., self.n_in :]

    def joint_root(self) -> np.ndarray:
        """A square root ``R`` of the joint second moment of ``(x, y)``.

        ``R R^T = [[Σxx, Σyx^T], [Σyx, Σyy]]`` (used by :meth:`sample` and :func:`linfa.sgd`).

        Returns
        -------
        ndarray, shape (*batch, n0 + nL, n0 + nL)
            ``V sqrt(max(Λ, 0))`` from the eigendecomposition (valid for singular moments).
        """
        joint = _joint(self.sxx, self.syx, self.syy)
        lam, vec = np.linalg.eigh(sym(joint))
        return vec * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]

    # ---------------------------------------------------------- constructors
    @classmethod
    def teacher(cls, w_star: Any, *, sxx: Any = None, noise: float = 0.0) -> Task:
        """Task of a linear teacher ``y = W* x + ε``, ``ε ~ N(0, noise² I)``.

        Parameters
        ----------
        w_star : ndarray, shape (*batch, nL, n0)
            Teacher matrix.
        sxx : ndarray, shape (*batch, n0, n0), optional
            Input second moment; identity (whitened input) if omitted.
        noise : float
            Output noise standard deviation.

        Notes
        -----
        .. math::

            \\Sigma_{yx} = W^*\\Sigma_{xx}, \\quad
            \\Sigma_{yy} = W^*\\Sigma_{xx}W^{*T} + \\text{noise}^2 I .
        """
        w = as_matrix("w_star", w_star)
        n_out, n_in = w.shape[-2:]
        s = np.eye(n_in) if sxx is None else as_matrix("sxx", sxx)
        if s.shape[-2:] != (n_in, n_in):
            raise ValueError(f"sxx, w_star: expected sxx of shape (*batch, {n_in}, {n_in}) to match the {n_in} "
                             f"columns of w_star, got {shape_str(s.shape)}")
        noise = real("noise", noise, minimum=0.0)
        syx = w @ s
        syy = sym(syx @ transpose(w) + noise**2 * np.eye(n_out))
        return cls(np.broadcast_to(s, (*syx.shape[:-2], n_in, n_in)).copy(), syx, syy)

    @classmethod
    def random_teacher(
        cls,
        rng: np.random.Generator,
        n_in: int,
        n_out: int,
        *,
        singular_values: Any = None,
        sxx: Any = None,
        noise: float = 0.0,
        batch: Batch = (),
    ) -> Task:
        """Teacher with Haar-random singular vectors and given singular values.

        Parameters
        ----------
        rng : numpy.random.Generator
        n_in, n_out : int
            ``n0`` and ``nL``.
        singular_values : array_like, shape (r,), optional
            ``r <= min(n_in, n_out)`` non-negative values; the teacher is
            ``U diag(s) V^T``. If omitted the teacher has i.i.d.
            ``N(0, 1/n_in)`` entries.
        sxx : ndarray, shape (n0, n0), optional
            Input second moment (identity if omitted).
        noise : float
            Output noise standard deviation.
        batch : tuple of int
            Batch shape: independent teachers drawn for each instance.
        """
        rng = as_generator("rng", rng)
        n_in = count("n_in", n_in, minimum=1)
        n_out = count("n_out", n_out, minimum=1)
        batch = as_batch("batch", batch)
        if singular_values is None:
            w = rng.standard_normal((*batch, n_out, n_in)) / np.sqrt(n_in)
        else:
            s = np.asarray(singular_values, dtype=float)
            r = s.shape[-1] if s.ndim else 1
            if s.ndim != 1 or r > min(n_in, n_out) or np.any(s < 0) or not np.all(np.isfinite(s)):
                raise ValueError(
                    "singular_values: expected a 1-D array of at most "
                    f"min(n_in, n_out) = {min(n_in, n_out)} finite non-negative values, "
                    f"got shape {shape_str(s.shape)}"
                )
            u = haar_orthonormal(rng, n_out, r, batch)
            v = haar_orthonormal(rng, n_in, r, batch)
            w = (u * s) @ transpose(v)
        return cls.teacher(w, sxx=sxx, noise=noise)

    @classmethod
    def from_samples(cls, X: Any, Y: Any) -> Task:
        """Empirical second moments of samples.

        Parameters
        ----------
        X : ndarray, shape (*batch, n, n0)
            Inputs, one sample per row.
        Y : ndarray, shape (*batch, n, nL)
            Targets, one sample per row.

        Notes
        -----
        ``Σxx = X^T X / n``, ``Σyx = Y^T X / n``, ``Σyy = Y^T Y / n``
        (uncentred: the networks have no bias).
        """
        x = as_matrix("X", X)
        y = as_matrix("Y", Y)
        if y.shape[-2] != x.shape[-2]:
            raise ValueError(
                f"Y: expected as many samples (rows) as X, {x.shape[-2]}, got shape {shape_str(y.shape)}"
            )
        n = x.shape[-2]
        xt = transpose(x)
        yt = transpose(y)
        sxx = xt @ x / n
        syy = yt @ y / n
        return cls(sym(sxx), yt @ x / n, sym(syy))

    @classmethod
    def factorization(cls, Y: Any) -> Task:
        """Matrix factorisation ``Y ≈ Z W`` as a two-layer network with whitened input.

        Parameters
        ----------
        Y : ndarray, shape (*batch, n, m)
            The matrix to factorise.

        Notes
        -----
        With ``Σxx = I_m``, ``Σyx = Y`` and ``Σyy = Y Y^T`` the loss of a
        network of widths ``(m, r, n)`` is ``½‖Y − W_2 W_1‖_F²``; read its
        weights as ``(Z, W) = (W_2, W_1)`` with :func:`factors`.
        """
        y = as_matrix("Y", Y)
        m = y.shape[-1]
        syy = y @ transpose(y)
        sxx = np.broadcast_to(np.eye(m), (*y.shape[:-2], m, m)).copy()
        return cls(sxx, y, sym(syy))

    @classmethod
    def output_correlated(
        cls, rng: np.random.Generator, n_in: int, syy: Any
    ) -> Task:
        """Whitened-input teacher whose targets have a prescribed correlation ``Σyy``.

        Parameters
        ----------
        rng : numpy.random.Generator
        n_in : int
            Input dimension ``n0``.
        syy : ndarray, shape (*batch, nL, nL)
            Target second moment, symmetric positive semi-definite (see
            :func:`spd_with_condition` to sweep its condition number, as in
            Refinetti et al.).

        Notes
        -----
        The teacher is ``W* = Σyy^{1/2} Q`` with ``Q`` (``nL × n0``) Haar-random
        with orthonormal rows (or columns when ``n0 < nL``), so
        ``W* W*^T ⪯ Σyy``; the remainder is output noise uncorrelated with ``x``
        and ``Σyy`` holds exactly.
        """
        rng = as_generator("rng", rng)
        n_in = count("n_in", n_in, minimum=1)
        c = as_matrix("syy", syy)
        check_symmetric_psd("syy", c)
        n_out = c.shape[-1]
        lam, vec = np.linalg.eigh(sym(c))
        root = (vec * np.sqrt(np.clip(lam, 0, None))[..., None, :]) @ transpose(vec)
        batch = c.shape[:-2]
        if n_in >= n_out:
            q = transpose(haar_orthonormal(rng, n_in, n_out, batch))
        else:
            q = haar_orthonormal(rng, n_out, n_in, batch)
        w = root @ q
        sxx = np.broadcast_to(np.eye(n_in), (*batch, n_in, n_in)).copy()
        return cls(sxx, w, c)


def factors(weights: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Read a two-layer state of :meth:`Task.factorization` as ``(Z, W)``.

    Parameters
    ----------
    weights : (W_1, W_2)
        ``W_1`` of shape ``(*batch, r, m)``, ``W_2`` of shape ``(*batch, n, r)``.

    Returns
    -------
    Z : ndarray, shape (*batch, n, r)
    W : ndarray, shape (*batch, r, m)
    """
    if not isinstance(weights, tuple | list):
        raise TypeError(f"weights: expected two layers (W_1, W_2), got {type(weights).__name__}")
    if len(weights) != 2:
        raise ValueError(f"weights: expected two layers (W_1, W_2), got {len(weights)}")
    w1, w2 = (real_array(f"weights[{i}]", w) for i, w in enumerate(weights))
    if w1.ndim < 2 or w2.ndim < 2 or w2.shape[-1] != w1.shape[-2]:
        raise ValueError(f"weights: expected W_1 (*batch, r, m) and W_2 (*batch, n, r), got shapes "
                         f"{shape_str(w1.shape)} and {shape_str(w2.shape)}")
    return w2, w1


def _joint(sxx: np.ndarray, syx: np.ndarray, syy: np.ndarray) -> np.ndarray:
    batch = np.broadcast_shapes(sxx.shape[:-2], syx.shape[:-2], syy.shape[:-2])
    n0, nl = sxx.shape[-1], syy.shape[-1]
    out = np.empty((*batch, n0 + nl, n0 + nl))
    out[..., :n0, :n0] = sxx
    out[..., n0:, :n0] = syx
    out[..., :n0, n0:] = transpose(syx)
    out[..., n0:, n0:] = syy
    return out
