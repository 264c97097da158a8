"""Order-parameter ODEs of online SGD in a shallow teacher–student network (N → ∞).

Student :math:`\\hat y = \\sum_k v_k g(\\lambda_k)`, teacher :math:`y = \\sum_m v^*_m g(\\nu_m) + \\sigma\\zeta`,
one fresh Gaussian sample per step,

.. math::

    w_k \\leftarrow w_k - \\frac{\\eta}{\\sqrt N} f_k\\, g'(\\lambda_k)\\,\\Delta\\, x,\\qquad
    v_k \\leftarrow v_k - \\frac{\\eta}{N} g(\\lambda_k)\\,\\Delta,\\qquad \\Delta = \\hat y - y,

with :math:`f_k = v_k` (BP) or a fixed :math:`f_k = b_k` (DFA). Write the fields as one vector
:math:`z = (\\lambda_1..\\lambda_K, \\nu_1..\\nu_M)` of covariance :math:`\\Omega` and the signed
second layer :math:`s = (v, -v^*)`, so that :math:`\\Delta = \\sum_p s_p g(z_p) - \\sigma\\zeta`.
Averaging one step's change over the sample and taking time :math:`\\alpha = \\text{steps}/N`
(Saad & Solla 1995; Goldt et al. 2019):

.. math::

    \\frac{dR_{km}}{d\\alpha} = -\\eta f_k \\sum_p s_p I_3(k, K{+}m, p),\\qquad
    \\frac{dv_k}{d\\alpha} = -\\eta \\sum_p s_p I_2(k, p),

.. math::

    \\frac{dQ_{kl}}{d\\alpha} = -\\eta \\sum_p s_p\\big[f_k I_3(k, l, p) + f_l I_3(l, k, p)\\big]
    + \\eta^2 f_k f_l \\Big[\\sum_{pq} s_p s_q I_4(k, l, p, q) + \\sigma^2 J_2(k, l)\\Big],

where :math:`I_n(a, b, ...)` is the average of :mod:`.averages` over the fields with those
indices. The :math:`\\eta^2` term comes from :math:`\\Delta w_k \\cdot \\Delta w_l / N` with
:math:`x \\cdot x / N \\to 1`; the other terms from :math:`w_k \\cdot \\Delta w_l / N`.
``T`` and ``v*`` are constant.

For linear ``g`` without the :math:`\\eta^2` terms this is exactly the population flow of the
deep linear network ``(N, K, 1)`` of :mod:`linfa.rules` (BP, or DFA with ``B_1 = b``) with
:math:`W_1 = w/\\sqrt N`, :math:`W_2 = v^T`, :math:`\\Sigma_{xx} = I_N`,
:math:`\\Sigma_{yx} = {v^*}^T w^*/\\sqrt N`, at time :math:`t = \\eta\\alpha`
(then :math:`Q = W_1W_1^T`, :math:`R = W_1 {w^*}^T/\\sqrt N`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linfa.integrate import Event, Solution, integrate
from linfa.teacher_student import averages
from linfa.teacher_student.activations import Activation
from linfa.teacher_student.order_parameters import OrderParameters, Problem, field_covariance

__all__ = ["Flow", "State", "eg_below", "solve"]

State = tuple[np.ndarray, np.ndarray, np.ndarray]
#: ``obs(order_parameters) -> ndarray`` (leading batch axes preserved)
Observable = Callable[[OrderParameters], np.ndarray]


def _gather(omega: np.ndarray, index: Sequence[np.ndarray]) -> np.ndarray:
    """Covariance matrices of the field tuples ``index`` (broadcast index arrays), ``(B, *idx, n, n)``."""
    b = np.arange(omega.shape[0]).reshape((-1,) + (1,) * index[0].ndim)
    rows = [np.stack(np.broadcast_arrays(*[omega[b, i, j] for j in index]), axis=-1) for i in index]
    return np.stack(rows, axis=-2)


def field_sums(act: Activation, omega: np.ndarray, s: np.ndarray, k: int, *, second_order: bool = True,
               points: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The averages the ODE needs, summed against the signed second layer ``s`` (B, P).

    Returns
    -------
    a2 : (B, K)        :math:`\\sum_p s_p I_2(k, p)`
    a3 : (B, K, P)     :math:`\\sum_p s_p I_3(k, c, p)`
    a4 : (B, K, K)     :math:`\\sum_{pq} s_p s_q I_4(k, l, p, q)` (zeros without ``second_order``)
    j2 : (B, K, K)     :math:`J_2(k, l)` (zeros without ``second_order``)
    """
    nb, p = s.shape
    d = np.diagonal(omega, axis1=-2, axis2=-1)
    st = omega[:, :k, :]  # (B, K, P)
    zeros = np.zeros((nb, k, k))
    if act.name == "linear":
        a2 = np.einsum("bkp,bp->bk", st, s)
        os_ = np.einsum("bcp,bp->bc", omega, s)
        a3 = np.broadcast_to(os_[:, None, :], (nb, k, p))
        if not second_order:
            return a2, a3, zeros, zeros
        sos = np.einsum("bp,bpq,bq->b", s, omega, s)
        return a2, a3, np.broadcast_to(sos[:, None, None], (nb, k, k)), np.ones((nb, k, k))
    if act.name == "erf":
        dk = d[:, :k]
        a2 = np.einsum("bkp,bp->bk", averages.erf_i2(dk[:, :, None], st, d[:, None, :]), s)
        i3 = averages.erf_i3(dk[:, :, None, None], st[:, :, :, None], st[:, :, None, :], omega[:, None, :, :],
                             d[:, None, None, :])  # (B, K, c, p)
        a3 = np.einsum("bkcp,bp->bkc", i3, s)
        if not second_order:
            return a2, a3, zeros, zeros
        c11 = dk[:, :, None, None, None]
        c22 = dk[:, None, :, None, None]
        c12 = omega[:, :k, :k, None, None]
        c13 = st[:, :, None, :, None]
        c14 = st[:, :, None, None, :]
        c23 = st[:, None, :, :, None]
        c24 = st[:, None, :, None, :]
        c33 = d[:, None, None, :, None]
        c44 = d[:, None, None, None, :]
        c34 = omega[:, None, None, :, :]
        i4 = averages.erf_i4(c11, c12, c13, c14, c22, c23, c24, c33, c34, c44)
        a4 = np.einsum("bklpq,bp,bq->bkl", i4, s, s)
        j2 = averages.erf_j2(dk[:, :, None], omega[:, :k, :k], dk[:, None, :])
        return a2, a3, a4, j2
    ks, ps = np.arange(k), np.arange(p)
    i2 = averages.cubature("i2", act, _gather(omega, [ks[:, None], ps[None, :]]), points)
    a2 = np.einsum("bkp,bp->bk", i2, s)
    i3 = averages.cubature("i3", act, _gather(omega, [ks[:, None, None], ps[None, :, None], ps[None, None, :]]),
                           points)
    a3 = np.einsum("bkcp,bp->bkc", i3, s)
    if not second_order:
        return a2, a3, zeros, zeros
    i4 = averages.cubature(
        "i4", act,
        _gather(omega, [ks[:, None, None, None], ks[None, :, None, None], ps[None, None, :, None],
                        ps[None, None, None, :]]), points)
    a4 = np.einsum("bklpq,bp,bq->bkl", i4, s, s)
    j2 = averages.cubature("j2", act, _gather(omega, [ks[:, None], ks[None, :]]), points)
    return a2, a3, a4, j2


@dataclass(frozen=True, eq=False)
class Flow:
    """The vector field ``vf(α, (Q, R, v), (T, vstar, b, eta, sigma))`` for :func:`linfa.integrate.integrate`.

    Every array has one leading batch axis; see the module docstring for the equations.

    Parameters
    ----------
    activation : Activation
    rule : {"BP", "DFA"}
    train_second_layer, second_order : bool
    points : int, optional
        Cubature points per dimension for activations without closed forms.
    """

    activation: Activation
    rule: str = "BP"
    train_second_layer: bool = True
    second_order: bool = True
    points: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.activation, Activation):
            raise TypeError(f"activation: expected an Activation, got {type(self.activation).__name__}")
        if self.rule not in ("BP", "DFA"):
            raise ValueError(f"rule: expected 'BP' or 'DFA', got {self.rule!r}")

    def __call__(self, t: Any, y: Sequence[np.ndarray], args: Sequence[np.ndarray]) -> State:
        Q, R, v = y
        T, vstar, b, eta, sigma = args
        nb = Q.shape[0]
        T = np.broadcast_to(T, (nb, *T.shape[1:]))
        vstar = np.broadcast_to(vstar, (nb, vstar.shape[-1]))
        k = Q.shape[-1]
        omega = field_covariance(Q, R, T)
        s = np.concatenate([v, -vstar], axis=-1)
        a2, a3, a4, j2 = field_sums(self.activation, omega, s, k, second_order=self.second_order,
                                    points=self.points)
        f = v if self.rule == "BP" else np.broadcast_to(b, v.shape)
        eta = np.broadcast_to(np.reshape(eta, (-1,)), (nb,))
        e1 = eta[:, None, None]
        dR = -e1 * f[:, :, None] * a3[:, :, k:]
        x = f[:, :, None] * a3[:, :, :k]  # x[k, l] = f_k Σ_p s_p I3(k, l, p)
        dQ = -e1 * (x + np.swapaxes(x, -1, -2))
        if self.second_order:
            sig2 = np.broadcast_to(np.reshape(sigma, (-1,)), (nb,))[:, None, None] ** 2
            dQ = dQ + e1**2 * f[:, :, None] * f[:, None, :] * (a4 + sig2 * j2)
        dv = -eta[:, None] * a2 if self.train_second_layer else np.zeros_like(v)
        return dQ, dR, dv


def _order_parameters(y: Sequence[np.ndarray], args: Sequence[np.ndarray]) -> OrderParameters:
    Q, R, v = y
    T, vstar, b = args[0], args[1], args[2]
    lead = Q.shape[:-2]
    return OrderParameters(
        Q, R, np.broadcast_to(T, (*lead, *T.shape[-2:])), v,
        np.broadcast_to(vstar, (*lead, vstar.shape[-1])), np.broadcast_to(b, (*lead, b.shape[-1])),
    )


def eg_below(tol: float, activation: Any = "erf") -> Event:
    """Stop an instance once its generalisation error falls to ``tol`` (status ``event``).

    .. math:: g = \\epsilon_g(Q, R, T, v) - \\text{tol}

    For :func:`solve`'s ``until``; the time is located on the interpolant.
    """
    from linfa._validate import real
    from linfa.teacher_student import observables as tso
    from linfa.teacher_student.activations import activation as _activation

    tol = real("tol", tol, positive=True)
    act = _activation(activation)

    def g(t: Any, y: Sequence[np.ndarray], args: Sequence[np.ndarray]) -> np.ndarray:
        return tso.generalisation_error(_order_parameters(y, args), act) - tol

    return Event(g, direction=-1, name=f"eg_below({tol:g})")


def solve(
    problem: Problem,
    alpha: float,
    *,
    saveat: Any = None,
    observe: Sequence[str] | Mapping[str, Observable] | None = None,
    until: Event | Sequence[Event] | None = None,
    points: int | None = None,
    **options: Any,
) -> Solution:
    """Integrate the order-parameter ODEs of ``problem`` over ``α ∈ [0, alpha]``.

    Parameters
    ----------
    problem : Problem
        A batch of problems (initial ``Q, R, v``; ``T, vstar, b, eta, sigma``).
    alpha : float
        Final time (steps / N).
    saveat : array_like, shape (S,), optional
        Times to save at (default ``[alpha]``).
    observe : sequence of str or mapping of str to callable, optional
        Built-in names (``"eg"``, ``"alignment"``, ``"overlaps"``, ``"specialisation"``, see
        :mod:`.observables`) or ``name -> obs(OrderParameters)``.
    until : Event or sequence of Event, optional
        Stopping conditions on ``y = (Q, R, v)``, ``args = (T, vstar, b, eta, sigma)``.
    points : int, optional
        Cubature points for activations without closed forms.
    **options
        Passed to :func:`linfa.integrate.integrate` (``method``, ``rtol``, ``atol``, ``max_steps``, ...).

    Returns
    -------
    Solution
        ``states = (Q, R, v)`` with shapes ``(*batch, S, ...)`` and the observables.
    """
    from linfa._validate import count, real, times
    from linfa.teacher_student import observables as tso

    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a teacher_student.Problem, got {type(problem).__name__}")
    alpha = real("alpha", alpha, minimum=0.0)
    if points is not None:
        points = count("points", points, minimum=1)
    if saveat is not None:
        saveat = times("saveat", saveat, minimum=0.0)
    if until is not None and not isinstance(until, Event) and not (
            isinstance(until, Sequence) and all(isinstance(e, Event) for e in until)):
        raise TypeError(f"until: expected a linfa.integrate.Event (e.g. eg_below(tol)) or a sequence of them, "
                        f"got {type(until).__name__}")
    act = problem.activation
    if observe is None:
        named: dict[str, Observable] = {}
    elif isinstance(observe, Mapping):
        named = dict(observe)
    elif isinstance(observe, str) or not isinstance(observe, Sequence):
        raise TypeError(f"observe: expected a sequence of names or a mapping, got {type(observe).__name__}")
    else:
        named = {name: tso.builtin(name, act) for name in observe}
    for name, fn in named.items():
        if not callable(fn):
            raise TypeError(f"observe[{name!r}]: expected a callable obs(order_parameters)")

    def wrap(fn: Observable) -> Callable[..., np.ndarray]:
        def obs(t: Any, y: Sequence[np.ndarray], args: Sequence[np.ndarray]) -> np.ndarray:
            return np.asarray(fn(_order_parameters(y, args)))

        return obs

    flow = Flow(act, problem.rule, problem.train_second_layer, problem.second_order, points)
    return integrate(
        flow, (problem.Q, problem.R, problem.v), alpha,
        args=(problem.T, problem.vstar, problem.b, problem.eta, problem.sigma),
        batch_shape=problem.batch_shape, saveat=saveat, until=until,
        observe={name: wrap(fn) for name, fn in named.items()}, **options,
    )
