"""XML rendering of the inventory (orgs, VDCs, vApps, VMs), and the links and references the
cell gives tasks (the ``Task`` itself is written by :mod:`vcdext.vcloud.task`).

Each representation carries the service links registered for its media type; the caller
passes them in (see :meth:`vcdext.cell.state.State.service_links_for`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from lxml import etree

from vcdext.vcloud import media
from vcdext.vcloud.elements import root, sub
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.vcloud.model import Held, Link, Reference
from vcdext.vcloud.reference import write_reference
from vcdext.vcloud.task import write_task, write_tasks_list

from .model import ServiceLink, Task
from .seed import Org, User, VApp, Vdc, Vm
from .views import Urls, add_service_links, link


def org_list(urls: Urls, orgs: Iterable[Org]) -> etree._Element:
    """``OrgList``: references to ``orgs``."""
    el = root(VCLOUD_NS, "OrgList", href=f"{urls.api}/org/", type=media.ORG_LIST)
    for org in orgs:
        sub(el, "Org", href=urls.org(org.id), type=media.ORG, name=org.name)
    return el


def _org_links(urls: Urls, org: Org) -> list[tuple[str, str, str, str | None]]:
    out: list[tuple[str, str, str, str | None]] = [
        ("down", urls.vdc(v.id), media.VDC, v.name) for v in org.vdcs
    ]
    out.append(("down", urls.tasks_list(org.id), media.TASKS_LIST, None))
    return out


def org(
    urls: Urls, o: Org, links: Iterable[ServiceLink], *, sysadmin: bool = False
) -> etree._Element:
    """A vcloud ``Org``: its VDCs, tasks list and service links."""
    el = root(
        VCLOUD_NS,
        "Org",
        href=urls.org(o.id),
        type=media.ORG,
        id=f"urn:vcloud:org:{o.id}",
        name=o.name,
    )
    for rel, href, mime, name in _org_links(urls, o):
        link(el, rel, href, mime, name=name)
    if sysadmin:
        link(el, "alternate", urls.org(o.id, admin=True), media.ADMIN_ORG)
    add_service_links(el, urls, links, o.id)
    sub(el, "FullName", o.full_name)
    sub(el, "IsEnabled", "true")
    return el


def admin_org(urls: Urls, o: Org, links: Iterable[ServiceLink]) -> etree._Element:
    """A minimal ``AdminOrg`` with the ``task:create`` and ``event:create`` links."""
    href = urls.org(o.id, admin=True)
    el = root(
        VCLOUD_NS,
        "AdminOrg",
        href=href,
        type=media.ADMIN_ORG,
        id=f"urn:vcloud:org:{o.id}",
        name=o.name,
    )
    link(el, "alternate", urls.org(o.id), media.ORG)
    link(el, "task:create", urls.tasks_list(o.id), media.TASK)
    link(el, "event:create", f"{href}/events", media.EVENT)
    link(el, "down", urls.tasks_list(o.id), media.TASKS_LIST)
    add_service_links(el, urls, links, o.id)
    sub(el, "FullName", o.full_name)
    sub(el, "IsEnabled", "true")
    sub(el, "Settings")
    if o.users:
        users = sub(el, "Users")
        for u in o.users:
            sub(users, "UserReference", href=urls.user(u.id), type=media.USER, name=u.name)
    if o.vdcs:
        vdcs = sub(el, "Vdcs")
        for v in o.vdcs:
            sub(vdcs, "Vdc", href=urls.vdc(v.id), type=media.VDC, name=v.name)
    return el


def vdc(urls: Urls, v: Vdc, links: Iterable[ServiceLink]) -> etree._Element:
    """A vcloud ``Vdc`` with its vApps as resource entities."""
    el = root(
        VCLOUD_NS,
        "Vdc",
        href=urls.vdc(v.id),
        type=media.VDC,
        id=f"urn:vcloud:vdc:{v.id}",
        name=v.name,
        status="1",
    )
    link(el, "up", urls.org(v.org_id), media.ORG)
    add_service_links(el, urls, links, v.id)
    sub(el, "AllocationModel", "AllocationVApp")
    entities = sub(el, "ResourceEntities")
    for a in v.vapps:
        sub(entities, "ResourceEntity", href=urls.vapp(a.id), type=media.VAPP, name=a.name)
    sub(el, "IsEnabled", "true")
    return el


def vapp(
    urls: Urls, a: VApp, links: Iterable[ServiceLink], *, owner: User | None = None
) -> etree._Element:
    """A minimal vcloud ``VApp``: its owner and its VMs as ``Children`` (each a ``Vm``)."""
    el = root(
        VCLOUD_NS,
        "VApp",
        href=urls.vapp(a.id),
        type=media.VAPP,
        id=f"urn:vcloud:vapp:{a.id}",
        name=a.name,
        status="8",
        deployed="false",
    )
    link(el, "up", urls.vdc(a.vdc_id), media.VDC)
    add_service_links(el, urls, links, a.id)
    if owner is not None:
        write_reference(
            sub(el, "Owner"),
            "User",
            Reference(urls.user(owner.id), media.USER, owner.name, f"urn:vcloud:user:{owner.id}"),
        )
    sub(el, "InMaintenanceMode", "false")
    if a.vms:
        children = sub(el, "Children")
        for m in a.vms:
            children.append(vm(urls, m, (), inline=True))
    return el


def vm(urls: Urls, m: Vm, links: Iterable[ServiceLink], *, inline: bool = False) -> etree._Element:
    """A minimal vcloud ``Vm``, powered off, with its service links (none when inline)."""
    el = root(
        VCLOUD_NS,
        "Vm",
        declare=not inline,
        href=urls.vm(m.id),
        type=media.VM,
        id=f"urn:vcloud:vm:{m.id}",
        name=m.name,
        status="8",
        deployed="false",
        needsCustomization="false",
    )
    link(el, "up", urls.vapp(m.vapp_id), media.VAPP)
    add_service_links(el, urls, links, m.id)
    sub(el, "VAppScopedLocalId", m.name)
    return el


def held_task(urls: Urls, t: Task, org: Org, creator: User | None) -> Held[Task]:
    """A task as vCD returns it after create, read or update: its links, its ``User`` (the
    creator unless the client named one) and its ``Organization``."""
    href = urls.task(t.id)
    links = []
    if not t.finished:
        links.append(Link(media.REL_TASK_CANCEL, f"{href}/action/cancel"))
    links.append(Link(media.REL_EDIT, href, media.TASK))
    links.append(Link(media.REL_UP, urls.org(org.id), media.ORG, org.name))
    user = t.user
    if user is None and creator is not None:
        user = Reference(
            urls.user(creator.id), media.USER, creator.name, f"urn:vcloud:user:{creator.id}"
        )
    organization = Reference(urls.org(org.id), media.ORG, org.name, f"urn:vcloud:org:{org.id}")
    shown = dataclasses.replace(t, user=user, organization=organization)
    return Held(shown, href=href, id=t.urn, type=media.TASK, links=tuple(links))


def task(urls: Urls, t: Task, org: Org, creator: User | None) -> etree._Element:
    """A vcloud ``Task`` as vCD returns it after create, read or update."""
    return write_task(held_task(urls, t, org, creator))


def tasks_list(urls: Urls, o: Org, tasks: Iterable[tuple[Task, User | None]]) -> etree._Element:
    """``TasksList`` of an org with its tasks inline."""
    held = Held(
        [held_task(urls, t, o, creator) for t, creator in tasks],
        href=urls.tasks_list(o.id),
        type=media.TASKS_LIST,
        links=(Link(media.REL_UP, urls.org(o.id), media.ORG),),
    )
    return write_tasks_list(held)
