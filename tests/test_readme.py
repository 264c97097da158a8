"""The README's Python examples run, in order, in one namespace (what a reader pastes works), and its
description of the catalogue (the table of paper keys, papers and entry counts, the entry ids it
names) matches the catalogue that ``linfa list`` prints."""

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


def _catalogue_by_key() -> dict[str, list[theorems.Theorem]]:
    by_key: dict[str, list[theorems.Theorem]] = {}
    for thm in theorems.catalogue():
        by_key.setdefault(thm.module, []).append(thm)
    return by_key


def test_readme_catalogue_table_matches_the_catalogue() -> None:
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z][a-z0-9_]*)` \| ([^|]+?) \| (\d+) \|", text, flags=re.M)
    table = {key: (paper, int(n)) for key, paper, n in rows}
    assert len(table) == len(rows), "a paper key is listed twice"
    by_key = _catalogue_by_key()
    assert set(table) == set(by_key), (sorted(set(table) - set(by_key)), sorted(set(by_key) - set(table)))
    for key, (paper, n) in table.items():
        assert n == len(by_key[key]), (key, n, [t.id for t in by_key[key]])
        assert {t.paper for t in by_key[key]} == {paper}, key
    total = re.search(r"^\| \| all \| (\d+) \|", text, flags=re.M)
    assert total and int(total.group(1)) == sum(len(v) for v in by_key.values())


def test_readme_names_only_catalogue_entries() -> None:
    # every `key.claim` the README writes with a catalogue paper key is an entry of the catalogue
    text = README.read_text(encoding="utf-8")
    by_key = _catalogue_by_key()
    ids = {t.id for entries in by_key.values() for t in entries}
    named = {f"{key}.{claim}" for key, claim in re.findall(r"(?<![\w.])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)", text)
             if key in by_key}
    assert named and named <= ids, sorted(named - ids)
