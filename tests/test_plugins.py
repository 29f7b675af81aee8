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


# --- every hook is a pluggy call: wrappers run around each plugin's implementation ----------


def lifecycle_plugin(name, calls, *, fail=False):
    """A plugin implementing all three hooks, recording (hook, plugin) in ``calls``."""
    from vcdext import hookimpl

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            calls.append(("vcdext_register", name, registrar.plugin))
            registrar.service(name=name, namespace=f"io.example.{name}")

        @hookimpl
        def vcdext_runtime_started(self, runtime):
            calls.append(("vcdext_runtime_started", name))

        @hookimpl
        def vcdext_runtime_stopping(self, runtime):
            calls.append(("vcdext_runtime_stopping", name))
            if fail:
                raise RuntimeError(f"{name} cleanup failed")

    return Plugin()


def wrapper_plugin(calls, style):
    """Wraps every hook, new style (wrapper=True) or old style (hookwrapper=True)."""
    from vcdext import hookimpl

    def around(hook, kwargs):
        subject = kwargs.get("registrar")
        calls.append((hook, "before", subject.plugin if subject else None))
        if style == "wrapper":
            try:
                result = yield
            except Exception as exc:
                calls.append((hook, "saw", str(exc)))
                raise
            calls.append((hook, "after"))
            return result
        outcome = yield
        if outcome.exception is not None:
            calls.append((hook, "saw", str(outcome.exception)))
        else:
            calls.append((hook, "after"))
        return None

    options = {"wrapper": True} if style == "wrapper" else {"hookwrapper": True}

    class Wrapper:
        @hookimpl(**options)
        def vcdext_register(self, registrar):
            return (yield from around("vcdext_register", {"registrar": registrar}))

        @hookimpl(**options)
        def vcdext_runtime_started(self, runtime):
            return (yield from around("vcdext_runtime_started", {}))

        @hookimpl(**options)
        def vcdext_runtime_stopping(self, runtime):
            return (yield from around("vcdext_runtime_stopping", {}))

    return Wrapper()


@pytest.mark.parametrize("style", ["wrapper", "hookwrapper"])
def test_a_wrapper_of_each_hook_runs_around_every_plugins_implementation(style):
    from vcdext.testing import make_runtime

    calls = []
    runtime = make_runtime(
        wrap=wrapper_plugin(calls, style),
        a=lifecycle_plugin("a", calls),
        b=lifecycle_plugin("b", calls),
    )
    runtime.start()
    runtime.stop()
    reg, start, stop = "vcdext_register", "vcdext_runtime_started", "vcdext_runtime_stopping"
    assert calls == [
        # each plugin still gets its own registrar, and the wrapper sees which
        (reg, "before", "a"),
        (reg, "a", "a"),
        (reg, "after"),
        (reg, "before", "b"),
        (reg, "b", "b"),
        (reg, "after"),
        (start, "before", None),
        (start, "a"),
        (start, "after"),
        (start, "before", None),
        (start, "b"),
        (start, "after"),
        # torn down in reverse
        (stop, "before", None),
        (stop, "b"),
        (stop, "after"),
        (stop, "before", None),
        (stop, "a"),
        (stop, "after"),
    ]
    assert set(runtime.registry.services) == {"a", "b"}


def test_a_failing_stop_hook_is_seen_by_the_wrapper_logged_and_the_others_still_run(caplog):
    from vcdext.testing import make_runtime

    calls = []
    runtime = make_runtime(
        wrap=wrapper_plugin(calls, "wrapper"),
        a=lifecycle_plugin("a", calls),
        b=lifecycle_plugin("b", calls, fail=True),
    )
    runtime.start()
    calls.clear()
    with caplog.at_level(logging.ERROR):
        runtime.stop()
    stop = "vcdext_runtime_stopping"
    assert calls == [
        (stop, "before", None),
        (stop, "b"),
        (stop, "saw", "b cleanup failed"),
        (stop, "before", None),
        (stop, "a"),
        (stop, "after"),
    ]
    assert "plugin 'b' failed in vcdext_runtime_stopping" in caplog.text


def test_a_failing_start_hook_names_the_plugin_and_the_stop_hooks_run():
    from vcdext import hookimpl
    from vcdext.testing import make_runtime

    calls = []

    class Broken:
        @hookimpl
        def vcdext_runtime_started(self, runtime):
            raise OSError("no database")

    runtime = make_runtime(a=lifecycle_plugin("a", calls), broken=Broken())
    with pytest.raises(PluginError, match="'broken'.*vcdext_runtime_started.*no database"):
        runtime.start()
    assert calls[-2:] == [("vcdext_runtime_started", "a"), ("vcdext_runtime_stopping", "a")]
    runtime.stop()  # already stopped: nothing runs twice
    assert calls[-1] == ("vcdext_runtime_stopping", "a")


def test_tryfirst_and_trylast_order_the_per_plugin_calls():
    from vcdext import hookimpl
    from vcdext.testing import make_runtime

    calls = []

    class Late:
        @hookimpl(trylast=True)
        def vcdext_runtime_started(self, runtime):
            calls.append("late")

    class Early:
        @hookimpl(tryfirst=True)
        def vcdext_runtime_started(self, runtime):
            calls.append("early")

    class Plain:
        @hookimpl
        def vcdext_runtime_started(self, runtime):
            calls.append("plain")

    make_runtime(late=Late(), plain=Plain(), early=Early()).start()
    assert calls == ["early", "plain", "late"]
