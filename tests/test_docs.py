"""Meta-tests: the documentation names every hook (with its signature) and every setting."""

import inspect
import re
from pathlib import Path

from vcdext import hookspecs
from vcdext.settings import all_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def hook_specs():
    return [(name, fn) for name, fn in vars(hookspecs).items() if name.startswith("vcdext_")]


def test_there_are_hooks():
    assert len(hook_specs()) >= 3


def test_every_hook_is_documented_with_its_signature():
    text = (DOCS / "plugin_hooks.md").read_text()
    for name, fn in hook_specs():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"### `{name}({params})`" in text, f"{name}({params}) missing from plugin_hooks.md"


def test_no_documented_hook_is_gone():
    text = (DOCS / "plugin_hooks.md").read_text()
    documented = set(re.findall(r"### `(vcdext_\w+)\(", text))
    assert documented == {name for name, _ in hook_specs()}


def test_every_setting_is_documented_with_its_environment_variable():
    text = (DOCS / "configuration.md").read_text()
    for info in all_settings():
        row = next(
            (line for line in text.splitlines() if line.startswith(f"| `{info.key}` |")), None
        )
        assert row is not None, f"{info.key} missing from configuration.md"
        assert f"`{info.env}`" in row


def test_readme_opens_with_the_two_commands():
    head = (DOCS.parent / "README.md").read_text().split("\n## ", 1)[0]
    assert "make run" in head
    assert "make test" in head


def test_ci_runs_the_readme_test_command():
    assert "make test" in (DOCS.parent / ".ci" / "run").read_text()


def _modules(package_dir: Path, name: str) -> set[str]:
    return {f"{name}/{p.relative_to(package_dir).as_posix()}" for p in package_dir.rglob("*.py")}


def test_architecture_names_every_module_and_no_other():
    root = DOCS.parent
    actual = _modules(root / "core" / "vcdext", "vcdext") | _modules(
        root / "plugins" / "cell" / "vcdext_cell", "vcdext_cell"
    )
    text = (DOCS / "architecture.md").read_text()
    documented = set(re.findall(r"^\| `((?:vcdext|vcdext_cell)/[\w/]+\.py)` \|", text, re.M))
    assert documented - actual == set(), "architecture.md names modules that do not exist"
    assert actual - documented == set(), "modules missing from docs/architecture.md"
