"""The tree is ruff-clean (lint and format, settings in pyproject.toml), as the pre-commit hooks keep it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_tree_is_ruff_clean(command):
    proc = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"`ruff {' '.join(command)} .` found:\n{proc.stdout[-3000:]}{proc.stderr[-1000:]}"
