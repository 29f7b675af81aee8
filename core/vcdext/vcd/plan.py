"""The registration plan: desired state vs vCD's state → the fewest changes (pure, no I/O).

:func:`plan_service` compares one :class:`~vcdext.vcd.model.DesiredService` with what vCD has
(or ``None``) and returns a :class:`ServicePlan`; :func:`plan_prune` plans the deletion of
services vcdext registered earlier and no longer serves. :class:`Plan` renders as a table
(``vcdext register --dry-run``). Rules:

* the service is created with its filters and links inline, then its API definition, rights
  and bundle; an existing one is updated by PUT only for fields that differ;
* filters cannot be edited: missing ones are added, stale (and duplicate) ones removed;
* service links and API definitions likewise (a changed one is removed and added again);
* rights are added when missing and updated when their description, category or bundle key
  differ; rights no longer declared are left in vCD (roles may hold them) and reported;
* the bundle is uploaded when its digest differs from the one in the service's description;
* resource classes (vCD's authorization framework) are compared by name and fields, their
  actions by name, method and pattern, their ACL rules by name and accesses: what differs is
  removed and added again (vCD edits none of them), after the rights an ACL rule may name.
  ``AuthorizationEnabled`` is switched on last, once the classes, actions and rules exist,
  and off first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from ..acl import Acl, ResourceAction
from ..acl import ResourceClass as DeclaredResourceClass
from ..vcloud.model import ApiDefinition, Held, ResourceClass, Right, ServiceLink
from .bundle import LocalizationBundle
from .model import ActualAction, ActualResourceClass, ActualService, DesiredService, RightSpec

D = TypeVar("D")
R = TypeVar("R")
A = TypeVar("A")
X = TypeVar("X")

# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateService:
    """POST the service with its filters and links inline."""

    desired: DesiredService
    verb = "create"
    subject = "service"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        d = self.desired
        return f"{d.name} (routing key {d.routing_key}, exchange {d.exchange})"


@dataclass(frozen=True)
class UpdateService:
    """PUT the service's own fields (never its filters or links)."""

    desired: DesiredService
    href: str
    #: ``"field: old → new"`` per differing field.
    changes: tuple[str, ...]
    verb = "update"
    subject = "service"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return "; ".join(self.changes)


@dataclass(frozen=True)
class AddFilter:
    """POST an ``ApiFilter`` to the service."""

    url_pattern: str
    verb = "add"
    subject = "api filter"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return self.url_pattern


@dataclass(frozen=True)
class RemoveFilter:
    """DELETE an API filter (stale or duplicate)."""

    url_pattern: str
    href: str
    verb = "remove"
    subject = "api filter"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return self.url_pattern


def _link_text(link: ServiceLink) -> str:
    on = link.resource_type + (f" {link.resource_id}" if link.resource_id else "")
    return f"rel={link.rel} {link.href} on {on}"


@dataclass(frozen=True)
class AddLink:
    """POST a ``ServiceLink`` to the service."""

    link: ServiceLink
    verb = "add"
    subject = "service link"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return _link_text(self.link)


@dataclass(frozen=True)
class RemoveLink:
    """DELETE a service link."""

    link: ServiceLink
    href: str
    verb = "remove"
    subject = "service link"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return _link_text(self.link)


@dataclass(frozen=True)
class AddApiDefinition:
    """POST an ``ApiDefinition`` to the service."""

    definition: ApiDefinition
    verb = "add"
    subject = "api definition"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{self.definition.name} at {self.definition.entry_point}"


@dataclass(frozen=True)
class RemoveApiDefinition:
    """DELETE an API definition."""

    definition: ApiDefinition
    href: str
    verb = "remove"
    subject = "api definition"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{self.definition.name} at {self.definition.entry_point}"


@dataclass(frozen=True)
class AddRight:
    """POST a ``Right`` to the service's ``rights`` link."""

    right: RightSpec
    verb = "add"
    subject = "right"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return self.right.name


@dataclass(frozen=True)
class UpdateRight:
    """PUT a right whose description, category or bundle key changed."""

    right: RightSpec
    href: str
    changes: tuple[str, ...]
    verb = "update"
    subject = "right"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{self.right.name}: " + "; ".join(self.changes)


@dataclass(frozen=True)
class UploadBundle:
    """Upload the localization bundle, then record its digest in the description."""

    bundle: LocalizationBundle
    verb = "upload"
    subject = "bundle"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{', '.join(self.bundle.locales)} (sha256 {self.bundle.digest})"


def _class_text(c: DeclaredResourceClass | ResourceClass) -> str:
    return c.name + (f" ({c.mime_type})" if c.mime_type else "")


def _action_text(class_name: str, name: str, method: str, pattern: str) -> str:
    return f"{class_name}: {name} = {method} {pattern}"


def _rule_text(class_name: str, action: str, rule: Acl) -> str:
    who = "any user" if rule.principal_right is None else f"holders of {rule.principal_right}"
    return (
        f"{class_name}/{action}: {rule.name} = {who}, organization {rule.organization}, "
        f"resources {rule.resource}"
    )


def resource_value(c: DeclaredResourceClass) -> ResourceClass:
    """The ``ResourceClass`` to send for a declared class (without its actions)."""
    return ResourceClass(c.name, c.mime_type, c.url_template, c.nid, c.urn_pattern)


def rule_key(rule: Acl) -> tuple[str, str, str, str, str]:
    """The key of a declared rule, comparable with :attr:`ActualRule.key`."""
    principal = rule.principal_right
    return (
        rule.name,
        rule.resource,
        rule.organization,
        "Shared" if principal is None else "Entity",
        principal or "",
    )


@dataclass(frozen=True)
class AddResourceClass:
    """POST a ``ResourceClass``, then each of its actions and their ACL rules."""

    resource_class: DeclaredResourceClass
    verb = "add"
    subject = "resource class"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return _class_text(self.resource_class)


@dataclass(frozen=True)
class RemoveResourceClass:
    """DELETE a resource class (with its actions, rules and service resources)."""

    resource_class: ResourceClass
    href: str
    verb = "remove"
    subject = "resource class"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return _class_text(self.resource_class)


@dataclass(frozen=True)
class AddResourceAction:
    """POST a ``ResourceClassAction`` (then its ACL rules) to an existing class."""

    class_name: str
    class_href: str
    action: ResourceAction
    verb = "add"
    subject = "resource class action"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        a = self.action
        return _action_text(self.class_name, a.name, a.method, a.url_pattern)


@dataclass(frozen=True)
class RemoveResourceAction:
    """DELETE a resource class action (with its ACL rules)."""

    class_name: str
    action: ActualAction
    verb = "remove"
    subject = "resource class action"

    @property
    def href(self) -> str:
        """Where the action is."""
        return self.action.held.href

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        a = self.action.held.value
        return _action_text(self.class_name, a.name, a.http_method, a.url_pattern)


@dataclass(frozen=True)
class AddAclRule:
    """POST an ``AclRule`` to an existing action."""

    class_name: str
    action_name: str
    action_href: str
    rule: Acl
    verb = "add"
    subject = "acl rule"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return _rule_text(self.class_name, self.action_name, self.rule)


@dataclass(frozen=True)
class RemoveAclRule:
    """DELETE an ACL rule."""

    class_name: str
    action_name: str
    name: str
    href: str
    verb = "remove"
    subject = "acl rule"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{self.class_name}/{self.action_name}: {self.name}"


@dataclass(frozen=True)
class DeleteService:
    """Disable, then DELETE a service (``--prune``)."""

    actual: ActualService
    verb = "delete"
    subject = "service"

    @property
    def detail(self) -> str:
        """One line for the plan table."""
        return f"{self.actual.name} (disable, then delete; --prune)"


Action = (
    CreateService
    | UpdateService
    | AddFilter
    | RemoveFilter
    | AddLink
    | RemoveLink
    | AddApiDefinition
    | RemoveApiDefinition
    | AddRight
    | UpdateRight
    | UploadBundle
    | AddResourceClass
    | RemoveResourceClass
    | AddResourceAction
    | RemoveResourceAction
    | AddAclRule
    | RemoveAclRule
    | DeleteService
)


# -- plans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicePlan:
    """The changes for one service, in the order they are applied."""

    namespace: str
    desired: DesiredService | None
    actual: ActualService | None
    actions: tuple[Action, ...] = ()
    #: Things left alone on purpose, worth telling the operator.
    notes: tuple[str, ...] = ()

    @property
    def creates(self) -> bool:
        """Whether the plan creates the service."""
        return any(isinstance(a, CreateService) for a in self.actions)


@dataclass(frozen=True)
class Plan:
    """The plan for every service: what ``vcdext register`` does (or would do)."""

    services: tuple[ServicePlan, ...] = ()

    @property
    def notes(self) -> list[str]:
        """What was left alone on purpose, across services."""
        return [note for sp in self.services for note in sp.notes]

    @property
    def actions(self) -> list[tuple[str, Action]]:
        """``(namespace, action)`` for every action."""
        return [(sp.namespace, a) for sp in self.services for a in sp.actions]

    @property
    def is_empty(self) -> bool:
        """Whether there is nothing to change."""
        return not self.actions

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(service, action, object, detail)`` per change; a create also lists the filters
        and links it carries."""
        rows = []
        for ns, action in self.actions:
            rows.append((ns, action.verb, action.subject, action.detail))
            if isinstance(action, CreateService):
                rows += [(ns, "add", "api filter", p) for p in action.desired.filters]
                rows += [(ns, "add", "service link", _link_text(x)) for x in action.desired.links]
            actions: Sequence[ResourceAction] = ()
            class_name = ""
            if isinstance(action, AddResourceClass):
                actions, class_name = action.resource_class.actions, action.resource_class.name
            elif isinstance(action, AddResourceAction):
                class_name = action.class_name
            for a in actions:
                detail = _action_text(class_name, a.name, a.method, a.url_pattern)
                rows.append((ns, "add", "resource class action", detail))
            if isinstance(action, AddResourceAction):
                actions = (action.action,)
            for a in actions:
                for rule in a.acl:
                    rows.append((ns, "add", "acl rule", _rule_text(class_name, a.name, rule)))
        return rows

    def table(self) -> str:
        """The changes as an aligned text table (empty string when there are none)."""
        rows = [("SERVICE", "ACTION", "OBJECT", "DETAIL"), *self.rows()]
        if len(rows) == 1:
            return ""
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
            for row in rows
        )


# -- planning -------------------------------------------------------------------------------


def _changed(label: str, old: object, new: object) -> str | None:
    if old == new:
        return None

    def show(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value)
        return repr(text) if text == "" or " " in text or "\n" in text else text

    return f"{label}: {show(old)} → {show(new)}"


def service_changes(desired: DesiredService, actual: ActualService) -> tuple[str, ...]:
    """The service fields that differ (the namespace cannot change in vCD)."""
    pairs: list[tuple[str, object, object]] = [
        ("name", actual.name, desired.name),
        ("description", actual.description, desired.description.strip()),
        ("enabled", actual.enabled, desired.enabled),
        ("authorization enabled", actual.authorization_enabled, desired.authorization_enabled),
        ("routing key", actual.routing_key, desired.routing_key),
        ("priority", actual.priority, desired.priority),
        ("exchange", actual.exchange, desired.exchange),
        ("vendor", actual.vendor, desired.vendor),
    ]
    changes = [c for c in (_changed(*p) for p in pairs) if c is not None]
    if not actual.managed:
        changes.append("mark as managed by vcdext")
    return tuple(changes)


def _diff_keyed(
    desired: Iterable[D],
    actual: Iterable[R],
    desired_key: Callable[[D], Hashable],
    actual_key: Callable[[R], Hashable],
    add: Callable[[D], A],
    remove: Callable[[R], X],
) -> tuple[list[A], list[X]]:
    """Objects vCD cannot edit: keep one remote per wanted key, remove the rest (stale or
    duplicate), add what is missing."""
    desired = tuple(desired)
    wanted = {desired_key(d) for d in desired}
    seen: set[Hashable] = set()
    removes = []
    for remote in actual:
        key = actual_key(remote)
        if key in wanted and key not in seen:
            seen.add(key)
        else:
            removes.append(remove(remote))
    adds = [add(d) for d in desired if desired_key(d) not in seen]
    return adds, removes


def _diff_rights(
    desired: tuple[RightSpec, ...], actual: Iterable[Held[Right]]
) -> tuple[list[AddRight | UpdateRight], list[str]]:
    have = {r.value.name: r for r in actual}
    actions: list[AddRight | UpdateRight] = []
    for right in desired:
        remote = have.pop(right.name, None)
        if remote is None:
            actions.append(AddRight(right))
            continue
        pairs = [
            ("description", remote.value.description, right.description),
            ("category", remote.value.category, right.category),
            ("bundle key", remote.value.bundle_key, right.bundle_key),
        ]
        changes = tuple(c for c in (_changed(*p) for p in pairs) if c is not None)
        if changes:
            actions.append(UpdateRight(right, remote.href, changes))
    notes = [
        f"right {name} is no longer declared; left in vCD (roles may hold it)"
        for name in sorted(have)
    ]
    return actions, notes


def _diff_actions(
    declared: DeclaredResourceClass, actual: ActualResourceClass
) -> list[RemoveResourceAction | AddResourceAction | AddAclRule | RemoveAclRule]:
    name = declared.name
    wanted = {(a.name, a.method, a.url_pattern): a for a in declared.actions}
    seen: dict[tuple[str, str, str], ActualAction] = {}
    changes: list[RemoveResourceAction | AddResourceAction | AddAclRule | RemoveAclRule] = []
    for remote in actual.actions:
        v = remote.held.value
        key = (v.name, v.http_method, v.url_pattern)
        if key in wanted and key not in seen:
            seen[key] = remote
        else:
            changes.append(RemoveResourceAction(name, remote))
    for key, action in wanted.items():
        remote_action = seen.get(key)
        if remote_action is None:
            changes.append(AddResourceAction(name, actual.held.href, action))
            continue
        changes += _diff_rules(name, action, remote_action)
    return changes


def _diff_rules(
    class_name: str, action: ResourceAction, remote: ActualAction
) -> list[AddAclRule | RemoveAclRule]:
    adds, removes = _diff_keyed(
        action.acl,
        remote.rules,
        rule_key,
        lambda r: r.key,
        lambda rule: AddAclRule(class_name, action.name, remote.held.href, rule),
        lambda r: RemoveAclRule(class_name, action.name, r.held.value.name, r.held.href),
    )
    return [*removes, *adds]


def _diff_classes(
    desired: tuple[DeclaredResourceClass, ...], actual: tuple[ActualResourceClass, ...]
) -> list[Action]:
    """Resource classes by name; a class whose own fields changed is removed and added."""
    removes: list[Action] = []
    adds: list[Action] = []
    kept: dict[str, ActualResourceClass] = {}
    wanted = {c.name: c for c in desired}
    for remote in actual:
        declared = wanted.get(remote.held.value.name)
        if (
            declared is None
            or remote.held.value.name in kept
            or resource_value(declared) != remote.held.value
        ):
            removes.append(RemoveResourceClass(remote.held.value, remote.held.href))
        else:
            kept[declared.name] = remote
    for declared in desired:
        if declared.name in kept:
            adds += _diff_actions(declared, kept[declared.name])
        else:
            adds.append(AddResourceClass(declared))
    return removes + adds


def _enable_last(desired: DesiredService, actual_enabled: bool) -> DesiredService:
    """``desired`` as the service is to be sent before its classes exist: authorization
    stays as vCD has it until the classes, actions and rules are in place."""
    if desired.authorization_enabled and not actual_enabled:
        return replace(desired, authorization_enabled=False)
    return desired


def plan_service(desired: DesiredService, actual: ActualService | None) -> ServicePlan:
    """The changes that make vCD's ``actual`` service what ``desired`` says."""
    staged = _enable_last(desired, actual is not None and actual.authorization_enabled)
    enable: list[Action] = []
    if staged is not desired:
        enable.append(
            UpdateService(
                desired, actual.href if actual else "", ("authorization enabled: false → true",)
            )
        )
    if actual is None:
        create: list[Action] = [CreateService(staged)]
        create += [AddApiDefinition(d) for d in desired.api_definitions]
        create += [AddRight(r) for r in desired.rights]
        create += [AddResourceClass(c) for c in desired.resource_classes]
        if desired.bundle is not None:
            create.append(UploadBundle(desired.bundle))
        create += enable
        return ServicePlan(desired.namespace, staged, None, tuple(create))
    actions: list[Action] = []
    notes: list[str] = []
    if not actual.managed:
        notes.append(f"{desired.namespace} was registered outside vcdext; vcdext adopts it")
    changes = service_changes(staged, actual)
    if changes:
        actions.append(UpdateService(staged, actual.href, changes))
    if desired.bundle is not None and desired.bundle.digest != actual.bundle_digest:
        actions.append(UploadBundle(desired.bundle))
    filter_adds, filter_removes = _diff_keyed(
        desired.filters,
        actual.filters,
        lambda p: p,
        lambda f: f.value.url_pattern,
        AddFilter,
        lambda f: RemoveFilter(f.value.url_pattern or "", f.href),
    )
    link_adds, link_removes = _diff_keyed(
        desired.links,
        actual.service_links,
        lambda x: x.key,
        lambda r: r.value.key,
        AddLink,
        lambda r: RemoveLink(r.value, r.href),
    )
    def_adds, def_removes = _diff_keyed(
        desired.api_definitions,
        actual.api_definitions,
        lambda d: d.key,
        lambda r: r.value.key,
        AddApiDefinition,
        lambda r: RemoveApiDefinition(r.value, r.href),
    )
    # New filters first, so a changed pattern never leaves a gap; links and definitions are
    # removed before they are added again.
    actions += filter_adds
    actions += filter_removes
    actions += link_removes
    actions += link_adds
    actions += def_removes
    actions += def_adds
    right_actions, right_notes = _diff_rights(desired.rights, actual.rights)
    actions += right_actions
    notes += right_notes
    actions += _diff_classes(desired.resource_classes, actual.resource_classes)
    actions += enable
    return ServicePlan(desired.namespace, staged, actual, tuple(actions), tuple(notes))


def plan_prune(managed: Iterable[ActualService], keep: Iterable[str]) -> list[ServicePlan]:
    """Delete the vcdext-managed services whose namespace is not in ``keep``."""
    kept = set(keep)
    return [
        ServicePlan(s.namespace, None, s, (DeleteService(s),))
        for s in sorted(managed, key=lambda s: s.namespace)
        if s.managed and s.namespace not in kept
    ]
