"""Plug-ins: modules that register their own rules and catalogue entries.

A plug-in is named ``"module"`` or ``"module:function"``: loading it imports
the module and calls the function, if named (e.g. one that calls
:func:`linfa.rules.register` and :func:`linfa.theorems.register`). The
command line loads them with ``linfa --plugin SPEC``; the specs loaded in a
process are remembered (:func:`loaded`) so that worker processes of a sweep
or of ``linfa check --workers`` load the same ones before they look an entry
up. Only specs given by code or on the command line are loaded, never one
read from a data file.
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Iterable
from typing import Any

__all__ = ["PluginError", "cli_options", "load", "load_all", "loaded"]

_LOADED: list[str] = []


class PluginError(ImportError):
    """A plug-in could not be loaded: its module failed to import, or its function is missing or raised.

    The message names the spec and the original exception (type and message,
    on one line); the original is the ``__cause__``.
    """

    def __init__(self, spec: str, what: str, exc: BaseException | None = None) -> None:
        detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        message = f"plug-in {spec!r}: {what}{detail}"
        super().__init__(" ".join(message.split()))  # one line, whatever the original message was
        self.spec = spec


def load(spec: str) -> None:
    """Import the module of ``spec`` (``"module"`` or ``"module:function"``) and call the function, if named.

    Loading the same spec twice in a process does nothing the second time.

    Raises
    ------
    TypeError
        If ``spec`` is not a string.
    PluginError
        (an :class:`ImportError`) If the spec is malformed, the module cannot
        be imported (any exception raised while importing it), the function
        does not exist or is not callable, or calling it raised; the original
        exception is the ``__cause__``. The spec is then not recorded as loaded.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected 'module' or 'module:function', got {type(spec).__name__}")
    if spec in _LOADED:
        return
    module_name, _, func = spec.partition(":")
    if not module_name:
        raise PluginError(spec, "expected MODULE or MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(spec, f"importing {module_name!r} failed", exc) from exc
    if func:
        obj: Any = module
        try:
            for part in func.split("."):
                obj = getattr(obj, part)
        except AttributeError as exc:
            raise PluginError(spec, f"module {module_name!r} has no {func!r}", exc) from exc
        if not callable(obj):
            raise PluginError(spec, f"{func!r} is not callable")
        try:
            obj()
        except Exception as exc:
            raise PluginError(spec, f"calling {func}() failed", exc) from exc
    _LOADED.append(spec)


def load_all(specs: Iterable[str]) -> None:
    """:func:`load` each of ``specs`` in order."""
    for spec in specs:
        load(spec)


def loaded() -> tuple[str, ...]:
    """The specs loaded in this process, in order."""
    return tuple(_LOADED)


def cli_options() -> str:
    """The ``--plugin`` options that load this process's plug-ins in another ``linfa`` command.

    Every replay or resume command linfa prints carries them, so that it finds
    the plug-ins' rules and entries: ``f"linfa{cli_options()} check ID"``.

    Returns
    -------
    str
        ``" --plugin SPEC"`` for each of :func:`loaded`, in order, shell-quoted;
        ``""`` if none is loaded.
    """
    return "".join(f" --plugin {shlex.quote(spec)}" for spec in _LOADED)
