"""Registering services as MQTT API extensions over cloudapi (``runtime.transport = "mqtt"``).

Per service, idempotently (protocol notes §2 "MQTT variant", docs/protocol.md "MQTT"):

1. the extension ``POST /cloudapi/1.0.0/extensions/api`` (vendor/name/version; updated with
   ``PUT`` when its priority, description or enabled flag differ);
2. its API filters, one per path template: ``/cloudapi/1.0.0/apiFilters`` with
   ``externalSystem`` = the extension and ``urlScope: EXT_API`` from API 37.3, else the legacy
   ``/api/admin/extension/service/<uuid>/apifilters``; stale ones are removed;
3. its extension token ``POST /cloudapi/1.0.0/tokens``, created only when
   ``mqtt.token_file`` has none for the extension or vCD lists no token of the extension any
   more; stored in that file (mode 0600), never logged;
4. its rights, service links, API definition, resource classes (with their actions and ACL
   rules) and localization bundle, through the extension's legacy admin service
   ``/api/admin/extension/service/<uuid>`` (named in the ``Link`` header of the extension, as
   VMware's API extensibility guide shows), planned and applied as for an AMQP service; the
   bundle's digest is kept in the extension's description, as an AMQP service keeps it in its
   own. vCD prefixes a right with that service's namespace, which vcdext reads from the
   service document instead of assuming it; the URNs are learned for :meth:`right_aliases`
   under the plugin's own full names (``{namespace}:Name``);
5. ``authorizationEnabled``: on exactly when the service declares resource classes, switched
   on as the run's last change (once they exist) and off as its first.

A dry run observes and plans only; a second run plans nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..acl import ResourceClass as DeclaredResourceClass
from ..registry import RegisteredService
from ..settings import Settings
from ..vcloud import media
from ..vcloud import mqtt as names
from ..vcloud.extension import write_api_filter
from ..vcloud.model import ApiDefinition, ApiFilter, ServiceLink
from ..vcloud.query import read_api_filter_record
from ..vcloud.versions import at_least
from .apply import Applier
from .bundle import LocalizationBundle
from .client import VcdClient
from .errors import VcdApiError, VcdError
from .model import (
    ActualService,
    DesiredService,
    RightSpec,
    compose_description,
    desired_service,
    split_description,
)
from .observe import Observer
from .plan import (
    Action,
    AddApiDefinition,
    AddFilter,
    AddLink,
    AddResourceClass,
    AddRight,
    CreateService,
    DeleteService,
    Plan,
    RemoveFilter,
    ServicePlan,
    UpdateService,
    UploadBundle,
    plan_service,
)
from .tokens import TokenFile

log = logging.getLogger(__name__)

#: From this API version on, API filters are cloudapi ``apiFilters``.
CLOUDAPI_FILTERS = "37.3"
_EXTENSIONS = "1.0.0/extensions/api"
_FILTERS = "1.0.0/apiFilters"
_TOKENS = "1.0.0/tokens"
_LEGACY_ID = re.compile(r"/extension/service/([^/>;\s]+)")


@dataclass(frozen=True)
class DesiredExtension:
    """What vCD should hold for one service served over MQTT."""

    namespace: str
    vendor: str
    name: str
    version: str
    priority: int
    description: str
    filters: tuple[str, ...]
    #: Rights and service links, registered through the extension's legacy admin service.
    rights: tuple[RightSpec, ...] = ()
    links: tuple[ServiceLink, ...] = ()
    #: The API definition (name, ``{baseUri}`` entry point), as for an AMQP service.
    api_definitions: tuple[ApiDefinition, ...] = ()
    bundle: LocalizationBundle | None = None
    #: vCD authorization framework classes (ACL principals as the plugin names its rights).
    resource_classes: tuple[DeclaredResourceClass, ...] = ()

    @property
    def id(self) -> str:
        return names.extension_id(self.vendor, self.name, self.version)

    @property
    def owner(self) -> str:
        return names.broker_username(self.vendor, self.name, self.version)

    @property
    def authorization(self) -> bool:
        """Whether vCD's authorization framework is to be on: exactly when the service
        declares resource classes (as for an AMQP service's ``AuthorizationEnabled``)."""
        return bool(self.resource_classes)

    def body(self, bundle_digest: str | None = None, *, authorization: bool) -> dict[str, Any]:
        """The cloudapi ``ExternalSystem`` of the extension, as POSTed and PUT (its description
        records the digest of the localization bundle vCD holds, as an AMQP service's does)."""
        return {
            "name": self.name,
            "version": self.version,
            "vendor": self.vendor,
            "priority": self.priority,
            "enabled": True,
            "authorizationEnabled": authorization,
            # marked (--prune), with the digest of the bundle vCD holds
            "description": compose_description(self.description, bundle_digest),
        }


def desired_extension(
    service: RegisteredService,
    version: str,
    messages: Mapping[str, Mapping[str, str]] | None = None,
) -> DesiredExtension:
    """The extension that serves ``service`` (vendor: the service's, else its namespace);
    ``messages`` (``{locale: {key: text}}``) make its localization bundle."""
    parts = desired_service(service, exchange="", messages=messages)
    return DesiredExtension(
        namespace=service.namespace,
        vendor=service.vendor or service.namespace,
        name=service.name,
        version=version,
        priority=service.priority,
        description=service.description,
        filters=service.api_filters,
        rights=parts.rights,
        links=parts.links,
        api_definitions=parts.api_definitions,
        bundle=parts.bundle,
        resource_classes=parts.resource_classes,
    )


@dataclass(frozen=True)
class Step:
    """One planned change."""

    verb: str
    subject: str
    detail: str


@dataclass
class ExtensionRegistration:
    """The outcome of one MQTT registration run (the same report as the AMQP one's)."""

    steps: list[tuple[str, Step]] = field(default_factory=list)
    dry_run: bool = False
    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Things left alone on purpose, worth telling the operator.
    notes: list[str] = field(default_factory=list)
    #: Full right name (the plugin's ``{namespace}:Name``, and vCD's own name of the right
    #: when it differs) → ``urn:vcloud:right:<uuid>``.
    right_ids: dict[str, str] = field(default_factory=dict)
    #: Plugin name → the namespace of its extension's legacy admin service, where its
    #: resource classes are (for :class:`~vcdext.vcd.authorization.VcdAuthorizer`); only
    #: extensions that exist and have one.
    namespaces: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return not self.dry_run and bool(self.steps)

    def right_aliases(self) -> dict[str, tuple[str, ...]]:
        """For ``runtime.dispatcher.learn_right_ids``: name → (URN, bare UUID)."""
        return {
            name: (urn, urn.rsplit(":", 1)[-1]) if urn.startswith("urn:") else (urn,)
            for name, urn in self.right_ids.items()
        }

    def table(self) -> str:
        rows = [("EXTENSION", "ACTION", "OBJECT", "DETAIL")]
        rows += [(ext, s.verb, s.subject, s.detail) for ext, s in self.steps]
        if len(rows) == 1:
            return ""
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
            for row in rows
        )

    def summary(self) -> str:
        count = len(self.checked)
        what = f"{count} MQTT extension{'s' if count != 1 else ''}"
        changes = len(self.steps)
        if not changes:
            return f"vCD is up to date ({what} checked); nothing changed"
        noun = f"{changes} change{'s' if changes != 1 else ''}"
        if self.dry_run:
            return f"dry run: {noun} planned for {what}; nothing was changed"
        return f"vCD updated: {noun} applied to {what}"

    def report(self) -> str:
        parts = [self.table()] + [f"note: {n}" for n in self.notes]
        parts += [f"warning: {w}" for w in self.warnings] + [self.summary()]
        return "\n".join(p for p in parts if p)


def register_extensions(
    client: VcdClient,
    services: Iterable[RegisteredService],
    settings: Settings,
    *,
    dry_run: bool = False,
    other_rights: Iterable[str] = (),
    messages: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> ExtensionRegistration:
    """Make vCD's MQTT extensions, filters, tokens, rights, service links, API definitions
    and resource classes match ``services``.

    :param other_rights: names of rights vcdext does not register (vCD's own, such as
        ``vApp: View``) whose URNs the result should carry too.
    :param messages: localization messages by plugin (or namespace), uploaded as bundles.

    :raises VcdError: vCD refused a call, or is older than API 35.0 (no MQTT extensions).
    :raises ConfigError: ``mqtt.token_file`` cannot be read or written.
    """
    version = client.api_version or ""
    if not at_least(version, "35.0"):
        raise VcdError(
            f"vCD API {version or '?'} has no MQTT extensions (API 35.0, vCD 10.2, and later); "
            'use runtime.transport = "amqp"'
        )
    tokens = TokenFile(settings.mqtt.token_file)
    result = ExtensionRegistration(dry_run=dry_run)
    existing = {_key(e): e for e in _list(client, _EXTENSIONS)}
    for service in services:
        texts = (messages or {}).get(service.plugin) or (messages or {}).get(service.namespace)
        desired = desired_extension(service, settings.mqtt.extension_version, texts)
        result.checked.append(desired.id)
        found = existing.get((desired.vendor, desired.name, desired.version))
        reconcile = _Reconcile(client, desired, tokens, result, dry_run)
        reconcile.run(found)
        if reconcile.admin_namespace:
            result.namespaces[service.plugin] = reconcile.admin_namespace
    others = sorted(set(other_rights) - set(result.right_ids))
    if others:
        result.right_ids.update(Observer(client).right_ids(others))
    return result


def _short(name: str) -> str:
    """``Name`` of a right named ``{namespace}:Name`` (a name without the prefix as it is)."""
    if name.startswith("{") and "}:" in name:
        return name.split("}:", 1)[1]
    return name


def _key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(doc.get("vendor")), str(doc.get("name")), str(doc.get("version")))


def _list(client: VcdClient, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
    """Every ``values`` entry of a cloudapi list, page by page."""
    found: list[Any] = []
    page = 1
    while True:
        doc, _ = client.cloudapi(
            "GET", path, params={**(params or {}), "page": str(page), "pageSize": "128"}
        )
        values = doc.get("values") if isinstance(doc, dict) else None
        if not isinstance(values, list):
            raise VcdError(f"GET /cloudapi/{path}: the answer has no 'values' list")
        found += [v for v in values if isinstance(v, dict)]
        count = doc.get("pageCount")
        if not isinstance(count, int) or page >= count or not values:
            return found
        page += 1


def companion_services(client: VcdClient) -> frozenset[str]:
    """The uuids of the legacy admin services behind vCD's API extensions (each extension's
    ``Link`` header names its own). They carry an MQTT extension's rights and links and its
    description, marker included, so ``--prune`` of AMQP services must leave them alone.
    Empty where vCD has no API extensions endpoint (404: before 10.2); any other refusal
    stops the prune, since a companion could not be told from a dropped service."""
    try:
        extensions = _list(client, _EXTENSIONS)
    except VcdApiError as exc:
        if exc.status != 404:  # refused or failing: which services are companions is unknown
            raise VcdError(
                f"cannot tell which admin services belong to MQTT extensions ({exc}); "
                "nothing is pruned"
            ) from exc
        return frozenset()
    found = set()
    for doc in extensions:
        ext_id = str(doc.get("id") or "")
        if not ext_id:
            continue
        _, headers = client.cloudapi("GET", f"{_EXTENSIONS}/{ext_id}")
        match = _LEGACY_ID.search(headers.get("Link", ""))
        if match is not None:
            found.add(match.group(1))
    return frozenset(found)


class _Reconcile:
    def __init__(
        self,
        client: VcdClient,
        desired: DesiredExtension,
        tokens: TokenFile,
        result: ExtensionRegistration,
        dry_run: bool,
    ) -> None:
        self.client = client
        self.desired = desired
        self.tokens = tokens
        self.result = result
        self.dry_run = dry_run
        #: The digest of the localization bundle vCD holds (from the extension's description).
        self.digest: str | None = None
        #: Whether vCD has the extension's ``authorizationEnabled`` on (before this run).
        self.authorized = False
        #: The namespace of the extension's legacy admin service, once read.
        self.admin_namespace = ""

    def plan(self, verb: str, subject: str, detail: str) -> bool:
        """Record a step; whether to carry it out."""
        self.result.steps.append((self.desired.id, Step(verb, subject, detail)))
        return not self.dry_run

    def run(self, actual: Mapping[str, Any] | None) -> None:
        d = self.desired
        if actual is None:
            topics = names.topics_of(d.vendor, d.name, d.version)
            if not self.plan("create", "extension", f"{d.owner} (topic {topics.monitor})"):
                for pattern in d.filters:
                    self.plan("add", "api filter", pattern)
                self.plan("create", "token", f"stored in {self.tokens.path}")
                for action in self._companion_actions(None):
                    self.plan_action(action)
                self._enable_last(d.id)
                return
            # Authorization stays off until the resource classes, actions and rules exist.
            actual, _ = self.client.cloudapi("POST", _EXTENSIONS, d.body(authorization=False))
            if not isinstance(actual, dict):
                raise VcdError(f"POST /cloudapi/{_EXTENSIONS}: vCD returned no extension")
        else:
            self.digest = split_description(str(actual.get("description") or ""))[2]
            self.authorized = actual.get("authorizationEnabled") is True
            # Switched off first (before its classes go), on only last (_enable_last).
            body = d.body(self.digest, authorization=d.authorization and self.authorized)
            changes = [
                f"{k}: {actual.get(k)!r} → {v!r}"
                for k, v in body.items()
                if k in ("priority", "enabled", "authorizationEnabled", "description")
                and actual.get(k) != v
            ]
            if changes and self.plan("update", "extension", "; ".join(changes)):
                self.client.cloudapi("PUT", f"{_EXTENSIONS}/{actual['id']}", body)
        ext_id = str(actual.get("id") or d.id)
        self._filters(ext_id)
        self._token(ext_id)
        self._companion(ext_id)
        self._enable_last(ext_id)

    def _enable_last(self, ext_id: str) -> None:
        """Switch ``authorizationEnabled`` on once the classes, actions and rules exist
        (vCD rejects every call of an extension with it on and none of them)."""
        if not self.desired.authorization or self.authorized:
            return
        if self.plan("update", "extension", "authorizationEnabled: False → True"):
            body = self.desired.body(self.digest, authorization=True)
            self.client.cloudapi("PUT", f"{_EXTENSIONS}/{ext_id}", body)

    # -- API filters ---------------------------------------------------------------------------

    def _filters(self, ext_id: str) -> None:
        if at_least(self.client.api_version or "", CLOUDAPI_FILTERS):
            have = {
                str((f.get("urlMatcher") or {}).get("urlPattern")): str(f.get("id"))
                for f in _list(self.client, _FILTERS, {"filter": f"externalSystem.id=={ext_id}"})
            }
            add, remove = self._diff(have)
            for pattern in add:
                if self.plan("add", "api filter", pattern):
                    body = {
                        "externalSystem": {"id": ext_id, "name": self.desired.name},
                        "urlMatcher": {"urlPattern": pattern, "urlScope": "EXT_API"},
                    }
                    self.client.cloudapi("POST", _FILTERS, body)
            for pattern, filter_id in remove:
                if self.plan("remove", "api filter", pattern):
                    self.client.cloudapi("DELETE", f"{_FILTERS}/{filter_id}")
            return
        filters_url = self._legacy_filters_url(ext_id)
        have = {}
        for record in self.client.records(filters_url):
            held = read_api_filter_record(record)
            if held is not None and held.value.url_pattern is not None:
                have[held.value.url_pattern] = held.href
        add, remove = self._diff(have)
        for pattern in add:
            if self.plan("add", "api filter", pattern):
                self.client.post(
                    filters_url, write_api_filter(ApiFilter(pattern)), media.API_FILTER
                )
        for pattern, href in remove:
            if self.plan("remove", "api filter", pattern):
                self.client.delete(href)

    def _diff(self, have: Mapping[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
        add = [p for p in self.desired.filters if p not in have]
        remove = [(p, ref) for p, ref in have.items() if p not in self.desired.filters]
        return add, remove

    def _legacy_filters_url(self, ext_id: str) -> str:
        """``/api/admin/extension/service/<uuid>/apifilters``."""
        return f"{self._legacy_service_url(ext_id)}/apifilters"

    def _legacy_service_url(self, ext_id: str) -> str:
        """``/api/admin/extension/service/<uuid>``, the extension's legacy admin service; the
        uuid is in the ``Link`` header of the extension (what CSE reads, and what VMware's API
        extensibility guide shows for its rights, links and API definitions)."""
        _, headers = self.client.cloudapi("GET", f"{_EXTENSIONS}/{ext_id}")
        found = _LEGACY_ID.search(headers.get("Link", ""))
        if found is None:
            raise VcdError(f"vCD named no legacy service for extension {ext_id} (no Link header)")
        return f"/api/admin/extension/service/{found.group(1)}"

    # -- rights and service links (the legacy admin service) -----------------------------------

    def _companion_actions(self, actual: ActualService | None) -> tuple[Action, ...]:
        """What the legacy admin service ``actual`` lacks (all of it for ``None``): rights
        named with the service's own namespace, service links, the API definition (named
        and namespaced as the plugin's, as for an AMQP service: vCD keeps a definition's
        namespace and vendor as sent) and the resource classes with their actions and ACL
        rules (a rule naming one of the plugin's rights names it as vCD does)."""
        d = self.desired
        namespace = actual.namespace if actual is not None else d.namespace
        # A right the service holds under another prefix than its namespace is still that
        # right (matched by its short name): vCD's naming is [unknown], so read, not assumed.
        held = {_short(r.value.name): r.value.name for r in (actual.rights if actual else ())}
        rights = tuple(
            replace(r, name=held.get(r.short_name, f"{{{namespace}}}:{r.short_name}"))
            for r in d.rights
        )
        vcd_name = {r.name: w.name for r, w in zip(d.rights, rights, strict=True)}
        want = DesiredService(
            plugin="",
            name=d.name,
            namespace=namespace,
            routing_key="",
            exchange="",
            links=d.links,
            api_definitions=d.api_definitions,
            rights=rights,
            resource_classes=tuple(
                c.expand_rights(lambda name: vcd_name.get(name, name)) for c in d.resource_classes
            ),
        )
        if actual is None:
            bundle = (UploadBundle(d.bundle),) if d.bundle is not None else ()
            return (
                *(AddLink(x) for x in d.links),
                *(AddApiDefinition(x) for x in d.api_definitions),
                *(AddRight(r) for r in want.rights),
                *(AddResourceClass(c) for c in want.resource_classes),
                *bundle,
            )
        sp = plan_service(want, actual)
        self.result.notes += [n for n in sp.notes if n.startswith("right ")]
        # The extension's own fields, its filters and its bundle are reconciled elsewhere.
        return tuple(
            a
            for a in sp.actions
            if not isinstance(
                a,
                CreateService
                | UpdateService
                | DeleteService
                | AddFilter
                | RemoveFilter
                | UploadBundle,
            )
        )

    def _companion(self, ext_id: str) -> None:
        d = self.desired
        wanted = (d.rights, d.links, d.api_definitions, d.bundle, d.resource_classes)
        if not (any(wanted) or self.authorized):  # authorized: its classes may need removing
            return
        observer = Observer(self.client)
        actual = observer.read(self._legacy_service_url(ext_id), children=False)
        self.admin_namespace = actual.namespace
        # Resource classes are read while they are declared or authorization was on (so
        # the classes of a service that stopped declaring them are removed), as over AMQP.
        actual = observer.read_children(
            actual, authorization=bool(d.resource_classes) or self.authorized
        )
        actions = tuple(a for a in self._companion_actions(actual) if self.plan_action(a))
        ids = {r.value.name: r.id for r in actual.rights if r.id}
        if actions:
            applied = Applier(self.client, observer).apply(
                ServicePlan(actual.namespace, None, actual, actions)
            )
            self.result.warnings += applied.warnings
            ids.update(applied.right_ids)
            if {r.short_name for r in d.rights} - {_short(n) for n in ids}:
                ids.update({r.value.name: r.id for r in observer.rights(actual) if r.id})
        by_short = {_short(name): (name, urn) for name, urn in ids.items()}
        for right in d.rights:
            if right.short_name in by_short:
                vcd_name, urn = by_short[right.short_name]
                self.result.right_ids[right.name] = urn
                self.result.right_ids.setdefault(vcd_name, urn)
        if d.bundle is not None and d.bundle.digest != self.digest:
            self._upload(ext_id, observer, actual, UploadBundle(d.bundle))

    def _upload(
        self, ext_id: str, observer: Observer, actual: ActualService, action: UploadBundle
    ) -> None:
        """Upload the bundle to the admin service, then record its digest in the extension's
        description. A refusal (vCD may keep bundles for AMQP services only: [unknown]) is a
        warning; the next run tries again."""
        if not self.plan_action(action):
            return
        try:
            Applier(self.client, observer).apply(
                ServicePlan(actual.namespace, None, actual, (action,))
            )
        except VcdApiError as exc:
            if exc.status >= 500:
                raise
            self.result.warnings.append(
                f"vCD refused the localization bundle of {ext_id} ({exc.status} "
                f"{exc.minor_code or exc.message}); vCD shows the rights' own texts"
            )
            return
        self.digest = action.bundle.digest
        # Authorization as vCD has it now (switched on by _enable_last, off by run()).
        authorization = self.desired.authorization and self.authorized
        body = self.desired.body(self.digest, authorization=authorization)
        self.client.cloudapi("PUT", f"{_EXTENSIONS}/{ext_id}", body)

    def plan_action(self, action: Action) -> bool:
        """Record ``action`` as a step (a new resource class or action with a step for each
        action and ACL rule it brings, as in the AMQP table); whether to carry it out."""
        rows = Plan((ServicePlan("", None, None, (action,)),)).rows()
        carry_out = [self.plan(verb, subject, detail) for _, verb, subject, detail in rows]
        return carry_out[0]

    # -- the token -----------------------------------------------------------------------------

    def _token(self, ext_id: str) -> None:
        stored = self.tokens.read().get(ext_id)
        if stored:
            owned = _list(self.client, _TOKENS, {"filter": "type==EXTENSION"})
            if any((t.get("owner") or {}).get("name") == self.desired.owner for t in owned):
                return
            reason = "vCD lists no token of the extension"
        else:
            reason = f"none in {self.tokens.path}"
        if not self.plan("create", "token", f"{reason}; stored in {self.tokens.path}"):
            return
        doc, _ = self.client.cloudapi(
            "POST",
            _TOKENS,
            {"name": f"vcdext-{self.desired.name}", "type": "EXTENSION", "extensionId": ext_id},
        )
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise VcdError(f"POST /cloudapi/{_TOKENS}: vCD returned no token for {ext_id}")
        self.tokens.store(ext_id, token)
        log.info("stored the extension token of %s in %s", ext_id, self.tokens.path)
