"""``--prune`` and ``vcdext unregister`` for MQTT API extensions (``runtime.transport = "mqtt"``).

The same rules as for AMQP services (:mod:`.model`, :func:`.plan.plan_prune`):

* **vcdext's own**: an extension whose description ends in the marker line
  ``[managed by vcdext]`` (the registration writes it); nothing else is ever pruned;
* **no longer declared**: its ``vendor/name/version`` is not that of an enabled service with
  the current ``mqtt.extension_version``;
* ``unregister`` deletes the extension the operator names, vcdext's or not.

A deletion disables the extension (as CSE and vcdext's AMQP delete do), removes its API
filters, deletes the extension tokens vCD lists for it, deletes the extension, and drops its
token from ``mqtt.token_file``. CSE notes that vCD deletes an extension's filters and tokens
with it; they are removed one by one first so that nothing is left where vCD does not.
A dry run reads and plans only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..vcloud import mqtt as names
from ..vcloud.query import read_api_filter_record
from ..vcloud.versions import at_least
from .client import VcdClient
from .errors import VcdApiError, VcdError
from .extensions import (
    _EXTENSIONS,
    _FILTERS,
    _LEGACY_ID,
    _TOKENS,
    CLOUDAPI_FILTERS,
    ExtensionRegistration,
    Step,
    _list,
)
from .model import split_description
from .tokens import TokenFile

#: The fields of an extension that a ``PUT`` sends back (vCD's ``ExternalSystem``).
_BODY_FIELDS = (
    "name",
    "version",
    "vendor",
    "priority",
    "enabled",
    "authorizationEnabled",
    "description",
)


@dataclass(frozen=True)
class HeldExtension:
    """An MQTT API extension as vCD lists it."""

    id: str
    vendor: str
    name: str
    version: str
    enabled: bool
    #: Whether its description carries vcdext's marker line.
    managed: bool
    doc: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.vendor, self.name, self.version)

    @property
    def owner(self) -> str:
        """``vendor/name/version``: its broker user name and its tokens' owner."""
        return names.broker_username(self.vendor, self.name, self.version)


def held_extensions(client: VcdClient) -> list[HeldExtension]:
    """Every API extension vCD lists."""
    held = []
    for doc in _list(client, _EXTENSIONS):
        vendor, name, version = (str(doc.get(k) or "") for k in ("vendor", "name", "version"))
        held.append(
            HeldExtension(
                id=str(doc.get("id") or names.extension_id(vendor, name, version)),
                vendor=vendor,
                name=name,
                version=version,
                enabled=doc.get("enabled") is not False,
                managed=split_description(str(doc.get("description") or ""))[1],
                doc=doc,
            )
        )
    return held


def plan_extension_prune(
    held: Iterable[HeldExtension], keep: Iterable[tuple[str, str, str]]
) -> list[HeldExtension]:
    """The vcdext-managed extensions whose ``(vendor, name, version)`` is not in ``keep``."""
    kept = set(keep)
    return sorted(
        (e for e in held if e.managed and e.key not in kept), key=lambda e: (e.owner, e.id)
    )


def select_extension(held: Iterable[HeldExtension], ref: str) -> HeldExtension | None:
    """The extension ``ref`` names: its id (``urn:vcloud:extension-api:...``),
    ``vendor/name/version``, or a name only one extension has; ``None`` if none.

    :raises VcdError: several extensions have that name.
    """
    held = list(held)
    for e in held:
        if ref in (e.id, e.owner):
            return e
    named = [e for e in held if e.name == ref]
    if len(named) > 1:
        which = ", ".join(e.owner for e in named)
        raise VcdError(f"{len(named)} MQTT extensions are named {ref!r} ({which}); name one")
    return named[0] if named else None


class _Deletion:
    """Deletes one extension with its filters and tokens, or (dry run) plans it."""

    def __init__(
        self,
        client: VcdClient,
        tokens: TokenFile,
        result: ExtensionRegistration,
        *,
        dry_run: bool,
        why: str,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.result = result
        self.dry_run = dry_run
        self.why = why

    def run(self, ext: HeldExtension) -> None:
        self.result.checked.append(ext.id)
        filters = self._filters(ext)
        tokens = [
            (str(t.get("name") or t.get("id")), str(t.get("id")))
            for t in _list(self.client, _TOKENS, {"filter": "type==EXTENSION"})
            if (t.get("owner") or {}).get("name") == ext.owner
            or (t.get("owner") or {}).get("id") == ext.id
        ]
        steps = [Step("delete", "extension", f"{ext.owner} (disable, then delete{self.why})")]
        steps += [Step("remove", "api filter", pattern) for pattern, _ in filters]
        steps += [Step("delete", "token", f"{name} of {ext.owner}") for name, _ in tokens]
        self.result.steps += [(ext.id, s) for s in steps]
        if self.dry_run:
            return
        if ext.enabled:
            body = {k: ext.doc[k] for k in _BODY_FIELDS if k in ext.doc}
            self.client.cloudapi("PUT", f"{_EXTENSIONS}/{ext.id}", {**body, "enabled": False})
        for _, ref in filters:
            if ref.startswith("urn:"):
                self._gone("DELETE", f"{_FILTERS}/{ref}")
            else:
                with _already_gone():
                    self.client.delete(ref)
        for _, token_id in tokens:
            self._gone("DELETE", f"{_TOKENS}/{token_id}")
        self._gone("DELETE", f"{_EXTENSIONS}/{ext.id}")
        self.tokens.discard(ext.id)

    def _gone(self, method: str, path: str) -> None:
        """A DELETE whose 404 means done: a retried call whose first answer was lost finds
        the object deleted already (and the token must still leave the token file)."""
        with _already_gone():
            self.client.cloudapi(method, path)

    def _filters(self, ext: HeldExtension) -> list[tuple[str, str]]:
        """``(pattern, cloudapi id or legacy href)`` of the extension's API filters."""
        if at_least(self.client.api_version or "", CLOUDAPI_FILTERS):
            return [
                (str((f.get("urlMatcher") or {}).get("urlPattern")), str(f.get("id")))
                for f in _list(self.client, _FILTERS, {"filter": f"externalSystem.id=={ext.id}"})
            ]
        _, headers = self.client.cloudapi("GET", f"{_EXTENSIONS}/{ext.id}")
        found = _LEGACY_ID.search(headers.get("Link", ""))
        if found is None:  # no legacy service: no legacy filters
            return []
        url = f"/api/admin/extension/service/{found.group(1)}/apifilters"
        held = [read_api_filter_record(r) for r in self.client.records(url)]
        return [(h.value.url_pattern or "", h.href) for h in held if h is not None]


@contextlib.contextmanager
def _already_gone() -> Iterator[None]:
    try:
        yield
    except VcdApiError as exc:
        if exc.status != 404:
            raise


def prune_extensions(
    client: VcdClient,
    keep: Iterable[tuple[str, str, str]],
    tokens: TokenFile,
    result: ExtensionRegistration,
    *,
    dry_run: bool = False,
) -> None:
    """Delete (or, in a dry run, plan the deletion of) the vcdext-managed extensions not in
    ``keep``; the steps go into ``result``.

    :raises VcdError: vCD refused a call; the deletions before it stay.
    :raises ConfigError: ``mqtt.token_file`` cannot be read or written.
    """
    deletion = _Deletion(client, tokens, result, dry_run=dry_run, why="; --prune")
    for ext in plan_extension_prune(held_extensions(client), keep):
        deletion.run(ext)


def unregister_extension(
    client: VcdClient,
    ref: str | tuple[str, str, str],
    tokens: TokenFile,
    *,
    dry_run: bool = False,
) -> ExtensionRegistration | None:
    """Disable, then delete the extension ``ref`` names (a ``(vendor, name, version)`` key or
    what :func:`select_extension` takes), with its filters and tokens; ``None`` if vCD has
    none. Unlike ``--prune`` this works on any extension, vcdext's or not.

    :raises VcdError: vCD refused a call, or ``ref`` is ambiguous.
    """
    held = held_extensions(client)
    if isinstance(ref, tuple):
        ext = next((e for e in held if e.key == ref), None)
    else:
        ext = select_extension(held, ref)
    if ext is None:
        return None
    result = ExtensionRegistration(dry_run=dry_run)
    _Deletion(client, tokens, result, dry_run=dry_run, why="").run(ext)
    return result
