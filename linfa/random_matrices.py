"""Random matrices used to draw tasks, networks and feedback.

* :func:`haar_orthonormal`: a Haar-random frame, ``n × r`` with orthonormal
  columns (the first ``r`` columns of a Haar-random orthogonal matrix);
* :func:`spd_with_condition`: a symmetric positive definite matrix with a
  given condition number and trace and Haar-random eigenvectors.

Both draw only from the ``numpy.random.Generator`` passed in and broadcast a
leading ``batch`` shape.
"""

from __future__ import annotations

import numpy as np

from linfa._validate import as_generator, count, real
from linfa._validate import batch as as_batch
from linfa.linalg import sym, transpose

__all__ = ["haar_orthonormal", "spd_with_condition"]

Batch = tuple[int, ...]


def haar_orthonormal(rng: np.random.Generator, n: int, r: int, batch: Batch = ()) -> np.ndarray:
    """Haar-random ``n × r`` matrix with orthonormal columns (``r <= n``).

    Parameters
    ----------
    rng : numpy.random.Generator
    n, r : int
        Rows and columns, ``r <= n``.
    batch : tuple of int
        Leading batch shape; independent frames.

    Returns
    -------
    ndarray, shape (*batch, n, r)
        ``Q`` with ``Q^T Q = I``: the QR factor of a Gaussian matrix with the
        signs fixed so that ``R`` has a positive diagonal (Haar-distributed).
    """
    if r > n:
        raise ValueError(f"r: expected at most n = {n} orthonormal columns, got {r}")
    g = rng.standard_normal((*batch, n, r))
    q, rr = np.linalg.qr(g)
    d = np.sign(np.diagonal(rr, axis1=-2, axis2=-1))
    d = np.where(d == 0, 1.0, d)
    return q * d[..., None, :]


def spd_with_condition(
    rng: np.random.Generator, n: int, condition: float, *, trace: float | None = None,
    batch: Batch = (),
) -> np.ndarray:
    """Random symmetric positive definite matrix with a given condition number.

    Eigenvalues are geometrically spaced from ``1`` down to ``1/condition``,
    rescaled so the trace is ``trace`` (default ``n``), with Haar-random
    eigenvectors.

    Returns
    -------
    ndarray, shape (*batch, n, n)
    """
    rng = as_generator("rng", rng)
    n = count("n", n, minimum=1)
    condition = real("condition", condition, minimum=1.0)
    batch = as_batch("batch", batch)
    lam = np.geomspace(1.0, 1.0 / condition, n)
    trace = n if trace is None else real("trace", trace, positive=True)
    lam = lam * (trace / lam.sum())
    q = haar_orthonormal(rng, n, n, tuple(batch))
    return sym((q * lam) @ transpose(q))
