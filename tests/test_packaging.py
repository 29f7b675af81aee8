"""The vcdext distribution alone ships no local cell: no HTTP server, no demo users.

(Checked by hand as well: `pip wheel --no-deps .` then `pip install` of that wheel into an
empty venv gives a `vcdext` without the `cell` and `dev` commands and no `vcdext_cell`.)
"""

import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from vcdext import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_core_distribution_packages_only_vcdext():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    where = config["tool"]["setuptools"]["packages"]["find"]["where"]
    packages = find_packages(where=str(ROOT / where[0]))
    assert packages and all(p == "vcdext" or p.startswith("vcdext.") for p in packages)
    assert not any("cell" in p for p in packages)
    assert "vcdext.commands" not in config["project"].get("entry-points", {})


def test_without_vcdext_cell_the_cli_has_no_cell_or_dev_command(monkeypatch, capsys):
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert " run " in help_text
    assert " dev " not in help_text and " cell " not in help_text


def test_with_vcdext_cell_installed_the_cli_has_both(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert " dev " in help_text and " cell " in help_text
