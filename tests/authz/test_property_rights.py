"""Property: over generated operations, declared rights and security contexts, no handler
runs without every right and scope it declares, and every refusal is a schema-valid 403
``Error`` (issue 11, must show)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.schemas import schema_errors
from vcdext import Registrar, hookimpl
from vcdext.context import SYSTEM_ORG_ID
from vcdext.testing import TestClient, make_runtime
from vcdext.vcloud.media import VCLOUD_NS

NAMESPACE = "io.example.prop"
OWN = ("Alpha", "Beta", "Gamma")
FOREIGN = ("vApp: View", "{io.example.other}:Peek")
ORGS = {
    "system": SYSTEM_ORG_ID,
    "acme": "11111111-1111-4111-8111-111111111111",
    "globex": "22222222-2222-4222-8222-222222222222",
}


def full(right: str) -> str:
    return f"{{{NAMESPACE}}}:{right}" if ":" not in right else right


def urn_of(right: str) -> str:
    """The URN vCD would give ``right`` (deterministic for the test)."""
    return f"urn:vcloud:right:{abs(hash(full(right))) % 10**12:012d}-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Op:
    rights: tuple[str, ...]
    admin_only: bool
    same_org: bool


operations = st.lists(
    st.builds(
        Op,
        rights=st.lists(st.sampled_from(OWN + FOREIGN), unique=True, max_size=3).map(tuple),
        admin_only=st.booleans(),
        same_org=st.booleans(),
    ),
    min_size=1,
    max_size=4,
)
# How vCD spells a right it lists: full name, URN or bare UUID (learned at registration), or
# a lookalike that must never count.
spellings = st.sampled_from(["name", "urn", "uuid", "lowercase", "short"])
held_rights = st.lists(
    st.tuples(st.sampled_from(OWN + FOREIGN), spellings), unique=True, max_size=6
)


def spell(right: str, how: str) -> str:
    if how == "name":
        return full(right)
    if how == "urn":
        return urn_of(right)
    if how == "uuid":
        return urn_of(right).rsplit(":", 1)[-1]
    if how == "lowercase":
        return full(right).lower() if full(right).lower() != full(right) else "x" + full(right)
    return right.split(":")[-1] + "!"  # a bare short name is not the right


def counts(how: str) -> bool:
    return how in ("name", "urn", "uuid")


def plugin(ops: list[Op], ran: list[int]) -> object:
    class Prop:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.service(name="prop", namespace=NAMESPACE)
            for right in OWN:
                registrar.add_right(right)
            for i, op in enumerate(ops):

                def handler(request: object, i: int = i, **params: str) -> str:
                    ran.append(i)
                    return "<Ok/>"

                path = f"/api/prop/{i}" + ("/{org}" if op.same_org else "")
                registrar.add_operation(
                    "GET",
                    path,
                    handler,
                    rights=list(op.rights),
                    admin_only=op.admin_only,
                    same_org="org" if op.same_org else None,
                )

    return Prop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=operations,
    caller_org=st.sampled_from(sorted(ORGS)),
    path_org=st.sampled_from(sorted(ORGS)),
    org_form=st.sampled_from(["urn", "uuid"]),
    held=held_rights,
    json_client=st.booleans(),
)
def test_no_handler_runs_without_its_rights_and_refusals_are_valid_403s(
    ops, caller_org, path_org, org_form, held, json_client
):
    ran: list[int] = []
    runtime = make_runtime(prop=plugin(ops, ran))
    runtime.dispatcher.learn_right_ids(
        {full(r): (urn_of(r), urn_of(r).rsplit(":", 1)[-1]) for r in OWN + FOREIGN}
    )
    client = TestClient(runtime)
    sent = [spell(r, how) for r, how in held]
    holds = {full(r) for r, how in held if counts(how)}
    accept = "application/*+json;version=36.0" if json_client else "application/*+xml;version=36.0"
    for i, op in enumerate(ops):
        ran.clear()
        org_in_path = ORGS[path_org] if org_form == "uuid" else f"urn:vcloud:org:{ORGS[path_org]}"
        path = f"/api/prop/{i}" + (f"/{org_in_path}" if op.same_org else "")
        r = client.get(
            path,
            rights=sent,
            org=f"urn:vcloud:org:{ORGS[caller_org]}",
            headers={"Accept": "*/*;q=0.1, " + accept},
        )
        admin = caller_org == "system"
        allowed = (
            all(full(x) in holds for x in op.rights)
            and (admin or not op.admin_only)
            and (admin or not op.same_org or path_org == caller_org)
        )
        if allowed:
            assert r.status == 200 and ran == [i], (op, sent, caller_org, r.text)
            continue
        assert ran == [], f"handler ran without its rights: {op}, {sent}, {caller_org}"
        assert r.status == 403
        if json_client:
            doc = json.loads(r.body)
            assert doc["majorErrorCode"] == 403
            assert doc["minorErrorCode"] == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
        else:
            assert r.content_type.startswith("application/vnd.vmware.vcloud.error+xml")
            assert not schema_errors(r.body), schema_errors(r.body)
            doc = r.xml()
            assert doc.tag == f"{{{VCLOUD_NS}}}Error"
            assert doc.get("majorErrorCode") == "403"
            assert doc.get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
