"""The replay commands linfa prints for a plug-in's claim load the plug-in: run as printed, they work."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = textwrap.dedent('''
    import numpy as np
    import linfa
    from linfa import theorems

    def _draw(rng, size):
        return linfa.Instance({"x": rng.standard_normal((size, 2))}, {}, size=size)

    def _check(inst):
        margin = -1.0 - np.abs(inst.arrays["x"][:, 0])  # never holds
        return theorems.Verdict(margin >= 0, margin, {})

    CLAIM = theorems.Theorem(
        id="hintplug.never", paper="a test", title="never holds", statement="0 > 1", reference="a test",
        hypotheses=(), kind="theorem", tolerance=0.0, tolerance_reason="exact", draw=_draw,
        check_batch=_check, group_size=2, instances=2, fast_instances=2)

    def register_claims():
        theorems.register(CLAIM, replace=True)

    def never(instance):
        return False

    def draw_one(rng):
        return linfa.Instance({"x": rng.standard_normal(2)}, {})
''')


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _printed(text: str, prefix: str) -> list[str]:
    """The words of the first printed command starting with ``prefix``, ``linfa`` run as ``python -m linfa``."""
    start = text.index(prefix)
    line = text[start:].splitlines()[0].rstrip(")")
    words = shlex.split(line)
    assert "--plugin" in words, line
    return [sys.executable, "-m", *words] if words[0] == "linfa" else words


def test_printed_check_sweep_and_conjecture_replays_load_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "hintplug.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    plug = ["--plugin", "hintplug:register_claims"]
    proc = _run([sys.executable, "-m", "linfa", *plug, "check", "hintplug.never", "--no-derivations"], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    replay = _run(_printed(proc.stdout, "linfa --plugin"), env, tmp_path)
    assert replay.returncode == 1, replay.stderr  # the claim fails again; without the plug-in: 2, unknown id
    assert "FAILED hintplug.never" in replay.stdout

    proc = _run([sys.executable, "-m", "linfa", *plug, "sweep", "hintplug.never", "-n", "2", "--out",
                 str(tmp_path / "s.sqlite"), "--no-progress"], env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    replay = _run(_printed(proc.stdout, "linfa --plugin"), env, tmp_path)
    assert replay.returncode == 1, replay.stderr
    assert "hintplug" not in replay.stderr

    script = textwrap.dedent(f'''
        import hintplug
        from linfa import plugins
        from linfa.testing import conjecture, instances
        plugins.load("hintplug:register_claims")
        res = conjecture(hintplug.never, strategy=instances(widths=(1, 1)), max_examples=5, outdir={str(tmp_path)!r})
        print(res.command)
        import linfa.sweep as s
        print(s.conjecture.Conjecture(hintplug.never, hintplug.draw_one).replay_command(0, 1))
    ''')
    proc = _run([sys.executable, "-c", script], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    conj, target = proc.stdout.strip().splitlines()
    words = shlex.split(conj)
    assert words[words.index("--plugin") + 1] == "hintplug:register_claims" and words.index("replay") > 2
    code = shlex.split(target)[-1]  # python -c CODE: loads the plug-ins before it rebuilds the target
    assert code.index("load_all(['hintplug:register_claims'])") < code.index("import linfa.sweep")
    replay = _run([sys.executable, "-c", code], env, tmp_path)
    assert replay.returncode == 0 and "fail" in replay.stdout, replay.stderr
