"""The pure diff: desired service vs vCD's service → the fewest actions, in a safe order."""

from __future__ import annotations

from dataclasses import fields, replace

from tests.vcd.conftest import make_service
from vcdext.vcd.bundle import make_bundle
from vcdext.vcd.model import ActualService, DesiredService, compose_description, desired_service
from vcdext.vcd.plan import (
    AddApiDefinition,
    AddFilter,
    AddLink,
    AddRight,
    CreateService,
    DeleteService,
    Plan,
    RemoveApiDefinition,
    RemoveFilter,
    RemoveLink,
    UpdateRight,
    UpdateService,
    UploadBundle,
    plan_prune,
    plan_service,
)
from vcdext.vcloud.model import ApiDefinition, ApiFilter, Held, Right, Service


def desired(**changes: object) -> DesiredService:
    base = desired_service(make_service(), exchange="vcdext")
    return replace(base, **changes)  # type: ignore[arg-type]


def in_sync(want: DesiredService, **changes: object) -> ActualService:
    """What vCD has after registering ``want`` faithfully (then ``changes`` applied)."""
    digest = want.bundle.digest if want.bundle else None
    service = want.service(compose_description(want.description, digest))
    actual = ActualService(
        Held(service, "https://vcd/api/admin/extension/service/1", "urn:vcloud:externalService:1"),
        description=want.description,
        managed=True,
        bundle_digest=digest,
        filters=tuple(Held(ApiFilter(p), f"https://vcd/f/{i}") for i, p in enumerate(want.filters)),
        service_links=tuple(
            Held(replace(x, external_id=""), f"https://vcd/l/{i}") for i, x in enumerate(want.links)
        ),
        api_definitions=tuple(
            Held(d, f"https://vcd/d/{i}") for i, d in enumerate(want.api_definitions)
        ),
        rights=tuple(
            Held(
                Right(r.name, r.category, r.description, r.bundle_key),
                f"https://vcd/r/{i}",
                f"urn:vcloud:right:{i}",
            )
            for i, r in enumerate(want.rights)
        ),
    )
    # Changes to the service's own fields go to the held service; the rest to the view.
    own = {k: v for k, v in changes.items() if k in SERVICE_FIELDS}
    rest = {k: v for k, v in changes.items() if k not in SERVICE_FIELDS}
    held = replace(actual.held, value=replace(actual.held.value, **own))  # type: ignore[arg-type]
    return replace(actual, held=held, **rest)  # type: ignore[arg-type]


SERVICE_FIELDS = {f.name for f in fields(Service)} - {"description"}


def kinds(plan: object) -> list[str]:
    return [type(a).__name__ for a in plan.actions]  # type: ignore[attr-defined]


def test_missing_service_is_created_with_definition_rights_and_bundle():
    want = desired(bundle=make_bundle({"en_US": {"k": "v"}}))
    plan = plan_service(want, None)
    assert kinds(plan) == ["CreateService", "AddApiDefinition", "AddRight", "UploadBundle"]
    assert plan.creates
    create = plan.actions[0]
    assert isinstance(create, CreateService) and create.desired is want


def test_service_in_sync_plans_nothing():
    want = desired(bundle=make_bundle({"en_US": {"k": "v"}}))
    plan = plan_service(want, in_sync(want))
    assert plan.actions == () and plan.notes == ()


def test_each_changed_field_is_named_in_one_update():
    want = desired()
    actual = in_sync(want, routing_key="old.key", priority=10, exchange="other", enabled=False)
    plan = plan_service(want, actual)
    assert kinds(plan) == ["UpdateService"]
    update = plan.actions[0]
    assert isinstance(update, UpdateService)
    assert update.changes == (
        "enabled: false → true",
        "routing key: old.key → io.example.demo",
        "priority: 10 → 50",
        "exchange: other → vcdext",
    )


def test_description_vendor_and_authorization_are_compared():
    want = desired(authorization_enabled=True)
    plan = plan_service(
        want, in_sync(want, description="old text", vendor="", authorization_enabled=False)
    )
    # Authorization is switched on last, once the classes and rules are in place.
    update, enable = plan.actions
    assert isinstance(update, UpdateService) and isinstance(enable, UpdateService)
    assert "description: 'old text' → 'A demo service'" in update.changes
    assert "vendor: '' → Example" in update.changes
    assert not any("authorization" in c for c in update.changes)
    assert enable.changes == ("authorization enabled: false → true",)
    assert enable.desired.authorization_enabled


def test_a_service_registered_outside_vcdext_is_adopted_and_marked():
    want = desired()
    plan = plan_service(want, in_sync(want, managed=False))
    (update,) = plan.actions
    assert isinstance(update, UpdateService) and update.changes == ("mark as managed by vcdext",)
    assert any("outside vcdext" in n for n in plan.notes)


def test_filters_added_and_removed_exactly():
    want = desired(filters=("/api/a", "/api/b"))
    actual = in_sync(
        want,
        filters=(Held(ApiFilter("/api/b"), "h/b"), Held(ApiFilter("/api/old"), "h/old")),
    )
    plan = plan_service(want, actual)
    assert plan.actions == (AddFilter("/api/a"), RemoveFilter("/api/old", "h/old"))


def test_duplicate_filters_are_removed():
    want = desired(filters=("/api/a",))
    twice = (Held(ApiFilter("/api/a"), "h/1"), Held(ApiFilter("/api/a"), "h/2"))
    actual = in_sync(want, filters=twice)
    assert plan_service(want, actual).actions == (RemoveFilter("/api/a", "h/2"),)


def test_a_changed_link_is_removed_then_added():
    want = desired()
    old = replace(want.links[0], href="{baseUri}old")
    actual = in_sync(want, service_links=(Held(old, "h/link"),))
    plan = plan_service(want, actual)
    assert plan.actions == (RemoveLink(old, "h/link"), AddLink(want.links[0]))


def test_link_external_id_is_not_compared():
    want = desired()
    want = replace(want, links=(replace(want.links[0], external_id="ext-1"),))
    assert plan_service(want, in_sync(want)).actions == ()


def test_api_definition_replaced_when_its_entry_point_changes():
    want = desired()
    old = ApiDefinition("demo", "{baseUri}old", "io.example.demo", "Example")
    actual = in_sync(want, api_definitions=(Held(old, "h/def"),))
    plan = plan_service(want, actual)
    assert plan.actions == (
        RemoveApiDefinition(old, "h/def"),
        AddApiDefinition(want.api_definitions[0]),
    )


def test_rights_added_updated_and_stale_ones_only_reported():
    want = desired()
    right = want.rights[0]
    stale = Held(Right("{io.example.demo}:Old"), "h/old", "urn:vcloud:right:old")
    changed = Held(Right(right.name, "Demo", "older text", ""), "h/r", "urn:vcloud:right:r")
    plan = plan_service(want, in_sync(want, rights=(changed, stale)))
    (update,) = plan.actions
    assert isinstance(update, UpdateRight) and update.href == "h/r"
    assert update.changes == (
        "description: 'older text' → 'See the demo'",
        "bundle key: '' → RIGHT_VIEW_DEMO",
    )
    assert plan.notes == (
        "right {io.example.demo}:Old is no longer declared; left in vCD (roles may hold it)",
    )
    assert plan_service(want, in_sync(want, rights=())).actions == (AddRight(right),)


def test_bundle_uploaded_only_when_its_digest_differs():
    bundle = make_bundle({"en_US": {"k": "v"}})
    want = desired(bundle=bundle)
    assert plan_service(want, in_sync(want)).actions == ()
    assert plan_service(want, in_sync(want, bundle_digest=None)).actions == (UploadBundle(bundle),)
    assert plan_service(want, in_sync(want, bundle_digest="0" * 16)).actions == (
        UploadBundle(bundle),
    )
    # No bundle declared: whatever vCD has stays.
    assert plan_service(desired(), in_sync(desired(), bundle_digest="1" * 16)).actions == ()


def test_order_update_bundle_filters_links_definitions_rights():
    bundle = make_bundle({"en_US": {"k": "v"}})
    want = desired(bundle=bundle, routing_key="new")
    actual = in_sync(desired(), filters=(), service_links=(), api_definitions=(), rights=())
    assert kinds(plan_service(want, actual)) == [
        "UpdateService",
        "UploadBundle",
        "AddFilter",
        "AddFilter",
        "AddLink",
        "AddApiDefinition",
        "AddRight",
    ]


def test_prune_deletes_only_managed_services_not_kept():
    keep = in_sync(desired())
    gone = in_sync(desired(namespace="io.example.gone", name="gone"))
    foreign = in_sync(desired(namespace="com.other"), managed=False)
    plans = plan_prune([gone, keep, foreign], ["io.example.demo"])
    assert [p.actions for p in plans] == [(DeleteService(gone),)]


def test_table_lists_every_change_including_what_a_create_carries():
    plan = Plan((plan_service(desired(), None),))
    lines = plan.table().splitlines()
    assert lines[0].split() == ["SERVICE", "ACTION", "OBJECT", "DETAIL"]
    assert lines[1].split()[:3] == ["io.example.demo", "create", "service"]
    assert any("api filter" in line and "/api/demo/[^/]+" in line for line in lines)
    assert any(
        "service link" in line and "{baseUri}org/{resourceId}/demo" in line for line in lines
    )
    assert any("right" in line and "{io.example.demo}:View Demo" in line for line in lines)
    # Columns line up.
    assert len({line.index("create") for line in lines if "create" in line}) == 1
    assert Plan((plan_service(desired(), in_sync(desired())),)).table() == ""
