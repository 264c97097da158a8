"""The command line never shows a traceback for a user error; exit codes scripts can rely on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from linfa import cli
from linfa.cli import EXIT_CODES, main

ID = "lillicrap2016.alignment_condition"


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``linfa argv`` in process; argparse's own errors (SystemExit) count as their exit status."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    code, out, err = _exit(argv, capsys)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert out == ""  # errors go to stderr
    for w in words:
        assert w in err, (w, err)
    return err


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any computation an internal error, to show that a bad path is refused before computing."""
    from linfa import reproduce, theorems

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("computed before checking the arguments")

    monkeypatch.setattr(theorems, "run", boom)
    monkeypatch.setattr(reproduce, "reproduce", boom)


def test_unwritable_json_path_is_refused_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        no_compute: None) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _usage_error(["check", ID, "--quiet", "--json", str(blocker / "r.json")], capsys, "--json",
                 "a-file is a file, not a directory")
    _usage_error(["check", ID, "--quiet", "--json", str(tmp_path)], capsys, "is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing left behind


@pytest.mark.parametrize("option", ["--json", "--out"])
def test_check_json_and_sweep_out_refuse_a_missing_directory_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   no_compute: None, option: str) -> None:
    command = ["check", ID, "--quiet"] if option == "--json" else ["sweep", ID, "-n", "4", "--no-progress"]
    blocker = tmp_path / "afile"
    blocker.write_text("")
    missing = tmp_path / "no" / "such" / "x.out"
    err = _usage_error([*command, option, str(missing)], capsys, f"the directory {missing.parent} does not exist")
    assert "is a file" not in err
    err = _usage_error([*command, option, str(blocker / "s.out")], capsys, f"{blocker} is a file, not a directory")
    assert "does not exist" not in err
    err = _usage_error([*command, option, str(blocker / "deeper" / "s.out")], capsys,
                       f"{blocker} is a file, not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no directory created, nothing left behind


@pytest.mark.parametrize("command", [["check", ID], ["sweep", ID, "-n", "4"]])
@pytest.mark.parametrize("workers", ["-1", "0", "two", "1.5"])
def test_workers_must_be_positive_for_check_and_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      command: list[str], workers: str) -> None:
    out = tmp_path / "r.sqlite"
    argv = [*command, "--workers", workers] + (["--out", str(out)] if command[0] == "sweep" else [])
    _usage_error(argv, capsys, "--workers", "positive integer")
    assert not out.exists()


@pytest.mark.parametrize("address, words", [("garbage", ("malformed", "garbage")),
                                            ("foo://host:1", ("malformed", "unknown address scheme")),
                                            ("tcp://127.0.0.1:1", ("cannot connect", "127.0.0.1:1"))])
def test_bad_scheduler_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str,
                                         words: tuple[str, ...]) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "r.sqlite"
    base = ["--scheduler", address, "--cluster-timeout", "1"]
    _usage_error(["check", ID, "--quiet", *base], capsys, "scheduler", *words)
    _usage_error(["sweep", ID, "-n", "4", "--out", str(out), "--no-progress", *base], capsys, "scheduler", *words)
    assert not out.exists()  # the results file is not created for a sweep that cannot run


def test_reproduce_checks_seed_and_output_before_computing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           no_compute: None) -> None:
    _usage_error(["reproduce", "saxe_modes", "--seed", "-1"], capsys, "--seed", "non-negative")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _usage_error(["reproduce", "saxe_modes", "--out", str(blocker / "figs")], capsys, "--out", "cannot write")
    _usage_error(["reproduce", "no_such_figure", "--out", str(tmp_path)], capsys, "no_such_figure", "unknown figure")


def test_sweep_arguments_are_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r.sqlite")
    for bad in (["-n", "-3"], ["-n", "4", "--seed", "-1"], ["-n", "4", "--chunk-size", "0"],
                ["-n", "4", "--cluster-timeout", "nan"]):
        _usage_error(["sweep", ID, "--out", out, *bad], capsys)
    assert not Path(out).exists()


def test_internal_error_is_status_3_with_traceback(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from linfa import theorems

    def broken(ids: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(theorems, "catalogue", broken)
    code, out, err = _exit(["list"], capsys)
    assert code == 3 and out == ""
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err and "internal error" in err


def test_exit_codes_are_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["check", "--help"], ["sweep", "--help"], ["replay", "--help"]):
        code, out, _ = _exit(argv, capsys)
        assert code == 0
        for status in EXIT_CODES:
            assert f"\n  {status:<4} " in out, (argv, status)
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    for status in EXIT_CODES:
        assert f"| {status} |" in text
    assert cli.main is main


def test_output_closed_early_ends_quietly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "linfa", "list", "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before anything is written, like `| head -0`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == ""
    assert proc.returncode == 141


PLUGIN_SOURCES = {
    "fu_plugin_raises": "x = 1 / 0\n",
    "fu_plugin_syntax": "def broken(:\n    pass\n",
    # registering a second rule under a built-in name raises inside the plug-in's function
    "fu_plugin_register": ("import linfa\n\n\ndef register():\n"
                           "    class Clash(linfa.BP):\n        name = linfa.BP.name\n\n"
                           "    linfa.rules.register(Clash)\n"),
}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("fu_plugin_raises", ["'fu_plugin_raises'", "ZeroDivisionError", "division by zero"]),
        ("fu_plugin_syntax", ["'fu_plugin_syntax'", "SyntaxError"]),
        ("fu_plugin_register:register",
         ["'fu_plugin_register:register'", "calling register() failed", "ValueError", "already registered"]),
        ("fu_plugin_register:nothing", ["'fu_plugin_register:nothing'", "AttributeError"]),
        ("fu_plugin_missing_module", ["'fu_plugin_missing_module'", "ModuleNotFoundError"]),
    ],
)
def test_plugin_that_raises_is_one_line_status_2(spec: str, words: list[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for name, source in PLUGIN_SOURCES.items():
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    err = _usage_error(["--plugin", spec, "list"], capsys, "--plugin", *words)
    assert err.count("\n") == 1, err  # one line
    from linfa import plugins

    assert spec not in plugins.loaded()
