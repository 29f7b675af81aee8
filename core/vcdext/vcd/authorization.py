"""vCD's authorization framework at run time: the authorization check (with a short-lived
cache) and service resources, for handlers through ``vcdext.current()``.

::

    authorizer = VcdAuthorizer(client, {"backup": "io.vcdext.backup"})
    runtime.dispatcher.authorizer = authorizer      # ctx.authorize / ctx.add_service_resource

The check is ``POST`` of ``AuthorizationCheckParams`` to the service's
``authorization:check`` link (``…/service/{id}/authorizationcheck``). Answers are kept for
``ttl`` seconds per (user, method, URL), at most ``max_entries`` of them; registering a
service resource forgets them all (it changes what the rules allow). One lock serializes the
calls, as the client is not thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from ..errors import NotFound, ServiceUnavailable
from ..vcloud import media
from ..vcloud.authorization import (
    read_authorization_check_response,
    read_resource_class_record,
    read_service_resource,
    write_authorization_check_params,
    write_service_resource,
)
from ..vcloud.model import AuthorizationCheck, Reference, ServiceResource
from .client import VcdClient, readable
from .errors import VcdError
from .model import ActualService
from .observe import Observer, service_link

log = logging.getLogger(__name__)


def _uuid(urn: str) -> str:
    return urn.strip().rsplit(":", 1)[-1]


class VcdAuthorizer:
    """Asks vCD (through a logged-in sysadmin ``client``) and caches the answers.

    :param namespaces: plugin name → its service's namespace.
    :param ttl: seconds an answer is reused.
    """

    def __init__(
        self,
        client: VcdClient,
        namespaces: Mapping[str, str],
        *,
        ttl: float = 10.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespaces = dict(namespaces)
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, str, str], tuple[float, bool]] = OrderedDict()
        self._services: dict[str, ActualService] = {}
        self._classes: dict[tuple[str, str], str] = {}
        #: How many checks were sent to vCD (the rest came from the cache).
        self.asked = 0

    # -- where things are -------------------------------------------------------------------

    def _service(self, plugin: str) -> ActualService:
        if plugin not in self._services:
            namespace = self.namespaces.get(plugin)
            found = Observer(self.client).find(namespace, children=False) if namespace else None
            if found is None:
                raise ServiceUnavailable(f"vCD has no service registered for plugin {plugin!r}")
            self._services[plugin] = found
        return self._services[plugin]

    def _class_href(self, plugin: str, name: str) -> str:
        if (plugin, name) not in self._classes:
            service = self._service(plugin)
            url = service_link(service, media.REL_RESOURCE_CLASSES, None, "resourceclasses")
            for record in self.client.records(url):
                held = read_resource_class_record(record)
                if held is not None:
                    self._classes[(plugin, held.value.name)] = held.href
        if (plugin, name) not in self._classes:
            raise NotFound(f"plugin {plugin!r} has no resource class {name!r} in vCD")
        return self._classes[(plugin, name)]

    # -- the check ---------------------------------------------------------------------------

    def is_authorized(self, plugin: str, user: str, method: str, url: str) -> bool:
        """vCD's answer for ``user`` (URN) sending ``method url`` (cached ``ttl`` seconds)."""
        key = (plugin, user, method.upper(), url)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
            try:
                answer = self._ask(plugin, user, method.upper(), url)
            except VcdError as exc:
                log.warning("vCD's authorization check failed: %s", exc)
                raise ServiceUnavailable("vCD's authorization check failed") from None
            self._cache[key] = (now + self.ttl, answer)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
            return answer

    def _ask(self, plugin: str, user: str, method: str, url: str) -> bool:
        service = self._service(plugin)
        href = service_link(
            service,
            media.REL_AUTHORIZATION_CHECK,
            media.AUTHORIZATION_CHECK_PARAMS,
            "authorizationcheck",
        )
        who = Reference(f"{self.client.base_url}/api/admin/user/{_uuid(user)}", media.USER)
        body = write_authorization_check_params(AuthorizationCheck(who, method, url))
        self.asked += 1
        answer = self.client.post(href, body, media.AUTHORIZATION_CHECK_PARAMS)
        if answer is None:
            raise VcdError(f"{href}: vCD answered the authorization check without a document")
        return readable(read_authorization_check_response, answer, href)

    # -- service resources -------------------------------------------------------------------

    def add_resource(
        self, plugin: str, resource_class: str, name: str, *, org: str, external_id: str
    ) -> str:
        """Register a service resource; its href. The cached answers are dropped."""
        with self._lock:
            try:
                class_href = self._class_href(plugin, resource_class)
                org_ref = Reference(f"{self.client.base_url}/api/org/{_uuid(org)}", media.ORG)
                body = write_service_resource(ServiceResource(name, org_ref, external_id))
                url = f"{class_href.rstrip('/')}/serviceresources"
                created = self.client.post(url, body, media.SERVICE_RESOURCE)
            except VcdError as exc:
                log.warning("registering service resource %r failed: %s", name, exc)
                raise ServiceUnavailable("vCD did not register the service resource") from None
            self._cache.clear()
            return readable(read_service_resource, created, url).href if created is not None else ""

    def close(self) -> None:
        """Log out of vCD."""
        with self._lock:
            self.client.close()
