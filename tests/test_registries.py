"""Every registry lookup of an unknown name raises one error: a KeyError and a ValueError naming the argument."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import linfa
from linfa import facts, rules, theorems


def _derivation_step() -> Any:
    import sympy as sp

    from linfa.symbolic import Derivation

    d = Derivation("a derivation", "1 = 1")
    d.add("expand", sp.Integer(1), sp.Integer(1))
    return d.step("nope")


TASK = linfa.Task.teacher(np.ones((1, 2)))
CASES: list[tuple[str, Callable[[], Any], str, Callable[[], Any]]] = [
    # (what, call, argument named, a name that must be listed as known)
    ("rules.get", lambda: rules.get("Nope"), "name", lambda: "KolenPollack"),
    ("rules.unregister", lambda: rules.unregister("Nope"), "name", lambda: "DFA"),
    ("theorems.get", lambda: theorems.get("nope.claim"), "id", lambda: theorems.catalogue()[0].id),
    ("theorems.unregister", lambda: theorems.unregister("nope.claim"), "id", lambda: theorems.catalogue()[-1].id),
    ("Instance.learning", lambda: linfa.Instance.learning(TASK, (np.zeros((1, 2)),), rule="Nope"), "rule",
     lambda: "SignSymmetry"),
    ("facts.get", lambda: facts.get(99), "number", lambda: str(len(facts.FACTS))),
    ("Derivation.step", _derivation_step, "name", lambda: "expand"),
]


@pytest.mark.parametrize(("call", "argument", "known"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unknown_names_raise_one_error(call: Callable[[], Any], argument: str, known: Callable[[], Any]) -> None:
    with pytest.raises(linfa.UnknownNameError) as info:
        call()
    exc = info.value
    assert isinstance(exc, KeyError) and isinstance(exc, ValueError)  # old `except KeyError` keeps working
    msg = str(exc)
    assert msg.startswith(f"{argument}: ") and not msg.startswith("'"), msg  # names the argument, unquoted
    assert exc.argument == argument and known() in [str(k) for k in exc.known] and known() in msg
    back = pickle.loads(pickle.dumps(exc))  # crosses worker processes intact
    assert type(back) is type(exc) and str(back) == msg and back.known == exc.known
