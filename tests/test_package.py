"""Package-level promises: a light import, a curated public API."""

from __future__ import annotations

import subprocess
import sys

import linfa


def test_import_linfa_does_not_load_heavy_optional_modules():
    code = (
        "import sys, linfa\n"
        "heavy = [m for m in ('sympy', 'matplotlib', 'hypothesis', 'dask') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_is_curated_and_importable():
    for name in linfa.__all__:
        assert getattr(linfa, name) is not None, name
    assert len(set(linfa.__all__)) == len(linfa.__all__)
