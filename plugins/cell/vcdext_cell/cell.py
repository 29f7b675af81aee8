"""The :class:`Cell`: the local stand-in for vCloud Director, started and stopped in-process."""

from __future__ import annotations

import errno
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from vcdext.errors import VcdExtError
from vcdext.settings import Settings, mask_secret

from .cloudext import CloudExtensions
from .forwarder import REPLY_EXCHANGE, Forwarder, ForwardError
from .model import Event, Forwarded, Right, Service, Task
from .mqtt import MqttForwarder
from .reactions import Blocking, Notifier, ReactionRoutes
from .seed import RIGHTS_FORMATS, Org, Seed, User, load_seed
from .server import App, CellHTTPServer, is_loopback
from .settings import CellSettings
from .state import State

log = logging.getLogger(__name__)


class CellError(VcdExtError):
    """The cell could not start (port in use, broker unreachable, bad seed).

    ``port_in_use`` is true when another process holds the address (a free port would do).
    """

    def __init__(self, message: str, *, port_in_use: bool = False) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


@dataclass(frozen=True)
class Credential:
    """A user who can log in to the cell: ``user@org`` and the password."""

    user: str
    org: str
    password: str
    sysadmin: bool
    rights: tuple[str, ...]

    @property
    def login(self) -> str:
        """The Basic-auth user name vCD expects: ``user@org``."""
        return f"{self.user}@{self.org}"

    def __repr__(self) -> str:  # never show the password
        return f"Credential({self.login!r}, sysadmin={self.sysadmin})"


class Cell:
    """A local vCD cell: the vCloud API over HTTP, extension requests over AMQP.

    ::

        cell = Cell(settings, amqp_url="memory://", port=0)
        cell.start()            # returns once listening and connected to the broker
        print(cell.url)         # http://127.0.0.1:54321
        ...
        cell.stop()

    :param settings: ``[cell]`` gives host, port, timeout and seed; ``[amqp]`` the broker URL
        and heartbeat. Keyword arguments override them.
    :param amqp_url: broker URL; ``memory://`` only reaches a runtime in the same process.
    :param seed: a :class:`Seed`, a seed file path, or ``None`` for ``cell.seed`` (empty:
        the demo seed).
    :param rights_format: ``"urn"`` or ``"name"``: how forwarded security contexts list rights
        (default: the seed's ``rights_format``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        amqp_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout: float | None = None,
        seed: Seed | str | Path | None = None,
        rights_format: str | None = None,
        allow_remote: bool = False,
        mqtt_url: str | None = None,
    ) -> None:
        """:param allow_remote: listen on non-loopback addresses and answer any ``Host``.
        :param mqtt_url: an MQTT broker (``ws://user:password@host:port/messaging/mqtt``) to
            reach MQTT API extensions through, as vCD 10.2+ does; ``None``: none."""
        settings = settings or Settings()
        cell = settings.section(CellSettings)
        self.allow_remote = allow_remote
        self.host = cell.host if host is None else host
        self.port = cell.port if port is None else port
        self.timeout = cell.timeout if timeout is None else timeout
        self.amqp_url = amqp_url or settings.amqp.url
        if isinstance(seed, Seed):
            self.seed = seed
        elif seed is not None:
            self.seed = load_seed(seed)
        else:
            self.seed = load_seed(cell.seed, source=settings.source_of("cell.seed"))
        self.rights_format = rights_format or self.seed.rights_format
        if self.rights_format not in RIGHTS_FORMATS:
            raise CellError(f"rights_format must be one of {', '.join(RIGHTS_FORMATS)}")
        self.state = State(self.seed)
        self._forwarder = Forwarder(self.amqp_url, heartbeat=settings.amqp.heartbeat)
        self.mqtt_url = mqtt_url
        self._mqtt = MqttForwarder(mqtt_url) if mqtt_url else None
        self.extensions = CloudExtensions(self.state, self._mqtt)
        #: Notifications, blocking tasks and the mutable demo inventory (reactions.py).
        self.notifier = Notifier(self.amqp_url)
        self.blocking = Blocking(self.notifier)
        self.reactions = ReactionRoutes(self.state, self.notifier, self.blocking)
        self._server: CellHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the broker and start serving HTTP; returns once both are ready."""
        if self._server is not None:
            return
        if not self.allow_remote and not is_loopback(self.host):
            raise CellError(
                f"the cell would listen on {self.host}, where other machines can reach it; it "
                "has demo passwords and unauthenticated debug pages. Use a loopback address, "
                "or --allow-remote if you mean it"
            )
        try:
            self._forwarder.start()
            if self._mqtt is not None:
                self._mqtt.start()
        except ForwardError as exc:
            self._forwarder.stop()
            raise CellError(str(exc)) from None
        app = App(
            self.state,
            self._forwarder,
            timeout=self.timeout,
            rights_format=self.rights_format,
            allow_remote=self.allow_remote,
            extensions=self.extensions,
            reactions=self.reactions,
        )
        try:
            self.notifier.start()
        except Exception as exc:
            self._forwarder.stop()
            raise CellError(f"cannot publish notifications: {exc}") from None
        try:
            self._server = CellHTTPServer((self.host, self.port), app)
        except OSError as exc:
            self._forwarder.stop()
            if self._mqtt is not None:
                self._mqtt.stop()
            raise CellError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}",
                port_in_use=exc.errno == errno.EADDRINUSE,
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="vcdext-cell-http",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "local cell listening on %s (broker %s, timeout %g s, seed %s)",
            self.url,
            mask_secret(self.amqp_url),
            self.timeout,
            self.seed.source,
        )

    def stop(self) -> None:
        """Stop serving and disconnect; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._forwarder.stop()
        if self._mqtt is not None:
            self._mqtt.stop()
        self.notifier.stop()

    def __enter__(self) -> Cell:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (the vCloud API is under ``/api``)."""
        if self._server is None:
            raise CellError("the cell is not started")
        return self._server.url

    @property
    def api_url(self) -> str:
        """The vCloud API root, ``<url>/api``."""
        return f"{self.url}/api"

    @property
    def reply_exchange(self) -> str:
        """The exchange services publish replies to (also in every request's headers)."""
        return REPLY_EXCHANGE

    @property
    def demo_credentials(self) -> tuple[Credential, ...]:
        """Every user of the seed with the password (the demo seed's, or a seed file's)."""
        out = []
        for org in self.seed.orgs:
            for user in org.users:
                out.append(
                    Credential(user.name, org.name, user.password, org.is_system, user.rights)
                )
        return tuple(out)

    # -- what happened (for tests and `vcdext dev`) ---------------------------------------

    def services(self) -> list[Service]:
        """The registered extension services, in registration order."""
        return self.state.services()

    def service(self, namespace: str) -> Service | None:
        """The registered service with this namespace, if any."""
        return next((s for s in self.state.services() if s.namespace == namespace), None)

    def rights(self) -> list[Right]:
        """Every right the cell knows: registered by services or named in the seed."""
        return self.state.rights()

    def tasks(self) -> list[Task]:
        """Every task created so far."""
        return self.state.tasks()

    def events(self) -> list[Event]:
        """Every event posted so far, oldest first."""
        return self.state.events()

    def bundles(self, namespace: str) -> dict[str, dict[str, str]]:
        """locale → key → value merged from every bundle the service uploaded."""
        found = self.service(namespace)
        return self.state.bundles(found.id) if found is not None else {}

    def forwarded(self) -> list[Forwarded]:
        """Requests forwarded over AMQP (the last 1000), oldest first."""
        return self.state.forwarded()

    def org(self, name: str) -> Org:
        """The seed's organization ``name`` (case-insensitive); ``KeyError`` if absent."""
        found = self.seed.org_named(name)
        if found is None:
            raise KeyError(name)
        return found

    def user(self, name: str, org: str) -> User:
        """The seed's user ``name`` of ``org``; ``KeyError`` if absent."""
        found = next((u for u in self.org(org).users if u.name.lower() == name.lower()), None)
        if found is None:
            raise KeyError(f"{name}@{org}")
        return found
