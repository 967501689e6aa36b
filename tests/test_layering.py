"""Import boundaries: the core stays light, widgets stay out of it."""

import subprocess
import sys

import pytest

CORE_MODULES = ["workbench", "workbench.qtyping", "workbench.affine", "workbench.metrics"]


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_imports_neither_tensorflow_nor_widgets(module):
    loaded = _imported_after(f"import {module}")
    assert not {"tensorflow", "keras", "ipywidgets", "plotly"} & loaded


def test_cli_help_does_not_import_tensorflow():
    loaded = _imported_after("from workbench.cli import build_parser; build_parser()")
    assert "tensorflow" not in loaded


def test_version_and_help():
    for flag in ("--version", "--help"):
        out = subprocess.run(
            [sys.executable, "-m", "workbench.cli", flag], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert "workbench" in out.stdout
