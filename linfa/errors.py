"""Exceptions of linfa's own, for bad input that no built-in exception names well.

Bad input otherwise raises :class:`ValueError` or :class:`TypeError` naming the
argument; these subclass them, so ``except ValueError`` catches them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["UnknownNameError"]


class UnknownNameError(KeyError, ValueError):
    """A name that its registry does not hold: a rule, a catalogue entry, a fact, a derivation step.

    Every registry of linfa raises it from its lookups (``get``,
    ``unregister``, ...). It is a :class:`KeyError` (a failed lookup, so
    ``except KeyError`` keeps working) and a :class:`ValueError` (bad input,
    like every other argument check). The message names the argument and
    lists the names that are known.

    Parameters
    ----------
    argument : str
        The argument that held the name (e.g. ``"rule"``, ``"id"``).
    name : object
        The name looked up.
    known : iterable
        The names the registry holds.
    kind : str
        What the registry holds, for the message (``"rule"``, ``"catalogue entry"``).
    hint : str
        Appended to the message (e.g. close matches).

    Examples
    --------
    >>> import linfa
    >>> try:
    ...     linfa.rules.get("Nope")
    ... except linfa.UnknownNameError as exc:
    ...     print(exc.argument, exc.name, "FA" in exc.known)
    name Nope True
    """

    def __init__(self, argument: str, name: Any, known: Iterable[Any], *, kind: str, hint: str = "") -> None:
        self.argument, self.name, self.known, self.kind, self.hint = argument, name, tuple(known), kind, hint
        known_text = ", ".join(str(k) for k in self.known) or "none"
        super().__init__(f"{argument}: no {kind} {name!r} is registered{hint}; known: {known_text}")

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (_rebuild, (self.argument, self.name, self.known, self.kind, self.hint))


def _rebuild(argument: str, name: Any, known: tuple[Any, ...], kind: str, hint: str) -> UnknownNameError:
    return UnknownNameError(argument, name, known, kind=kind, hint=hint)
