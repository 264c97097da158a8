"""The matrix operations every flow is written in.

A rule's flow is written once, in terms of the few operations below, and is
evaluated on two kinds of operand:

* numpy arrays of shape ``(*batch, m, n)``: leading axes are batch axes and
  every operation broadcasts over them;
* sympy matrices (explicit ``Matrix`` objects or ``MatrixSymbol`` expressions),
  so that :mod:`linfa.symbolic` reads off exactly the dynamics that
  :func:`linfa.solve` integrates.

Two more readings push other operands through the same definition: dual
numbers (:mod:`linfa.dual`, exact Jacobian–vector products for the stiff
methods) and tracers (:mod:`linfa.integrate.trace`, which record the flow as
a tape for the compiled integrator).

Nothing here imports sympy: a sympy operand is recognised by duck typing, so
``import linfa`` stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linfa import linalg

__all__ = ["is_symbolic", "matmul", "sign", "transpose"]


def is_symbolic(a: Any) -> bool:
    """Return True when ``a`` is a sympy matrix or matrix expression."""
    return type(a).__module__.startswith("sympy")


def transpose(a: Any) -> Any:
    """Transpose the last two axes of ``a`` (:func:`linfa.linalg.transpose`; ``a.T`` for a sympy matrix)."""
    if is_symbolic(a):
        return a.T
    return linalg.transpose(a)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product over the last two axes, broadcasting leading axes."""
    return a @ b


def sign(a: Any) -> Any:
    """Entrywise sign, as used by sign-symmetric feedback."""
    if is_symbolic(a):
        import sympy

        if isinstance(a, sympy.MatrixBase):
            return a.applyfunc(sympy.sign)
        raise TypeError(
            "sign() needs an explicit sympy Matrix, not a MatrixSymbol expression; "
            f"got {type(a).__name__}"
        )
    return np.sign(a)
