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


def test_lazy_subpackages_load_on_attribute_access():
    code = (
        "import sys, linfa\n"
        "assert 'sympy' not in sys.modules\n"
        "d = linfa.symbolic.derivations\n"
        "assert 'sympy' in sys.modules and linfa.symbolic is sys.modules['linfa.symbolic']\n"
        "assert callable(linfa.theorems.catalogue) and callable(linfa.plot.learning_curves)\n"
        "try:\n"
        "    linfa.nonexistent\n"
        "except AttributeError as exc:\n"
        "    assert 'nonexistent' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
