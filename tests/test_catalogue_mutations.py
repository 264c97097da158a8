"""Mutation test of the catalogue: every listed mutation of the rules makes some entry fail.

Each mutation monkeypatches one rule of :mod:`linfa.rules` (a scaled signal, a transposed
feedback, the error without Σxx, one rule swapped for another, Kolen–Pollack's decay on one
side only, ...). The catalogue without derivations (``linfa check --no-derivations``) is run
in-process on few instances, entry by entry in catalogue order, until one entry fails: a
mutation no entry notices would mean the catalogue cannot tell that rule's flow from a wrong
one. Run this file as a script to print the full kill table (every entry under every mutation).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import linfa.rules as rules
from linfa import theorems

Patch = Callable[[pytest.MonkeyPatch], None]


def _scale_hidden(cls: type[rules.AbstractRule], factor: float) -> Patch:
    orig = cls._signals

    def patch(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(cls, "_signals", lambda self, s, e: [factor * d for d in orig(self, s, e)[:-1]]
                   + [orig(self, s, e)[-1]])

    return patch


def _scale_output(cls: type[rules.AbstractRule], factor: float) -> Patch:
    orig = cls._signals

    def patch(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(cls, "_signals", lambda self, s, e: [*orig(self, s, e)[:-1], factor * orig(self, s, e)[-1]])

    return patch


def _fa_transposed(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(rules.FA, "_signals", lambda self, s, e: rules._chain(self.feedback, e, transpose_each=True))


def _fa_top_layer_bp(mp: pytest.MonkeyPatch) -> None:
    # the signal to layer L-1 goes through W_L^T (BP), deeper layers through the B's
    def signals(self: Any, s: Any, e: Any) -> list[Any]:
        ws = self.weights(s)
        top = np.swapaxes(ws[-1], -1, -2) @ e
        return [*rules._chain(self.feedback[:-1], top, transpose_each=False), e]

    mp.setattr(rules.FA, "_signals", signals)


def _error_without_sxx(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(rules, "error", lambda task, w: task.syx - w)


def _swap(cls: type[rules.AbstractRule], other: type[rules.AbstractRule]) -> Patch:
    def patch(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(cls, "_signals", other._signals)

    return patch


def _kp_decay_forward_only(mp: pytest.MonkeyPatch) -> None:
    orig = rules.KolenPollack.dstate

    def dstate(self: Any, task: Any, state: Any) -> Any:
        out = orig(self, task, state)
        depth = self.depth(state)
        return (*out[:depth], *(d + self.decay * b for d, b in zip(out[depth:], state[depth:], strict=True)))

    mp.setattr(rules.KolenPollack, "dstate", dstate)


def _kp_feedback_fixed(mp: pytest.MonkeyPatch) -> None:
    orig = rules.KolenPollack.dstate

    def dstate(self: Any, task: Any, state: Any) -> Any:
        out = orig(self, task, state)
        depth = self.depth(state)
        return (*out[:depth], *(-self.decay * b for b in state[depth:]))

    mp.setattr(rules.KolenPollack, "dstate", dstate)


MUTATIONS: dict[str, Patch] = {
    "DFA hidden signals x1.05": _scale_hidden(rules.DFA, 1.05),
    "DFA output-layer update x0.95": _scale_output(rules.DFA, 0.95),
    "BP hidden signals x1.05": _scale_hidden(rules.BP, 1.05),
    "FA hidden signals x0.95": _scale_hidden(rules.FA, 0.95),
    "SignSymmetry behaves as BP": _swap(rules.SignSymmetry, rules.BP),
    "BP behaves as SignSymmetry": _swap(rules.BP, rules.SignSymmetry),
    "FA feedback transposed": _fa_transposed,
    "FA top hidden layer through W_L^T": _fa_top_layer_bp,
    "error without Sigma_xx": _error_without_sxx,
    "Kolen-Pollack decay on W only": _kp_decay_forward_only,
    "Kolen-Pollack feedback does not learn": _kp_feedback_fixed,
}

INSTANCES = 4


@contextlib.contextmanager
def mutated(name: str) -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    try:
        MUTATIONS[name](mp)
        yield
    finally:
        mp.undo()


def failing_entries(name: str, *, first_only: bool) -> list[str]:
    """Ids of the entries that fail (or raise) under the mutation ``name``."""
    out = []
    with mutated(name):
        for thm in theorems.catalogue():
            r = theorems.run(thm, instances=min(INSTANCES, thm.fast_instances), derivation=False)
            if not r.passed:
                out.append(thm.id + (" (error)" if r.error else ""))
                if first_only:
                    break
    return out


def test_unmutated_catalogue_entries_hold_on_the_mutation_instances() -> None:
    # the flow entries the mutations are first caught by hold without a mutation
    for thm in theorems.catalogue():
        if "flow_matches_reference" in thm.id or thm.id == "rumelhart1986.bp_flow_is_gradient":
            assert theorems.run(thm, instances=INSTANCES, derivation=False).passed, thm.id


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutation_is_killed(name: str) -> None:
    assert failing_entries(name, first_only=True), f"no catalogue entry fails under the mutation {name!r}"


if __name__ == "__main__":
    for name in MUTATIONS:
        killed = failing_entries(name, first_only=False)
        print(f"| {name} | {len(killed)} | {', '.join(killed)} |")
        sys.stdout.flush()
