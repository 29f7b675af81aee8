"""The cell's tenant-facing vCloud API: versions, login, query, inventory, tasks, events,
and the unauthenticated ``/cell/...`` debug endpoints.

Choices where vCD's behaviour is not documented (see ``docs/local-cell.md``):

* ``POST /api/tasksList/{org}`` answers 200 with the Task (the guide's example); ``PUT`` 200.
* Cancelling a finished task is a 204 that changes nothing.
* ``/cloudapi/1.0.0/sessions`` accepts system administrators too; ``.../sessions/provider``
  accepts only them (401 otherwise). Both tokens work with every API version the cell offers.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from vcdext.errors import Forbidden, HTTPError, NotFound
from vcdext.vcloud import media
from vcdext.vcloud.model import Task as HeldTask
from vcdext.vcloud.task import read_event, read_task
from vcdext.vcloud.versions import (
    SUPPORTED_VERSIONS,
    ServerVersion,
    uses_cloudapi_login,
    write_supported_versions,
)

from . import inventory, views
from .http import (
    Answer,
    Call,
    Router,
    json_answer,
    xml_answer,
)
from .model import Event, Session, Task, new_id, now, stored
from .query import QueryParams, query_list, run_query
from .routes_extension import read_body
from .state import State
from .views import Urls

log = logging.getLogger(__name__)


def unauthorized(message: str, *, challenge: bool = False) -> HTTPError:
    """A 401 ``UNAUTHORIZED`` error (with a Basic challenge for logins)."""
    headers = {"WWW-Authenticate": 'Basic realm="vCloud Director"'} if challenge else {}
    return HTTPError(message, status=401, minor_code="UNAUTHORIZED", headers=headers)


def session_of(call: Call) -> Session:
    """The caller's session; 401 without one."""
    if call.session is None:
        raise unauthorized("This request needs a session (log in with POST /api/sessions)")
    return call.session


class ApiRoutes:
    """Handlers for the cell's own ``/api``, ``/cloudapi`` and ``/cell`` resources."""

    def __init__(self, state: State) -> None:
        self.state = state
        #: Called with each task created or updated here (the cell's notifications).
        self.on_task: Callable[[Urls, Task, str], None] | None = None

    def register(self, router: Router) -> None:
        """Add every route of this class to ``router``."""
        add = router.add
        add("GET", "/api/versions", self.versions)
        add("POST", "/api/sessions", self.login)
        add("GET", "/api/session", self.get_session)
        add("DELETE", "/api/session", self.logout)
        add("GET", "/api/query", self.query)
        add("GET", "/api/org", self.org_list)
        add("GET", "/api/org/{id}", self.get_org)
        add("GET", "/api/admin/org/{id}", self.get_admin_org)
        add("POST", "/api/admin/org/{id}/events", self.post_event)
        add("GET", "/api/vdc/{id}", self.get_vdc)
        add("GET", "/api/vApp/vapp-{id}", self.get_vapp)
        add("GET", "/api/vApp/vm-{id}", self.get_vm)
        add("GET", "/api/tasksList/{id}", self.list_tasks)
        add("POST", "/api/tasksList/{id}", self.create_task)
        add("GET", "/api/task/{id}", self.get_task)
        add("PUT", "/api/task/{id}", self.update_task)
        add("POST", "/api/task/{id}/action/cancel", self.cancel_task)
        add("GET", "/cell", self.debug_index)
        add("GET", "/cell/events", self.debug_events)
        add("GET", "/cell/forwarded", self.debug_forwarded)
        add("GET", "/cell/bundles/{namespace}", self.debug_bundles)

    # -- versions and sessions ------------------------------------------------------------

    def versions(self, call: Call) -> Answer:
        """``GET /api/versions``: ``SupportedVersions``, no session or version needed."""
        login = f"{call.urls.api}/sessions"
        doc = write_supported_versions(ServerVersion(v, login) for v in SUPPORTED_VERSIONS)
        return dataclasses.replace(xml_answer(doc, media.VERSIONS), versioned=False)

    def _credentials(self, call: Call) -> Session:
        header = call.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise Forbidden("Log in with HTTP Basic credentials user@org:password")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Forbidden(
                "The Basic credentials are not valid base64 of user@org:password"
            ) from None
        login, _, password = decoded.partition(":")
        user, at, org = login.rpartition("@")
        session = self.state.login(user, org, password) if at and user and org else None
        if session is None:
            raise unauthorized("Bad credentials", challenge=True)
        log.info("%s@%s logged in", session.user.name, session.org.name)
        return session

    def _token_headers(self, call: Call, session: Session) -> dict[str, str]:
        headers = {media.H_XML_TOKEN: session.token}
        if uses_cloudapi_login(call.version):
            headers[media.H_ACCESS_TOKEN] = session.bearer
            headers[media.H_TOKEN_TYPE] = "Bearer"
        return headers

    def login(self, call: Call) -> Answer:
        """``POST /api/sessions``: Basic ``user@org:password`` → ``Session`` and tokens."""
        session = self._credentials(call)
        answer = xml_answer(views.session(call.urls, session), media.SESSION)
        answer.headers.update(self._token_headers(call, session))
        return answer

    def get_session(self, call: Call) -> Answer:
        """``GET /api/session``: the caller's ``Session`` (rehydration)."""
        session = session_of(call)
        answer = xml_answer(views.session(call.urls, session), media.SESSION)
        answer.headers.update(self._token_headers(call, session))
        return answer

    def logout(self, call: Call) -> Answer:
        """``DELETE /api/session``: end the session (204)."""
        self.state.logout(session_of(call))
        return Answer(204)

    def cloudapi_login(self, call: Call, *, provider: bool) -> Answer:
        """``POST /cloudapi/1.0.0/sessions[/provider]`` (API 33.0 and later)."""
        session = self._credentials(call)
        if provider and not session.is_sysadmin:
            self.state.logout(session)
            raise unauthorized("Only system administrators log in at /sessions/provider")
        org = {"name": session.org.name, "id": session.org_urn}
        doc: dict[str, Any] = {
            "id": f"urn:vcloud:session:{session.id}",
            "user": {"name": session.user.name, "id": session.user_urn},
            "org": org,
            "operatingOrg": org,
            "location": "local-cell",
            "roles": ["System Administrator" if session.is_sysadmin else "Organization User"],
            "roleRefs": [],
            "sessionIdleTimeoutMinutes": 30,
        }
        answer = json_answer(doc)
        answer.headers.update(
            {
                media.H_XML_TOKEN: session.token,
                media.H_ACCESS_TOKEN: session.bearer,
                media.H_TOKEN_TYPE: "Bearer",
            }
        )
        return answer

    # -- query ----------------------------------------------------------------------------

    def query(self, call: Call) -> Answer:
        """``GET /api/query``: the ``QueryList``, or one query's result."""
        session = session_of(call)
        params = QueryParams.parse(call.query_string)
        if not params.type:
            return xml_answer(query_list(call.urls, sysadmin=session.is_sysadmin), media.QUERY_LIST)
        doc, mime = run_query(self.state, call.urls, params, sysadmin=session.is_sysadmin)
        return xml_answer(doc, mime)

    # -- inventory ------------------------------------------------------------------------

    def _require_org(self, call: Call, org_id: str) -> Session:
        session = session_of(call)
        if not session.is_sysadmin and session.org.id != org_id:
            raise Forbidden("Access to this organization is forbidden")
        return session

    def org_list(self, call: Call) -> Answer:
        """``GET /api/org``: every org for a sysadmin, else the user's own."""
        session = session_of(call)
        orgs = self.state.orgs if session.is_sysadmin else (session.org,)
        return xml_answer(inventory.org_list(call.urls, orgs), media.ORG_LIST)

    def get_org(self, call: Call, id: str) -> Answer:
        """``GET /api/org/{id}``: the ``Org`` with its service links."""
        org = self.state.org(id)
        session = self._require_org(call, org.id)
        links = self.state.service_links_for(media.ORG, org.id)
        doc = inventory.org(call.urls, org, links, sysadmin=session.is_sysadmin)
        return xml_answer(doc, media.ORG)

    def get_admin_org(self, call: Call, id: str) -> Answer:
        """``GET /api/admin/org/{id}``: ``AdminOrg`` with ``task:create``/``event:create``."""
        org = self.state.org(id)
        self._require_org(call, org.id)
        links = self.state.service_links_for(media.ADMIN_ORG, org.id)
        return xml_answer(inventory.admin_org(call.urls, org, links), media.ADMIN_ORG)

    def get_vdc(self, call: Call, id: str) -> Answer:
        """``GET /api/vdc/{id}``: the ``Vdc`` with its service links."""
        vdc = self.state.vdc(id)
        self._require_org(call, vdc.org_id)
        links = self.state.service_links_for(media.VDC, vdc.id)
        return xml_answer(inventory.vdc(call.urls, vdc, links), media.VDC)

    def get_vapp(self, call: Call, id: str) -> Answer:
        """``GET /api/vApp/vapp-{id}``: the ``VApp`` with its service links."""
        vapp = self.state.vapp(id)
        self._require_org(call, self.state.vdc(vapp.vdc_id).org_id)
        links = self.state.service_links_for(media.VAPP, vapp.id)
        owner = self.state.user_by_id(vapp.owner_id) if vapp.owner_id else None
        return xml_answer(inventory.vapp(call.urls, vapp, links, owner=owner), media.VAPP)

    def get_vm(self, call: Call, id: str) -> Answer:
        """``GET /api/vApp/vm-{id}``: the ``Vm`` with its service links."""
        vm = self.state.vm(id)
        self._require_org(call, self.state.vdc(self.state.vapp(vm.vapp_id).vdc_id).org_id)
        links = self.state.service_links_for(media.VM, vm.id)
        return xml_answer(inventory.vm(call.urls, vm, links), media.VM)

    # -- tasks and events -----------------------------------------------------------------

    def _task_answer(self, call: Call, task: Task) -> Answer:
        org = self.state.org(task.org_id)
        doc = inventory.task(call.urls, task, org, self.state.user_by_id(task.creator_id))
        return xml_answer(doc, media.TASK)

    def list_tasks(self, call: Call, id: str) -> Answer:
        """``GET /api/tasksList/{org}``: the org's tasks."""
        org = self.state.org(id)
        self._require_org(call, org.id)
        tasks = [(t, self.state.user_by_id(t.creator_id)) for t in self.state.tasks(org.id)]
        return xml_answer(inventory.tasks_list(call.urls, org, tasks), media.TASKS_LIST)

    def create_task(self, call: Call, id: str) -> Answer:
        """``POST /api/tasksList/{org}``: create a task (200 + ``Task``)."""
        org = self.state.org(id)
        session = self._require_org(call, org.id)
        sent = read_task(read_body(call)).value
        task = stored(Task, sent, id=new_id(), org_id=org.id, creator_id=session.user.id)
        task = _finish(dataclasses.replace(task, start_time=now(), cancel_requested=False))
        self.state.add_task(task)
        log.info("task %s created (%s, %s)", task.id, task.operation_name, task.status)
        if self.on_task is not None:
            self.on_task(call.urls, task, "create")
        return self._task_answer(call, task)

    def _task_for(self, call: Call, task_id: str) -> Task:
        task = self.state.task(task_id)
        self._require_org(call, task.org_id)
        return task

    def get_task(self, call: Call, id: str) -> Answer:
        """``GET /api/task/{id}``."""
        return self._task_answer(call, self._task_for(call, id))

    def update_task(self, call: Call, id: str) -> Answer:
        """``PUT /api/task/{id}``: replace the task's state (200 + ``Task``)."""
        current = self._task_for(call, id)
        # Id, org, start time and the cancel request stay the cell's.
        sent = read_task(read_body(call)).value
        changes = {f: getattr(sent, f) for f in _TASK_FIELDS}
        task = self.state.replace_task(_finish(dataclasses.replace(current, **changes)))
        log.info("task %s updated (%s)", task.id, task.status)
        if self.on_task is not None:
            self.on_task(call.urls, task, "update")
        return self._task_answer(call, task)

    def cancel_task(self, call: Call, id: str) -> Answer:
        """``POST /api/task/{id}/action/cancel``: request cancellation (204)."""
        self._task_for(call, id)
        self.state.request_cancel(id)
        return Answer(204)

    def post_event(self, call: Call, id: str) -> Answer:
        """``POST /api/admin/org/{id}/events``: store an event (204)."""
        org = self.state.org(id)
        session = self._require_org(call, org.id)
        body = read_body(call)
        event = stored(
            Event,
            read_event(body),
            org_id=org.id,
            posted_by=session.user.id,
            timestamp=now(),
            xml=body,
        )
        self.state.add_event(event)
        log.info("event %s posted to org %s", event.type, org.name)
        return Answer(204)

    # -- debug ----------------------------------------------------------------------------

    def debug_index(self, call: Call) -> Answer:
        """``GET /cell/``: the registered services and the debug endpoints (JSON)."""
        return json_answer(
            {
                "services": [
                    {"id": s.urn, "name": s.name, "namespace": s.namespace, "enabled": s.enabled}
                    for s in self.state.services()
                ],
                "endpoints": ["/cell/events", "/cell/forwarded", "/cell/bundles/{namespace}"],
            }
        )

    def debug_events(self, call: Call) -> Answer:
        """``GET /cell/events``: every posted event (JSON)."""
        return json_answer([event_dict(e) for e in self.state.events()])

    def debug_forwarded(self, call: Call) -> Answer:
        """``GET /cell/forwarded``: the forwarding log (JSON)."""
        return json_answer([dataclasses.asdict(f) for f in self.state.forwarded()])

    def debug_bundles(self, call: Call, namespace: str) -> Answer:
        """``GET /cell/bundles/{namespace}``: merged bundles, locale → key → value."""
        for s in self.state.services():
            if s.namespace == namespace:
                return json_answer(self.state.bundles(s.id))
        raise NotFound(f"No extension service with namespace {namespace!r}")


def event_dict(e: Event) -> dict[str, Any]:
    """An event as JSON (the debug endpoint and ``vcdext cell`` logs)."""
    return {
        "org": f"urn:vcloud:org:{e.org_id}",
        "type": e.type,
        "serviceNamespace": e.service_namespace,
        "success": e.success,
        "typeFull": e.type_full,
        "owner": e.owner.href if e.owner else None,
        "user": e.user.href if e.user else None,
        "properties": dict(e.properties),
        "postedBy": f"urn:vcloud:user:{e.posted_by}",
        "timestamp": e.timestamp,
    }


#: What a ``PUT`` of a task changes: everything the client sends but its start time, cancel
#: request and organization (the cell's).
_TASK_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(HeldTask)
    if f.name not in ("start_time", "cancel_requested", "organization")
)


def _finish(task: Task) -> Task:
    """A task that reached a final status without an end time ends now."""
    if task.finished and task.end_time is None:
        return dataclasses.replace(task, end_time=now())
    return task
