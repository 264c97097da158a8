"""The generic entry point :func:`integrate`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from linfa._validate import count
from linfa.integrate import _engine, _scipy
from linfa.integrate._events import Event
from linfa.integrate._problem import Problem, VectorField
from linfa.integrate._solution import Solution
from linfa.integrate._tableaus import METHODS

__all__ = ["integrate"]


def integrate(
    vf: VectorField,
    y0: Sequence[Any],
    t1: float,
    *,
    t0: float = 0.0,
    args: Sequence[Any] = (),
    batch_shape: Sequence[int] = (),
    saveat: Any = None,
    observe: Mapping[str, Callable[..., Any]] | None = None,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    dt0: float | None = None,
    max_steps: int = 100_000,
    until: Event | Sequence[Event] | None = None,
    throw: bool = False,
    threads: int = 1,
) -> Solution:
    """Integrate a batch of ODEs ``dy/dt = vf(t, y, args)``, each instance on its own.

    The integrator knows nothing about networks: ``y`` is any tuple of
    arrays. Each of the ``K = prod(batch_shape)`` instances has its own
    adaptive step size and accepts or rejects its own steps; they share only
    the (batched) calls of ``vf``. Instances that finish drop out of those
    calls.

    Parameters
    ----------
    vf : callable
        ``vf(t, y, args) -> dy``. It is called on the *active* instances,
        flattened to one leading axis of length ``Ka``: ``t`` of shape
        ``(Ka,)`` (each instance has its own time), ``y`` a tuple of arrays
        ``(Ka, *core_i)``, ``args`` a tuple of arrays ``(Ka, ...)``. It must
        return a tuple of arrays shaped like ``y`` and treat the leading
        axis as a batch axis (no mixing of instances).
    y0 : tuple of ndarray
        Initial state, each leaf of shape ``(*batch_shape, *core_i)``.
    t1 : float
        Final time (``t1 >= t0``).
    t0 : float
        Initial time.
    args : tuple of ndarray
        Extra arrays, each of shape ``(*b, ...)`` with ``b`` broadcastable
        to ``batch_shape`` (``len(b) == len(batch_shape)``; sizes 1 or
        equal). Arguments whose batch axes are all 1 are stored once.
    batch_shape : tuple of int
        The leading axes of every leaf of ``y0`` that index instances.
    saveat : array_like, shape (S,), optional
        Sorted times in ``[t0, t1]`` at which to record the state, by the
        method's dense output (steps are not shortened to hit them).
        Default: ``[t1]``.
    observe : dict of str to callable, optional
        ``name -> obs(t, y, args)``, evaluated at the save points only, on
        a batch of shape ``(K, S)`` (or a flat batch of the finite saved
        states when some are NaN).
    method : str
        ``"dopri5"`` (Dormand–Prince 5(4)), ``"tsit5"`` (Tsitouras 5(4):
        the same cost per step, smaller error constants, so usually fewer
        steps), ``"dop853"`` (8th order),
        ``"euler"`` (fixed step ``dt0``), or ``"scipy:<NAME>"`` with
        ``NAME`` one of ``RK23, RK45, DOP853, Radau, BDF, LSODA`` (one scipy
        solver per instance).
    rtol, atol : float
        Tolerances of the per-instance error control: a step is accepted
        when the RMS over the instance's components of
        ``err / (atol + rtol·max(|y|, |y_new|))`` is at most 1.
    dt0 : float, optional
        Initial step (required for ``euler``, whose every step it is);
        chosen per instance when omitted.
    max_steps : int
        Maximum number of steps (accepted + rejected) per instance.
    until : Event or sequence of Event, optional
        Stopping conditions (:func:`norm_above`, :func:`flow_below` or your
        own :class:`Event`); each instance stops at the first one met, its
        time located on the interpolant.
    throw : bool
        Raise :class:`IntegrationError` as soon as an instance fails
        (status ``max_steps``, ``diverged``, ``non_finite`` or ``stalled``)
        instead of recording the status.
    threads : int
        Integrate the instances in this many contiguous shards, each in its
        own thread (numpy releases the GIL in the array work, so on several
        cores the shards run concurrently). The result is bit-identical for
        any number of threads; ``vf`` must be safe to call from several
        threads at once (pure functions of their arguments are). Not
        available on the ``scipy:`` route.

    Returns
    -------
    Solution
        ``ts``, ``states`` (leaves ``(*batch_shape, S, *core_i)``),
        ``observed``, per-instance ``status``, ``t_final``,
        ``state_final``, ``event`` and ``stats``.

    Notes
    -----
    One step of an explicit Runge–Kutta method with stages ``k_i``:

    .. math::

        k_i = f\\big(t + c_i h,\\; y + h \\textstyle\\sum_{j<i} a_{ij} k_j\\big),
        \\qquad y_{n+1} = y_n + h \\textstyle\\sum_i b_i k_i .

    Examples
    --------
    >>> import numpy as np
    >>> from linfa.integrate import integrate
    >>> rates = np.array([1.0, 2.0])
    >>> sol = integrate(lambda t, y, a: (-a[0][:, None] * y[0],), (np.ones((2, 1)),), 1.0,
    ...                 args=(rates,), batch_shape=(2,))
    >>> np.allclose(sol.states[0][:, -1, 0], np.exp(-rates))
    True
    """
    if not isinstance(method, str):
        raise TypeError(f"method: expected a string, got {type(method).__name__}")
    problem = Problem.build(
        vf, y0, t1, t0=t0, args=args, batch_shape=batch_shape, saveat=saveat, observe=observe,
        rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps, until=until, throw=throw,
    )
    threads = count("threads", threads, minimum=1)
    if method.startswith("scipy:"):
        if threads != 1:
            raise ValueError(f"threads: the scipy: route runs in one thread, expected 1, got {threads}")
        raw = _scipy.run(problem, method.split(":", 1)[1])
    elif method in METHODS:
        raw = _engine.run(problem, METHODS[method], threads)
    else:
        known = ", ".join([*METHODS, *(f"scipy:{n}" for n in _scipy.SCIPY_METHODS)])
        raise ValueError(f"method: expected one of {known}, got {method!r}")
    return raw.solution(method)


