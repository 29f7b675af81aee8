"""Loading plugins from entry points: enabled lists, failures, required plugins."""

import logging
from importlib.metadata import EntryPoint

import pytest

from vcdext import ConfigError, PluginError, create_runtime
from vcdext.settings import load_settings


@pytest.fixture
def installed(monkeypatch):
    """Pretend these distributions publish plugins under the vcdext group."""
    eps = [
        EntryPoint("good", "tests.fake_plugins.good", "vcdext"),
        EntryPoint("broken", "tests.fake_plugins.broken", "vcdext"),
        EntryPoint("misspelled", "tests.fake_plugins.misspelled", "vcdext"),
    ]
    monkeypatch.setattr("vcdext.plugins.entry_points", lambda group: eps)


def settings(tmp_path, text=""):
    path = tmp_path / "vcdext.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_every_installed_plugin_loads_by_default_and_failures_are_named(
    installed, tmp_path, caplog
):
    with caplog.at_level(logging.ERROR):
        runtime = create_runtime(settings(tmp_path))
    assert runtime.plugin_names == ["good"]
    failed = {f.name: f.error for f in runtime.failures}
    assert set(failed) == {"broken", "misspelled"}
    assert "needs a library" in failed["broken"]
    assert "vcdext_registr" in failed["misspelled"]
    assert "'broken'" in caplog.text and "skipped" in caplog.text
    assert "good" in runtime.registry.services


def test_enabled_limits_what_loads(installed, tmp_path):
    runtime = create_runtime(settings(tmp_path, '[plugins]\nenabled = ["good"]\n'))
    assert runtime.plugin_names == ["good"]
    assert runtime.failures == []


def test_unknown_enabled_name_is_a_config_error(installed, tmp_path):
    with pytest.raises(ConfigError) as info:
        create_runtime(settings(tmp_path, '[plugins]\nenabled = ["good", "nope"]\n'))
    assert info.value.key == "plugins.enabled"
    assert "'nope'" in str(info.value) and "vcdext.toml" in str(info.value)


def test_required_plugin_that_fails_stops_start_up(installed, tmp_path):
    with pytest.raises(PluginError, match="'broken'.*required"):
        create_runtime(settings(tmp_path, '[plugins]\nrequired = ["broken"]\n'))


def test_plugin_modules_load_by_import_path(tmp_path):
    runtime = create_runtime(
        settings(
            tmp_path,
            '[plugins]\nenabled = []\nmodules = ["tests.fake_plugins.good",'
            ' "snail=tests.fake_plugins.slow"]\n',
        )
    )
    assert runtime.plugin_names == ["good", "snail"]
    assert set(runtime.registry.services) == {"good", "snail"}


def test_plugin_module_that_fails_is_skipped(tmp_path):
    runtime = create_runtime(
        settings(tmp_path, '[plugins]\nenabled = []\nmodules = ["tests.fake_plugins.broken"]\n')
    )
    assert [f.name for f in runtime.failures] == ["broken"]


def test_lifecycle_hooks_run_and_a_failing_stop_hook_is_contained(caplog):
    from vcdext import hookimpl
    from vcdext.testing import make_runtime

    calls = []

    class Observer:
        @hookimpl
        def vcdext_runtime_started(self, runtime):
            calls.append("started")

        @hookimpl
        def vcdext_runtime_stopping(self, runtime):
            calls.append("stopping")
            raise RuntimeError("cleanup failed")

    runtime = make_runtime(observer=Observer())
    runtime.start()
    runtime.start()
    with caplog.at_level(logging.ERROR):
        runtime.stop()
    assert calls == ["started", "stopping"]
    assert "'observer'" in caplog.text


def test_importing_vcdext_loads_no_plugin_and_no_transport():
    import subprocess
    import sys

    code = (
        "import sys, vcdext; assert 'kombu' not in sys.modules, 'kombu imported';"
        "assert 'vcdext_hello' not in sys.modules; print(vcdext.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0"
