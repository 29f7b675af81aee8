"""The registration reconcile against the fake vCD: what is sent, and what vCD ends up with."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.vcd.conftest import SERVICE_CHILD_ORDER, make_service
from tests.vcd.fake_vcd import HOST, FakeVcd
from vcdext import create_runtime
from vcdext.registry import Service
from vcdext.settings import AmqpSettings, PluginsSettings, Settings, VcdSettings
from vcdext.vcd import (
    RegistrationResult,
    VcdClient,
    desired_services,
    reconcile,
    register_services,
    unregister_service,
)
from vcdext.vcd.apply import operation_key
from vcdext.vcd.errors import VcdApiError

X = "{http://www.vmware.com/vcloud/extension/v1.5}"
V = "{http://www.vmware.com/vcloud/v1.5}"


def run(
    client: VcdClient,
    *services: Service,
    messages: dict[str, dict[str, dict[str, str]]] | None = None,
    **options: bool,
) -> RegistrationResult:
    return reconcile(
        client, desired_services(services, exchange="vcdext", messages=messages), **options
    )


def writes(fake: FakeVcd) -> list[str]:
    return [f"{c.method} {c.path}" for c in fake.writes]


def test_fresh_registration_creates_service_filters_links_definition_rights(
    fake, client, assert_valid_vcd_xml
):
    result = run(client, make_service())
    service = fake.service_by_namespace("io.example.demo")
    assert service is not None
    # What was sent.
    create = next(c for c in fake.writes if c.path == "/api/admin/extension/service")
    assert create.method == "POST"
    assert create.media_type == "application/vnd.vmware.admin.service+xml"
    assert create.headers["Accept"] == "application/*+xml;version=36.0"
    assert_valid_vcd_xml(create.body)
    body = create.xml()
    assert body.tag == f"{X}Service" and body.get("name") == "demo"
    assert body.get("operationKey") == operation_key("io.example.demo")
    assert [child.tag.split("}")[1] for child in body] == SERVICE_CHILD_ORDER
    assert body.findtext(f"{V}Description") == "A demo service\n[managed by vcdext]"
    assert body.findtext(f"{X}AuthorizationEnabled") == "false"
    sid = service.id
    assert writes(fake) == [
        "POST /api/admin/extension/service",
        f"POST /api/admin/extension/service/{sid}/apidefinitions",
        f"POST /api/admin/extension/service/{sid}/rights",
    ]
    right_call = fake.writes[-1]
    assert right_call.media_type == "application/vnd.vmware.admin.right+xml"
    assert right_call.xml().get("name") == "View Demo"
    # What vCD has.
    assert (service.routing_key, service.exchange, service.vendor, service.enabled) == (
        "io.example.demo",
        "vcdext",
        "Example",
        True,
    )
    assert fake.filters_of(service) == ["/api/demo", "/api/demo/[^/]+"]
    assert fake.links_of(service) == [
        {
            "linkHref": "{baseUri}org/{resourceId}/demo",
            "mimeType": "application/vnd.example.demo+xml",
            "rel": "down",
            "resourceType": "application/vnd.vmware.vcloud.org+xml",
        }
    ]
    assert fake.definitions_of(service) == [
        {
            "name": "demo",
            "entryPoint": "{baseUri}demo",
            "namespace": "io.example.demo",
            "apiVendor": "Example",
        }
    ]
    (right,) = fake.rights_of(service)
    assert (right.name, right.description, right.category, right.bundle_key) == (
        "{io.example.demo}:View Demo",
        "See the demo",
        "Demo",
        "RIGHT_VIEW_DEMO",
    )
    # What the runtime learns.
    assert result.changed
    assert result.right_ids == {"{io.example.demo}:View Demo": f"urn:vcloud:right:{right.id}"}
    assert result.right_aliases()["{io.example.demo}:View Demo"] == (
        f"urn:vcloud:right:{right.id}",
        right.id,
    )
    assert result.summary() == "vCD updated: 6 changes applied to 1 service"


def test_second_run_writes_nothing_and_says_so(fake, client):
    first = run(client, make_service())
    fake.reset_calls()
    second = run(client, make_service())
    assert writes(fake) == []
    assert {c.method for c in fake.calls} == {"GET"}
    assert not second.changed and second.plan.is_empty
    assert second.summary() == "vCD is up to date (1 service checked); nothing changed"
    assert second.report() == second.summary()
    assert second.right_ids == first.right_ids


def test_changed_operations_change_exactly_the_filters(fake, client):
    run(client, make_service(paths=("/api/demo", "/api/demo/{id}")))
    service = fake.service_by_namespace("io.example.demo")
    old_filter = next(f for f, (_, p) in fake.filters.items() if p == "/api/demo/[^/]+")
    fake.reset_calls()
    result = run(client, make_service(paths=("/api/demo", "/api/demo/{id}/items")))
    assert writes(fake) == [
        f"POST /api/admin/extension/service/{service.id}/apifilters",
        f"DELETE /api/admin/extension/service/apifilter/{old_filter}",
    ]
    assert fake.writes[0].media_type == "application/vnd.vmware.admin.apiFilter+xml"
    assert fake.writes[0].xml().findtext(f"{X}UrlPattern") == "/api/demo/[^/]+/items"
    assert fake.filters_of(service) == ["/api/demo", "/api/demo/[^/]+/items"]
    assert [(a.verb, a.subject) for _, a in result.plan.actions] == [
        ("add", "api filter"),
        ("remove", "api filter"),
    ]


def test_changed_service_fields_are_one_put(fake, client):
    run(client, make_service())
    service = fake.service_by_namespace("io.example.demo")
    fake.reset_calls()
    run(client, make_service(routing_key="demo.v2", priority=80))
    assert writes(fake) == [f"PUT /api/admin/extension/service/{service.id}"]
    put = fake.writes[0]
    assert put.media_type == "application/vnd.vmware.admin.service+xml"
    assert put.xml().find(f"{X}ApiFilters") is None  # a PUT sends the service's own fields
    assert (service.routing_key, service.priority) == ("demo.v2", 80)


def test_changed_link_is_deleted_and_added(fake, client):
    run(client, make_service())
    service = fake.service_by_namespace("io.example.demo")
    (old_link,) = [lid for lid, (sid, _) in fake.links.items() if sid == service.id]
    link = {
        "rel": "alternate",
        "href": "{baseUri}demo/{resourceId}",
        "mime_type": "application/vnd.example.demo+xml",
        "resource_type": "application/vnd.vmware.vcloud.vApp+xml",
    }
    fake.reset_calls()
    run(client, make_service(links=(link,)))
    assert writes(fake) == [
        f"DELETE /api/admin/extension/service/link/{old_link}",
        f"POST /api/admin/extension/service/{service.id}/links",
    ]
    assert fake.links_of(service)[0]["resourceType"] == "application/vnd.vmware.vcloud.vApp+xml"


def test_changed_right_description_is_updated(fake, client):
    run(client, make_service())
    (right,) = fake.rights.values()
    fake.reset_calls()
    result = run(
        client, make_service(rights=(("View Demo", "Look at demos", "Demo", "RIGHT_VIEW_DEMO"),))
    )
    assert writes(fake) == [f"PUT /api/admin/right/{right.id}"]
    put = fake.writes[0]
    assert put.xml().get("name") == "{io.example.demo}:View Demo"
    assert right.description == "Look at demos"
    assert not result.warnings


def test_right_vcd_will_not_update_is_left_and_reported(fake, client):
    run(client, make_service())
    fake.right_updates = False
    result = run(client, make_service(rights=(("View Demo", "Look at demos", "Demo", "K"),)))
    (warning,) = result.warnings
    assert "could not update right {io.example.demo}:View Demo (405" in warning
    assert "warning: could not update right" in result.report()


def test_removed_plugin_is_left_alone_without_prune(fake, client):
    other = make_service("other", namespace="io.example.other", rights=(), links=())
    run(client, make_service(), other)
    fake.reset_calls()
    result = run(client, make_service())
    assert writes(fake) == []
    assert fake.service_by_namespace("io.example.other") is not None
    assert result.checked == ["io.example.demo"]


def test_prune_disables_then_deletes_services_vcdext_registered(fake, client):
    other = make_service("other", namespace="io.example.other", rights=(), links=())
    run(client, make_service(), other)
    foreign = fake.add_service("com.example.foreign", "foreign", description="not ours")
    gone = fake.service_by_namespace("io.example.other")
    fake.reset_calls()
    result = run(client, make_service(), prune=True)
    assert writes(fake) == [
        f"PUT /api/admin/extension/service/{gone.id}",
        f"DELETE /api/admin/extension/service/{gone.id}",
    ]
    assert fake.writes[0].xml().findtext(f"{X}Enabled") == "false"
    assert fake.service_by_namespace("io.example.other") is None
    assert fake.services[foreign.id].description == "not ours"
    assert [(ns, a.verb) for ns, a in result.plan.actions] == [("io.example.other", "delete")]


def test_dry_run_writes_nothing_and_prints_a_table(fake, client):
    result = run(client, make_service(), dry_run=True)
    assert writes(fake) == []
    assert not fake.services
    table = result.plan.table()
    assert table.splitlines()[0].split() == ["SERVICE", "ACTION", "OBJECT", "DETAIL"]
    assert (
        "create" in table and "/api/demo/[^/]+" in table and "{io.example.demo}:View Demo" in table
    )
    assert result.summary() == "dry run: 6 changes planned for 1 service; nothing was changed"
    assert not result.changed


def test_dry_run_prune_lists_deletions_only(fake, client):
    run(client, make_service(), make_service("other", namespace="io.example.other"))
    fake.reset_calls()
    result = run(client, make_service(), dry_run=True, prune=True)
    assert writes(fake) == []
    assert "io.example.other  delete" in result.plan.table()


def test_service_created_meanwhile_by_another_instance_is_updated(fake, client):
    def other_instance(vcd: FakeVcd) -> None:  # registers between our look-up and our create
        vcd.add_service(
            "io.example.demo",
            "demo",
            routing_key="old",
            exchange="vcdext",
            description="A demo service\n[managed by vcdext]",
            vendor="Example",
        )

    fake.before_create = other_instance
    result = run(client, make_service())
    assert len(fake.services) == 1
    service = fake.service_by_namespace("io.example.demo")
    assert service.routing_key == "io.example.demo"
    assert fake.filters_of(service) == ["/api/demo", "/api/demo/[^/]+"]
    assert len(fake.rights_of(service)) == 1
    # The plan shows what happened: an update, not the create vCD refused.
    _, first = result.plan.actions[0]
    assert (first.verb, first.subject) == ("update", "service")
    assert "create" not in [a.verb for _, a in result.plan.actions]


def test_concurrent_creates_with_the_same_operation_key_converge(fake, make_client):
    first, second = make_client(), make_client()
    first.connect()
    second.connect()
    fake.before_create = lambda vcd: run(first, make_service())  # first wins the race
    run(second, make_service())
    assert len(fake.services) == 1
    (service,) = fake.services.values()
    assert fake.filters_of(service) == ["/api/demo", "/api/demo/[^/]+"]
    assert len(fake.links_of(service)) == 1
    assert len(fake.definitions_of(service)) == 1  # the second's duplicate was cleaned up
    assert len(fake.rights_of(service)) == 1
    fake.reset_calls()
    assert run(second, make_service()).plan.is_empty


def test_stale_operation_key_is_retried_without_it(fake, client):
    run(client, make_service())
    unregister_service(client, "io.example.demo")
    fake.stale_operation_keys = True
    fake.reset_calls()
    run(client, make_service())
    creates = [c for c in fake.writes if c.path == "/api/admin/extension/service"]
    assert [c.xml().get("operationKey") for c in creates] == [
        operation_key("io.example.demo"),
        None,
    ]
    assert len(fake.services) == 1


def test_create_refused_for_another_reason_is_raised(fake, client):
    fake.fail("POST", "^/api/admin/extension/service$", 400)
    with pytest.raises(VcdApiError, match="injected 400"):
        run(client, make_service())


MESSAGES = {
    "demo": {"en_US": {"demoInProgress": "Demo running"}, "fr_FR": {"demoInProgress": "Démo"}}
}


def test_bundle_is_uploaded_once_and_again_when_it_changes(fake, client, assert_valid_vcd_xml):
    run(client, make_service(), messages=MESSAGES)
    service = fake.service_by_namespace("io.example.demo")
    (uploaded,) = fake.bundles
    with zipfile.ZipFile(io.BytesIO(uploaded[1])) as archive:
        assert archive.namelist() == ["en_US", "fr_FR"]
        assert archive.read("fr_FR").decode() == "demoInProgress=Démo\n"
    params = next(c for c in fake.writes if c.path.endswith("/localizationbundles"))
    assert params.media_type == "application/vnd.vmware.admin.bundleUploadParams+xml"
    assert_valid_vcd_xml(params.body)
    assert params.xml().get("fileSize") == str(len(uploaded[1]))
    assert params.xml().get("serviceNamespace") == "io.example.demo"
    transfer = next(c for c in fake.writes if c.path.startswith("/transfer/"))
    assert transfer.method == "PUT" and transfer.media_type == "application/octet-stream"
    assert "[managed by vcdext; bundle sha256:" in service.description

    fake.reset_calls()
    assert run(client, make_service(), messages=MESSAGES).plan.is_empty
    assert writes(fake) == []

    changed = {"demo": {"en_US": {"demoInProgress": "Demo in progress"}}}
    fake.reset_calls()
    run(client, make_service(), messages=changed)
    assert [w.split()[0] + " " + w.split()[1].rsplit("/", 1)[-1] for w in writes(fake)] == [
        "POST localizationbundles",
        "PUT file",
        f"PUT {service.id}",
    ]
    assert len(fake.bundles) == 2


def test_failed_upload_is_retried_next_run(fake, client):
    fake.fail("PUT", "^/transfer/", 400)
    with pytest.raises(VcdApiError):
        run(client, make_service(), messages=MESSAGES)
    service = fake.service_by_namespace("io.example.demo")
    assert "bundle sha256" not in service.description
    result = run(client, make_service(), messages=MESSAGES)
    assert [(a.verb, a.subject) for _, a in result.plan.actions] == [("upload", "bundle")]
    assert len(fake.bundles) == 1


def test_query_refused_falls_back_to_listing_services(fake, client):
    run(client, make_service())
    fake.query_service = False
    fake.reset_calls()
    assert run(client, make_service()).plan.is_empty
    assert "/api/admin/extension/service" in [c.path for c in fake.calls]


def test_unregister_disables_then_deletes(fake, client):
    run(client, make_service())
    service = fake.service_by_namespace("io.example.demo")
    fake.reset_calls()
    plan = unregister_service(client, "io.example.demo")
    assert plan is not None
    assert writes(fake) == [
        f"PUT /api/admin/extension/service/{service.id}",
        f"DELETE /api/admin/extension/service/{service.id}",
    ]
    assert not fake.services and not fake.filters and not fake.links
    assert unregister_service(client, "io.example.demo") is None


# -- register_services: the runtime's entry point ---------------------------------------------


def test_without_vcd_url_nothing_is_registered():
    result = register_services(create_runtime(Settings()), Settings())
    assert not result.contacted and result.plan.is_empty
    assert result.summary() == "vCD registration skipped: vcd.url is not set"


def test_register_services_uses_the_runtime_and_the_amqp_exchange(fake, monkeypatch):
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    settings = Settings(
        amqp=AmqpSettings(exchange="ext-x"),
        plugins=PluginsSettings(enabled=("hello",)),
        vcd=VcdSettings(
            url=HOST + "/api/", username="administrator", password="Tr0ub4dor&3-secret"
        ),
    )
    runtime = create_runtime(settings)
    result = register_services(runtime, settings)
    service = fake.service_by_namespace("io.vcdext.hello")
    assert service is not None and service.exchange == "ext-x"
    assert set(result.right_ids) == {"{io.vcdext.hello}:View Org Greeting"}
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    assert fake.calls[-1].method == "DELETE"  # logged out
