"""Throwaway RabbitMQ node for the test suite.

``RabbitNode.start()`` boots a private broker from the Debian ``rabbitmq-server``
package (see ``install-rabbitmq.sh``) and ``stop()`` removes every trace of it::

    with RabbitNode.start() as node:
        use_broker(node.url)   # amqp://guest:guest@127.0.0.1:<port>//

Isolation rules, so tests never depend on (or disturb) the machine's state:

* AMQP, Erlang distribution and epmd ports are all picked free at start-up;
  5672 / 25672 / 4369 are never assumed to be available.
* Every node gets its **own epmd** (``ERL_EPMD_PORT``).  Otherwise the node would
  register with, or daemonise, the shared epmd on 4369: that one outlives the
  test run (``epmd -daemon`` leaves our process group) and may belong to a system
  broker or to a concurrent test run.
* All state (mnesia, logs, config, Erlang cookie via ``HOME``) lives in one temp
  dir; ``/etc/rabbitmq`` and inherited ``RABBITMQ_*``/``ERL_*`` variables are ignored.
* Extra broker settings only on request: ``start(conf="consumer_timeout = 2000\n")`` adds
  lines to ``rabbitmq.conf``, ``start(advanced="[{rabbit, [...]}].")`` writes
  ``advanced.config`` (for settings ``rabbitmq.conf`` cannot hold, like
  ``channel_tick_interval``, how often a channel checks its consumer timeout).
* Only the MQTT plugins are enabled, and only on request (``start(mqtt=True)``):
  ``rabbitmq_mqtt`` + ``rabbitmq_web_mqtt`` serve MQTT 3.1.1 over WebSocket at
  ``/messaging/mqtt``, the path vCD's own broker uses, on another free port. No
  management UI.  ``rabbitmqctl`` is not used.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not the su-wrapper in /usr/sbin
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
HOST = "127.0.0.1"
#: Where vCD's broker serves MQTT over WebSocket; the test node serves it there too.
MQTT_PATH = "/messaging/mqtt"
#: A broker user as vCD's broker knows an extension: ``vendor/name/version``, whose password
#: is its extension token (the MQTT nodes have it, so a test can log in as hello does on vCD).
EXTENSION_LOGIN = ("vcdext/hello/1.0.0", "test-extension-token")


def _password_hash(password: str) -> str:
    # RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)).
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _definitions() -> dict[str, object]:
    """The users of an MQTT node: guest (as by default) and the extension login."""
    users = [("guest", "guest", "administrator"), (*EXTENSION_LOGIN, "")]
    return {
        "users": [
            {
                "name": name,
                "password_hash": _password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": tags,
            }
            for name, password, tags in users
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [
            {"user": name, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
            for name, _, _ in users
        ],
    }


class RabbitNodeError(RuntimeError):
    """The node could not be started; the message carries its log/stdout tails."""


def _free_ports(count: int) -> list[int]:
    # Keep all sockets open until every port is chosen so the ports are distinct.
    # There is an unavoidable race between closing and the broker binding; start()
    # retries with fresh ports if the node dies early.
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<unreadable: {exc}>"


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group led by ``proc``, SIGKILL whatever survives ``grace``."""
    pgid = proc.pid  # start_new_session=True made the child its group's leader
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader: a zombie still counts as a group member
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return  # nobody left in the group
            time.sleep(0.05)


class RabbitNode:
    """A private RabbitMQ node; use ``RabbitNode.start()`` (or ``with``)."""

    def __init__(self, *, mqtt: bool = False, conf: str = "", advanced: str = "") -> None:
        self.port, self.dist_port, self.epmd_port, self.mqtt_port, self.ws_port = _free_ports(5)
        self.mqtt = mqtt
        self.conf = conf  # extra rabbitmq.conf lines
        self.advanced = advanced  # advanced.config, Erlang terms (none if empty)
        self.nodename = f"vcdext-test-{os.getpid()}-{secrets.token_hex(4)}@localhost"
        self.tmpdir = Path(tempfile.mkdtemp(prefix="vcdext-rabbitmq-"))
        self.log_file = self.tmpdir / "log" / "rabbit.log"
        self.stdout_file = self.tmpdir / "stdout.log"
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()  # a forked child must not stop our node
        atexit.register(self.stop)  # fallback if the test session forgets/crashes

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}//"

    @property
    def mqtt_url(self) -> str:
        """MQTT over WebSocket, as vCD serves it (``ws``: the test node has no TLS)."""
        if not self.mqtt:
            raise RuntimeError("this node was started without MQTT (start(mqtt=True))")
        return f"ws://guest:guest@{HOST}:{self.ws_port}{MQTT_PATH}"

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def start(
        cls,
        timeout: float = 60,
        attempts: int = 3,
        *,
        mqtt: bool = False,
        conf: str = "",
        advanced: str = "",
    ) -> RabbitNode:
        """Boot a node and wait until it accepts AMQP logins (at most ``timeout`` s).

        If the node dies before the deadline (typically: a port picked as free was
        grabbed by someone else in the meantime) it is retried with fresh ports, up
        to ``attempts`` times in total; the error of the last attempt is raised. ``conf``: more
        ``rabbitmq.conf`` lines; ``advanced``: the ``advanced.config`` file (Erlang terms).
        """
        deadline = time.monotonic() + timeout
        for attempt in range(1, attempts + 1):
            node = cls(mqtt=mqtt, conf=conf, advanced=advanced)
            try:
                node._launch(deadline)
                node._wait_ready(deadline)
                return node
            except RabbitNodeError:
                node.stop()
                if attempt == attempts or time.monotonic() >= deadline:
                    raise
            except BaseException:
                node.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Kill the node and its epmd (whole process groups), delete the temp dir.

        Idempotent. The broker goes first: if epmd died first, RabbitMQ's epmd
        monitor could spawn a replacement daemon outside our process group.
        """
        if os.getpid() != self._owner_pid:  # atexit handlers survive fork()
            return
        if self._server is not None:
            _kill_group(self._server, grace=5.0)
            self._server = None
        if self._epmd is not None:
            _kill_group(self._epmd, grace=2.0)
            self._epmd = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> RabbitNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RabbitNode {self.nodename} {self.url}>"

    # -- internals -----------------------------------------------------------

    def _env(self) -> dict[str, str]:
        d = self.tmpdir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(d),  # Erlang creates a fresh .erlang.cookie here
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),  # empty: skip /etc one
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            # Absent unless asked for (start(advanced=...)).
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_LOGS=str(self.log_file),
            # Dist listener on loopback only; never auto-start (daemonise) an epmd:
            # ours must be the one in use, or startup should fail loudly.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
            ),
        )
        return env

    def _launch(self, deadline: float) -> None:
        d = self.tmpdir
        (d / "rabbitmq-env.conf").write_text("")
        plugins = "rabbitmq_mqtt,rabbitmq_web_mqtt" if self.mqtt else ""
        (d / "enabled_plugins").write_text(f"[{plugins}].\n")
        if self.mqtt:
            (d / "definitions.json").write_text(json.dumps(_definitions()))
        mqtt_conf = (
            f"load_definitions = {d / 'definitions.json'}\n"
            f"mqtt.listeners.tcp.default = {HOST}:{self.mqtt_port}\n"
            f"web_mqtt.tcp.ip = {HOST}\n"
            f"web_mqtt.tcp.port = {self.ws_port}\n"
            f"web_mqtt.ws_path = {MQTT_PATH}\n"
            if self.mqtt
            else ""
        )
        (d / "rabbitmq.conf").write_text(
            mqtt_conf + f"listeners.tcp.default = {HOST}:{self.port}\n"
            # guest may only log in over loopback, which is all we listen on.
            "loopback_users.guest = true\n"
            # CI disks/memory can be small; never block publishers in tests.
            "disk_free_limit.absolute = 1MB\n"
            "vm_memory_high_watermark.relative = 0.8\n" + self.conf
        )
        if self.advanced:
            (d / "advanced.config").write_text(self.advanced)
        env = self._env()
        # The children get their own copy of this fd; ours can be closed right away.
        with self.stdout_file.open("wb") as out:
            self._epmd = subprocess.Popen(
                [EPMD, "-port", str(self.epmd_port), "-address", HOST],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            # Boot the broker only once epmd listens (-start_epmd false means the
            # node will not start one itself). The probe makes epmd log a harmless
            # "got partial packet" line.
            self._wait_port(self.epmd_port, self._epmd, deadline, "epmd")
            self._server = subprocess.Popen(
                [RABBITMQ_SERVER],
                cwd=d,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills beam & helpers
            )

    def _wait_port(
        self, port: int, proc: subprocess.Popen[bytes], deadline: float, what: str
    ) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RabbitNodeError(self._failure(f"{what} exited with {proc.returncode}"))
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RabbitNodeError(self._failure(f"{what} did not listen on {port} in time"))

    def _wait_ready(self, deadline: float) -> None:
        import amqp  # lazy: only the readiness check needs py-amqp (a kombu dependency)

        assert self._server is not None
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RabbitNodeError(
                    self._failure(f"rabbitmq-server exited with {self._server.returncode}")
                )
            # A full AMQP login, not just TCP: the listener opens late in boot and a
            # successful login proves the broker is really usable.
            conn = amqp.Connection(
                host=f"{HOST}:{self.port}", userid="guest", password="guest", connect_timeout=2
            )
            try:
                conn.connect()
            except Exception as exc:  # anything means "not yet"
                conn.collect()  # release the half-open socket
                last_error = exc
                time.sleep(0.2)
                continue
            conn.close()
            if self.mqtt:
                self._wait_port(self.ws_port, self._server, deadline, "web MQTT")
            return
        raise RabbitNodeError(
            self._failure(f"no AMQP login on port {self.port} in time (last error: {last_error!r})")
        )

    def _failure(self, reason: str) -> str:
        return (
            f"RabbitMQ test node {self.nodename} failed: {reason}\n"
            f"ports: amqp={self.port} dist={self.dist_port} epmd={self.epmd_port} "
            f"mqtt={self.mqtt_port} ws={self.ws_port}\n"
            f"--- tail of {self.log_file} ---\n{_tail(self.log_file)}\n"
            f"--- tail of {self.stdout_file} ---\n{_tail(self.stdout_file)}"
        )


def main(argv: list[str]) -> int:
    """``python -m tests.support.rabbitmq CMD...``: run CMD with a throwaway node serving AMQP
    and MQTT; ``{amqp_url}`` and ``{mqtt_url}`` in CMD become its URLs (``make run-mqtt``)."""
    with RabbitNode.start(mqtt=True) as node:
        command = [a.format(amqp_url=node.url, mqtt_url=node.mqtt_url) for a in argv]
        proc = subprocess.Popen(command)
        # SIGTERM goes on to the command; the node is removed once the command has ended.
        signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the command too; let it finish
                continue


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
