"""Replaying a saved instance never imports or runs code named inside the file unless the user says so."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from linfa.cli import main
from linfa.testing import Instance, UntrustedPredicateError, replay

# Names an attacker could put in a shared counterexample file. Each is harmless here but shows
# whether it ran: `this` prints the Zen of Python on import, `builtins:print` prints the instance,
# and `evil_beside` is a module written next to the file that leaves a marker file when imported.
HOSTILE = ("this:s", "builtins:print", "evil_beside:predicate")


def _hostile_file(directory: Path, ref: str) -> str:
    (directory / "evil_beside.py").write_text(textwrap.dedent("""
        import pathlib
        pathlib.Path(__file__).with_name("IMPORTED").write_text("ran")
        def predicate(instance):
            pathlib.Path(__file__).with_name("CALLED").write_text("ran")
            return True
    """))
    inst = Instance({"x": np.zeros((2, 2))}, {"predicate": ref, "t1": None, "conjecture": "innocent"})
    return inst.save(directory / "counterexample.npz")


@pytest.mark.parametrize("ref", HOSTILE)
def test_library_replay_refuses_a_recorded_predicate(tmp_path: Path, ref: str, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _hostile_file(tmp_path, ref)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # worst case: the module beside the file is importable
    module = ref.partition(":")[0]
    before = module in sys.modules
    with pytest.raises(UntrustedPredicateError) as exc:
        replay(path)
    assert (module in sys.modules) == before  # nothing imported
    assert not (tmp_path / "IMPORTED").exists() and not (tmp_path / "CALLED").exists()
    assert capsys.readouterr().out == ""  # `this` and `print` would have written to stdout
    # the message shows what the file asks for and both ways to allow it
    msg = str(exc.value)
    assert ref in msg and f"--predicate {ref}" in msg and "--trust" in msg
    assert exc.value.recorded == ref and isinstance(exc.value, ValueError)


@pytest.mark.parametrize("ref", HOSTILE)
def test_cli_replay_refuses_and_explains(tmp_path: Path, ref: str) -> None:
    path = _hostile_file(tmp_path, ref)
    # a fresh interpreter started in the file's directory (so the module beside it is importable)
    code = ("import sys; from linfa.cli import main; rc = main(sys.argv[1:]); "
            "mods = [m for m in ('this', 'evil_beside') if m in sys.modules]; "
            "print('IMPORTED-MODULES', mods, file=sys.stderr); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run([sys.executable, "-c", code, "replay", path], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "IMPORTED-MODULES []" in proc.stderr and "Traceback" not in proc.stderr
    assert f"--predicate {ref}" in proc.stderr and "--trust" in proc.stderr
    assert not (tmp_path / "IMPORTED").exists() and not (tmp_path / "CALLED").exists()


def test_naming_the_predicate_or_trusting_the_file_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _hostile_file(tmp_path, "evil_beside:predicate")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evil_beside", raising=False)
    # the user names the same predicate: it runs, without a warning
    assert main(["replay", path, "--predicate", "evil_beside:predicate"]) == 0
    assert (tmp_path / "CALLED").read_text() == "ran"
    assert "warning" not in capsys.readouterr().err
    (tmp_path / "CALLED").unlink()
    # --trust runs the recorded one, with a warning on stderr
    assert main(["replay", path, "--trust"]) == 0
    assert (tmp_path / "CALLED").exists()
    assert "warning: importing and running 'evil_beside:predicate'" in capsys.readouterr().err
    # the library's trust=True warns too
    from linfa.testing import TrustedPredicateWarning

    with pytest.warns(TrustedPredicateWarning, match="evil_beside:predicate"):
        assert replay(path, trust=True).holds


def test_a_users_own_predicate_overrides_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _hostile_file(tmp_path, "this:s")
    before = "this" in sys.modules
    outcome = replay(path, predicate=lambda inst: float(inst.arrays["x"].sum()) - 1.0)
    assert not outcome.holds and outcome.margin == -1.0
    assert main(["replay", path, "--predicate", "linfa.testing.conjectures:no_such_predicate"]) == 2
    err = capsys.readouterr().err
    assert "no attribute 'no_such_predicate'" in err and "Traceback" not in err
    assert ("this" in sys.modules) == before


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip file at all", None])
def test_damaged_or_foreign_files_are_input_errors(tmp_path: Path, content: bytes | None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.npz"
    if content is None:  # a real .npz that is not a linfa instance, and a truncated linfa instance
        np.savez(path, a=np.zeros(3))
        good = Instance({"x": np.zeros((2, 2))}, {}).save(tmp_path / "good.npz")
        (tmp_path / "cut.npz").write_bytes(Path(good).read_bytes()[:-40])
        assert main(["replay", str(tmp_path / "cut.npz")]) == 2
    else:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    assert main(["replay", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("linfa replay: error:") >= 2
    with pytest.raises(ValueError, match="path"):
        Instance.load(path)
