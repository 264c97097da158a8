"""The numbered facts: one source (linfa.facts), the design notes in the repository, valid citations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linfa import facts, theorems
from linfa.cli import main

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs/design.md"
NUMBERS = {f.number for f in facts.FACTS}

# "fact 3", "Fact 5 (...)", "facts 3, 5, 6, 8", "facts 3 and 5"
CITATION = re.compile(r"\bfacts?\s+(\d+(?:\s*(?:,|and|&)\s*\d+)*)", re.IGNORECASE)
# any mention of a file named like the design notes, with the path in front of it
DESIGN_MENTION = re.compile(r"([\w./-]*)design\.md", re.IGNORECASE)


def _sources() -> list[Path]:
    out = [ROOT / "README.md", DESIGN]
    for folder, pattern in (("linfa", "*.py"), ("proofs", "*.py"), ("tests", "*.py"), ("benchmarks", "*.py"),
                            ("notebooks", "*.ipynb")):
        out += sorted((ROOT / folder).rglob(pattern))
    return out


def _design_section(text: str) -> str:
    start = text.index("\n## The facts\n") + 1
    end = text.find("\n## ", start)
    return text[start:] if end < 0 else text[start:end + 1]


def test_facts_are_numbered_one_to_n() -> None:
    assert [f.number for f in facts.FACTS] == list(range(1, len(facts.FACTS) + 1))
    assert len(facts.FACTS) >= 9
    assert facts.get(9).number == 9
    with pytest.raises(KeyError, match="number"):
        facts.get(len(facts.FACTS) + 1)


def test_design_notes_fact_section_is_generated_from_linfa_facts() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    assert text.count("\n## The facts\n") == 1
    section = _design_section(text)
    expected = facts.markdown() + "\n"
    assert section == expected, (
        "docs/design.md's section 'The facts' differs from linfa.facts; replace it with the output of "
        "`python -m linfa.facts` (edit the facts in linfa/facts.py only)"
    )
    # every fact is a heading there, and no "### Fact" heading lives outside the section
    assert re.findall(r"^### Fact (\d+)\.", text, re.MULTILINE) == [str(n) for n in sorted(NUMBERS)]


def test_every_cited_fact_exists() -> None:
    checked = 0
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        for m in CITATION.finditer(text):
            for n in re.findall(r"\d+", m.group(1)):
                checked += 1
                assert int(n) in NUMBERS, f"{path.relative_to(ROOT)}: cites fact {n}, not in docs/design.md"
    assert checked > 40  # the docstrings, references, proofs and notebooks do cite facts


def test_design_notes_are_referred_to_inside_the_repository() -> None:
    for path in _sources():
        for m in DESIGN_MENTION.finditer(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT)}: {m.group(0)!r}"
            assert m.group(0) == "docs/design.md" or m.group(0).endswith("/docs/design.md"), where
    assert DESIGN.is_file()


def test_catalogue_facts_exist_and_agree_with_the_references() -> None:
    entries = theorems.catalogue()
    assert {t.fact for t in entries if t.fact is not None} <= NUMBERS
    for t in entries:
        cited = {int(n) for m in CITATION.finditer(t.reference) for n in re.findall(r"\d+", m.group(1))}
        if cited:
            assert cited == {t.fact}, f"{t.id}: reference cites facts {cited}, fact field is {t.fact}"
    # facts 1..8 each have an entry (fact 9, the teacher–student limit, has its own module)
    assert set(range(1, 9)) <= {t.fact for t in entries}


def test_theorem_rejects_an_unknown_fact() -> None:
    entry = theorems.get("kolen_pollack.mismatch_decay")
    fields = {k: getattr(entry, k) for k in entry.__dataclass_fields__}
    with pytest.raises(ValueError, match="fact"):
        theorems.Theorem(**{**fields, "fact": len(facts.FACTS) + 1})


def test_list_verbose_shows_the_fact_and_its_text(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["list", "-v", "kolen_pollack.mismatch_decay", "nokland2016"]) == 0
    out = capsys.readouterr().out
    fact = facts.get(8)
    assert f"fact 8 (docs/design.md): {fact.title}" in out
    words = " ".join(out.split())
    assert "d/dt (W_k − B_k^T) = −λ (W_k − B_k^T)" in words  # the text, backticks dropped
    assert out.count("(docs/design.md)") == 1  # the Nøkland entry checks no numbered fact
    assert main(["list", "--json", "kolen_pollack"]) == 0
    assert '"fact": 8' in capsys.readouterr().out


def _module_table(text: str) -> set[str]:
    """The names in the first column of the design notes' module table (section "Layout")."""
    start = text.index("\n## Layout\n")
    section = text[start:text.index("\n## ", start + 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_design_notes_module_table_lists_every_public_module() -> None:
    import pkgutil

    import linfa

    public = {m.name for m in pkgutil.iter_modules(linfa.__path__) if not m.name.startswith("_")}
    assert {"instances", "plugins", "teacher_student", "dynamics", "rules"} <= public  # the walk sees them
    listed = _module_table(DESIGN.read_text(encoding="utf-8"))
    assert public - listed == set(), f"docs/design.md's module table lacks {sorted(public - listed)}"
    assert listed - public == set(), f"docs/design.md's module table names no module {sorted(listed - public)}"
    text = " ".join(DESIGN.read_text(encoding="utf-8").split())
    for concept in ("FeedbackLayout", "linfa --plugin", "linfa.rules", "linfa.plugins.loaded()", "--trust"):
        assert concept in text, f"docs/design.md does not describe {concept}"
