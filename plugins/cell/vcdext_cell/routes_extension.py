"""The extension registration surface: ``/api/admin/extension/...`` and ``/api/admin/right``.

All of it is for system administrators (403 for anyone else), as in vCD.

Choices where vCD's behaviour is not documented (see ``docs/local-cell.md``):

* ``Enabled`` left out at registration means ``false``.
* ``DELETE`` of an enabled service is allowed (204); pyvcloud disables first, others need not.
* ``PUT`` of a service answers 200 with the Service; inline filters/links in it are ignored.
* A duplicate namespace or right is a 400 with minor code ``DUPLICATE_NAME``.
* Creating a service link answers 200 (the 5.5 guide's example); the other creates answer 201.
* Inline ``ResourceClasses`` in a posted Service are ignored: resource classes, actions and
  ACL rules are created one by one (:mod:`.routes_authorization`).
"""

from __future__ import annotations

import dataclasses
import logging
import re

from vcdext.errors import BadRequest, Forbidden, UnsupportedMediaType
from vcdext.vcloud import media
from vcdext.vcloud.extension import (
    read_api_definition,
    read_api_filter,
    read_bundle_upload_params,
    read_right,
    read_service,
    read_service_link,
    write_bundle_upload_socket,
)

from . import bundles, views
from .http import Answer, Call, Router, xml_answer
from .model import ApiDefinition, ApiFilter, Right, Service, ServiceLink, new_id, stored
from .query import QueryParams, run_query
from .state import State

log = logging.getLogger(__name__)

_SERVICE = "/api/admin/extension/service"


def require_sysadmin(call: Call) -> None:
    """403 unless the caller is a system administrator."""
    if call.session is None or not call.session.is_sysadmin:
        raise Forbidden("This operation is for system administrators only")


def read_body(call: Call) -> bytes:
    """The request body, for a :mod:`vcdext.vcloud` reader; 415 for a non-XML Content-Type."""
    ctype = call.content_type
    if ctype and "xml" not in ctype:
        raise UnsupportedMediaType(f"Content-Type {ctype} is not accepted; send XML")
    return call.body


def _right(body: bytes, owner: Service) -> Right:
    """A right a service registers; its name is ``{namespace}:name`` (not prefixed twice)."""
    sent = read_right(body)
    name = sent.value.name
    prefix = f"{{{owner.namespace}}}:"
    return stored(
        Right,
        dataclasses.replace(
            sent.value,
            name=name if name.startswith(prefix) else prefix + name,
            category=sent.value.category or owner.name,
            service_namespace=owner.namespace,
        ),
        id=new_id(),
        service_id=owner.id,
    )


class ExtensionRoutes:
    """Handlers for the registration surface, bound to one :class:`State`."""

    def __init__(self, state: State) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        """Add every route of this class to ``router``."""
        add = router.add
        add("GET", "/api/admin/extension", self.get_extension)
        add("GET", _SERVICE, self.list_services)
        add("POST", _SERVICE, self.create_service)
        # Fixed names below /service/ come before the {id} routes that would also match.
        for kind, getter, deleter in (
            ("apifilter", self.get_filter, self.delete_filter),
            ("link", self.get_link, self.delete_link),
            ("apidefinition", self.get_definition, self.delete_definition),
        ):
            add("GET", f"{_SERVICE}/{kind}/{{id}}", getter)
            add("DELETE", f"{_SERVICE}/{kind}/{{id}}", deleter)
        add("GET", f"{_SERVICE}/{{id}}", self.get_service)
        add("PUT", f"{_SERVICE}/{{id}}", self.update_service)
        add("DELETE", f"{_SERVICE}/{{id}}", self.delete_service)
        add("GET", f"{_SERVICE}/{{id}}/apifilters", self.list_filters)
        add("POST", f"{_SERVICE}/{{id}}/apifilters", self.add_filter)
        add("GET", f"{_SERVICE}/{{id}}/links", self.list_links)
        add("POST", f"{_SERVICE}/{{id}}/links", self.add_link)
        add("GET", f"{_SERVICE}/{{id}}/apidefinitions", self.list_definitions)
        add("POST", f"{_SERVICE}/{{id}}/apidefinitions", self.add_definition)
        add("GET", f"{_SERVICE}/{{id}}/rights", self.list_rights)
        add("POST", f"{_SERVICE}/{{id}}/rights", self.add_right)
        add("POST", f"{_SERVICE}/{{id}}/localizationbundles", self.upload_bundle)
        add("GET", "/api/admin/right/{id}", self.get_right)
        add("DELETE", "/api/admin/right/{id}", self.delete_right)

    # -- services -------------------------------------------------------------------------

    def get_extension(self, call: Call) -> Answer:
        """``GET /api/admin/extension``: ``VMWExtension``."""
        require_sysadmin(call)
        return xml_answer(views.vmw_extension(call.urls), media.VMW_EXTENSION)

    def list_services(self, call: Call) -> Answer:
        """``GET .../extension/service``: ``ExtensionServices`` with an ``add`` link."""
        require_sysadmin(call)
        doc = views.extension_services(call.urls, self.state.services())
        return xml_answer(doc, media.EXTENSION_SERVICES)

    def _service_answer(self, call: Call, service_id: str, status: int = 200) -> Answer:
        s = self.state.service(service_id)
        doc = views.service(
            call.urls,
            s,
            self.state.filters(s.id),
            self.state.links(s.id),
            self.state.definitions(s.id),
        )
        return xml_answer(doc, media.SERVICE, status)

    def create_service(self, call: Call) -> Answer:
        """``POST .../extension/service``: register (201 + ``Service``)."""
        require_sysadmin(call)
        doc = read_service(read_body(call))
        doc.require("namespace", "routing_key", "exchange")
        service = stored(Service, doc.service, id=new_id())
        filters = [
            stored(ApiFilter, f.value, id=new_id(), service_id=service.id) for f in doc.filters
        ]
        links = [
            stored(ServiceLink, x.value, id=new_id(), service_id=service.id) for x in doc.links
        ]
        definitions = [
            stored(ApiDefinition, d.value, id=new_id(), service_id=service.id)
            for d in doc.definitions
        ]
        if doc.resource_classes:
            log.warning(
                "service %r: inline ResourceClasses are ignored by the local cell (POST them to "
                "the service's resourceclasses link)",
                service.name,
            )
        service = self.state.add_service(service, filters, links, definitions)
        log.info("registered extension service %r (%s)", service.name, service.namespace)
        answer = self._service_answer(call, service.id, 201)
        answer.headers["Location"] = call.urls.service(service.id)
        return answer

    def get_service(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}``: the ``Service`` with its parts inline."""
        require_sysadmin(call)
        return self._service_answer(call, id)

    def update_service(self, call: Call, id: str) -> Answer:
        """``PUT .../service/{id}``: update a service (200 + ``Service``)."""
        require_sysadmin(call)
        current = self.state.service(id)
        doc = read_service(read_body(call))
        # Elements left out keep their value; inline filters, links and definitions are
        # ignored (they have their own URLs); the namespace cannot change.
        changes = doc.changes()
        namespace = changes.pop("namespace", current.namespace)
        if namespace != current.namespace:
            raise BadRequest(
                f"The namespace of an extension service cannot change ({current.namespace!r} "
                f"→ {namespace!r})"
            )
        updated = self.state.update_service(current.id, **changes)
        log.info("updated extension service %r (enabled=%s)", updated.name, updated.enabled)
        return self._service_answer(call, updated.id)

    def delete_service(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/{id}``: unregister, enabled or not (204)."""
        require_sysadmin(call)
        removed = self.state.delete_service(id)
        log.info("deleted extension service %r", removed.name)
        return Answer(204)

    # -- filters, links, definitions ------------------------------------------------------

    def _records(self, call: Call, service_id: str, query_type: str, what: str) -> Answer:
        require_sysadmin(call)
        s = self.state.service(service_id)
        params = dataclasses.replace(QueryParams.parse(call.query_string), type=query_type)
        href = call.urls.of_service(s.id, what)
        doc, mime = run_query(
            self.state, call.urls, params, sysadmin=True, href=href, only_service=s.id
        )
        return xml_answer(doc, mime)

    def list_filters(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}/apifilters``: ``apiFilter`` records."""
        return self._records(call, id, "apiFilter", "apifilters")

    def list_links(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}/links``: ``serviceLink`` records."""
        return self._records(call, id, "serviceLink", "links")

    def list_definitions(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}/apidefinitions``: ``adminApiDefinition`` records."""
        return self._records(call, id, "adminApiDefinition", "apidefinitions")

    def add_filter(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/apifilters``: 201 + ``ApiFilter``."""
        require_sysadmin(call)
        s = self.state.service(id)
        sent = read_api_filter(read_body(call)).value
        f = self.state.add_filter(stored(ApiFilter, sent, id=new_id(), service_id=s.id))
        return xml_answer(views.api_filter(call.urls, f), media.API_FILTER, 201)

    def add_link(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/links``: 200 + ``ServiceLink``."""
        require_sysadmin(call)
        s = self.state.service(id)
        sent = read_service_link(read_body(call)).value
        x = self.state.add_link(stored(ServiceLink, sent, id=new_id(), service_id=s.id))
        return xml_answer(views.service_link(call.urls, x), media.SERVICE_LINK, 200)

    def add_definition(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/apidefinitions``: 201 + ``ApiDefinition``."""
        require_sysadmin(call)
        s = self.state.service(id)
        sent = read_api_definition(read_body(call)).value
        d = self.state.add_definition(stored(ApiDefinition, sent, id=new_id(), service_id=s.id))
        return xml_answer(views.api_definition(call.urls, d), media.API_DEFINITION, 201)

    def get_filter(self, call: Call, id: str) -> Answer:
        """``GET .../service/apifilter/{id}``."""
        require_sysadmin(call)
        return xml_answer(views.api_filter(call.urls, self.state.get_filter(id)), media.API_FILTER)

    def get_link(self, call: Call, id: str) -> Answer:
        """``GET .../service/link/{id}``."""
        require_sysadmin(call)
        doc = views.service_link(call.urls, self.state.get_link(id))
        return xml_answer(doc, media.SERVICE_LINK)

    def get_definition(self, call: Call, id: str) -> Answer:
        """``GET .../service/apidefinition/{id}``."""
        require_sysadmin(call)
        doc = views.api_definition(call.urls, self.state.get_definition(id))
        return xml_answer(doc, media.API_DEFINITION)

    def delete_filter(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/apifilter/{id}`` (204)."""
        require_sysadmin(call)
        self.state.delete_filter(id)
        return Answer(204)

    def delete_link(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/link/{id}`` (204)."""
        require_sysadmin(call)
        self.state.delete_link(id)
        return Answer(204)

    def delete_definition(self, call: Call, id: str) -> Answer:
        """``DELETE .../service/apidefinition/{id}`` (204)."""
        require_sysadmin(call)
        self.state.delete_definition(id)
        return Answer(204)

    # -- rights ---------------------------------------------------------------------------

    def list_rights(self, call: Call, id: str) -> Answer:
        """``GET .../service/{id}/rights``: ``RightRefs`` with an ``add`` link."""
        require_sysadmin(call)
        s = self.state.service(id)
        return xml_answer(views.right_refs(call.urls, s.id, self.state.rights(s.id)), media.RIGHTS)

    def add_right(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/rights``: 201 + ``Right`` named ``{namespace}:name``."""
        require_sysadmin(call)
        s = self.state.service(id)
        r = self.state.add_right(_right(read_body(call), s))
        log.info("registered right %r as %s", r.name, r.urn)
        return xml_answer(views.right(call.urls, r), media.RIGHT, 201)

    def get_right(self, call: Call, id: str) -> Answer:
        """``GET /api/admin/right/{id}``."""
        require_sysadmin(call)
        return xml_answer(views.right(call.urls, self.state.right(id)), media.RIGHT)

    def delete_right(self, call: Call, id: str) -> Answer:
        """``DELETE /api/admin/right/{id}`` (204)."""
        require_sysadmin(call)
        self.state.delete_right(id)
        return Answer(204)

    # -- localization bundles -------------------------------------------------------------

    def upload_bundle(self, call: Call, id: str) -> Answer:
        """``POST .../service/{id}/localizationbundles``: ``BundleUploadSocket``."""
        require_sysadmin(call)
        s = self.state.service(id)
        size, namespace = read_bundle_upload_params(read_body(call))
        if namespace and namespace != s.namespace:
            raise BadRequest(
                f"serviceNamespace {namespace!r} is not the namespace of this service "
                f"({s.namespace!r})"
            )
        transfer = self.state.open_upload(s.id, size)
        doc = write_bundle_upload_socket(call.urls.transfer(transfer))
        return xml_answer(doc, media.BUNDLE_UPLOAD_SOCKET)

    def receive_transfer(self, call: Call, transfer: str) -> Answer:
        """``PUT`` of the zip (whole, or in ``Content-Range`` pieces) to the upload location.

        The location is unguessable and single-use, so it needs no session (a client may
        send one anyway).
        """
        start, total = _content_range(call.headers.get("Content-Range", ""))
        done = self.state.receive_upload(transfer, call.body, start, total)
        if done is not None:
            service_id, data = done
            merged = bundles.read_bundle(data)
            self.state.merge_bundle(service_id, merged)
            log.info("merged localization bundle for locales %s", ", ".join(sorted(merged)))
        return Answer(200)


def _content_range(value: str) -> tuple[int, int | None]:
    """``bytes a-b/total`` → ``(a, total)``; no header → ``(0, None)``."""
    if not value:
        return 0, None
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", value)
    if m is None:
        raise BadRequest(f"Malformed Content-Range {value!r}")
    return int(m.group(1)), int(m.group(3))
