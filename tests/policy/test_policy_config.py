"""The policy plugin refuses a malformed [plugins.policy] table when it loads (its decisions
are tested end to end in tests/cell/test_cell_notifications.py and tests/test_dev_policy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vcdext_policy.plugin as policy
from vcdext import PluginError
from vcdext.settings import load_settings
from vcdext.testing import make_runtime


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('required_metadata = "cost-centre"', "required_metadata"),
        ("max_vms = { acme = -1 }", "max_vms"),
        ('max_vms = { acme = "many" }', "max_vms"),
    ],
)
def test_a_malformed_table_fails_the_plugin_at_load(tmp_path: Path, table: str, key: str) -> None:
    config = tmp_path / "vcdext.toml"
    config.write_text(f"[plugins]\nrequired = ['policy']\n[plugins.policy]\n{table}\n")
    with pytest.raises(PluginError, match=key):
        make_runtime(settings=load_settings(config), policy=policy)


def test_a_good_table_declares_the_blocking_operation(tmp_path: Path) -> None:
    config = tmp_path / "vcdext.toml"
    config.write_text('[plugins.policy]\nrequired_metadata = ["a"]\nmax_vms = { acme = 2 }\n')
    runtime = make_runtime(settings=load_settings(config), policy=policy)
    assert [b.operation for b in runtime.registry.blocking_tasks] == ["vappDeploy"]
