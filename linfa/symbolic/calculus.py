r"""Time derivatives of matrix expressions along a rule's flow.

The rates are read off the *same* :meth:`linfa.AbstractRule.dstate` that the
numerical integrator uses, evaluated on sympy operands. A quantity
:math:`Q(W_1, \dots, W_L)` is differentiated by the directional derivative

.. math::

    \frac{dQ}{dt} = \frac{d}{d\tau} Q\big(W_1 + \tau\dot W_1, \dots, W_L + \tau\dot W_L\big)\Big|_{\tau=0},

which is the product rule, valid for explicit matrices and for
:class:`sympy.MatrixSymbol` expressions alike (the latter dimension-free).
Extra rates (auxiliary variables such as :math:`M = \int_0^t E`, or the time
``t`` itself with rate 1) are passed as ``extra=[(M, E), (t, 1)]``.

"this is conserved" or "this is non-increasing" is one call:
:func:`is_conserved`, :func:`conservation_step`, :func:`rate_step`.

In a chain (see :mod:`linfa.symbolic.derivation`) the rates are placeholders
:math:`\dot W_l` defined by *flow steps* (:func:`flow_steps`), which read
them off ``rule.flow``; later steps differentiate with the placeholders
(``time_derivative(Q, {W_l: \dot W_l})``) and ``use`` the flow steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sympy as sp

from linfa.rules import AbstractRule
from linfa.symbolic.derivation import _LATEX_REL, Step, _identity, _is_matrix_expr, _sign_ok, _substitute
from linfa.tasks import Task

__all__ = [
    "conservation_step",
    "flow_rates",
    "flow_steps",
    "is_conserved",
    "is_nonincreasing",
    "placeholder",
    "rate_step",
    "time_derivative",
]

Quantity = Any | Callable[[tuple[Any, ...]], Any]
Rates = Mapping[Any, Any]


def _pairs(variables: Sequence[Any], rates: Sequence[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for v, r in zip(variables, rates, strict=True):
        if isinstance(v, sp.MatrixBase):
            r = sp.Matrix(r) if not isinstance(r, sp.MatrixBase) else r
            if r.shape != v.shape:
                raise ValueError(f"rates: expected shape {v.shape} for the rate of {v}, got {r.shape}")
            for x, dx in zip(v, r, strict=True):
                if not isinstance(x, sp.Symbol):
                    if x == 0 and dx == 0:
                        continue
                    raise TypeError(
                        f"variables: an explicit matrix variable must have symbol entries; got entry {x}"
                    )
                out[x] = dx
        else:
            out[v] = r
    return out


def _as_pairs(rates: Rates | Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    items = list(rates.items()) if isinstance(rates, Mapping) else list(rates)
    if not items:
        return {}
    variables, values = zip(*items, strict=True)
    return _pairs(variables, values)


def flow_rates(rule: AbstractRule, task: Task, state: Sequence[Any]) -> dict[Any, Any]:
    """Map each state variable to its rate under ``rule.flow(task)``.

    Parameters
    ----------
    rule : AbstractRule
    task : Task
        Holding sympy moments (:func:`linfa.symbolic.matrices.task`).
    state : tuple
        Sympy state: ``MatrixSymbol`` entries, or explicit matrices of
        distinct symbols.

    Returns
    -------
    dict
        ``{W_l: dW_l/dt}`` for matrix symbols, ``{w_ij: dw_ij/dt}`` for
        explicit matrices (entries that are constant zero are skipped).
    """
    state = tuple(state)
    return _pairs(state, rule.flow(task)(0, state))


def placeholder(like: Any, label: str) -> Any:
    r"""A placeholder shaped like ``like``: a matrix symbol, an explicit matrix of symbols, or a symbol.

    Parameters
    ----------
    like : MatrixSymbol, Matrix or scalar expression
    label : str
        Its name (LaTeX allowed), e.g. ``r"\dot{A}"``.
    """
    if isinstance(like, sp.MatrixBase):
        r, c = like.shape
        return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{label}_{i}{j}", real=True))
    if _is_matrix_expr(like):
        return sp.MatrixSymbol(label, *like.shape)
    return sp.Symbol(label, real=True)


def flow_steps(
    rule: AbstractRule, task: Task, state: Sequence[Any], labels: Sequence[str],
    closed_forms: Sequence[Any] | None = None, *, prefix: str = "flow", reason: str | None = None,
    shows: Sequence[str] | None = None, dims: str = "",
) -> tuple[list[Step], dict[Any, Any]]:
    r"""Steps reading each layer's rate off ``rule.flow``, and the placeholder rates they define.

    Step ``f"{prefix}-{label}"`` states :math:`\dot W_l = ` ``closed_forms[l]``
    (checked against ``rule.dstate``; without closed forms it records the
    rate as the flow gives it) and defines the placeholder ``\dot{label}``.

    Returns
    -------
    steps : list of Step
    rates : dict
        ``{W_l: placeholder_l}`` (entry by entry for explicit matrices), for
        :func:`time_derivative`, :func:`conservation_step` and :func:`rate_step`.
    """
    state = tuple(state)
    computed = rule.dstate(task, state)
    forms = tuple(closed_forms) if closed_forms is not None else computed
    steps, rates = [], {}
    why = reason or f"{type(rule).__name__}.flow"
    for i, (w, label) in enumerate(zip(state, labels, strict=True)):
        p = placeholder(w, rf"\dot{{{label}}}")
        show = shows[i] if shows is not None else rf"\dot {label} = {sp.latex(forms[i])}"
        steps.append(Step(f"{prefix}-{label}", computed[i], forms[i], "=", why, dims=dims, defines=p, show=show))
        rates.update(_pairs((w,), (p,)))  # an explicit matrix maps entry by entry
    return steps, rates


def time_derivative(expr: Any, rates: Rates | Iterable[tuple[Any, Any]]) -> Any:
    """Derivative of ``expr`` when each variable moves at its rate.

    Parameters
    ----------
    expr : sympy expression, Matrix or MatrixExpr
    rates : mapping or iterable of (variable, rate)
        Variables are ``MatrixSymbol``, explicit matrices of symbols, or
        scalar symbols; anything absent is constant.

    Returns
    -------
    Same kind as ``expr``.
    """
    pairs = _as_pairs(rates)
    if _is_matrix_expr(expr):
        return sp.expand(_ddt_matexpr(expr, pairs).doit())
    tau = sp.Dummy("tau", real=True)
    moved = {v: v + tau * r for v, r in pairs.items()}
    d = expr.xreplace(moved).diff(tau).subs(tau, 0)
    if isinstance(d, sp.MatrixBase):
        return d.applyfunc(sp.expand)
    return sp.expand(d)


def _ddt_matexpr(e: Any, rates: dict[Any, Any]) -> Any:
    """Product rule on a matrix-expression tree (sympy's own ``diff`` mis-shapes some products)."""
    if isinstance(e, sp.MatrixSymbol):
        return rates.get(e, sp.ZeroMatrix(*e.shape))
    if isinstance(e, sp.Identity | sp.ZeroMatrix | sp.OneMatrix):
        return sp.ZeroMatrix(*e.shape)
    if isinstance(e, sp.MatAdd):
        return sp.MatAdd(*[_ddt_matexpr(a, rates) for a in e.args])
    if isinstance(e, sp.MatMul):
        args = list(e.args)
        terms = []
        for i, a in enumerate(args):
            da = _ddt_matexpr(a, rates) if isinstance(a, sp.MatrixExpr) else _ddt_scalar(a, rates)
            if da == 0 or isinstance(da, sp.ZeroMatrix):
                continue
            terms.append(sp.MatMul(*args[:i], da, *args[i + 1:]))
        return sp.MatAdd(*terms) if terms else sp.ZeroMatrix(*e.shape)
    if isinstance(e, sp.Transpose):
        return sp.Transpose(_ddt_matexpr(e.arg, rates))
    if isinstance(e, sp.Inverse):
        x = e.arg
        return -sp.Inverse(x) * _ddt_matexpr(x, rates) * sp.Inverse(x)
    if isinstance(e, sp.MatPow) and e.exp.is_Integer and e.exp > 0:
        return _ddt_matexpr(sp.MatMul(*([e.base] * int(e.exp)), evaluate=False), rates)
    raise TypeError(f"expr: cannot differentiate the matrix expression {e} ({type(e).__name__})")


def _ddt_scalar(e: Any, rates: dict[Any, Any]) -> Any:
    if isinstance(e, sp.Trace):
        return sp.Trace(_ddt_matexpr(e.arg, rates))
    scal = {v: r for v, r in rates.items() if not isinstance(v, sp.MatrixExpr)}
    tau = sp.Dummy("tau", real=True)
    return sp.sympify(e).xreplace({v: v + tau * r for v, r in scal.items()}).diff(tau).subs(tau, 0)


def _evaluate(quantity: Quantity, state: tuple[Any, ...]) -> Any:
    return quantity(state) if callable(quantity) else quantity


def along_flow(
    quantity: Quantity, rule: AbstractRule, task: Task, state: Sequence[Any],
    *, extra: Iterable[tuple[Any, Any]] = (),
) -> Any:
    """``dQ/dt`` along ``rule.flow(task)``; ``quantity`` is an expression or ``f(state)``."""
    state = tuple(state)
    rates = flow_rates(rule, task, state)
    rates.update(_as_pairs(extra))
    return time_derivative(_evaluate(quantity, state), rates)


def is_conserved(
    quantity: Quantity, rule: AbstractRule, task: Task, state: Sequence[Any],
    *, extra: Iterable[tuple[Any, Any]] = (), given: Sequence[tuple[Any, Any]] = (),
) -> bool:
    """True when ``dQ/dt`` vanishes identically along the flow (exact check)."""
    d = _substitute(along_flow(quantity, rule, task, state, extra=extra), tuple(given))
    return _identity(d, "auto")[0]


def is_nonincreasing(
    quantity: Quantity, rule: AbstractRule, task: Task, state: Sequence[Any], witness: Any,
    *, extra: Iterable[tuple[Any, Any]] = (), given: Sequence[tuple[Any, Any]] = (),
) -> bool:
    """True when ``dQ/dt = -witness`` exactly and ``witness`` is manifestly ``>= 0``."""
    d = _substitute(along_flow(quantity, rule, task, state, extra=extra), tuple(given))
    return _identity(d + witness, "auto")[0] and _sign_ok(witness, strict=False)


def _ddt_latex(q: Any) -> str:
    return rf"\frac{{d}}{{dt}}\left({q if isinstance(q, str) else sp.latex(q)}\right)"


def _rate_of(q: Any, rule: AbstractRule, task: Task, state: Sequence[Any], extra: Iterable[tuple[Any, Any]],
             rates: Rates | None) -> Any:
    """``dQ/dt`` with the flow substituted, or with the placeholder ``rates`` of :func:`flow_steps`."""
    if rates is None:
        return along_flow(q, rule, task, state, extra=extra)
    pairs = dict(_as_pairs(rates))
    pairs.update(_as_pairs(extra))
    return time_derivative(q, pairs)


def _chain_args(rates: Rates | None, uses: Sequence[str], claim: bool) -> dict[str, Any]:
    uses = tuple(uses)
    if not all(isinstance(u, str) for u in uses):
        raise TypeError(f"uses: expected step names (str), got {uses!r}")
    if rates is not None and not uses:
        raise ValueError("uses: a step written with placeholder rates must name the steps that define them "
                         "(the flow steps of flow_steps)")
    return {"uses": uses, "claim": bool(claim)}


def conservation_step(
    name: str, quantity: Quantity, rule: AbstractRule, task: Task, state: Sequence[Any],
    *, extra: Iterable[tuple[Any, Any]] = (), given: Sequence[tuple[Any, Any]] = (),
    reason: str | None = None, dims: str = "", label: str | None = None,
    rates: Rates | None = None, uses: Sequence[str] = (), claim: bool = False,
) -> Step:
    """A :class:`Step` stating ``dQ/dt = 0`` along ``rule``'s flow.

    ``label`` is the LaTeX of ``Q`` shown (defaults to ``sympy.latex(Q)``).

    By default the flow is substituted into ``dQ/dt`` (a step that rests on no
    other step). In a chain, pass the placeholder ``rates`` returned by
    :func:`flow_steps` and name those steps in ``uses``: ``dQ/dt`` is then
    written with the placeholders, and the step holds only through the flow
    steps it uses (deleting one makes it fail). ``claim=True`` makes it a
    claim of the derivation.
    """
    chain = _chain_args(rates, uses, claim)
    q = _evaluate(quantity, tuple(state))
    d = _rate_of(q, rule, task, state, extra, rates)
    zero: Any = 0
    if _is_matrix_expr(d):
        zero = sp.ZeroMatrix(*d.shape)
    elif isinstance(d, sp.MatrixBase):
        zero = sp.zeros(*d.shape)
    why = reason or f"product rule, substituting dW_l/dt from {type(rule).__name__}.flow"
    return Step(name, d, zero, "=", why, dims=dims, given=tuple(given),
                show=f"{_ddt_latex(label or q)} = 0", **chain)


def rate_step(
    name: str, quantity: Quantity, rule: AbstractRule, task: Task, state: Sequence[Any], rhs: Any,
    *, relation: str = "=", extra: Iterable[tuple[Any, Any]] = (), given: Sequence[tuple[Any, Any]] = (),
    witness: Any = None, reason: str | None = None, dims: str = "", label: str | None = None,
    rhs_label: str | None = None, rates: Rates | None = None, uses: Sequence[str] = (), claim: bool = False,
) -> Step:
    """A :class:`Step` stating ``dQ/dt <relation> rhs`` along ``rule``'s flow.

    For "non-increasing" use ``rhs=0, relation="<="`` and a ``witness`` ``w``
    with ``0 - dQ/dt = w``, ``w`` manifestly ``>= 0``. ``rates``, ``uses`` and
    ``claim`` put the step in a chain, as for :func:`conservation_step`.
    """
    chain = _chain_args(rates, uses, claim)
    q = _evaluate(quantity, tuple(state))
    d = _rate_of(q, rule, task, state, extra, rates)
    why = reason or f"product rule, substituting dW_l/dt from {type(rule).__name__}.flow"
    rel = _LATEX_REL[relation]
    show = f"{_ddt_latex(label or q)} {rel} {rhs_label or sp.latex(rhs)}"
    return Step(name, d, rhs, relation, why, dims=dims, given=tuple(given), witness=witness, show=show, **chain)
