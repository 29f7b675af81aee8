"""The cell's thread-safe store: seed inventory, sessions, registrations, tasks, events, bundles.

One lock guards everything; methods never call out while holding it. Records are frozen
(:mod:`.model`), so what a method returns stays consistent after the lock is released.
Methods raise :class:`~vcdext.errors.HTTPError` subclasses, which the server turns into
vCD ``Error`` documents.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vcdext.errors import BadRequest, NotFound

from .model import (
    AclRule,
    ApiDefinition,
    ApiFilter,
    Event,
    Forwarded,
    ResourceClass,
    ResourceClassAction,
    Right,
    Service,
    ServiceLink,
    ServiceResource,
    Session,
    Task,
    new_id,
    now,
    uuid_of,
)
from .seed import ALL_RIGHTS, Org, Seed, User, VApp, Vdc, Vm, derived_id

_T = TypeVar("_T")
_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z])")


def duplicate(message: str) -> BadRequest:
    """vCD answers duplicates with a 400 whose minor code is ``DUPLICATE_NAME``."""
    return BadRequest(message, minor_code="DUPLICATE_NAME")


def compile_url_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a ``java.util.regex`` ``UrlPattern`` for Python's ``re``.

    Java's ``(?<name>...)`` named groups become Python's ``(?P<name>...)``; everything else
    is taken as is (the common subset). Matching uses :meth:`re.Pattern.fullmatch`, like Java's
    ``Matcher.matches()``. Raises :class:`BadRequest` for a pattern Python cannot compile.
    """
    try:
        return re.compile(_JAVA_NAMED_GROUP.sub("(?P<", pattern))
    except re.error as exc:
        raise BadRequest(
            f"UrlPattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None


@dataclass
class _Upload:
    service_id: str
    file_size: int
    data: bytearray


class State:
    """Everything the cell knows. Create one per cell."""

    def __init__(self, seed: Seed) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._services: dict[str, Service] = {}
        self._filters: dict[str, ApiFilter] = {}
        self._links: dict[str, ServiceLink] = {}
        self._definitions: dict[str, ApiDefinition] = {}
        self._rights: dict[str, Right] = {}
        self._classes: dict[str, ResourceClass] = {}
        self._actions: dict[str, ResourceClassAction] = {}
        self._rules: dict[str, AclRule] = {}
        self._resources: dict[str, ServiceResource] = {}
        self._tasks: dict[str, Task] = {}
        self._events: list[Event] = []
        self._bundles: dict[str, dict[str, dict[str, str]]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._forwarded: list[Forwarded] = []
        self._vapps: dict[str, VApp] = {}  # composed in the cell (reactions.py), by id
        self._order = 0
        for name in seed.right_names:
            right = Right(name, category="Seed", id=derived_id("right", name))
            self._rights[right.id] = right

    # -- inventory (immutable after start) ------------------------------------------------

    @property
    def orgs(self) -> tuple[Org, ...]:
        """Every org of the seed."""
        return self.seed.orgs

    def org(self, org_id: str) -> Org:
        """The org with this id (UUID or URN); 404 if none."""
        found = next((o for o in self.seed.orgs if o.id == uuid_of(org_id)), None)
        if found is None:
            raise NotFound(f"No organization with id {org_id}")
        return found

    def vdc(self, vdc_id: str) -> Vdc:
        """The VDC with this id; 404 if none."""
        for org in self.seed.orgs:
            for vdc in org.vdcs:
                if vdc.id == uuid_of(vdc_id):
                    return vdc
        raise NotFound(f"No VDC with id {vdc_id}")

    def vapp(self, vapp_id: str) -> VApp:
        """The vApp with this id (of the seed, or composed since); 404 if none."""
        with self._lock:
            composed = self._vapps.get(uuid_of(vapp_id))
        if composed is not None:
            return composed
        for org in self.seed.orgs:
            for vdc in org.vdcs:
                for vapp in vdc.vapps:
                    if vapp.id == uuid_of(vapp_id):
                        return vapp
        raise NotFound(f"No vApp with id vapp-{vapp_id}")

    def add_vapp(self, vapp: VApp) -> None:
        """Add a composed vApp to the inventory (its VDC must exist)."""
        self.vdc(vapp.vdc_id)
        with self._lock:
            self._vapps[vapp.id] = vapp

    def remove_vapp(self, vapp_id: str) -> bool:
        """Remove a composed vApp; ``False`` for one of the seed (which stays)."""
        with self._lock:
            return self._vapps.pop(uuid_of(vapp_id), None) is not None

    def vm(self, vm_id: str) -> Vm:
        """The VM with this id (UUID, ``vm-{uuid}`` or URN); 404 if none."""
        wanted = uuid_of(vm_id).removeprefix("vm-")
        for org in self.seed.orgs:
            for vdc in org.vdcs:
                for vapp in vdc.vapps:
                    for vm in vapp.vms:
                        if vm.id == wanted:
                            return vm
        raise NotFound(f"No VM with id vm-{vm_id}")

    def user_by_id(self, user_id: str) -> User | None:
        """The seed user with this id, if any."""
        return next((u for u in self.seed.users if u.id == uuid_of(user_id)), None)

    # -- sessions -------------------------------------------------------------------------

    def login(self, user_name: str, org_name: str, password: str) -> Session | None:
        """A new session, or ``None`` for unknown user/org or a wrong password."""
        org = self.seed.org_named(org_name)
        user = None
        if org is not None:
            user = next((u for u in org.users if u.name.lower() == user_name.lower()), None)
        # Compare even for an unknown user so that timing does not tell which part was wrong.
        expected = user.password if user is not None else secrets.token_hex(16)
        if not hmac.compare_digest(expected.encode(), password.encode()) or user is None:
            return None
        assert org is not None
        session = Session(
            token=secrets.token_urlsafe(24),
            bearer=secrets.token_urlsafe(48),
            user=user,
            org=org,
            created=now(),
        )
        with self._lock:
            self._sessions[session.token] = session
            self._sessions[session.bearer] = session
        return session

    def session(self, token: str) -> Session | None:
        """The session a token (either kind) names, if any."""
        with self._lock:
            return self._sessions.get(token)

    def logout(self, session: Session) -> None:
        """Forget both tokens of ``session``."""
        with self._lock:
            self._sessions.pop(session.token, None)
            self._sessions.pop(session.bearer, None)

    # -- services -------------------------------------------------------------------------

    def add_service(
        self,
        service: Service,
        filters: Iterable[ApiFilter] = (),
        links: Iterable[ServiceLink] = (),
        definitions: Iterable[ApiDefinition] = (),
    ) -> Service:
        """Register a service with its inline parts; the namespace must be new."""
        filters = [self._compiled(f) for f in filters]
        with self._lock:
            for other in self._services.values():
                if other.namespace == service.namespace:
                    raise duplicate(
                        f"An extension service with namespace {service.namespace!r} "
                        f"already exists ({other.name})"
                    )
            self._order += 1
            service = dataclasses.replace(service, order=self._order)
            self._services[service.id] = service
            for f in filters:
                self._filters[f.id] = f
            for link in links:
                self._links[link.id] = link
            for definition in definitions:
                self._definitions[definition.id] = definition
        return service

    def service(self, service_id: str) -> Service:
        """The service with this id (UUID or URN); 404 if none."""
        with self._lock:
            found = self._services.get(uuid_of(service_id))
        if found is None:
            raise NotFound(f"No extension service with id {service_id}")
        return found

    def services(self) -> list[Service]:
        """Every service, in registration order."""
        with self._lock:
            return sorted(self._services.values(), key=lambda s: s.order)

    def update_service(self, service_id: str, **changes: object) -> Service:
        """Replace fields of a service; 404 if none."""
        with self._lock:
            current = self._services.get(uuid_of(service_id))
            if current is None:
                raise NotFound(f"No extension service with id {service_id}")
            updated = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
            self._services[current.id] = updated
        return updated

    def delete_service(self, service_id: str) -> Service:
        """Remove a service with its filters, links, API definitions and bundles.

        Its rights stay (unowned), as in vCD; registering them again adopts them.
        """
        with self._lock:
            service = self._services.pop(uuid_of(service_id), None)
            if service is None:
                raise NotFound(f"No extension service with id {service_id}")
            for table in (self._filters, self._links, self._definitions):
                for key in [k for k, v in table.items() if v.service_id == service.id]:
                    del table[key]
            for right in list(self._rights.values()):
                if right.service_id == service.id:
                    self._rights[right.id] = dataclasses.replace(right, service_id=None)
            for c in [c for c in self._classes.values() if c.service_id == service.id]:
                self._drop_class(c.id)
            self._bundles.pop(service.id, None)
        return service

    def match(self, path: str) -> Service | None:
        """The enabled service whose ``UrlPattern`` matches ``path`` as a whole.

        Several matches: the highest ``Priority`` wins, then the earliest registration.
        """
        with self._lock:
            candidates = {
                f.service_id
                for f in self._filters.values()
                if f.compiled is not None and f.compiled.fullmatch(path)
            }
            services = [
                self._services[sid]
                for sid in candidates
                if sid in self._services and self._services[sid].enabled
            ]
        if not services:
            return None
        return min(services, key=lambda s: (-s.priority, s.order))

    # -- filters, links, definitions ------------------------------------------------------

    @staticmethod
    def _compiled(f: ApiFilter) -> ApiFilter:
        if f.url_pattern is None:
            return f
        return dataclasses.replace(f, compiled=compile_url_pattern(f.url_pattern))

    def add_filter(self, f: ApiFilter) -> ApiFilter:
        """Add an API filter (its pattern compiled); 404 for an unknown service."""
        f = self._compiled(f)
        with self._lock:
            self._require_service(f.service_id)
            self._filters[f.id] = f
        return f

    def add_link(self, link: ServiceLink) -> ServiceLink:
        """Add a service link; 404 for an unknown service."""
        with self._lock:
            self._require_service(link.service_id)
            self._links[link.id] = link
        return link

    def add_definition(self, definition: ApiDefinition) -> ApiDefinition:
        """Add an API definition; 404 for an unknown service."""
        with self._lock:
            self._require_service(definition.service_id)
            self._definitions[definition.id] = definition
        return definition

    def _require_service(self, service_id: str) -> None:
        if service_id not in self._services:
            raise NotFound(f"No extension service with id {service_id}")

    def filters(self, service_id: str | None = None) -> list[ApiFilter]:
        """API filters, of one service or all."""
        with self._lock:
            return [f for f in self._filters.values() if service_id in (None, f.service_id)]

    def links(self, service_id: str | None = None) -> list[ServiceLink]:
        """Service links, of one service or all."""
        with self._lock:
            return [x for x in self._links.values() if service_id in (None, x.service_id)]

    def definitions(self, service_id: str | None = None) -> list[ApiDefinition]:
        """API definitions, of one service or all."""
        with self._lock:
            return [d for d in self._definitions.values() if service_id in (None, d.service_id)]

    def get_filter(self, filter_id: str) -> ApiFilter:
        """One API filter; 404 if none."""
        return self._get(self._filters, filter_id, "API filter")

    def get_link(self, link_id: str) -> ServiceLink:
        """One service link; 404 if none."""
        return self._get(self._links, link_id, "service link")

    def get_definition(self, definition_id: str) -> ApiDefinition:
        """One API definition; 404 if none."""
        return self._get(self._definitions, definition_id, "API definition")

    def delete_filter(self, filter_id: str) -> None:
        """Remove an API filter; 404 if none."""
        self._delete(self._filters, filter_id, "API filter")

    def delete_link(self, link_id: str) -> None:
        """Remove a service link; 404 if none."""
        self._delete(self._links, link_id, "service link")

    def delete_definition(self, definition_id: str) -> None:
        """Remove an API definition; 404 if none."""
        self._delete(self._definitions, definition_id, "API definition")

    def _get(self, table: Mapping[str, _T], key: str, what: str) -> _T:
        with self._lock:
            found = table.get(uuid_of(key))
        if found is None:
            raise NotFound(f"No {what} with id {key}")
        return found

    def _delete(self, table: dict[str, Any], key: str, what: str) -> None:
        with self._lock:
            if table.pop(uuid_of(key), None) is None:
                raise NotFound(f"No {what} with id {key}")

    def service_links_for(self, resource_type: str, object_id: str) -> list[ServiceLink]:
        """Links of enabled services to render on an object of ``resource_type``."""
        with self._lock:
            enabled = {s.id for s in self._services.values() if s.enabled}
            order = {s.id: s.order for s in self._services.values()}
            found = [
                link
                for link in self._links.values()
                if link.service_id in enabled
                and link.resource_type.lower() == resource_type.lower()
                and (not link.resource_id or uuid_of(link.resource_id) == object_id)
            ]
        return sorted(found, key=lambda x: order.get(x.service_id, 0))

    # -- rights ---------------------------------------------------------------------------

    def add_right(self, right: Right) -> Right:
        """Register a service right; an unowned right of that name is adopted (same URN)."""
        with self._lock:
            self._require_service(right.service_id or "")
            existing = next((r for r in self._rights.values() if r.name == right.name), None)
            if existing is not None:
                if existing.service_id is not None and existing.service_id in self._services:
                    raise duplicate(f"The right {right.name!r} already exists")
                right = dataclasses.replace(right, id=existing.id)
            self._rights[right.id] = right
        return right

    def right(self, right_id: str) -> Right:
        """One right; 404 if none."""
        return self._get(self._rights, right_id, "right")

    def rights(self, service_id: str | None = None) -> list[Right]:
        """Rights by name, of one service or all."""
        with self._lock:
            found = [r for r in self._rights.values() if service_id in (None, r.service_id)]
        return sorted(found, key=lambda r: r.name)

    def delete_right(self, right_id: str) -> None:
        """Remove a right; 404 if none."""
        self._delete(self._rights, right_id, "right")

    def rights_of(self, user: User, form: str) -> list[str]:
        """The user's rights as the security context lists them: URNs or full names."""
        with self._lock:
            by_name = {r.name: r for r in self._rights.values()}
        names = sorted(by_name) if ALL_RIGHTS in user.rights else sorted(set(user.rights))
        if form == "name":
            return names
        return [
            by_name[n].urn if n in by_name else f"urn:vcloud:right:{derived_id('right', n)}"
            for n in names
        ]

    # -- authorization: resource classes, actions, ACL rules, service resources -----------

    def add_resource_class(self, resource_class: ResourceClass) -> tuple[ResourceClass, bool]:
        """Add a class to its service, unless one of that name exists: ``(class, created)``
        (vCD returns the existing class then)."""
        with self._lock:
            self._require_service(resource_class.service_id)
            for existing in self._classes.values():
                if (existing.service_id, existing.name) == (
                    resource_class.service_id,
                    resource_class.name,
                ):
                    return existing, False
            self._classes[resource_class.id] = resource_class
        return resource_class, True

    def resource_class(self, class_id: str) -> ResourceClass:
        """One resource class; 404 if none."""
        return self._get(self._classes, class_id, "resource class")

    def resource_classes(self, service_id: str | None = None) -> list[ResourceClass]:
        """Resource classes, of one service or all, by name."""
        with self._lock:
            found = [c for c in self._classes.values() if service_id in (None, c.service_id)]
        return sorted(found, key=lambda c: c.name)

    def delete_resource_class(self, class_id: str) -> None:
        """Remove a class with its actions, their rules and its service resources."""
        with self._lock:
            if uuid_of(class_id) not in self._classes:
                raise NotFound(f"No resource class with id {class_id}")
            self._drop_class(uuid_of(class_id))

    def _drop_class(self, class_id: str) -> None:  # lock held
        self._classes.pop(class_id, None)
        for a in [a for a in self._actions.values() if a.class_id == class_id]:
            self._drop_action(a.id)
        for key in [k for k, r in self._resources.items() if r.class_id == class_id]:
            del self._resources[key]

    def add_action(self, action: ResourceClassAction) -> ResourceClassAction:
        """Add an action (its pattern compiled); 404 for an unknown class."""
        action = dataclasses.replace(action, compiled=compile_url_pattern(action.url_pattern))
        with self._lock:
            if action.class_id not in self._classes:
                raise NotFound(f"No resource class with id {action.class_id}")
            self._actions[action.id] = action
        return action

    def action(self, action_id: str) -> ResourceClassAction:
        """One resource class action; 404 if none."""
        return self._get(self._actions, action_id, "resource class action")

    def actions(self, class_id: str | None = None) -> list[ResourceClassAction]:
        """Actions, of one class or all."""
        with self._lock:
            return [a for a in self._actions.values() if class_id in (None, a.class_id)]

    def delete_action(self, action_id: str) -> None:
        """Remove an action with its ACL rules."""
        with self._lock:
            if uuid_of(action_id) not in self._actions:
                raise NotFound(f"No resource class action with id {action_id}")
            self._drop_action(uuid_of(action_id))

    def _drop_action(self, action_id: str) -> None:  # lock held
        self._actions.pop(action_id, None)
        for key in [k for k, r in self._rules.items() if r.action_id == action_id]:
            del self._rules[key]

    def add_rule(self, rule: AclRule) -> AclRule:
        """Add an ACL rule; 404 for an unknown action."""
        with self._lock:
            if rule.action_id not in self._actions:
                raise NotFound(f"No resource class action with id {rule.action_id}")
            self._rules[rule.id] = rule
        return rule

    def rule(self, rule_id: str) -> AclRule:
        """One ACL rule; 404 if none."""
        return self._get(self._rules, rule_id, "ACL rule")

    def rules(self, action_id: str | None = None) -> list[AclRule]:
        """ACL rules, of one action or all."""
        with self._lock:
            return [r for r in self._rules.values() if action_id in (None, r.action_id)]

    def delete_rule(self, rule_id: str) -> None:
        """Remove an ACL rule; 404 if none."""
        self._delete(self._rules, rule_id, "ACL rule")

    def add_resource(self, resource: ServiceResource) -> ServiceResource:
        """Add a service resource; 404 for an unknown class."""
        with self._lock:
            if resource.class_id not in self._classes:
                raise NotFound(f"No resource class with id {resource.class_id}")
            self._resources[resource.id] = resource
        return resource

    def resource(self, resource_id: str) -> ServiceResource:
        """One service resource; 404 if none."""
        return self._get(self._resources, resource_id, "service resource")

    def resources(self, class_id: str | None = None) -> list[ServiceResource]:
        """Service resources, of one class or all."""
        with self._lock:
            return [r for r in self._resources.values() if class_id in (None, r.class_id)]

    def delete_resource(self, resource_id: str) -> None:
        """Remove a service resource; 404 if none."""
        self._delete(self._resources, resource_id, "service resource")

    # -- tasks and events -----------------------------------------------------------------

    def add_task(self, task: Task) -> Task:
        """Store a new task."""
        with self._lock:
            self._tasks[task.id] = task
        return task

    def task(self, task_id: str) -> Task:
        """One task; 404 if none."""
        return self._get(self._tasks, task_id, "task")

    def tasks(self, org_id: str | None = None) -> list[Task]:
        """Tasks, of one org or all."""
        with self._lock:
            return [t for t in self._tasks.values() if org_id in (None, t.org_id)]

    def replace_task(self, task: Task) -> Task:
        """Store a task's new state; 404 if none. A cancel request recorded meanwhile stays
        (the new state was made from an earlier read)."""
        with self._lock:
            stored = self._tasks.get(task.id)
            if stored is None:
                raise NotFound(f"No task with id {task.id}")
            if stored.cancel_requested and not task.cancel_requested:
                task = dataclasses.replace(task, cancel_requested=True)
            self._tasks[task.id] = task
        return task

    def request_cancel(self, task_id: str) -> Task:
        """Record a cancel request; a finished task is left as it is."""
        with self._lock:
            task = self._tasks.get(uuid_of(task_id))
            if task is None:
                raise NotFound(f"No task with id {task_id}")
            if not task.finished:
                task = dataclasses.replace(task, cancel_requested=True)
                self._tasks[task.id] = task
        return task

    def add_event(self, event: Event) -> None:
        """Store a posted event."""
        with self._lock:
            self._events.append(event)

    def events(self) -> list[Event]:
        """Every posted event, oldest first."""
        with self._lock:
            return list(self._events)

    # -- localization bundles ---------------------------------------------------------------

    def open_upload(self, service_id: str, file_size: int) -> str:
        """A new transfer id for one bundle upload to ``service_id``."""
        transfer = new_id()
        with self._lock:
            self._require_service(service_id)
            self._uploads[transfer] = _Upload(service_id, file_size, bytearray())
        return transfer

    def receive_upload(
        self, transfer: str, chunk: bytes, start: int, total: int | None
    ) -> tuple[str, bytes] | None:
        """Store one chunk; when the upload is complete, close it and return
        ``(service_id, data)``. ``total`` is the size from ``Content-Range`` (or ``None``)."""
        with self._lock:
            upload = self._uploads.get(transfer)
            if upload is None:
                raise NotFound("No upload is waiting at this location")
            end = start + len(chunk)
            if end > upload.file_size or (total or 0) > upload.file_size:
                del self._uploads[transfer]
                raise BadRequest(
                    f"The upload is larger than the declared fileSize ({upload.file_size} bytes)"
                )
            if len(upload.data) < end:
                upload.data.extend(b"\0" * (end - len(upload.data)))
            upload.data[start:end] = chunk
            if total is not None and end < total:
                return None
            del self._uploads[transfer]
            return upload.service_id, bytes(upload.data)

    def merge_bundle(self, service_id: str, bundles: Mapping[str, Mapping[str, str]]) -> None:
        """Merge locale → key → value: new keys are added, existing values replaced."""
        with self._lock:
            self._require_service(service_id)
            current = self._bundles.setdefault(service_id, {})
            for locale, entries in bundles.items():
                current.setdefault(locale, {}).update(entries)

    def bundles(self, service_id: str) -> dict[str, dict[str, str]]:
        """locale → key → value merged for a service."""
        with self._lock:
            return {k: dict(v) for k, v in self._bundles.get(service_id, {}).items()}

    # -- forwarding log -------------------------------------------------------------------

    def record_forwarded(self, entry: Forwarded) -> None:
        """Log one forwarded request (the last 1000 are kept)."""
        with self._lock:
            self._forwarded.append(entry)
            del self._forwarded[:-1000]

    def forwarded(self) -> list[Forwarded]:
        """The forwarding log, oldest first."""
        with self._lock:
            return list(self._forwarded)
