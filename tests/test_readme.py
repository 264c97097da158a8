"""The README's Python examples run, in order, in one namespace (what a reader pastes works)."""

from __future__ import annotations

import re
from pathlib import Path

import linfa
from linfa import theorems

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_has_the_extension_sections() -> None:
    text = README.read_text(encoding="utf-8")
    assert "## Add your own rule" in text and "## Add your own claim" in text
    assert len(_blocks()) >= 3


def test_readme_python_blocks_run() -> None:
    rules_before = set(linfa.rules.names())
    claims_before = {t.id for t in theorems.catalogue()}
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        for i, code in enumerate(_blocks()):
            exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        assert "ScaledDFA" in linfa.rules.names() and theorems.get("mynotes.bp_loss_decreases")
    finally:
        for name in set(linfa.rules.names()) - rules_before:
            linfa.rules.unregister(name)
        for tid in {t.id for t in theorems.catalogue()} - claims_before:
            theorems.unregister(tid)
