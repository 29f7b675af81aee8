"""Declarations: the registrar, conflicts between plugins, freezing."""

import pytest

from vcdext import DeclarationConflict, PluginError, Registrar, create_runtime, hookimpl, operation
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime


def ping(request, **path_params):
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
        registrar.add_operation("GET", "/api/a/secret", ping, rights=["Read", "vApp: View"])

    runtime = make_runtime(a=make_plugin(extra=extra))
    service = runtime.registry.services["a"]
    op = next(o for o in service.operations if o.path.template == "/api/a/secret")
    assert op.rights == ("{io.example.a}:Read", "vApp: View")
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


# --- declarations that can never work fail at load -------------------------------------------


def plugin_settings(tmp_path, *modules, required=()):
    path = tmp_path / "vcdext.toml"
    mods = ", ".join(f'"{m}"' for m in modules)
    req = ", ".join(f'"{r}"' for r in required)
    path.write_text(f"[plugins]\nenabled = []\nmodules = [{mods}]\nrequired = [{req}]\n")
    return load_settings(path, environ={})


def test_an_undeclared_short_right_fails_the_plugin_at_load(tmp_path, caplog):
    settings = plugin_settings(
        tmp_path, "tests.fake_plugins.undeclared_right", "tests.fake_plugins.good"
    )
    runtime = create_runtime(settings, autoload=False)
    assert runtime.plugin_names == ["good"]
    assert set(runtime.registry.services) == {"good"}
    (failure,) = runtime.failures
    assert failure.name == "undeclared_right"
    assert "GET /api/nope" in failure.error and "'Nope Right'" in failure.error
    assert "declare it" in failure.error
    assert "\n" not in failure.error
    assert "'undeclared_right'" in caplog.text and "skipped" in caplog.text


def test_a_path_parameter_the_handler_does_not_take_fails_the_plugin_at_load(tmp_path):
    runtime = create_runtime(plugin_settings(tmp_path, "tests.fake_plugins.wrong_param"))
    assert runtime.plugin_names == [] and runtime.registry.services == {}
    (failure,) = runtime.failures
    assert failure.name == "wrong_param"
    assert "GET /api/ws/{vm_id}" in failure.error and "f(request, vmid)" in (failure.error)
    assert "vm_id" in failure.error and "name the handler's arguments" in failure.error


def test_a_failed_declaration_unregisters_the_plugins_hooks(tmp_path):
    runtime = create_runtime(plugin_settings(tmp_path, "tests.fake_plugins.wrong_param"))
    assert runtime.plugin_manager.get_plugin("wrong_param") is None


def test_a_required_plugin_with_a_broken_declaration_stops_start_up(tmp_path):
    settings = plugin_settings(tmp_path, "tests.fake_plugins.wrong_param", required=["wrong_param"])
    with pytest.raises(PluginError, match="'wrong_param'.*required.*vm_id"):
        create_runtime(settings)


def test_vcdext_plugins_lists_a_broken_declaration_as_failed(tmp_path, capsys, monkeypatch):
    from vcdext.cli import main

    config = tmp_path / "vcdext.toml"
    config.write_text(
        '[plugins]\nenabled = []\nmodules = ["tests.fake_plugins.undeclared_right"]\n'
    )
    assert main(["plugins", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    failed = out.split("failed to load (skipped):", 1)[1]
    assert "undeclared_right" in failed and "Nope Right" in failed


def test_full_names_of_other_services_and_vcd_rights_are_kept():
    def extra(registrar):
        registrar.add_operation(
            "GET", "/api/a/x", ping, rights=["{io.other}:Read", "vApp: View", "urn:vcloud:right:1"]
        )

    service = make_runtime(a=make_plugin(extra=extra)).registry.services["a"]
    op = next(o for o in service.operations if o.path.template == "/api/a/x")
    assert op.rights == ("{io.other}:Read", "vApp: View", "urn:vcloud:right:1")


@pytest.mark.parametrize(
    "handler",
    [
        lambda request, item_id: "x",
        lambda request, item_id, extra="d": "x",
        lambda request, **params: "x",
    ],
)
def test_handlers_that_take_the_path_parameters_are_accepted(handler):
    def extra(registrar):
        registrar.add_operation("GET", "/api/a/{item_id}", handler)

    assert make_runtime(a=make_plugin(extra=extra)).registry.services["a"]


def test_a_handler_with_an_extra_required_argument_is_refused():
    def handler(request, item_id, other):
        return "x"

    def extra(registrar):
        registrar.add_operation("GET", "/api/a/{item_id}", handler)

    with pytest.raises(PluginError, match="handler.*other.*need defaults"):
        make_runtime(a=make_plugin(extra=extra))


# --- the Service object: declare each operation once -----------------------------------------


def test_a_service_declares_once_and_any_number_of_runtimes_bind_it():
    from vcdext import Service

    service = Service("svc", namespace="io.example.svc", vendor="Example")
    full = service.right("Read", category="Svc")

    @service.operation("GET", "/api/svc/{item_id}", rights=["Read"])
    def get_item(request, item_id):
        return f"<Item id='{item_id}'/>"

    service.link(
        rel="down",
        href="{baseUri}svc",
        mime_type="application/xml",
        resource_type="application/vnd.vmware.vcloud.org+xml",
    )

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    assert (service.name, service.namespace) == ("svc", "io.example.svc")
    first, second = make_runtime(svc=Plugin()), make_runtime(svc=Plugin())
    for runtime in (first, second):
        registered = runtime.registry.services["svc"]
        assert (registered.name, registered.namespace, registered.vendor) == (
            "svc",
            "io.example.svc",
            "Example",
        )
        assert [(str(op), op.rights) for op in registered.operations] == [
            ("GET /api/svc/{item_id}", (full,))
        ]
        assert registered.operations[0].handler is get_item
        assert [r.full_name for r in registered.rights] == ["{io.example.svc}:Read"]
        assert registered.links[0].href == "{baseUri}svc"
    assert first.registry.state_of("svc") is not second.registry.state_of("svc")


def test_service_decorator_validates_at_import_time_and_returns_the_function():
    from vcdext import Service

    service = Service("svc", namespace="io.example.svc")

    def f(request):
        return "x"

    assert service.operation("GET", "/api/svc")(f) is f
    with pytest.raises(ValueError, match="unknown HTTP method"):
        service.operation("FETCH", "/api/svc")
    with pytest.raises(ValueError, match="same_org='org'"):
        service.operation("GET", "/api/svc/{org_id}", same_org="org")
    with pytest.raises(ValueError, match="no ':'"):
        service.right("a:b")


def test_add_operations_of_a_module_skips_functions_it_only_imported(tmp_path, monkeypatch):
    (tmp_path / "ops_source.py").write_text(
        "from vcdext import operation\n\n"
        "@operation('GET', '/api/shared')\n"
        "def shared(request):\n    return 'x'\n"
    )
    (tmp_path / "ops_user.py").write_text(
        "from vcdext import operation\n"
        "from ops_source import shared\n\n"
        "@operation('GET', '/api/own')\n"
        "def own(request):\n    return 'x'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import ops_user

    def extra(registrar):
        registrar.add_operations(ops_user)

    service = make_runtime(a=make_plugin(extra=extra)).registry.services["a"]
    assert sorted(op.path.template for op in service.operations) == ["/api/a", "/api/own"]


def test_plugin_state_and_config_are_shared_by_hooks_and_handlers(tmp_path):
    from vcdext import current

    seen = {}

    def handler(request):
        ctx = current()
        seen["state"], seen["config"] = ctx.state, dict(ctx.config)
        return "<Ok/>"

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.service(name="st", namespace="io.example.st")
            registrar.add_operation("GET", "/api/st", handler)
            registrar.state.greeting = registrar.config.get("greeting", "hi")

        @hookimpl
        def vcdext_runtime_started(self, runtime):
            runtime.registry.state_of("st").started = True

    config = tmp_path / "vcdext.toml"
    config.write_text('[plugins.st]\ngreeting = "hello"\n')
    runtime = make_runtime(st=Plugin(), settings=load_settings(config, environ={}))
    runtime.start()
    from vcdext.testing import TestClient

    assert TestClient(runtime).get("/api/st").status == 200
    assert seen["state"].greeting == "hello" and seen["state"].started is True
    assert seen["config"] == {"greeting": "hello"}
