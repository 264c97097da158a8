"""How an explicit method's routes use the cores: the compiled path's threads (:func:`compiled_threads`),
and how the numpy engine cuts a batch into threads and chunks (:func:`plan`), for the fields and
methods the compiled path cannot take.

The engine integrates contiguous *chunks* of instances, each by its own loop
(:mod:`linfa.integrate._engine`), on one or more threads; instances never
interact, so the result is bit-identical whatever the cut. What the cut
costs or saves:

* **Chunks.** A loop's arrays are ``(s + 6)`` rows of ``Ka x D`` numbers
  (state, ``s + 1`` scaled stages, scratch): ``(s + 6) D`` 8-byte numbers per
  instance. When a batch's arrays outgrow the cache, every stage streams them
  from memory; chunks of at most :data:`CACHE_BYTES` keep each pass in cache.
  But each chunk pays the loop's Python overhead (about 0.2 ms a step) on its
  own, so a chunk holds at least :data:`MIN_CHUNK_ENTRIES` state entries.
  Measured (tsit5, 2 loaded cores, one run each, so only roughly): G1 row
  4096 x 16, one thread, chunks of 64 instances (3.4 MB) 3.0x faster than
  one loop; two threads, chunks of 128 1.8x faster than two halves; 256 x
  64, chunks of 16, 1.4x (one thread), 1.1x (two); 256 x 16: no change.
* **Threads.** numpy releases the GIL in the array work but not in the
  Python of each step, so a second thread pays only when the array work of a
  step dominates: at least :data:`THREAD_ENTRIES` state entries (``K D``).
  And when a state leaf has a side longer than :data:`BLAS_SERIAL_DIM`, the
  flow's matrix products are large enough for OpenBLAS to run them on all
  cores already, and threads on top of it only contend (measured: 16 x 128
  ran 1.6x slower with ``threads=2``). So the default is ``min(cores,
  K D // THREAD_ENTRIES)`` threads when every leaf side is at most
  :data:`BLAS_SERIAL_DIM`, else one.

``threads=`` given to :func:`linfa.integrate.integrate` or :func:`linfa.solve`
overrides the thread count; the chunks follow the same rule either way.
"""

from __future__ import annotations

import math
import os

__all__ = ["BLAS_SERIAL_DIM", "BLAS_THREADED_FLOPS", "CACHE_BYTES", "COMPILED_THREAD_WORK", "MIN_CHUNK_ENTRIES",
           "THREAD_ENTRIES", "compiled_threads", "cores", "plan"]

#: Bytes of one chunk's arrays at most (unless that leaves fewer than MIN_CHUNK_ENTRIES entries a chunk).
CACHE_BYTES = 4 * 2**20
#: State entries (chunk size x D) of a chunk at least.
MIN_CHUNK_ENTRIES = 2**16
#: State entries (K x D) per extra thread.
THREAD_ENTRIES = 2**16
#: Leaf sides above this make OpenBLAS thread the flow's products itself (its threshold is m n k > 2^18).
BLAS_SERIAL_DIM = 64
#: A matrix product of more multiply-adds than this is threaded by OpenBLAS itself (m n k > 2^18).
BLAS_THREADED_FLOPS = 2**18
#: Work per flow evaluation, K (multiply-adds + state entries), from which the compiled path uses every core.
COMPILED_THREAD_WORK = 2**15


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan(K: int, D: int, n_stages: int, max_side: int, threads: int | None = None) -> tuple[int, int]:
    """Threads and chunk size for ``K`` instances of ``D`` state entries (the rule of the module docstring).

    Parameters
    ----------
    K, D : int
        Instances and state entries per instance.
    n_stages : int
        Stages ``s`` of the method.
    max_side : int
        The longest side of any state leaf (e.g. the widest layer).
    threads : int, optional
        Threads asked for (``None``: chosen by the rule).

    Returns
    -------
    threads, chunk : int
        At most ``K`` threads (at least 1), and instances a chunk (at least 1).

    Notes
    -----
    .. math::

        \\text{chunk} = \\max\\Bigl(\\Bigl\\lfloor \\frac{\\text{CACHE\\_BYTES}}{8 (s + 6) D} \\Bigr\\rfloor,
        \\Bigl\\lceil \\frac{\\text{MIN\\_CHUNK\\_ENTRIES}}{D} \\Bigr\\rceil\\Bigr) ,
        \\qquad
        \\text{threads} = \\min\\Bigl(\\text{cores}, \\Bigl\\lfloor \\frac{K D}{\\text{THREAD\\_ENTRIES}}
        \\Bigr\\rfloor\\Bigr) \\text{ if } \\text{max\\_side} \\le \\text{BLAS\\_SERIAL\\_DIM}, \\text{ else } 1 .
    """
    K, D = max(int(K), 1), max(int(D), 1)
    chunk = max(CACHE_BYTES // (8 * (n_stages + 6) * D), math.ceil(MIN_CHUNK_ENTRIES / D), 1)
    if threads is None:
        threads = min(cores(), (K * D) // THREAD_ENTRIES) if max_side <= BLAS_SERIAL_DIM else 1
    return max(1, min(threads, K)), min(chunk, K)



def compiled_threads(K: int, D: int, flops: int, total_flops: int = 0, threads: int | None = None) -> int:
    """Threads for the compiled path (:mod:`linfa.integrate.compiled`) on ``K`` instances.

    The compiled path pays no Python per step, so it runs every explicit
    problem it can take (the engine pays about 0.15 ms a step for the whole
    batch, shared by its instances, and allocates the flow's temporaries at
    every evaluation). Its loops hold no GIL, and each thread integrates a
    contiguous range of instances:

    * when the flow's largest matrix product has more than
      :data:`BLAS_THREADED_FLOPS` multiply–adds, OpenBLAS runs each product on
      all cores itself, and a second loop thread would only contend with it
      (measured, FA ``16 x 128``: two loop threads 1.5–2x slower than one): one
      thread;
    * otherwise a second thread pays as soon as the batch's work outweighs
      starting it (about 0.1 ms): one thread per core when
      ``K (total_flops + D)`` is at least :data:`COMPILED_THREAD_WORK` (two
      instances of the 1 x 16 row), else one.

    Parameters
    ----------
    K, D : int
        Instances and state entries per instance.
    flops : int
        Multiply–adds of the largest matrix product in one evaluation of the
        flow (:meth:`linfa.integrate.trace.Tape.max_product`).
    total_flops : int
        Multiply–adds of all the products of one evaluation
        (:meth:`linfa.integrate.trace.Tape.matmul_flops`).
    threads : int, optional
        Threads asked for (``None``: by the rule above, at most ``K``).

    Returns
    -------
    int
        Threads for the compiled path: the instances are split into that many
        contiguous ranges (bit-identical results for any count).
    """
    K = max(int(K), 1)
    if threads is None:
        if int(flops) > BLAS_THREADED_FLOPS:
            threads = 1
        else:
            threads = cores() if K * (int(total_flops) + int(D)) >= COMPILED_THREAD_WORK else 1
    return max(1, min(int(threads), K))
