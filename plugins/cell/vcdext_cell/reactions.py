"""Notifications and blocking tasks in the local cell, as vCD has them.

* :class:`Notifier` publishes a notification for what happens in the cell (tasks created and
  ended, vApps composed, deployed and deleted, blocking tasks) to the notification exchange
  (``systemExchange``, topic) as a ``vmext:Notification`` with vCD's routing key and
  ``notification.*`` headers, and its JSON form to ``vcd.notifications20`` (the cell's
  ``AmqpPrefix`` is ``vcd``). Like vCD, it publishes only once notifications are enabled
  (``PUT /api/admin/extension/settings/notifications``).
* :class:`Blocking` holds the blocking task settings and the blocked tasks: an operation in
  ``BlockingTaskOperations`` waits for ``resume``/``abort``/``fail`` on its ``BlockingTask``;
  at the timeout, the settings' ``TimeoutAction`` fires.
* :class:`ReactionRoutes` serves the settings, the blocking tasks and their actions, and a
  small mutable demo inventory: ``POST /api/vdc/{id}/action/composeVApp`` (an empty vApp),
  ``DELETE /api/vApp/vapp-{id}`` (composed vApps only), ``POST …/action/deploy`` (a Task,
  subject to blocking) and string metadata (``GET …/metadata``, ``PUT …/metadata/{key}``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kombu import connection as _connection
from kombu import entity as _entity
from kombu import messaging as _messaging

from vcdext.errors import BadRequest, Conflict, Forbidden, NotFound
from vcdext.settings import mask_secret
from vcdext.vcloud import media
from vcdext.vcloud import notification as n
from vcdext.vcloud.elements import expect
from vcdext.vcloud.metadata import (
    METADATA,
    read_metadata_value,
    write_metadata,
)
from vcdext.vcloud.model import Link, Reference, TaskError
from vcdext.vcloud.task import write_task
from vcdext.xml import parse, tostring

from . import inventory
from .http import Answer, Call, Router, xml_answer
from .inventory import held_task
from .model import Task, new_id, now, uuid_of
from .routes_extension import read_body, require_sysadmin
from .routes_tenant import session_of
from .seed import Org, User, VApp
from .state import State
from .views import Urls

log = logging.getLogger(__name__)

Connection: Any = _connection.Connection
Exchange: Any = _entity.Exchange
Producer: Any = _messaging.Producer

#: The cell's notification exchange (vCD's default ``AmqpExchange``) and ``AmqpPrefix``.
NOTIFICATION_EXCHANGE = "systemExchange"
AMQP_PREFIX = "vcd"
EVENT = n.EVENT_PREFIX


class Notifier:
    """Publishes notifications to the broker (thread-safe: one lock around one connection)."""

    def __init__(self, url: str, *, exchange: str = NOTIFICATION_EXCHANGE) -> None:
        self.url = url
        self.exchange = exchange
        self.json_exchange = f"{AMQP_PREFIX}.notifications20"
        #: vCD publishes nothing until notifications are enabled.
        self.enabled = False
        self._lock = threading.Lock()
        self._conn: Any = None
        self._producer: Any = None
        #: The notifications published (the last 1000), oldest first (for tests).
        self.published: list[n.Notification] = []

    def start(self) -> None:
        with self._lock:
            self._connect()

    def stop(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.release()
            self._conn = self._producer = None

    def _connect(self) -> None:
        self._conn = Connection(self.url)
        self._conn.ensure_connection(max_retries=3)
        channel = self._conn.channel()
        for name in (self.exchange, self.json_exchange):
            Exchange(name, type="topic", durable=True)(channel).declare()
        self._producer = Producer(channel)

    def publish(self, note: n.Notification) -> None:
        """Publish ``note`` in both formats (nothing while notifications are disabled)."""
        if not self.enabled:
            return
        key = n.routing_key(note)
        headers = n.notification_headers(note)
        xml = tostring(n.write_notification(note))
        body = json.dumps(n.notification_json(note)).encode()
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._producer is None:
                        self._connect()
                    self._producer.publish(
                        xml,
                        exchange=self.exchange,
                        routing_key=key,
                        headers=headers,
                        content_type="application/xml",
                        content_encoding="utf-8",
                    )
                    self._producer.publish(
                        body,
                        exchange=self.json_exchange,
                        routing_key=key,
                        headers=headers,
                        content_type="application/json",
                        content_encoding="utf-8",
                    )
                    break
                except Exception as exc:
                    if self._conn is not None:
                        self._conn.release()
                    self._conn = self._producer = None
                    if attempt == 2:
                        log.error(
                            "notification %s not published to %s: %s",
                            note.type,
                            mask_secret(self.url),
                            exc,
                        )
                        return
            self.published.append(dataclasses.replace(note, raw=xml))
            del self.published[:-1000]
        log.info("notification %s (%s)", note.type, key)


def entity(kind: str, object_id: str, name: str = "", rel: str = n.REL_ENTITY) -> n.EntityLink:
    """An ``EntityLink`` for a cell object (``kind``: vapp, task, blockingTask, org, user)."""
    return n.EntityLink(rel, f"urn:vcloud:{kind}:{object_id}", f"vcloud:{kind}", name)


def make_note(
    urls: Urls,
    type: str,
    subject: n.EntityLink,
    org: Org,
    user: User | None,
    *,
    success: bool = True,
    extra: tuple[n.EntityLink, ...] = (),
) -> n.Notification:
    """A notification of ``type`` (``vapp/create``) about ``subject``, by ``user`` in ``org``."""
    links = [subject, entity("org", org.id, org.name, n.REL_ORG)]
    if user is not None:
        links.append(entity("user", user.id, user.name, n.REL_USER))
    return n.Notification(
        type=EVENT + type,
        event_id=str(uuid.uuid4()),
        success=success,
        timestamp=now(),
        entity_links=(*links, *extra),
        links=(Link(n.REL_ENTITY_RESOLVER, f"{urls.api}/entity/"),),
    )


@dataclass
class _Blocked:
    id: str
    operation: str
    org: Org
    user: User | None
    owner: Reference
    task_id: str
    created: str
    deadline: float
    timeout_action: str
    urls: Urls
    status: str = "active"
    message: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    def document(self) -> n.BlockingTask:
        href = f"{self.urls.api}/admin/extension/blockingTask/{self.id}"
        actions = ("resume", "abort", "fail", "updateProgress")
        links = [Link(a, f"{href}/action/{a}", n.BLOCKING_TASK_OPERATION_PARAMS) for a in actions]
        if self.status != "active":
            links = []
        user = None
        if self.user is not None:
            user = Reference(self.urls.user(self.user.id), media.USER, self.user.name)
        return n.BlockingTask(
            name=self.operation,
            status=self.status,
            created_time=self.created,
            timeout_date=_xs_time(self.deadline),
            timeout_action=self.timeout_action,
            organization=Reference(self.urls.org(self.org.id), media.ORG, self.org.name),
            user=user,
            task_owner=self.owner,
            href=href,
            id=f"urn:vcloud:blockingTask:{self.id}",
            links=(*links, Link(media.REL_UP, f"{self.urls.api}/admin/extension/blockingTasks")),
        )


def _xs_time(epoch: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{stamp}.{int(epoch * 1000) % 1000:03d}Z"


#: A final blocking task status per action.
_DONE = {"resume": "resumed", "abort": "aborted", "fail": "failed"}


class Blocking:
    """The blocking task settings and the blocked tasks."""

    def __init__(self, notifier: Notifier, *, timeout_ms: int = 60_000) -> None:
        self.notifier = notifier
        self.settings = n.BlockingTaskSettings("abort", (), timeout_ms)
        self._lock = threading.Lock()
        self._tasks: dict[str, _Blocked] = {}

    def blocks(self, operation: str) -> bool:
        return operation in self.settings.operations

    def block(
        self,
        urls: Urls,
        operation: str,
        org: Org,
        user: User | None,
        owner: Reference,
        task_id: str,
    ) -> tuple[str, str]:
        """Hold ``operation`` until a service acts on it or the timeout passes: the action
        (``resume``, ``abort``, ``fail``) and its message."""
        with self._lock:
            settings = self.settings
            blocked = _Blocked(
                new_id(),
                operation,
                org,
                user,
                owner,
                task_id,
                now(),
                time.time() + settings.timeout_ms / 1000,
                settings.timeout_action,
                urls,
            )
            self._tasks[blocked.id] = blocked
        task_link = entity("task", task_id, operation, n.REL_TASK)
        owner_link = n.EntityLink(n.REL_TASK_OWNER, owner.id, "vcloud:vapp", owner.name)
        self.notifier.publish(
            make_note(
                urls,
                "blockingtask/create",
                entity("blockingTask", blocked.id, operation),
                org,
                user,
                extra=(task_link, owner_link),
            )
        )
        while True:
            with self._lock:
                remaining = blocked.deadline - time.time()
            if blocked.done.wait(max(0.0, remaining)):
                break
            with self._lock:
                if blocked.status == "active" and time.time() >= blocked.deadline:
                    blocked.status = _DONE.get(blocked.timeout_action, "aborted")
                    blocked.message = (
                        f"No decision within {settings.timeout_ms} ms; "
                        f"the default action ({blocked.timeout_action}) applies"
                    )
                    log.info("blocking task %s timed out: %s", blocked.id, blocked.timeout_action)
                    blocked.done.set()
        action = next(a for a, s in _DONE.items() if s == blocked.status)
        kind = "blockingtask/" + action
        self.notifier.publish(
            make_note(urls, kind, entity("blockingTask", blocked.id, operation), org, user)
        )
        return action, blocked.message

    def get(self, task_id: str) -> _Blocked:
        with self._lock:
            found = self._tasks.get(uuid_of(task_id))
        if found is None:
            raise NotFound(f"No blocking task with id {task_id}")
        return found

    def active(self) -> list[_Blocked]:
        with self._lock:
            return [t for t in self._tasks.values() if t.status == "active"]

    def act(self, task_id: str, action: str, params: n.OperationParams) -> None:
        """Resume, abort or fail a blocked task, or (``updateProgress``) extend its timeout."""
        with self._lock:
            blocked = self._tasks.get(uuid_of(task_id))
            if blocked is None:
                raise NotFound(f"No blocking task with id {task_id}")
            if blocked.status != "active":
                raise Conflict(f"The blocking task is {blocked.status} already")
            if action == "updateProgress":
                if params.timeout_ms is not None:
                    blocked.deadline = time.time() + params.timeout_ms / 1000
                return
            blocked.status = _DONE[action]
            blocked.message = params.message
            blocked.done.set()


class ReactionRoutes:
    """The routes of notifications, blocking tasks and the mutable demo inventory."""

    def __init__(self, state: State, notifier: Notifier, blocking: Blocking) -> None:
        self.state = state
        self.notifier = notifier
        self.blocking = blocking
        self._lock = threading.Lock()
        self.metadata: dict[str, dict[str, str]] = {}
        self.deployed: set[str] = set()

    def register(self, router: Router) -> None:
        add = router.add
        settings = "/api/admin/extension/settings"
        add("GET", f"{settings}/notifications", self.get_notifications)
        add("PUT", f"{settings}/notifications", self.put_notifications)
        add("GET", f"{settings}/blockingTask", self.get_blocking_settings)
        add("PUT", f"{settings}/blockingTask", self.put_blocking_settings)
        add("GET", f"{settings}/blockingTask/operations", self.get_blocking_operations)
        add("PUT", f"{settings}/blockingTask/operations", self.put_blocking_operations)
        add("GET", "/api/admin/extension/blockingTasks", self.list_blocking)
        add("GET", "/api/admin/extension/blockingTask/{id}", self.get_blocking)
        add("POST", "/api/admin/extension/blockingTask/{id}/action/{action}", self.act)
        add("POST", "/api/vdc/{id}/action/composeVApp", self.compose)
        add("DELETE", "/api/vApp/vapp-{id}", self.delete_vapp)
        add("POST", "/api/vApp/vapp-{id}/action/deploy", self.deploy)
        add("GET", "/api/vApp/vapp-{id}/metadata", self.get_metadata)
        add("PUT", "/api/vApp/vapp-{id}/metadata/{key}", self.put_metadata)

    def on_task(self, urls: Urls, task: Task, kind: str) -> None:
        """Publish ``task/create`` or ``task/update`` for a task of the tasks API."""
        publish_task(self.notifier, urls, self.state, task, kind)

    # -- settings ---------------------------------------------------------------------------

    def get_notifications(self, call: Call) -> Answer:
        require_sysadmin(call)
        href = f"{call.urls.api}/admin/extension/settings/notifications"
        doc = n.write_notifications_settings(self.notifier.enabled, href=href)
        return xml_answer(doc, n.NOTIFICATIONS_SETTINGS)

    def put_notifications(self, call: Call) -> Answer:
        require_sysadmin(call)
        self.notifier.enabled = n.read_notifications_settings(read_body(call))
        log.info("notifications %s", "enabled" if self.notifier.enabled else "disabled")
        return self.get_notifications(call)

    def get_blocking_settings(self, call: Call) -> Answer:
        require_sysadmin(call)
        href = f"{call.urls.api}/admin/extension/settings/blockingTask"
        doc = n.write_blocking_task_settings(self.blocking.settings, href=href)
        return xml_answer(doc, n.BLOCKING_TASK_SETTINGS)

    def put_blocking_settings(self, call: Call) -> Answer:
        require_sysadmin(call)
        settings = n.read_blocking_task_settings(read_body(call))
        if settings.timeout_action not in n.BLOCKING_ACTIONS:
            raise BadRequest(f"TimeoutAction must be one of {', '.join(n.BLOCKING_ACTIONS)}")
        self.blocking.settings = settings
        return self.get_blocking_settings(call)

    def get_blocking_operations(self, call: Call) -> Answer:
        require_sysadmin(call)
        doc = n.write_blocking_operations(self.blocking.settings.operations)
        return xml_answer(doc, n.TASK_OPERATION_LIST)

    def put_blocking_operations(self, call: Call) -> Answer:
        require_sysadmin(call)
        operations = n.read_blocking_operations(read_body(call))
        self.blocking.settings = dataclasses.replace(self.blocking.settings, operations=operations)
        log.info("blocking task operations: %s", ", ".join(operations) or "none")
        return self.get_blocking_operations(call)

    # -- blocking tasks ---------------------------------------------------------------------

    def list_blocking(self, call: Call) -> Answer:
        require_sysadmin(call)
        refs = [
            Reference(t.document().href, n.BLOCKING_TASK, t.operation)
            for t in self.blocking.active()
        ]
        href = f"{call.urls.api}/admin/extension/blockingTasks"
        return xml_answer(n.write_blocking_task_references(refs, href=href), n.BLOCKING_TASK_LIST)

    def get_blocking(self, call: Call, id: str) -> Answer:
        require_sysadmin(call)
        blocked = self.blocking.get(id)
        return xml_answer(n.write_blocking_task(blocked.document()), n.BLOCKING_TASK)

    def act(self, call: Call, id: str, action: str) -> Answer:
        require_sysadmin(call)
        if action not in (*n.BLOCKING_ACTIONS, "updateProgress"):
            raise NotFound(f"No action {action} on a blocking task")
        self.blocking.act(id, action, n.read_operation_params(read_body(call)))
        log.info("blocking task %s: %s", id, action)
        return Answer(204)

    # -- the mutable demo inventory ---------------------------------------------------------

    def _vapp(self, call: Call, vapp_id: str) -> tuple[VApp, Org]:
        session = session_of(call)
        vapp = self.state.vapp(vapp_id)
        org = self.state.org(self.state.vdc(vapp.vdc_id).org_id)
        if not session.is_sysadmin and session.org.id != org.id:
            raise NotFound(f"No vApp with id vapp-{vapp_id}")
        return vapp, org

    def compose(self, call: Call, id: str) -> Answer:
        """``POST /api/vdc/{id}/action/composeVApp``: an empty vApp named by the
        ``ComposeVAppParams`` (201 + ``VApp``)."""
        session = session_of(call)
        vdc = self.state.vdc(id)
        if not session.is_sysadmin and session.org.id != vdc.org_id:
            raise Forbidden("Access to this organization is forbidden")
        params = parse(read_body(call))
        expect(params, media.VCLOUD_NS, "ComposeVAppParams")
        name = (params.get("name") or "").strip()
        if not name:
            raise BadRequest("ComposeVAppParams needs a name")
        vapp = VApp(new_id(), name, vdc.id, session.user.id)
        self.state.add_vapp(vapp)
        org = self.state.org(vdc.org_id)
        note = make_note(call.urls, "vapp/create", entity("vapp", vapp.id, name), org, session.user)
        self.notifier.publish(note)
        doc = inventory.vapp(call.urls, vapp, (), owner=session.user)
        return xml_answer(doc, media.VAPP, status=201)

    def delete_vapp(self, call: Call, id: str) -> Answer:
        """``DELETE /api/vApp/vapp-{id}``: remove a composed vApp (202 + a finished Task)."""
        session = session_of(call)
        vapp, org = self._vapp(call, id)
        if not self.state.remove_vapp(vapp.id):
            raise BadRequest("Only vApps composed in this cell can be deleted; the seed stays")
        task = self._task(
            call.urls, org, session.user, vapp, "vappDelete", f"Deleting vApp {vapp.name}"
        )
        task = self._end(call.urls, org, session.user, task, "success", "")
        note = make_note(
            call.urls, "vapp/delete", entity("vapp", vapp.id, vapp.name), org, session.user
        )
        self.notifier.publish(note)
        return self._task_answer(call.urls, task, org, session.user, 202)

    def deploy(self, call: Call, id: str) -> Answer:
        """``POST …/action/deploy``: a Task (202) that runs in the background and waits for a
        decision when ``vappDeploy`` is a blocking operation."""
        session = session_of(call)
        vapp, org = self._vapp(call, id)
        task = self._task(
            call.urls, org, session.user, vapp, "vappDeploy", f"Deploying vApp {vapp.name}"
        )
        urls, user = call.urls, session.user

        def run() -> None:
            status, message = "success", ""
            if self.blocking.blocks("vappDeploy"):
                owner = task.owner
                assert owner is not None
                action, message = self.blocking.block(urls, "vappDeploy", org, user, owner, task.id)
                status = {"resume": "success", "abort": "aborted", "fail": "error"}[action]
            if status == "success":
                with self._lock:
                    self.deployed.add(vapp.id)
            self._end(urls, org, user, task, status, message)
            note = make_note(
                urls,
                "vapp/deploy",
                entity("vapp", vapp.id, vapp.name),
                org,
                user,
                success=status == "success",
            )
            self.notifier.publish(note)

        thread = threading.Thread(target=run, name=f"vcdext-cell-deploy-{task.id}", daemon=True)
        thread.start()
        return self._task_answer(call.urls, task, org, user, 202)

    def get_metadata(self, call: Call, id: str) -> Answer:
        vapp, _ = self._vapp(call, id)
        with self._lock:
            entries = dict(self.metadata.get(vapp.id, {}))
        return xml_answer(
            write_metadata(entries, href=f"{call.urls.vapp(vapp.id)}/metadata"), METADATA
        )

    def put_metadata(self, call: Call, id: str, key: str) -> Answer:
        """``PUT …/metadata/{key}``: set a string value (202 + a finished Task, as vCD)."""
        session = session_of(call)
        vapp, org = self._vapp(call, id)
        value = read_metadata_value(read_body(call))
        with self._lock:
            self.metadata.setdefault(vapp.id, {})[key] = value
        task = self._task(
            call.urls, org, session.user, vapp, "metadataUpdate", f"Updating metadata {key}"
        )
        task = self._end(call.urls, org, session.user, task, "success", "")
        return self._task_answer(call.urls, task, org, session.user, 202)

    # -- tasks ------------------------------------------------------------------------------

    def _task(
        self, urls: Urls, org: Org, user: User, vapp: VApp, operation: str, text: str
    ) -> Task:
        owner = Reference(urls.vapp(vapp.id), media.VAPP, vapp.name, f"urn:vcloud:vapp:{vapp.id}")
        task = Task(
            status="running",
            service_namespace="com.vmware.vcloud",
            operation=text,
            operation_name=operation,
            start_time=now(),
            owner=owner,
            id=new_id(),
            org_id=org.id,
            creator_id=user.id,
        )
        return self.state.add_task(task)

    def _end(
        self, urls: Urls, org: Org, user: User | None, task: Task, status: str, message: str
    ) -> Task:
        error = TaskError(message, 400, "BAD_REQUEST") if status == "error" else None
        details = message or None
        ended = dataclasses.replace(
            self.state.task(task.id), status=status, end_time=now(), error=error, details=details
        )
        self.state.replace_task(ended)
        kind = {"success": "complete", "error": "fail", "aborted": "abort"}.get(status, "update")
        self.notifier.publish(
            make_note(
                urls,
                f"task/{kind}",
                entity("task", task.id, task.operation_name),
                org,
                user,
                success=status == "success",
            )
        )
        return ended

    def _task_answer(self, urls: Urls, task: Task, org: Org, user: User, status: int) -> Answer:
        doc = write_task(held_task(urls, task, org, user))
        return xml_answer(doc, media.TASK, status=status)


def publish_task(notifier: Notifier, urls: Urls, state: State, task: Task, kind: str) -> None:
    """Publish ``task/<kind>`` for a task created or updated through the tasks API."""
    org = state.org(task.org_id)
    user = state.user_by_id(task.creator_id)
    notifier.publish(
        make_note(
            urls,
            f"task/{kind}",
            entity("task", task.id, task.operation_name or task.name),
            org,
            user,
            success=task.status != "error",
        )
    )


__all__ = ["Blocking", "Notifier", "ReactionRoutes", "publish_task"]
