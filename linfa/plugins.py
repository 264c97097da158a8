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

__all__ = ["cli_options", "load", "load_all", "loaded"]

_LOADED: list[str] = []


def load(spec: str) -> None:
    """Import the module of ``spec`` (``"module"`` or ``"module:function"``) and call the function, if named.

    Loading the same spec twice in a process does nothing the second time.

    Raises
    ------
    ImportError
        If the module cannot be imported.
    AttributeError, TypeError
        If the function does not exist or is not callable.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected 'module' or 'module:function', got {type(spec).__name__}")
    if spec in _LOADED:
        return
    module_name, _, func = spec.partition(":")
    if not module_name:
        raise ImportError(f"expected MODULE or MODULE:FUNCTION, got {spec!r}")
    module = importlib.import_module(module_name)
    if func:
        obj: Any = module
        for part in func.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{spec!r} is not callable")
        obj()
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
