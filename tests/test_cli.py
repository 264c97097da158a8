"""The ``linfa`` command line: check, list, replay, JSON schema, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

from linfa import theorems
from linfa.cli import JSON_SCHEMA, build_parser, main
from linfa.theorems import Instance, Theorem, Verdict

FAST_IDS = ["lillicrap2016.alignment_condition", "lillicrap2016.fa_conservation_sgd"]


def _draw_fake(rng: np.random.Generator, size: int) -> Instance:
    return Instance({"x": rng.standard_normal((size, 3))}, {}, size=size)


def _check_fake(inst: Instance) -> Verdict:
    # a deliberately false "theorem": every standard normal vector has a positive first entry
    x = inst.arrays["x"][:, 0]
    return Verdict(x > 0, x, {"x0": x})


@pytest.fixture
def broken() -> object:
    thm = theorems.register(Theorem(
        id="fake.always_positive", paper="nobody", title="a false theorem", statement=r"x_0 > 0",
        reference="this test", hypotheses=("x ~ N(0, I)",), kind="theorem", tolerance=0.0,
        tolerance_reason="none", draw=_draw_fake, check_batch=_check_fake, instances=16, group_size=8,
    ))
    yield thm
    theorems.unregister(thm.id)


def test_check_passes_and_writes_valid_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    code = main(["check", *FAST_IDS, "--instances", "8", "--seed", "3", "--json", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    header = text.splitlines()[0].split()
    assert header[:5] == ["id", "paper", "kind", "instances", "holds"]
    for id_ in FAST_IDS:
        assert id_ in text
    doc = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    jsonschema.validate(doc, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["passed"] and doc["seed"] == 3 and [r["id"] for r in doc["results"]] == FAST_IDS
    for r in doc["results"]:
        assert r["instances"] == 8 and r["holding"] == 8 and r["worst_margin"] >= 0


def test_broken_theorem_fails_with_exit_code_1(broken, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    code = main(["check", "fake.always_positive", FAST_IDS[0], "--json", str(out), "--quiet", "--no-derivations"])
    text = capsys.readouterr().out
    assert code == 1
    assert "FAILED fake.always_positive" in text
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)
    fake, ok = doc["results"]
    assert not doc["passed"] and not fake["passed"] and ok["passed"]
    assert 0 < fake["holding"] < fake["instances"] == 16
    assert fake["worst_margin"] < 0 and fake["failures"]
    # the reported failure replays to a failing instance
    where = fake["failures"][0]
    inst = theorems.replay(broken, where)  # type: ignore[arg-type]
    assert inst.arrays["x"][0] <= 0
    assert inst.arrays["x"][0] == pytest.approx(where["margin"])


def test_check_that_raises_is_reported(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def explode(inst: Instance) -> Verdict:
        raise RuntimeError("boom")

    thm = theorems.register(Theorem(
        id="fake.explodes", paper="nobody", title="t", statement="s", reference="r", hypotheses=(),
        kind="empirical", fraction=0.5, tolerance=0.0, tolerance_reason="none", draw=_draw_fake,
        check_batch=explode,
    ))
    try:
        assert main(["check", "fake.explodes", "--quiet", "--no-derivations"]) == 1
    finally:
        theorems.unregister(thm.id)
    out = capsys.readouterr().out
    assert "ERROR" in out and "RuntimeError: boom" in out


def test_unknown_id_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["check", "nosuch.claim", "--quiet"]) == 2
    assert "no catalogue entry 'nosuch.claim'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check", "--instances", "0"])
    assert exc.value.code == 2


def test_list_shows_every_entry(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["list", "-v"]) == 0
    out = capsys.readouterr().out
    for thm in theorems.catalogue():
        assert thm.id in out
    assert "statement:" in out and "tolerance:" in out


def test_paper_key_selects_entries(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["list", "lillicrap2016"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(line.startswith("lillicrap2016.") for line in lines)


def test_subcommands_are_extensible() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"check", "list", "replay"} <= set(sub.choices)  # type: ignore[attr-defined]


def test_python_dash_m_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run([sys.executable, "-m", "linfa", "check", FAST_IDS[0], "--instances", "4", "--quiet",
                           "--no-derivations"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "1/1 claims hold" in proc.stdout


def test_replay_catalogue_instance(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    thm = theorems.get(FAST_IDS[0])
    inst = theorems.replay(thm, {"entropy": 0, "spawn_key": [int(k) for k in theorems.group_seed(thm.id, 0, 0)
                                                              .spawn_key], "group": 0, "index": 2})
    path = inst.save(tmp_path / "inst.npz")
    assert main(["replay", path]) == 0
    assert "holds=True" in capsys.readouterr().out


def test_list_json_describes_every_entry(capsys):
    import json as _json

    from linfa import cli, theorems

    assert cli.main(["list", "--json"]) == 0
    entries = _json.loads(capsys.readouterr().out)
    assert [e["id"] for e in entries] == [t.id for t in theorems.catalogue()]
    for e in entries:
        assert e["kind"] in {"theorem", "empirical", "existential"} and e["statement"] and e["reference"]


def test_check_marks_derivations_proved_only_at_stated_sizes(capsys):
    from linfa import cli

    assert cli.main(["check", "kolen_pollack.mismatch_decay", "saxe2014.mode_dynamics", "--instances", "4",
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.startswith(("kolen", "saxe"))}
    assert rows["kolen_pollack.mismatch_decay"] == "verified"  # dimension-free proof
    assert rows["saxe2014.mode_dynamics"] == "sizes*"  # "checked at sizes*": not a proof for every size
    assert "at sizes*" in out and "verified*" not in out
    assert "    saxe_modes (logistic): some steps exact only at" in out
