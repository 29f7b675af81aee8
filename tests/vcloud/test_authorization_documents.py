"""The authorization documents: each written valid against VMware's schemas and read back;
what the schema's documentation forbids is refused with a 400 naming it."""

from __future__ import annotations

import pytest
from lxml import etree

from vcdext.errors import BadRequest
from vcdext.vcloud import authorization as a
from vcdext.vcloud import media
from vcdext.vcloud.model import (
    AclAccess,
    AclRule,
    AuthorizationCheck,
    Held,
    Link,
    Reference,
    ResourceClass,
    ResourceClassAction,
    ServiceResource,
)
from vcdext.vcloud.query import Page, write_query_result
from vcdext.xml import tostring

H = "https://h/api/admin/extension/service"
RIGHT_REF = Reference("https://h/api/admin/right/r1", media.RIGHT, "{io.x}:View")
ORG_REF = Reference("https://h/api/org/o1", media.ORG, "acme")
CLASS = ResourceClass(
    "Backup",
    "application/vnd.x.backup+xml",
    "{baseUri}backup/{resourceId}",
    "vcdext",
    "backup:(?<id>.+)",
)
ACTION = ResourceClassAction("View Backup", "GET", "/api/backup/(?<id>[-0-9a-f]+)")
RULE = AclRule(
    "holders of View",
    service_resource=AclAccess("Shared"),
    organization=AclAccess("Entity", ORG_REF),
    principal=AclAccess("Entity", RIGHT_REF),
    description="who may view",
)
RESOURCE = ServiceResource("b-1", ORG_REF, "b-1")


def held(value, kind, mime):  # type: ignore[no-untyped-def]
    href = f"{H}/{kind}/1"
    return Held(
        value,
        href=href,
        id=f"urn:vcloud:{kind}:1",
        type=mime,
        links=(Link(media.REL_REMOVE, href),),
    )


@pytest.mark.parametrize(
    ("value", "write", "read"),
    [
        (CLASS, a.write_resource_class, a.read_resource_class),
        (RULE, a.write_acl_rule, a.read_acl_rule),
        (RESOURCE, a.write_service_resource, a.read_service_resource),
    ],
)
def test_documents_are_schema_valid_and_read_back(value, write, read, assert_valid_vcd_xml):
    for doc in (value, held(value, "x", "application/x")):
        el = write(doc)
        assert_valid_vcd_xml(tostring(el))
        back = read(tostring(el))
        assert back.value == value
        if isinstance(doc, Held):
            assert (back.href, back.id, back.links) == (doc.href, doc.id, doc.links)


def test_action_with_inline_rules_round_trips(assert_valid_vcd_xml):
    el = a.write_resource_class_action(
        ACTION, rules=[RULE, AclRule("all", principal=AclAccess("Shared"))]
    )
    assert_valid_vcd_xml(tostring(el))
    action, rules = a.read_resource_class_action(tostring(el))
    assert action.value == ACTION
    assert [r.value for r in rules] == [RULE, AclRule("all", principal=AclAccess("Shared"))]
    assert rules[0].value.description == "who may view"


def test_authorization_check_documents(assert_valid_vcd_xml):
    check = AuthorizationCheck(
        Reference("https://h/api/admin/user/u1", media.USER), "DELETE", "/api/backup/b-1"
    )
    params = a.write_authorization_check_params(check)
    assert_valid_vcd_xml(tostring(params))
    assert a.read_authorization_check_params(tostring(params)) == check
    for answer in (True, False):
        el = a.write_authorization_check_response(answer)
        assert_valid_vcd_xml(tostring(el))
        assert a.read_authorization_check_response(tostring(el)) is answer


def test_records_are_schema_valid_and_read_back(assert_valid_vcd_xml):
    cases = [
        (
            a.RESOURCE_CLASS_RECORDS,
            a.resource_class_record(held(CLASS, "resourceclass", ""), "s"),
            a.read_resource_class_record,
            CLASS,
        ),
        (
            a.ACTION_RECORDS,
            a.action_record(held(ACTION, "resourceclassaction", ""), "c"),
            a.read_action_record,
            ACTION,
        ),
        (
            a.ACL_RULE_RECORDS,
            a.acl_rule_record(held(RULE, "aclrule", ""), "a"),
            a.read_acl_rule_record,
            None,
        ),
        (
            a.SERVICE_RESOURCE_RECORDS,
            a.service_resource_record(held(RESOURCE, "serviceresource", ""), "c"),
            a.read_service_resource_record,
            None,
        ),
    ]
    for kind, record, reader, expected in cases:
        doc = write_query_result(kind, Page("https://h/q", "records", 1, 25, 1), [record])
        assert_valid_vcd_xml(tostring(doc))
        back = reader(doc[0])
        assert back is not None and back.href == record["href"]
        if expected is not None:
            assert back.value == expected
    rule = a.read_acl_rule_record(
        write_query_result(
            a.ACL_RULE_RECORDS,
            Page("https://h/q", "records", 1, 25, 1),
            [a.acl_rule_record(held(RULE, "aclrule", ""), "a")],
        )[0]
    )
    assert rule is not None
    assert rule.value.principal == AclAccess("Entity", Reference(RIGHT_REF.href, media.RIGHT))
    assert rule.value.organization == AclAccess("Entity", Reference(ORG_REF.href))


def bad(xml: str) -> str:
    reader = {
        "AclRule": a.read_acl_rule,
        "ResourceClassAction": a.read_resource_class_action,
        "AuthorizationCheckParams": a.read_authorization_check_params,
        "ResourceClass": a.read_resource_class,
    }[etree.QName(etree.fromstring(xml)).localname]
    with pytest.raises(BadRequest) as info:
        reader(xml)
    return info.value.message


NS = f'xmlns="{media.VCLOUD_NS}" xmlns:x="{media.VMEXT_NS}"'


def test_readers_refuse_what_the_schema_forbids():
    assert "Access must be one of" in bad(
        f'<x:AclRule {NS} name="r"><x:PrincipalAccess><x:Access>Everyone</x:Access>'
        "</x:PrincipalAccess></x:AclRule>"
    )
    assert "needs an Entity" in bad(
        f'<x:AclRule {NS} name="r"><x:PrincipalAccess><x:Access>Entity</x:Access>'
        "</x:PrincipalAccess></x:AclRule>"
    )
    assert "name attribute" in bad(f"<x:AclRule {NS}/>")
    assert "HttpMethod must be one of" in bad(
        f'<x:ResourceClassAction {NS} name="a"><x:HttpMethod>PATCH</x:HttpMethod>'
        "<x:UrlPattern>/x</x:UrlPattern></x:ResourceClassAction>"
    )
    assert "not a valid regular expression" in bad(
        f'<x:ResourceClassAction {NS} name="a"><x:HttpMethod>GET</x:HttpMethod>'
        "<x:UrlPattern>/x/(</x:UrlPattern></x:ResourceClassAction>"
    )
    assert "User is required" in bad(
        f"<x:AuthorizationCheckParams {NS}><x:HttpMethod>GET</x:HttpMethod><x:URL>/a</x:URL>"
        "</x:AuthorizationCheckParams>"
    )
    assert "longer than 128" in bad(
        f'<x:ResourceClass {NS} name="c"><x:MimeType>{"m" * 129}</x:MimeType></x:ResourceClass>'
    )


def test_java_named_groups_compile():
    pattern = a.compile_pattern("/api/backup/(?<id>[-0-9a-f]+)")
    m = pattern.fullmatch("/api/backup/ab-12")
    assert m is not None and m.group("id") == "ab-12"
