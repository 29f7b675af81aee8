"""The import layers (pyproject.toml, [tool.importlinter]) hold, and the check bites.

Each trial copies the core into a temporary directory, plants one bad import there, and runs
import-linter on the copy with the project's own contracts; the repository is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, core: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter from ``root`` (its pyproject.toml) with ``core`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(core)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A throwaway copy of core/vcdext beside the project's pyproject.toml."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        REPO / "core" / "vcdext",
        tmp_path / "core" / "vcdext",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def plant(copy: Path, module: str, line: str) -> None:
    path = copy / "core" / "vcdext" / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract():
    result = lint_imports(REPO, REPO / "core")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_unchanged_copy_passes(copy):
    result = lint_imports(copy, copy / "core")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        # the upward imports that existed before the composition root
        ("hookspecs.py", "from .app import Runtime", "vcdext.hookspecs -> vcdext.app"),
        ("transport/amqp.py", "from .. import app", "vcdext.transport.amqp -> vcdext.app"),
        # dispatch must not know the transport; the bottom layer must not know dispatch
        ("dispatch.py", "from .transport import amqp", "vcdext.dispatch -> vcdext.transport"),
        ("settings.py", "from . import dispatch", "vcdext.settings -> vcdext.dispatch"),
        # a lazy import inside a function counts too
        ("vcd/client.py", "def _f():\n    from .. import app", "vcdext.vcd.client -> vcdext.app"),
    ],
)
def test_a_lower_layer_importing_an_upper_one_fails(copy, module, line, expected):
    plant(copy, module, line)
    result = lint_imports(copy, copy / "core")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert expected in result.stdout


def test_a_module_in_no_layer_fails(copy):
    (copy / "core" / "vcdext" / "stray.py").write_text("X = 1\n")
    result = lint_imports(copy, copy / "core")
    assert result.returncode != 0
    assert "vcdext.stray" in result.stdout + result.stderr


def test_the_core_importing_the_cell_fails(copy):
    plant(copy, "cli.py", "import vcdext_cell")
    result = lint_imports(copy, copy / "core")
    assert result.returncode != 0
    assert "vcdext.cli -> vcdext_cell" in result.stdout
