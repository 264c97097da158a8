"""The generic entry point :func:`integrate`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from linfa._validate import count
from linfa.integrate import _engine, _scipy, bdf, rosenbrock, schedule, wmethod
from linfa.integrate.controller import StepSizeController
from linfa.integrate.events import Event
from linfa.integrate.methods import METHODS, AbstractRungeKutta, as_method
from linfa.integrate.problem import Problem, VectorField
from linfa.integrate.solution import Solution

__all__ = ["KERNELS", "MAX_STEPS", "integrate"]

#: The values of ``kernel=`` (:func:`integrate`, :func:`linfa.solve`).
KERNELS = ("compiled", "numpy")

#: Default ``max_steps`` of :func:`integrate` (and of :func:`linfa.solve`, which passes it on).
MAX_STEPS = 100_000


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
    method: str | AbstractRungeKutta | type[AbstractRungeKutta] = "dopri5",
    stepsize: StepSizeController | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dt0: float | None = None,
    max_steps: int = MAX_STEPS,
    until: Event | Sequence[Event] | None = None,
    throw: bool = False,
    threads: int | None = None,
    kernel: str | None = None,
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
    method : str or AbstractRungeKutta
        ``"dopri5"`` (Dormand–Prince 5(4)), ``"tsit5"`` (Tsitouras 5(4):
        the same cost per step, smaller error constants, so usually fewer
        steps), ``"dop853"`` (8th order),
        ``"euler"`` (fixed step ``dt0``), ``"rodas4"`` (a stiff method:
        Rosenbrock 4(3) with the exact Jacobian of ``vf`` and a dense LU per
        instance; ``vf`` written, in ``y``, with the operations of
        :class:`linfa.dual.Dual`; steps land on save points; ``until`` located on a
        Hermite cubic),
        ``"ros34pw2"`` (a stiff Rosenbrock-W method 3(2): the same exact
        Jacobian and LU, kept across steps, see :mod:`linfa.integrate.wmethod`),
        ``"bdf"`` (the stiff variable-order NDF/BDF 1–5 method of ``ode15s``:
        fewest steps, Jacobians and LUs on large stiff states, each instance
        keeping its exact Jacobian and LU until its Newton iteration needs new
        ones; save points and ``until`` read from its interpolating polynomial;
        :class:`~linfa.integrate.BDF` for its options, see :mod:`linfa.integrate.bdf`),
        or ``"scipy:<NAME>"`` with
        ``NAME`` one of ``RK23, RK45, DOP853, Radau, BDF, LSODA`` (one scipy
        solver per instance; ``Radau`` and ``BDF`` solve groups of small
        instances as one system with a sparse block-diagonal Jacobian, see
        :mod:`linfa.integrate._scipy`); or a method object such as ``Tsit5()`` (your
        own :class:`AbstractRungeKutta` subclass plugs in the same way).
    stepsize : StepSizeController, optional
        Tolerances and step-size rule; default ``StepSizeController()``.
    rtol, atol, dt0 : float, optional
        Shortcuts for ``stepsize=StepSizeController(rtol=..., atol=..., dt0=...)``
        (not together with ``stepsize``). ``dt0`` is the initial step
        (required for ``euler``, whose every step it is).
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
    threads : int, optional
        Integrate the instances in contiguous chunks, on this many threads
        (numpy releases the GIL in the array work, so on several cores the
        chunks run concurrently). Default: chosen from the problem, with the
        chunk size, by :func:`linfa.integrate.schedule.plan` (one thread for
        small batches or wide layers, where threads only contend; on the
        compiled path, one per core once the batch has work enough, and one
        when OpenBLAS threads the flow's products itself:
        :func:`linfa.integrate.schedule.compiled_threads`). The result
        is bit-identical for any number of threads; ``vf`` must be safe to call
        from several threads at once (pure functions of their arguments are).
        The batched stiff methods run their loop in one thread and spread the
        per-instance LU factorisations and solves of states of at least
        :data:`~linfa.integrate.linsolve.THREAD_DIM` entries over ``threads``
        threads (default: one per core), with BLAS on one thread
        (:mod:`linfa.integrate.linsolve`); compiled ``bdf`` spreads its
        instances over ``threads`` threads (default: one per core once the
        batch has work enough, :func:`linfa.integrate.compiled_bdf.threads_for`);
        on the ``scipy:`` route only 1 is accepted.
    kernel : {"compiled", "numpy"}, optional
        How an explicit adaptive method or ``bdf`` runs. ``"compiled"``: ``vf``
        is traced once into a tape of matrix operations and each instance is
        integrated by one compiled loop (:mod:`linfa.integrate.compiled`;
        for ``bdf``, :mod:`linfa.integrate.compiled_bdf`); a field or method
        it cannot take raises a ``ValueError`` saying why. ``"numpy"``: the
        batched numpy route. Default: the compiled path wherever it applies.
        Both take the same steps and agree to rounding (a long stiff ``bdf``
        run amplifies rounding through its discrete decisions, so there the
        two agree to the tolerance, as a run does with its own ``y0`` moved by
        an ulp); events (``until``), ``dop853``, fixed-step methods and the
        Rosenbrock methods always use their own route.
        ``Solution.stats["kernel"]`` says which ran.

    Returns
    -------
    Solution
        ``ts``, ``states`` (leaves ``(*batch_shape, S, *core_i)``),
        ``observed``, per-instance ``status``, ``t_final``,
        ``state_final``, ``event`` and ``stats``.

    Notes
    -----
    The compiled path and the engine run the same algorithm (stages, error
    norm, step-size rule, dense output, endings); the compiled one avoids
    the Python of each step, which dominates small problems.

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
    controller = StepSizeController.resolve(stepsize, rtol=rtol, atol=atol, dt0=dt0)
    scipy_name = method.split(":", 1)[1] if isinstance(method, str) and method.startswith("scipy:") else None
    stiff = rosenbrock.as_rosenbrock(method)
    w_method = wmethod.as_w_method(method)
    multistep = bdf.as_bdf(method)
    if scipy_name is None and stiff is None and w_method is None and multistep is None:
        try:
            rk = as_method(method)
        except ValueError:
            names = [*METHODS, *rosenbrock.ROSENBROCK_METHODS, *wmethod.W_METHODS, bdf.BDF.name,
                     *(f"scipy:{n}" for n in _scipy.SCIPY_METHODS)]
            known = ", ".join(names)
            raise ValueError(f"method: expected one of {known}, got {method!r}") from None
    problem = Problem.build(
        vf, y0, t1, t0=t0, args=args, batch_shape=batch_shape, saveat=saveat, observe=observe,
        controller=controller, max_steps=max_steps, until=until, throw=throw,
    )
    if threads is not None:
        threads = count("threads", threads, minimum=1)
    if kernel is not None and kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {', '.join(map(repr, KERNELS))} or None, got {kernel!r}")
    if kernel == "compiled" and (scipy_name is not None or stiff is not None or w_method is not None):
        raise ValueError(f"kernel: 'compiled' runs the explicit Runge–Kutta methods and bdf only, got method "
                         f"{method!r}")
    if scipy_name is not None:
        if threads not in (None, 1):
            raise ValueError(f"threads: the scipy: route runs in one thread, expected 1, got {threads}")
        return _scipy.run(problem, scipy_name).solution(str(method))
    if multistep is not None:
        return _run_bdf(problem, multistep, threads, kernel)
    if w_method is not None:
        return wmethod.run(problem, w_method, threads=threads)
    if stiff is not None:
        return rosenbrock.run(problem, stiff, threads).solution(stiff.name)
    layout = problem.layout
    max_side = max((max(c) for c in layout.cores if c), default=1)
    if kernel != "numpy":
        from linfa.integrate import compiled  # numba compiles (or loads from its cache) on first use

        plan, why = compiled.plan_compiled(problem, rk, check=False)
        if plan is not None:
            why = compiled.check_plan(problem, plan, fused=True)  # the tape against the field, once
            if not why:
                n_threads = schedule.compiled_threads(problem.K, layout.D, plan.tape.max_product(),
                                                      plan.tape.matmul_flops(), threads)
                sol = compiled.run(problem, rk, plan, n_threads).solution(rk.name)
                sol.stats["kernel"] = "compiled"
                return sol
        if kernel == "compiled":
            raise ValueError(f"kernel: the compiled path cannot run this problem: {why}")
    n_threads, chunk = schedule.plan(problem.K, layout.D, rk.n_stages, max_side, threads)
    sol = _engine.run(problem, rk, n_threads, chunk).solution(rk.name)
    sol.stats["kernel"] = "numpy"
    return sol


def _run_bdf(problem: Problem, m: bdf.BDF, threads: int | None, kernel: str | None) -> Solution:
    """``bdf`` compiled (:mod:`linfa.integrate.compiled_bdf`) where it can run, else (or with ``kernel="numpy"``)
    batched (:mod:`linfa.integrate.bdf`); ``stats["kernel"]`` says which ran."""
    if kernel != "numpy":
        from linfa.integrate import compiled_bdf  # numba compiles (or loads from its cache) on first use

        plan, why = compiled_bdf.plan(problem)
        if plan is not None:
            n_threads = compiled_bdf.threads_for(problem.K, problem.layout.D, plan.tape.matmul_flops(), threads)
            return compiled_bdf.run(problem, m, plan, n_threads)
        if kernel == "compiled":
            raise ValueError(f"kernel: the compiled path cannot run this problem: {why}")
    sol = bdf.run(problem, m, threads)
    sol.stats["kernel"] = "numpy"
    return sol
