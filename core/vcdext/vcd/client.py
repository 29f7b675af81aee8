"""The vCloud API client: version negotiation, login, retries, errors, link-following.

::

    with VcdClient.from_settings(settings) as vcd:   # negotiates and logs in
        ext = vcd.get(vcd.session.link("down", VMW_EXTENSION))

* ``GET /api/versions`` picks the version (:mod:`vcdext.vcd.versions`); every later request
  sends ``Accept: application/*+xml;version=<it>``.
* API 33.0 and later log in at ``/cloudapi/1.0.0/sessions[/provider]`` and send
  ``Authorization: Bearer``; older APIs ``POST`` the ``LoginUrl`` of ``/api/versions`` and
  send ``x-vcloud-authorization``. A 401 on a later call logs in again, once.
* GET, PUT and DELETE are retried with exponential backoff on connection errors and on
  500/502/503/504; POST never is (it could create twice).
* Responses are parsed with :func:`vcdext.xml.parse` (no entities, no network); an error
  status becomes :class:`~vcdext.vcd.errors.VcdApiError` with vCD's codes and request id.
* hrefs in vCD's documents name vCD's *public* address, which need not be reachable from
  here; they are followed on the host of ``vcd.url`` (and tokens never go anywhere else).
* The password and tokens appear in no log line, no error and no ``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from lxml import etree

from .. import xml as _xml
from ..errors import BadRequest, ConfigError
from ..retry import Backoff
from ..settings import Settings, VcdSettings
from ..vcloud import media
from ..vcloud.error import read_error
from ..vcloud.extension import read_linked
from ..vcloud.model import Event, Held, Task
from ..vcloud.query import read_records
from ..vcloud.session import Login, read_session
from ..vcloud.task import read_task, write_event, write_task
from ..vcloud.versions import ServerVersion, read_supported_versions, uses_cloudapi_login
from .connection import Secret, normalize_base_url, phrase, read_password_file, reason_of
from .errors import VcdApiError, VcdConnectionError, VcdError, VcdLoginError, VcdVersionError
from .versions import negotiate

log = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: The longest pause between two attempts of one call, in seconds.
_BACKOFF_CAP = 30.0


def new_session() -> requests.Session:
    """The ``requests`` session a client uses when given none (tests replace this)."""
    return requests.Session()


class VcdClient:
    """A logged-in conversation with one vCD (a sysadmin, normally).

    Create with :meth:`from_settings` (or the constructor), then :meth:`connect`; or use it as
    a context manager, which connects and logs out. Thread-compatible, not thread-safe.

    :param url: vCD's base URL (``https://vcd.example.com``; a trailing ``/api`` is accepted).
    :param api_version: force this version; empty means the highest both sides support.
    :param retries: extra attempts for idempotent calls; ``backoff`` seconds doubles each time.
    :param session: a ``requests.Session`` to send through (tests mount a fake adapter).
    """

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        org: str = "System",
        verify_tls: bool = True,
        ca_bundle: str = "",
        api_version: str = "",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = normalize_base_url(url)
        self.username = username
        self.org = org or "System"
        self._password = Secret(password)
        self.wanted_version = api_version.strip()
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self._http = session if session is not None else new_session()
        self._http.verify = ca_bundle or verify_tls
        self._auth: dict[str, Secret] = {}
        self._versions: list[ServerVersion] = []
        self._session_doc: etree._Element | None = None
        #: The negotiated API version (``None`` before :meth:`connect`).
        self.api_version: str | None = None
        #: ``"cloudapi"`` (Bearer) or ``"sessions"`` (x-vcloud-authorization) once logged in.
        self.login_mode = ""
        self._origin = urlsplit(self.base_url)[:2]
        self._warned_hosts: set[str] = set()
        self._logging_in = False
        #: org id → (task:create href, event:create href), read once from each AdminOrg.
        self._org_links: dict[str, tuple[str, str]] = {}
        if self.base_url.startswith("https:") and not verify_tls and not ca_bundle:
            log.warning("TLS certificate verification is off for %s (vcd.verify_tls)", url)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | VcdSettings,
        *,
        source: str = "",
        session: requests.Session | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> VcdClient:
        """A client for ``[vcd]``; the password comes from ``vcd.password`` (or
        ``VCDEXT_VCD_PASSWORD``), else the first line of ``vcd.password_file``.

        :raises ConfigError: ``vcd.url``, ``vcd.username`` or the password is missing or bad.
        """
        if isinstance(settings, Settings):  # each key's own source (file, environment)
            where = (lambda key: source) if source else settings.source_of
            vcd = settings.vcd
        else:
            where, vcd = (lambda key: source or "config"), settings
        if not vcd.url:
            raise ConfigError(
                "vcd.url", where("vcd.url"), "not set; give vCD's URL, e.g. https://vcd.example.com"
            )
        try:
            normalize_base_url(vcd.url)
        except ValueError as exc:
            raise ConfigError("vcd.url", where("vcd.url"), str(exc)) from None
        if not vcd.username:
            raise ConfigError(
                "vcd.username", where("vcd.username"), "not set; give a system administrator"
            )
        password = vcd.password or read_password_file(vcd.password_file, where("vcd.password_file"))
        if not password:
            raise ConfigError(
                "vcd.password",
                where("vcd.password"),
                "not set; use VCDEXT_VCD_PASSWORD, vcd.password_file or vcd.password",
            )
        return cls(
            vcd.url,
            username=vcd.username,
            password=password,
            org=vcd.org,
            verify_tls=vcd.verify_tls,
            ca_bundle=vcd.ca_bundle,
            api_version=vcd.api_version,
            timeout=vcd.timeout,
            retries=retries,
            backoff=backoff,
            session=session,
        )

    def __repr__(self) -> str:
        return (
            f"VcdClient({self.base_url!r}, user={self.user_label!r}, "
            f"api_version={self.api_version!r})"
        )

    @property
    def user_label(self) -> str:
        """``user@org``, as vCD's Basic login takes it."""
        return f"{self.username}@{self.org}"

    @property
    def connected(self) -> bool:
        """Whether the client holds a session token."""
        return bool(self._auth)

    @property
    def session_document(self) -> etree._Element:
        """The ``Session`` document of the login (its links lead everywhere else)."""
        if self._session_doc is None:
            raise VcdError("not logged in to vCD; call connect() first")
        return self._session_doc

    @property
    def session(self) -> Held[Login]:
        """The login's ``Session``: who is logged in, and the links that lead everywhere else.

        :raises VcdError: not logged in, or vCD's ``Session`` cannot be read.
        """
        return readable(read_session, self.session_document, f"{self.base_url} Session")

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> VcdClient:
        if not self.connected:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- login ---------------------------------------------------------------------------------

    def connect(self) -> None:
        """Negotiate the API version and log in.

        :raises VcdLoginError: vCD is unreachable or refuses the credentials.
        :raises VcdVersionError: no usable API version.
        """
        self._auth = {}
        try:
            root = self._parse(
                "GET",
                f"{self.base_url}/api/versions",
                self._call("GET", f"{self.base_url}/api/versions", accept=media.ANY_XML),
            )
        except VcdConnectionError as exc:
            raise VcdLoginError(self.base_url, self.user_label, exc.reason) from None
        except VcdApiError as exc:
            raise VcdLoginError(
                self.base_url, self.user_label, f"GET /api/versions answered {exc.status}"
            ) from None
        if root is None:
            raise VcdLoginError(self.base_url, self.user_label, "GET /api/versions was empty")
        self._versions = read_supported_versions(root)
        self.api_version = negotiate(
            [v.version for v in self._versions], wanted=self.wanted_version, url=self.base_url
        )
        self._login()
        log.info(
            "logged in to %s as %s (vCloud API %s, %s login)",
            self.base_url,
            self.user_label,
            self.api_version,
            self.login_mode,
        )

    def _basic(self) -> str:
        raw = f"{self.user_label}:{self._password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _login(self) -> None:
        if self.api_version is None:
            raise VcdVersionError("no vCloud API version negotiated")
        self._auth = {}
        self._logging_in = True
        try:
            if uses_cloudapi_login(self.api_version) and self._login_cloudapi():
                return
            self._login_sessions()
        except VcdConnectionError as exc:
            raise VcdLoginError(self.base_url, self.user_label, exc.reason) from None
        finally:
            self._logging_in = False

    def _login_failed(self, response: requests.Response) -> VcdLoginError:
        reason = f"{response.status_code} {phrase(response)}".strip()
        return VcdLoginError(self.base_url, self.user_label, reason)

    def _login_cloudapi(self) -> bool:
        provider = self.org.lower() == "system"
        path = "/cloudapi/1.0.0/sessions/provider" if provider else "/cloudapi/1.0.0/sessions"
        response = self._send(
            "POST",
            self.base_url + path,
            accept=f"{media.JSON};version={self.api_version}",
            extra={"Authorization": Secret(self._basic())},
        )
        if response.status_code in (404, 405, 501):
            log.debug("%s is not offered (%s); using /api/sessions", path, response.status_code)
            return False
        token = response.headers.get(media.H_ACCESS_TOKEN)
        if response.status_code >= 300 or not token:
            raise self._login_failed(response)
        self._auth = {"Authorization": Secret(f"Bearer {token}")}
        self.login_mode = "cloudapi"
        self._session_doc = self.get(f"{self.base_url}/api/session")
        return True

    def _login_sessions(self) -> None:
        login_url = next(
            (v.login_url for v in self._versions if v.version == self.api_version and v.login_url),
            f"{self.base_url}/api/sessions",
        )
        url = self.resolve(login_url)
        response = self._send(
            "POST",
            url,
            accept=self._accept(),
            extra={"Authorization": Secret(self._basic())},
        )
        token = response.headers.get(media.H_XML_TOKEN)
        if response.status_code >= 300 or not token:
            raise self._login_failed(response)
        self._auth = {media.H_XML_TOKEN: Secret(token)}
        self.login_mode = "sessions"
        self._session_doc = self._parse("POST", url, response)
        if self._session_doc is None:
            self._session_doc = self.get(f"{self.base_url}/api/session")

    def close(self) -> None:
        """Log out (best effort) and release the connection pool."""
        if self._auth and self._session_doc is not None:
            try:
                logout = self.session.link(media.REL_REMOVE)
            except VcdError:
                logout = None
            if logout:
                try:
                    self._send("DELETE", self.resolve(logout), accept=self._accept(), retry=False)
                except VcdError as exc:
                    log.debug("logout from %s failed: %s", self.base_url, exc)
        self._auth = {}
        self._session_doc = None
        self._http.close()

    # -- requests ------------------------------------------------------------------------------

    def _accept(self) -> str:
        return f"{media.ANY_XML};version={self.api_version}"

    def resolve(self, href: str) -> str:
        """An href from a vCD document, on the host of ``vcd.url``."""
        parts = urlsplit(href)
        if not parts.scheme:
            return self.base_url + "/" + href.lstrip("/")
        if (parts.scheme, parts.netloc) == self._origin:
            return href
        if parts.netloc not in self._warned_hosts:
            self._warned_hosts.add(parts.netloc)
            log.debug("vCD names itself %s; following its links on %s", parts.netloc, self.base_url)
        return urlunsplit((*self._origin, parts.path, parts.query, parts.fragment))

    def _send(
        self,
        method: str,
        url: str,
        *,
        accept: str,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        extra: Mapping[str, Secret] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """One HTTP exchange, retried for idempotent methods; raises only
        :class:`VcdConnectionError` (statuses are the caller's business)."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        for name, secret in {**self._auth, **(extra or {})}.items():
            headers[name] = secret.reveal()
        retries = self.retries if retry and method in IDEMPOTENT else 0
        # No jitter: one registration run talks to vCD at a time, there is no herd to spread.
        pacing = Backoff(initial=self.backoff, cap=_BACKOFF_CAP, retries=retries)
        while True:
            started = time.monotonic()
            try:
                response = self._http.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                reason = reason_of(exc)
                if self._pause(pacing, method, url, reason):
                    continue
                raise VcdConnectionError(self.base_url, reason) from None
            elapsed = (time.monotonic() - started) * 1000
            log.debug(
                "%s %s -> %s in %.0f ms (vCD request id %s)",
                method,
                url,
                response.status_code,
                elapsed,
                response.headers.get(media.H_REQUEST_ID, "-"),
            )
            if response.status_code in RETRY_STATUSES and self._pause(
                pacing, method, url, str(response.status_code)
            ):
                continue
            return response

    @staticmethod
    def _pause(pacing: Backoff, method: str, url: str, reason: str) -> bool:
        """Wait before the next attempt; ``False`` when there is to be none."""
        delay = pacing.next_delay()
        if delay is None:
            return False
        log.debug("%s %s failed (%s); retrying in %.1f s", method, url, reason, delay)
        return pacing.wait(delay)

    def _call(
        self,
        method: str,
        url: str,
        *,
        accept: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """A request with vCD's error handling: log in again once on 401, raise on errors."""
        relogged = False
        while True:
            response = self._send(
                method,
                url,
                accept=accept or self._accept(),
                body=body,
                content_type=content_type,
                params=params,
            )
            if response.status_code == 401 and self._auth and not (relogged or self._logging_in):
                log.info("vCD session for %s expired; logging in again", self.user_label)
                relogged = True
                self._login()
                continue
            if response.status_code >= 300:
                raise self._api_error(method, url, response)
            return response

    def _api_error(self, method: str, url: str, response: requests.Response) -> VcdApiError:
        minor, message = "", phrase(response)
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "?")
            message = f"redirected to {where}; point vcd.url at vCD itself"
        elif response.content.strip().startswith(b"<"):
            try:
                fields = read_error(_xml.parse(response.content))
            except BadRequest:
                fields = None
            if fields is not None:
                minor, message = fields[0], fields[1] or message
        return VcdApiError(
            method=method,
            url=url,
            status=response.status_code,
            minor_code=minor,
            message=message,
            request_id=response.headers.get(media.H_REQUEST_ID, ""),
        )

    def _parse(self, method: str, url: str, response: requests.Response) -> etree._Element | None:
        content_type = response.headers.get("Content-Type", "")
        if not response.content.strip() or "json" in content_type:
            return None
        try:
            return _xml.parse(response.content)
        except BadRequest as exc:
            raise VcdError(f"{method} {url}: vCD answered with unreadable XML ({exc})") from None

    # -- the verbs -----------------------------------------------------------------------------

    def get(self, href: str, *, params: Mapping[str, str] | None = None) -> etree._Element:
        """``GET`` a document.

        :raises VcdApiError: an error status, or an empty body.
        """
        url = self.resolve(href)
        response = self._call("GET", url, params=params)
        root = self._parse("GET", url, response)
        if root is None:
            raise VcdError(f"GET {url}: vCD answered {response.status_code} without a document")
        return root

    def read(
        self,
        href: str,
        reader: Callable[[etree._Element], T],
        *,
        params: Mapping[str, str] | None = None,
    ) -> T:
        """``GET`` a document and read it with a :mod:`vcdext.vcloud` reader.

        :raises VcdError: an error status, an empty body, or a document vcdext cannot read.
        """
        return readable(reader, self.get(href, params=params), self.resolve(href))

    def post(self, href: str, body: etree._Element, media_type: str) -> etree._Element | None:
        """``POST`` an XML body (never retried); returns the response document, if any."""
        return self._write("POST", href, _xml.tostring(body), media_type)

    def put(self, href: str, body: etree._Element, media_type: str) -> etree._Element | None:
        """``PUT`` an XML body; returns the response document, if any."""
        return self._write("PUT", href, _xml.tostring(body), media_type)

    def put_bytes(self, href: str, data: bytes, content_type: str) -> None:
        """``PUT`` raw bytes (a file upload)."""
        self._write("PUT", href, data, content_type)

    def delete(self, href: str) -> etree._Element | None:
        """``DELETE``; returns the response document (a Task, on some vCD versions), if any."""
        url = self.resolve(href)
        return self._parse("DELETE", url, self._call("DELETE", url))

    def _write(
        self, method: str, href: str, data: bytes, content_type: str
    ) -> etree._Element | None:
        url = self.resolve(href)
        response = self._call(method, url, body=data, content_type=content_type)
        return self._parse(method, url, response)

    def cloudapi(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Any, Mapping[str, str]]:
        """A JSON call below ``/cloudapi/`` (``path`` like ``1.0.0/extensions/api``): the
        decoded answer (``None`` when empty) and the response headers.

        :raises VcdError: an error status or an answer that is not JSON.
        """
        url = f"{self.base_url}/cloudapi/{path.lstrip('/')}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        response = self._call(
            method,
            url,
            accept=f"application/json;version={self.api_version}",
            body=data,
            content_type="application/json" if data is not None else None,
            params=params,
        )
        if not response.content.strip():
            return None, response.headers
        try:
            return response.json(), response.headers
        except ValueError:
            raise VcdError(f"{method} {url}: vCD answered with unreadable JSON") from None

    def records(
        self, href: str, *, params: Mapping[str, str] | None = None
    ) -> Iterator[etree._Element]:
        """The records of a query result, following ``nextPage`` links."""
        root = self.get(href, params=params)
        seen = {self.resolve(href)}
        while True:
            yield from read_records(root)
            following = readable(read_linked, root, href).link(media.REL_NEXT_PAGE)
            if not following or self.resolve(following) in seen:
                return
            seen.add(self.resolve(following))
            root = self.get(following)

    # -- tasks and events ----------------------------------------------------------------------

    def _org_targets(self, org_id: str) -> tuple[str, str]:
        """The ``task:create`` and ``event:create`` hrefs of an organization (its
        ``AdminOrg``'s links, read once)."""
        found = self._org_links.get(org_id)
        if found is None:
            admin_org = self.read(f"{self.base_url}/api/admin/org/{org_id}", read_linked)
            tasks = (
                admin_org.link(media.REL_TASK_CREATE) or f"{self.base_url}/api/tasksList/{org_id}"
            )
            events = admin_org.link(media.REL_EVENT_CREATE) or (
                f"{self.base_url}/api/admin/org/{org_id}/events"
            )
            found = self._org_links[org_id] = (tasks, events)
        return found

    def create_task(self, org_id: str, task: Task) -> Held[Task]:
        """``POST`` a ``Task`` to the org's task list (its ``task:create`` link); vCD's copy,
        with its ``href``, id and start time."""
        href = self._org_targets(org_id)[0]
        answer = self.post(href, write_task(Held(task)), media.TASK)
        if answer is None:
            raise VcdError(f"POST {self.resolve(href)}: vCD answered without the Task")
        return readable(read_task, answer, self.resolve(href))

    def update_task(self, href: str, task: Task) -> Held[Task]:
        """``PUT`` a task's new state (retried like every ``PUT``); vCD's copy."""
        answer = self.put(href, write_task(Held(task)), media.TASK)
        return self.get_task(href) if answer is None else readable(read_task, answer, href)

    def get_task(self, href: str) -> Held[Task]:
        """``GET`` a task (its ``cancelRequested`` says whether a user asked to cancel it)."""
        return self.read(href, read_task)

    def post_event(self, org_id: str, event: Event) -> None:
        """``POST`` an ``Event`` to the org's events (its ``event:create`` link); never
        retried, since vCD would record it twice."""
        self.post(self._org_targets(org_id)[1], write_event(event), media.ADMIN_EVENT)


def readable(reader: Callable[[etree._Element], T], root: etree._Element, where: str) -> T:
    """``reader(root)``; a document vcdext cannot read is a :class:`VcdError` naming ``where``
    (the :mod:`vcdext.vcloud` readers refuse documents that break VMware's schemas)."""
    try:
        return reader(root)
    except BadRequest as exc:
        raise VcdError(f"{where}: vCD sent a document vcdext cannot read ({exc.message})") from None
