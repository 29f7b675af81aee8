"""Registering the enabled services with vCD: observe → plan → apply, idempotently.

The runtime calls :func:`register_services` at start-up (``vcdext run``) and the CLI calls it
for ``vcdext register``; :func:`reconcile` is the same with a client and desired services of
your own (tests, the local cell). A second run plans nothing, writes nothing, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..notifications import NotificationSettings
from ..registry import Service
from ..settings import Settings
from .apply import Applier, CreateConflict
from .blocking import configure_reactions
from .client import VcdClient
from .errors import VcdError
from .model import DesiredService, desired_service
from .observe import Observer
from .plan import DeleteService, Plan, ServicePlan, UpdateRight, plan_prune, plan_service

if TYPE_CHECKING:  # what register_services needs of the runtime (which imports this module)
    from ..hookspecs import RuntimeView
    from .extensions import ExtensionRegistration

log = logging.getLogger(__name__)

#: ``{plugin name or namespace: {locale: {key: value}}}``, the services' localization messages.
Messages = Mapping[str, Mapping[str, Mapping[str, str]]]


@dataclass
class RegistrationResult:
    """The outcome of one registration run."""

    plan: Plan = field(default_factory=Plan)
    dry_run: bool = False
    #: Whether vCD was contacted at all (``False`` without ``vcd.url``).
    contacted: bool = True
    #: Full right name (``{namespace}:Name``) → ``urn:vcloud:right:<uuid>``.
    right_ids: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Namespaces checked in vCD.
    checked: list[str] = field(default_factory=list)
    skipped_reason: str = ""
    #: Changes to vCD's notification and blocking task settings (:mod:`.blocking`).
    reactions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether vCD was changed (never in a dry run)."""
        return not self.dry_run and (not self.plan.is_empty or bool(self.reactions))

    def right_aliases(self) -> dict[str, tuple[str, ...]]:
        """For ``runtime.dispatcher.learn_right_ids``: name → (URN, bare UUID)."""
        return {
            name: (urn, urn.rsplit(":", 1)[-1]) if urn.startswith("urn:") else (urn,)
            for name, urn in self.right_ids.items()
        }

    def summary(self) -> str:
        """One line for the operator."""
        if not self.contacted:
            return f"vCD registration skipped: {self.skipped_reason}"
        count = len(self.checked)
        services = f"{count} service{'s' if count != 1 else ''}"
        changes = len(self.plan.rows())
        if self.plan.is_empty and self.reactions:
            verb = "planned" if self.dry_run else "applied"
            settings = f"{len(self.reactions)} settings change(s) {verb}"
            return f"services up to date ({services} checked); {settings}"
        if self.plan.is_empty:
            return f"vCD is up to date ({services} checked); nothing changed"
        noun = f"{changes} change{'s' if changes != 1 else ''}"
        if self.dry_run:
            return f"dry run: {noun} planned for {services}; nothing was changed"
        return f"vCD updated: {noun} applied to {services}"

    def report(self) -> str:
        """The plan table (if any), notes and warnings, then the summary."""
        parts = [self.plan.table()] if not self.plan.is_empty else []
        parts += [f"note: {n}" for n in self.plan.notes]
        parts += [f"warning: {w}" for w in self.warnings]
        verb = "planned" if self.dry_run else "applied"
        parts += [f"settings {verb}: {r}" for r in self.reactions]
        parts.append(self.summary())
        return "\n".join(p for p in parts if p)


def desired_services(
    services: Iterable[Service], *, exchange: str, messages: Messages | None = None
) -> list[DesiredService]:
    """The desired state of ``services``; ``messages`` is keyed by plugin name or namespace."""
    messages = messages or {}
    return [
        desired_service(
            s, exchange=exchange, messages=messages.get(s.plugin) or messages.get(s.namespace)
        )
        for s in services
    ]


def foreign_rights(services: Iterable[Service]) -> set[str]:
    """The rights operations require that none of ``services`` declares (vCD's own, such as
    ``vApp: View``, or another service's): their URNs are looked up at registration."""
    services = list(services)
    declared = {r.full_name for s in services for r in s.rights}
    required = {r for s in services for op in s.operations for r in op.rights}
    return {r for r in required - declared if not r.startswith("urn:")}


def reconcile(
    client: VcdClient,
    desired: Iterable[DesiredService],
    *,
    dry_run: bool = False,
    prune: bool = False,
    other_rights: Iterable[str] = (),
) -> RegistrationResult:
    """Make vCD match ``desired`` through a logged-in ``client``.

    :param dry_run: read only; the result's plan says what would change.
    :param prune: also delete services vcdext registered earlier that are not in ``desired``.
    :param other_rights: names of rights vcdext does not register whose URNs the result
        should carry too (see :func:`foreign_rights`).
    :raises VcdError: vCD refused a change; the changes before it stay (the next run resumes).
    """
    observer = Observer(client)
    applier = Applier(client, observer)
    result = RegistrationResult(dry_run=dry_run)
    executed: list[ServicePlan] = []
    wanted = list(desired)
    for want in wanted:
        result.checked.append(want.namespace)
        sp = plan_service(
            want, observer.find(want.namespace, authorization=bool(want.resource_classes))
        )
        if dry_run or not sp.actions:
            executed.append(sp)
            if sp.actual is not None:
                result.right_ids.update({r.value.name: r.id for r in sp.actual.rights if r.id})
            continue
        executed += _apply(applier, observer, want, sp, result)
    if prune:
        from .extensions import companion_services

        companions = companion_services(client)
        managed = [s for s in observer.managed() if _uuid(s.held.href) not in companions]
        for sp in plan_prune(managed, (w.namespace for w in wanted)):
            result.checked.append(sp.namespace)
            executed.append(sp)
            if not dry_run:
                applier.apply(sp)
    result.plan = Plan(tuple(executed))
    result.right_ids.update(observer.right_ids(other_rights))
    return result  # the caller reports result.summary(): `vcdext register` prints it, run logs it


def _uuid(href: str) -> str:
    """The last path segment of an admin service's href (its uuid)."""
    return href.rstrip("/").rsplit("/", 1)[-1]


def _apply(
    applier: Applier,
    observer: Observer,
    want: DesiredService,
    sp: ServicePlan,
    result: RegistrationResult,
) -> list[ServicePlan]:
    """Apply ``sp`` and collect the right ids; returns the plans that were carried out.

    A create that vCD refuses because the service exists by now (another instance won the
    race) turns into an update. After a create the service is read back and whatever is still
    missing is applied: with a shared ``operationKey`` vCD may have handed back the other
    instance's service, whose children that instance may still be adding.
    """
    done = [sp]
    try:
        applied = applier.apply(sp)
    except CreateConflict as conflict:
        actual = observer.find(want.namespace, authorization=bool(want.resource_classes))
        if actual is None:
            raise conflict.cause from None
        log.info("vCD %s: created meanwhile (another instance?); updating it", want.namespace)
        sp = plan_service(want, actual)
        done = [sp]  # the create never happened
        applied = applier.apply(sp)
    result.warnings += applied.warnings
    service = applied.service
    if sp.creates:
        service = observer.find(want.namespace, authorization=bool(want.resource_classes))
        if service is None:
            raise VcdError(f"vCD does not list service {want.namespace} after creating it")
        # Only structure is re-applied: a right vCD would not update stays as it is.
        rest = plan_service(want, service)
        todo = tuple(a for a in rest.actions if not isinstance(a, UpdateRight))
        if todo:
            log.info("vCD %s: %d change(s) still missing", want.namespace, len(todo))
            rest = ServicePlan(rest.namespace, want, service, todo, rest.notes)
            done.append(rest)
            applied_rest = applier.apply(rest)
            result.warnings += applied_rest.warnings
            applied.right_ids.update(applied_rest.right_ids)
    ids = {r.value.name: r.id for r in (service.rights if service else ()) if r.id}
    ids.update(applied.right_ids)
    if service is not None and any(r.name not in ids for r in want.rights):
        ids.update({r.value.name: r.id for r in observer.rights(service) if r.id})
    result.right_ids.update(ids)
    return done


def register_services(
    runtime: RuntimeView,
    settings: Settings,
    *,
    dry_run: bool = False,
    prune: bool = False,
    messages: Messages | None = None,
    client: VcdClient | None = None,
) -> RegistrationResult | ExtensionRegistration:
    """Register every enabled plugin's service with the vCD of ``settings.vcd`` (as MQTT API
    extensions over cloudapi when ``runtime.transport`` is ``mqtt``).

    Without ``vcd.url`` nothing is registered (the result says why). Call
    ``runtime.dispatcher.learn_right_ids(result.right_aliases())`` afterwards.

    :param messages: localization messages per plugin (or namespace), uploaded as bundles.
    :param client: a client to use (connected or not; it is closed only if created here).
    :raises ConfigError: ``[vcd]`` is incomplete.
    :raises VcdError: login or registration failed.
    """
    if client is None and not settings.vcd.url:
        log.info("vcd.url is not set: registering nothing with vCD")
        return RegistrationResult(
            dry_run=dry_run, contacted=False, skipped_reason="vcd.url is not set"
        )
    desired = desired_services(
        runtime.registry.services.values(), exchange=settings.amqp.exchange, messages=messages
    )
    own = client is None
    vcd = client if client is not None else VcdClient.from_settings(settings)
    try:
        if not vcd.connected:
            vcd.connect()
        if settings.runtime.transport == "mqtt":  # cloudapi extensions, filters and tokens
            from .extensions import register_extensions

            services = runtime.registry.services.values()
            mqtt = register_extensions(
                vcd,
                services,
                settings,
                dry_run=dry_run,
                other_rights=foreign_rights(services),
                messages=messages,
            )
            if prune:
                _prune_extensions(vcd, services, settings, mqtt, dry_run=dry_run)
            if runtime.registry.notifications or runtime.registry.blocking_tasks:
                mqtt.warnings.append(
                    "vCD's notification and blocking task settings are managed only with "
                    'runtime.transport = "amqp"'
                )
            return mqtt
        result = reconcile(
            vcd,
            desired,
            dry_run=dry_run,
            prune=prune,
            other_rights=foreign_rights(runtime.registry.services.values()),
        )
        if settings.section(NotificationSettings).manage_vcd:
            registry = runtime.registry
            result.reactions = configure_reactions(
                vcd,
                operations=[b.operation for b in registry.blocking_tasks],
                notifications=bool(registry.notifications or registry.blocking_tasks),
                dry_run=dry_run,
            )
        return result
    finally:
        if own:
            vcd.close()


def _prune_extensions(
    client: VcdClient,
    services: Iterable[Service],
    settings: Settings,
    result: ExtensionRegistration,
    *,
    dry_run: bool,
) -> None:
    """``--prune`` with ``runtime.transport = "mqtt"``: the AMQP rules, for API extensions."""
    from .extension_prune import prune_extensions
    from .extensions import desired_extension
    from .tokens import TokenFile

    version = settings.mqtt.extension_version
    keep = [
        (d.vendor, d.name, d.version) for d in (desired_extension(s, version) for s in services)
    ]
    prune_extensions(client, keep, TokenFile(settings.mqtt.token_file), result, dry_run=dry_run)


def unregister_service(
    client: VcdClient, namespace: str, *, dry_run: bool = False
) -> ServicePlan | None:
    """Disable, then delete the service with ``namespace``; ``None`` if vCD has none.

    Unlike ``--prune`` this works on any service, vcdext's or not: the operator named it.
    """
    observer = Observer(client)
    actual = observer.find(namespace, children=False)
    if actual is None:
        return None
    plan = ServicePlan(namespace, None, actual, (DeleteService(actual),))
    if not dry_run:
        Applier(client, observer).apply(plan)
    return plan
