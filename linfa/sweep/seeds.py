"""Per-instance seeds and chunks.

Instance ``i`` of a sweep with seed ``S`` is drawn from the seed sequence

.. math::

    \\texttt{SeedSequence(S).spawn(N)[i]} = \\texttt{SeedSequence(S, spawn\\_key=(i,))},

which depends on ``S`` and ``i`` only: not on ``N``, on the chunk the instance
falls in, on the order chunks run or on the worker that runs them. A sweep
never spawns all ``N`` sequences up front; each chunk builds its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["check_seed", "chunked", "instance_seed", "instance_seeds"]


def is_count(v: object, minimum: int, *, numpy: bool = False) -> bool:
    """True for an integer ``>= minimum``: an ``int`` (or, with ``numpy``, a numpy integer), never a bool."""
    return not isinstance(v, bool) and isinstance(v, int | np.integer if numpy else int) and v >= minimum


def check_seed(seed: int) -> int:
    """Return ``seed`` as a non-negative Python int, or raise naming the argument."""
    if not is_count(seed, 0, numpy=True):
        raise TypeError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def instance_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Seed sequence of instance ``index`` of a sweep seeded with ``seed``.

    Equal to ``numpy.random.SeedSequence(seed).spawn(n)[index]`` for any ``n > index``.

    Examples
    --------
    >>> import numpy as np
    >>> a = instance_seed(7, 3).generate_state(2)
    >>> b = np.random.SeedSequence(7).spawn(10)[3].generate_state(2)
    >>> bool((a == b).all())
    True
    """
    if not is_count(index, 0, numpy=True):
        raise ValueError(f"index: expected a non-negative integer, got {index!r}")
    return np.random.SeedSequence(check_seed(seed), spawn_key=(int(index),))


def instance_seeds(seed: int, indices: Iterable[int]) -> list[np.random.SeedSequence]:
    """Seed sequences of several instances (see :func:`instance_seed`)."""
    return [instance_seed(seed, i) for i in indices]


def chunked(indices: Sequence[int], chunk_size: int, *, group_size: int = 1) -> list[tuple[int, ...]]:
    """Split instance indices into consecutive chunks of at most ``chunk_size``.

    Parameters
    ----------
    indices : sequence of int
        The instances still to run, in increasing order.
    chunk_size : int
        Instances per chunk; each chunk is one batched call of the target.
    group_size : int
        Instances ``g * group_size .. (g + 1) * group_size - 1`` are drawn
        together and never split across chunks; a chunk holds at least one
        group, so it may exceed ``chunk_size`` when ``group_size`` does.

    Returns
    -------
    list of tuple of int

    Examples
    --------
    >>> chunked([0, 1, 2, 5, 6], 2)
    [(0, 1), (2, 5), (6,)]
    >>> chunked(range(7), 3, group_size=2)
    [(0, 1), (2, 3), (4, 5, 6)]
    """
    for name, v in (("chunk_size", chunk_size), ("group_size", group_size)):
        if not is_count(v, 1, numpy=True):
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    idx = [int(i) for i in indices]
    if group_size == 1:
        return [tuple(idx[k : k + chunk_size]) for k in range(0, len(idx), int(chunk_size))]
    groups: list[list[int]] = []
    for i in idx:
        if groups and groups[-1][0] // group_size == i // group_size:
            groups[-1].append(i)
        else:
            groups.append([i])
    out: list[tuple[int, ...]] = []
    current: list[int] = []
    for grp in groups:
        if current and len(current) + len(grp) > chunk_size:
            out.append(tuple(current))
            current = []
        current.extend(grp)
    if current:
        out.append(tuple(current))
    return out
