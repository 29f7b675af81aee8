"""Declarations: the registrar, conflicts between plugins, freezing."""

import pytest

from vcdext import DeclarationConflict, PluginError, Registrar, hookimpl, operation
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime


def ping(request):
    return "pong"


def make_plugin(name="a", namespace="io.example.a", routing_key=None, path="/api/a", extra=None):
    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.service(name=name, namespace=namespace, routing_key=routing_key)
            registrar.add_operation("GET", path, ping)
            if extra:
                extra(registrar)

    return Plugin()


def test_routing_key_defaults_to_namespace():
    runtime = make_runtime(a=make_plugin())
    assert runtime.registry.services["a"].routing_key == "io.example.a"


def test_operator_overrides_routing_key(tmp_path):
    config = tmp_path / "vcdext.toml"
    config.write_text('[plugins.a]\nrouting_key = "custom.key"\n')
    runtime = make_runtime(a=make_plugin(), settings=load_settings(config))
    assert runtime.registry.services["a"].routing_key == "custom.key"


@pytest.mark.parametrize(
    ("second", "what"),
    [
        ({"name": "b", "namespace": "io.example.b", "path": "/api/a"}, "operation GET /api/a"),
        ({"name": "b", "namespace": "io.example.a", "path": "/api/b"}, "namespace"),
        ({"name": "a", "namespace": "io.example.b", "path": "/api/b"}, "service name"),
        (
            {
                "name": "b",
                "namespace": "io.example.b",
                "path": "/api/b",
                "routing_key": "io.example.a",
            },
            "routing key",
        ),
    ],
)
def test_conflicts_are_refused_naming_both_plugins(second, what):
    with pytest.raises(DeclarationConflict) as info:
        make_runtime(first=make_plugin(), second=make_plugin(**second))
    message = str(info.value)
    assert what in message
    assert "'second'" in message and "'first'" in message


def test_parameter_names_do_not_hide_a_conflict():
    with pytest.raises(DeclarationConflict, match="GET /api/x/{b}"):
        make_runtime(
            first=make_plugin(path="/api/x/{a}"),
            second=make_plugin(name="b", namespace="io.b", path="/api/x/{b}"),
        )


def test_short_right_names_expand_to_the_full_vcd_name():
    def extra(registrar):
        assert registrar.add_right("Read", category="Example") == "{io.example.a}:Read"
        registrar.add_operation("GET", "/api/a/secret", ping, rights=["Read", "vCD Builtin"])

    runtime = make_runtime(a=make_plugin(extra=extra))
    service = runtime.registry.services["a"]
    op = next(o for o in service.operations if o.path.template == "/api/a/secret")
    assert op.rights == ("{io.example.a}:Read", "vCD Builtin")
    assert [r.full_name for r in service.rights] == ["{io.example.a}:Read"]


def test_api_filters_are_one_per_template():
    def extra(registrar):
        registrar.add_operation("POST", "/api/a", ping)
        registrar.add_operation("GET", "/api/a/{id}", ping)

    service = make_runtime(a=make_plugin(extra=extra)).registry.services["a"]
    assert service.api_filters == ("/api/a", "/api/a/[^/]+")


def test_registrar_is_closed_after_start_up():
    kept = []

    def extra(registrar):
        kept.append(registrar)

    make_runtime(a=make_plugin(extra=extra))
    with pytest.raises(PluginError, match="closed"):
        kept[0].add_operation("GET", "/api/late", ping)


@pytest.mark.parametrize(
    ("declare", "reason"),
    [
        (lambda r: r.add_operation("GET", "/api/x", ping), "registrar.service"),
        (lambda r: r.service(name="x", namespace="com.vmware.vcloud.x"), "namespace"),
        (lambda r: r.service(name="x", namespace="bad namespace"), "namespace"),
        (lambda r: r.service(name="x", namespace="io.x", priority=101), "priority"),
    ],
)
def test_invalid_declarations_name_the_plugin(declare, reason):
    class Bad:
        @hookimpl
        def vcdext_register(self, registrar):
            declare(registrar)

    with pytest.raises(PluginError, match=reason) as info:
        make_runtime(bad=Bad())
    assert info.value.plugin == "bad"


def test_plugin_bug_in_register_names_the_plugin():
    class Buggy:
        @hookimpl
        def vcdext_register(self, registrar):
            raise KeyError("oops")

    with pytest.raises(PluginError, match="'buggy'.*KeyError"):
        make_runtime(buggy=Buggy())


def test_operation_decorator_validates_at_import_time():
    with pytest.raises(ValueError, match="unknown HTTP method"):
        operation("FETCH", "/api/x")
    with pytest.raises(ValueError, match="must start with /api/"):
        operation("GET", "/x")
    with pytest.raises(ValueError, match="not a string"):
        operation("GET", "/api/x", rights="Read")  # type: ignore[arg-type]


def test_decorator_returns_the_function_unchanged():
    def f(request):
        return "x"

    assert operation("GET", "/api/x")(f) is f


def test_plugins_without_service_are_allowed():
    class Observer:
        @hookimpl
        def vcdext_runtime_started(self, runtime):
            pass

    runtime = make_runtime(observer=Observer(), settings=Settings())
    assert runtime.registry.services == {}
