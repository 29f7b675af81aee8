"""Configuration backups of vApps: the guide's own example of long work as a vCD task.

* vCD shows a link on every vApp: ``{baseUri}vApp/vapp-{resourceId}/action/backup``.
* ``POST /api/vApp/vapp-{id}/action/backup`` answers ``202`` with a vCD Task at once; the
  task's work reads the vApp from vCD and stores its representation in SQLite, reporting
  progress; the task ends ``success`` (event ``backupComplete``) or ``error`` (event
  ``FAILED.backupComplete``), or ``canceled`` when a user cancels it.
* ``GET /api/org/{org_id}/backups``, ``GET /api/backup/{backup_id}`` (with the captured
  configuration) and ``DELETE /api/backup/{backup_id}``.
* Who may: listing needs ``View Backups``, creating ``Create Backup``, deleting ``Delete
  Backup`` (vcdext refuses the others 403 before a handler runs), and a user sees only their
  organization's backups unless a System administrator. Backups are also a resource class of
  vCD's authorization framework: each is registered as a service resource of its vApp's
  organization, and ACL rules let holders of the right in that organization (and System
  administrators) read or delete it, so vCD can refuse other tenants itself.

The core owns the task: this module never builds Task XML, never ``PUT``\\ s a task and never
retries; it calls ``current().start_task`` and ``task.progress``.
"""

from __future__ import annotations

import logging

from lxml import etree

from vcdext import (
    Acl,
    BadRequest,
    ConfigError,
    Forbidden,
    NotFound,
    Registrar,
    Request,
    RequestContext,
    ResourceAction,
    Response,
    Service,
    ServiceUnavailable,
    current,
    hookimpl,
)
from vcdext.acl import SYSTEM
from vcdext.i18n import bundle_key
from vcdext.settings import parse_table
from vcdext.tasks import RunningTask, VcdApi
from vcdext.vcd.errors import VcdApiError, VcdError
from vcdext.vcloud import media
from vcdext.vcloud.extension import read_linked
from vcdext.vcloud.model import Reference
from vcdext.xml import element, parse, tostring

from .settings import BackupSettings
from .store import Backup, BackupStore

log = logging.getLogger(__name__)

#: Unique across vCD; prefixes the rights and the tasks' and events' serviceNamespace.
NAMESPACE = "org.example.vcd.backup"
#: The XML namespace of this service's documents.
XMLNS = "http://www.example.org/vcd/backup/v1"
BACKUP_TYPE = "application/vnd.org.example.vcd.backup.backup+xml"
BACKUPS_TYPE = "application/vnd.org.example.vcd.backup.backups+xml"
#: What the vApp link's MimeType says a client sends (an optional CreateBackupParams).
CREATE_PARAMS_TYPE = "application/vnd.vmware.vcloud.createBackupParams+xml"

#: The task's operationName: a localization key. vCD shows the ``_PROGRESS`` text while the
#: task runs and the plain one once it has ended. ``bundle_key`` marks each key's English text
#: (parameters: the task's or event's Owner); translators translate it in
#: ``locales/<lang>/LC_MESSAGES/vcdext_backup.po``; registration uploads the bundle.
OPERATION = bundle_key("backupInProgress", "Backed up vApp {resourceName}")
bundle_key("backupInProgress_PROGRESS", "Backing up vApp {resourceName}")
#: The event posted when a backup task ends (``FAILED.`` + it when it did not succeed).
EVENT = bundle_key("backupComplete", "Backup of vApp {resourceName} complete")
bundle_key("FAILED.backupComplete", "Backup of vApp {resourceName} failed")
bundle_key("org.example.vcd.backup", "vApp Backup Service")  # the service's name

service = Service(
    "backup",
    namespace=NAMESPACE,
    vendor="Example",
    description="Configuration backups of vApps (vcdext's task example)",
)

VIEW = service.right("View Backups", description="List and read backups", category="Backup")
CREATE = service.right("Create Backup", description="Back up a vApp", category="Backup")
DELETE = service.right("Delete Backup", description="Delete a backup", category="Backup")

#: The resource class of vCD's authorization framework whose resources are the backups.
RESOURCE_CLASS = "Backup"
_ONE_BACKUP = "/api/backup/(?<id>[^/]+)"
_ADMINS = Acl("system administrators", organization=SYSTEM)
service.resource_class(
    RESOURCE_CLASS,
    mime_type=BACKUP_TYPE,
    url_template="{baseUri}backup/{resourceId}",
    nid="backup",
    urn_pattern="(?<id>.+)",
    actions=[
        ResourceAction(
            "view", "GET", _ONE_BACKUP, acl=[Acl("viewers", principal="View Backups"), _ADMINS]
        ),
        ResourceAction(
            "delete",
            "DELETE",
            _ONE_BACKUP,
            acl=[Acl("deleters", principal="Delete Backup"), _ADMINS],
        ),
    ],
)

service.link(
    rel="down",
    href="{baseUri}vApp/vapp-{resourceId}/action/backup",
    mime_type=CREATE_PARAMS_TYPE,
    resource_type=media.VAPP,
)


# -- rendering (lxml) ---------------------------------------------------------------------


def _base(request: Request) -> str:
    """The API address the client used (vCD forwards its Host header), for hrefs."""
    host = request.headers.get("Host", "")
    scheme = request.raw.get("scheme")
    return f"{scheme if isinstance(scheme, str) and scheme else 'https'}://{host}" if host else ""


def _backup_element(
    base: str, backup: Backup, *, full: bool, inline: bool = False
) -> etree._Element:
    attributes = {
        "href": f"{base}/api/backup/{backup.id}",
        "type": BACKUP_TYPE,
        "id": f"urn:vcloud:backup:{backup.id}",
        "name": backup.name,
    }
    if inline:
        el = etree.Element(f"{{{XMLNS}}}Backup", attrib=attributes)
    else:
        el = element(XMLNS, "Backup")
        for key, value in attributes.items():
            el.set(key, value)
    if backup.description:
        etree.SubElement(el, f"{{{XMLNS}}}Description").text = backup.description
    etree.SubElement(
        el,
        f"{{{XMLNS}}}VApp",
        href=f"{base}/api/vApp/vapp-{backup.vapp_id}",
        id=f"urn:vcloud:vapp:{backup.vapp_id}",
        name=backup.vapp_name,
    )
    etree.SubElement(el, f"{{{XMLNS}}}Org", id=f"urn:vcloud:org:{backup.org_id}")
    etree.SubElement(el, f"{{{XMLNS}}}Created").text = backup.created
    etree.SubElement(el, f"{{{XMLNS}}}CreatedBy").text = backup.created_by
    etree.SubElement(el, f"{{{XMLNS}}}Task", href=backup.task_href)
    if full:
        configuration = etree.SubElement(el, f"{{{XMLNS}}}Configuration")
        configuration.append(parse(backup.configuration))
    return el


# -- access -------------------------------------------------------------------------------


def _store() -> BackupStore:
    store: BackupStore = current().state.store
    return store


def _visible(backup_id: str) -> Backup:
    """The backup, if the caller's organization owns it (or the caller is a System
    administrator); 404 otherwise, so other tenants learn nothing of it."""
    backup = _store().get(backup_id)
    ctx = current()
    if backup is None or not (ctx.is_system_admin or backup.org_id == ctx.caller_org_id):
        raise NotFound(f"No backup {backup_id}")
    return backup


def _org_of_vapp(vcd: VcdApi, vapp: etree._Element, where: str) -> str:
    """The id of the organization a vApp belongs to: its vDC's ``up`` link."""
    vdc_href = read_linked(vapp).link("up", media.VDC)
    org_href = read_linked(vcd.get(vdc_href)).link("up", media.ORG) if vdc_href else None
    if not org_href:
        raise VcdError(f"{where}: cannot tell which organization the vApp belongs to")
    return org_href.rstrip("/").rsplit("/", 1)[-1]


def _params(request: Request) -> tuple[str, str]:
    """The optional name and description of a ``CreateBackupParams`` body."""
    if not request.body.strip():
        return "", ""
    params = request.xml()
    if etree.QName(params).localname != "CreateBackupParams":
        raise BadRequest("The body must be a CreateBackupParams element (or empty)")
    description = next(
        (c.text or "" for c in params if etree.QName(c).localname == "Description"), ""
    )
    return params.get("name", ""), description


def _register_resource(ctx: RequestContext, backup: Backup) -> None:
    """Make the backup a service resource of its organization, when the runtime has vCD's
    authorization framework (under ``vcdext run``/``dev``; not in the in-process test kit).
    A failure is logged: the plugin's own organization check still protects the backup."""
    if ctx.authorizer is None:
        return
    try:
        ctx.add_service_resource(
            RESOURCE_CLASS, backup.name, external_id=backup.id, org=backup.org_id
        )
    except ServiceUnavailable:
        log.warning("backup %s was not registered as a service resource", backup.id)


# -- operations ---------------------------------------------------------------------------


@service.operation(
    "POST",
    "/api/vApp/vapp-{id}/action/backup",
    rights=["Create Backup"],
    consumes=[CREATE_PARAMS_TYPE, "application/*+xml", "application/xml", "text/xml"],
    produces=[media.TASK],
)
def create_backup(request: Request, id: str) -> RunningTask:
    """Start a backup of the vApp; the reply is the task that takes it."""
    ctx = current()
    name, description = _params(request)
    vcd = ctx.vcd
    vapp_href = f"{vcd.base_url}/api/vApp/vapp-{id}"
    try:
        vapp = vcd.get(vapp_href)
        org_id = _org_of_vapp(vcd, vapp, vapp_href)
    except VcdApiError as exc:
        if exc.status in (403, 404):
            raise NotFound(f"No vApp vapp-{id}") from None
        raise ServiceUnavailable(f"vCD could not be asked about the vApp: {exc}") from None
    except (VcdError, ConfigError) as exc:  # unreachable, or [vcd] incomplete
        raise ServiceUnavailable(f"vCD could not be asked about the vApp: {exc}") from None
    if not ctx.is_system_admin and org_id != ctx.caller_org_id:
        raise Forbidden("The vApp belongs to another organization")
    vapp_name = vapp.get("name", id)
    owner = Reference(vapp_href, media.VAPP, vapp_name, vapp.get("id", f"urn:vcloud:vapp:{id}"))
    store = _store()
    user = request.security.user

    def back_up(task: RunningTask) -> str:
        task.progress(10, details=f"Reading vApp {vapp_name} from vCD")
        try:
            configuration = task.vcd.get(vapp_href)
        except VcdApiError as exc:
            if exc.status == 404:
                raise NotFound(f"The vApp {vapp_name} (vapp-{id}) no longer exists") from None
            raise
        task.progress(60, details="Storing the configuration")
        backup = store.add(
            org_id=org_id,
            vapp_id=id,
            vapp_name=vapp_name,
            name=name or f"{vapp_name} backup",
            description=description,
            created_by=user,
            task_href=task.href,
            configuration=tostring(configuration),
        )
        task.event_properties["backupId"] = backup.id
        _register_resource(ctx, backup)
        return f"Backup {backup.id} of vApp {vapp_name} created"

    return ctx.start_task(
        back_up,
        operation_name=OPERATION,
        operation=f"Backing up vApp {vapp_name}",
        owner=owner,
        org=org_id,
        details="Waiting to start",
        event=EVENT,
        event_properties={"vApp": vapp_name},
    )


@service.operation(
    "GET",
    "/api/org/{org_id}/backups",
    rights=["View Backups"],
    same_org="org_id",
    produces=[BACKUPS_TYPE],
)
def list_backups(request: Request, org_id: str) -> Response:
    """The organization's backups (without their configurations)."""
    base = _base(request)
    org = org_id.rsplit(":", 1)[-1].lower()
    el = element(
        XMLNS, "Backups", org=f"urn:vcloud:org:{org}", href=f"{base}/api/org/{org}/backups"
    )
    for backup in _store().list(org):
        el.append(_backup_element(base, backup, full=False, inline=True))
    return Response.xml(el)


@service.operation(
    "GET", "/api/backup/{backup_id}", rights=["View Backups"], produces=[BACKUP_TYPE]
)
def get_backup(request: Request, backup_id: str) -> Response:
    """One backup, with the vApp's configuration as vCD returned it."""
    return Response.xml(_backup_element(_base(request), _visible(backup_id), full=True))


@service.operation("DELETE", "/api/backup/{backup_id}", rights=["Delete Backup"])
def delete_backup(request: Request, backup_id: str) -> None:
    """Delete a backup (204)."""
    _store().delete(_visible(backup_id).id)


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    """Declare the service; the store opens its SQLite file on first use."""
    settings = parse_table(
        BackupSettings, registrar.config, source="[plugins.backup]", where="plugins.backup"
    )
    registrar.add_service(service)
    registrar.state.store = BackupStore(settings.database_path())
