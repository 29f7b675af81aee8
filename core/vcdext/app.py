"""The composition root: the one module that builds vcdext's parts and wires them together.

::

    create_runtime(settings)   settings → plugins → registry (frozen) → dispatcher
    run(settings, ...)         … → transport (AMQP) → vcdext_runtime_started
                               → registration with vCD → serve until SIGTERM/SIGINT
    torn down in reverse       the transport stops taking requests and answers those it holds
                               → vcdext_runtime_stopping → signal handlers restored

Each part below is handed only what it needs: the transport gets the dispatcher and the
``[amqp]`` settings, the vCD client the ``[vcd]`` settings, every hook is a pluggy call.
Nothing below this module imports it; ``make lint`` checks the layers (``pyproject.toml``,
``[tool.importlinter]``).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import pluggy

from .dispatch import Dispatcher
from .errors import ConfigError, PluginError
from .health import HealthServer, HealthState
from .i18n import Localization
from .plugins import LoadedPlugins, PluginFailure, declaration_failed, load_plugins
from .registry import Registrar, Registry, build_registry
from .settings import Settings
from .tasks import TaskRunner, VcdApi

if TYPE_CHECKING:
    from .transport.amqp import AmqpServer
    from .transport.mqtt import MqttServer

log = logging.getLogger(__name__)


class Runtime:
    """One vcdext application: its settings, plugins, frozen registry and dispatcher.

    Build it with :func:`create_runtime`. It holds no connection; transports (the AMQP server,
    the local cell, the test client) drive :attr:`dispatcher`.
    """

    def __init__(self, settings: Settings, loaded: LoadedPlugins, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        #: Every plugin's catalogs and the core's, loaded once per (domain, locale).
        self.localization = Localization.of_plugins(
            (name, loaded.manager.get_plugin(name)) for name in loaded.names
        )
        #: Runs the vCD tasks handlers start, through the ``[vcd]`` client (none without a URL).
        self.tasks = TaskRunner(
            _serving_vcd(settings),
            workers=settings.runtime.workers,
            drain_timeout=settings.runtime.timeout * 3,
        )
        self.dispatcher = Dispatcher(
            registry,
            timeout=settings.runtime.timeout,
            tasks=self.tasks,
            localization=self.localization,
        )
        self._loaded = loaded
        self._started = False

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return self._loaded.manager

    @property
    def plugin_names(self) -> list[str]:
        """Plugins registered, in load order."""
        return list(self._loaded.names)

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load and were skipped."""
        return list(self._loaded.failures)

    def distribution_of(self, plugin: str) -> str:
        return self._loaded.distributions.get(plugin, "?")

    def start(self) -> None:
        """Run ``vcdext_runtime_started`` (once), plugin by plugin in load order.

        :raises PluginError: a plugin's hook failed; the stopping hooks have run by then.
        """
        if self._started:
            return
        self._started = True
        for name, call in self._loaded.callers("vcdext_runtime_started"):
            try:
                call(runtime=self)
            except Exception as exc:
                self.stop()
                raise PluginError(name, f"vcdext_runtime_started failed: {exc!r}") from exc

    def stop(self) -> None:
        """Run ``vcdext_runtime_stopping`` in reverse load order; a failing plugin is logged,
        the others still run."""
        if not self._started:
            return
        self._started = False
        for name, call in reversed(self._loaded.callers("vcdext_runtime_stopping")):
            try:
                call(runtime=self)
            except Exception:
                log.exception("plugin %r failed in vcdext_runtime_stopping", name)

    def bundle_messages(self) -> dict[str, dict[str, dict[str, str]]]:
        """Each service's vCD localization bundle texts, by plugin: ``{plugin: {locale: {key:
        text}}}``, built from its catalogs (see :meth:`Localization.bundle_messages`)."""
        return {
            plugin: self.localization.bundle_messages(
                plugin,
                namespace=service.namespace,
                name=service.name,
                rights=[(r.bundle_key, r.name) for r in service.rights],
            )
            for plugin, service in self.registry.services.items()
        }

    def handle_message(self, body: bytes, *, routing_key: str | None = None) -> bytes:
        """Answer one raw vCD message body (see :meth:`Dispatcher.handle_message`)."""
        return self.dispatcher.handle_message(body, routing_key=routing_key)


def create_runtime(
    settings: Settings | None = None,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    autoload: bool = True,
) -> Runtime:
    """Build a runtime: load plugins, run their declarations, freeze the registry.

    :param plugins: extra ``(name, plugin)`` pairs (a module or object with hook
        implementations), registered before the installed entry points.
    :param autoload: also load the installed plugins the config enables.
    :raises ConfigError: a bad ``[plugins]`` setting.
    :raises PluginError: a required plugin failed, or declarations conflict.
    """
    settings = settings or Settings()
    loaded = load_plugins(settings, plugins=plugins, autoload=autoload)
    # Each plugin gets its own registrar: one pluggy call per plugin, wrappers around each.
    registrations = [
        (name, _registration(call)) for name, call in loaded.callers("vcdext_register")
    ]
    registry = build_registry(
        registrations,
        settings.plugins.for_plugin,
        on_error=lambda name, exc: declaration_failed(loaded, settings, name, exc),
    )
    return Runtime(settings, loaded, registry)


def _serving_vcd(settings: Settings) -> VcdApi | None:
    """The vCD client handlers and tasks use while serving: ``[vcd]``, as registration uses
    it, logged in on first use; ``None`` without ``vcd.url``."""
    if not settings.vcd.url:
        return None
    from .vcd.client import VcdClient
    from .vcd.shared import SharedVcd

    try:
        return SharedVcd(settings.vcd.url, lambda: VcdClient.from_settings(settings))
    except ValueError:  # a bad vcd.url: reported by the client when first used
        return None


def _registration(call: Callable[..., Any]) -> Callable[[Registrar], None]:
    def register(registrar: Registrar) -> None:
        call(registrar=registrar)

    return register


def create_transport(runtime: Runtime, *, amqp_url: str | None = None) -> AmqpServer | MqttServer:
    """The server ``runtime.transport`` names for ``runtime``: its dispatcher, ``[amqp]``
    (``amqp_url`` overrides ``amqp.url``) or ``[mqtt]`` (and the extension tokens in
    ``mqtt.token_file``), and ``runtime.workers`` handler threads."""
    from .transport.amqp import AmqpServer

    if runtime.settings.runtime.transport == "mqtt":
        from .transport.mqtt import MqttServer
        from .vcd.tokens import TokenFile

        mqtt = runtime.settings.mqtt
        return MqttServer(
            runtime.dispatcher,
            mqtt,
            workers=runtime.settings.runtime.workers,
            vcd_url=runtime.settings.vcd.url,
            tokens=TokenFile(mqtt.token_file).read,
        )

    amqp = runtime.settings.amqp
    if amqp_url:
        amqp = dataclasses.replace(amqp, url=amqp_url)
    return AmqpServer(runtime.dispatcher, amqp, workers=runtime.settings.runtime.workers)


def run(
    settings: Settings,
    *,
    amqp_url: str | None = None,
    register: bool = True,
    on_ready: Callable[[Runtime], None] | None = None,
) -> int:
    """Build everything from ``settings``, serve over AMQP until SIGTERM/SIGINT, tear down.

    Registration with vCD (``register`` and a ``vcd.url``) happens once the exchange and
    queues exist; then ``on_ready(runtime)`` is called. Shared by ``vcdext run`` and
    ``vcdext dev``.

    :returns: the exit code: 0 after a clean stop; 1 when the transport failed (the broker
        refused us, or anything else ended it), reported as one line on stderr.
    :raises ConfigError: bad settings (an incomplete ``[vcd]`` too), before anything is served.
    :raises PluginError: a plugin failed to load or to start.
    """
    runtime = create_runtime(settings)
    for skipped in runtime.failures:
        log.warning("plugin %r skipped: %s", skipped.name, skipped.error)
    if register and settings.vcd.url:
        from .vcd import VcdClient

        # An incomplete [vcd] section is a config error: report it before serving anything.
        VcdClient.from_settings(settings).close()
    transport = create_transport(runtime, amqp_url=amqp_url)
    health = HealthState()
    health_server = _health_server(runtime, transport, health)
    try:
        failure = _serve(runtime, transport, register=register, on_ready=on_ready, health=health)
    finally:
        if health_server is not None:
            health_server.close()
    if failure is None:
        return 0
    from .transport.amqp import TransportError

    if isinstance(failure, TransportError):
        message = str(failure)
    else:  # a bug or a bad URL deep in kombu: one line here, the traceback for DEBUG logs
        kind = settings.runtime.transport.upper()
        log.debug("the %s transport failed", kind, exc_info=failure)
        message = f"the {kind} transport failed: {type(failure).__name__}: {failure}"
    print(f"vcdext: error: {message}", file=sys.stderr)
    return 1


def check(settings: Settings, *, out: Callable[[str], None] = print) -> int:
    """``vcdext run --check``: load the config and the plugins, log in to the broker and to
    vCD (when ``vcd.url`` is set), print what would be served and registered; change nothing.

    :returns: 0 when everything is in order, 1 when a plugin failed to load, no service is
        enabled, the broker or vCD cannot be used.
    :raises ConfigError: bad settings. :raises PluginError: a required plugin failed.
    """
    from .transport.amqp import TransportError
    from .transport.check import check_broker, check_mqtt
    from .vcd import VcdError, register_services

    problems: list[str] = []
    runtime = create_runtime(settings)
    out(f"config: {settings.source}")
    services = runtime.registry.services
    for name in runtime.plugin_names:
        service = services.get(name)
        what = (
            f"service {service.namespace}, queue {service.routing_key}, "
            f"{len(service.operations)} operation(s)"
            if service is not None
            else "declares no service"
        )
        out(f"plugin {name} ({runtime.distribution_of(name)}): {what}")
    for failure in runtime.failures:
        problems.append(f"plugin {failure.name!r} failed to load: {failure.error}")
    if not services:
        problems.append("no service is enabled, so there is no queue to consume")
    try:
        if settings.runtime.transport == "mqtt":
            lines: Iterable[str] = check_mqtt(settings.mqtt, settings.vcd.url, services.values())
        else:
            lines = check_broker(settings.amqp, [s.routing_key for s in services.values()])
        for line in lines:
            out(line)
    except TransportError as exc:
        problems.append(str(exc))
    if not settings.vcd.url:
        out("vcd.url is not set: nothing would be registered")
    else:
        try:
            result = register_services(runtime, settings, dry_run=True)
        except VcdError as exc:
            problems.append(f"vCD: {exc}")
        else:
            out("registration with vCD (dry run, nothing changed):")
            out(result.report())
    for problem in problems:
        out(f"problem: {problem}")
    out("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 1 if problems else 0


def _health_server(
    runtime: Runtime, transport: AmqpServer | MqttServer, health: HealthState
) -> HealthServer | None:
    """With ``runtime.health_port``: count into Prometheus metrics and serve them with the
    probes of ``health``; without it, measure nothing."""
    from .metrics import Metrics

    settings = runtime.settings
    host, port = settings.runtime.health_host, settings.runtime.health_port
    if not port:
        return None
    metrics = Metrics()
    load = getattr(transport, "load", None)  # the AMQP transport's worker counts
    if load is not None:
        metrics.watch(load)
    runtime.dispatcher.observer = runtime.tasks.observer = metrics
    health.last_reply_age = metrics.last_reply_age
    try:
        return HealthServer(health, host, port, metrics.render)
    except OSError as exc:
        raise ConfigError(
            "runtime.health_port",
            settings.source_of("runtime.health_port"),
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
        ) from None


def _serve(
    runtime: Runtime,
    transport: AmqpServer | MqttServer,
    *,
    register: bool,
    on_ready: Callable[[Runtime], None] | None,
    health: HealthState | None = None,
) -> BaseException | None:
    """Start, serve until the transport ends, tear down in reverse; what ended the transport
    (``None`` after a clean stop)."""
    health = health or HealthState()
    health.connected = transport.ready
    failure: list[BaseException] = []
    stops: list[Callable[[], None]] = []  # the notification consumer's, once started

    def consume() -> None:
        try:
            transport.run()
        except BaseException as exc:  # whatever ends the transport must end the process too
            failure.append(exc)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; finishing in-flight requests", signal.Signals(signum).name)
        health.draining.set()
        transport.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    consumer = threading.Thread(target=consume, name="vcdext-consumer")
    health.consumer = consumer
    # MQTT logs in with the extension token registration issues; AMQP registers afterwards.
    first = register and transport.registers_first
    try:
        runtime.start()
        if first:
            _register_with_vcd(runtime)
        consumer.start()
        # vCD answers 500 for filters whose exchange does not exist yet, so register only
        # once the exchange and queues are declared.
        while not transport.ready.wait(0.2) and consumer.is_alive():
            pass
        if transport.ready.is_set():
            # Notifications always come over AMQP (vCD's notification exchange).
            amqp_url = getattr(transport, "url", None) or runtime.settings.amqp.url
            if runtime.settings.runtime.transport == "mqtt":
                amqp_url = runtime.settings.amqp.url
            stops.append(_start_notifications(runtime, amqp_url, health))
            if register and not first:
                _register_with_vcd(runtime)
            health.registered.set()
            if on_ready is not None:
                on_ready(runtime)
        # After SIGTERM the transport drains on its thread; the notification consumer is
        # stopped below meanwhile, not after it (both drains together fit the stop timeout).
        while consumer.is_alive() and not health.draining.is_set():
            consumer.join(0.5)
    finally:
        # Also on an exception above (say, in registration): never leave the consumer running.
        for stop in stops:
            stop()
        transport.stop()
        if consumer.ident is not None:
            consumer.join(timeout=runtime.settings.runtime.timeout * 3 + 15)
        for task in runtime.tasks.shutdown():  # tasks still running after the drain: aborted
            log.warning("task %s aborted: vcdext stopped before it finished", task.id)
        close = getattr(runtime.dispatcher.authorizer, "close", None)
        if close is not None:
            close()
        runtime.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return failure[0] if failure else None


def _start_notifications(
    runtime: Runtime, amqp_url: str, health: HealthState
) -> Callable[[], None]:
    """Start the notification consumer when a plugin declared handlers, counted by the
    dispatcher's observer and watched by the probes of ``health``; returns its stop."""
    from .transport.notifications import start_notifications

    return start_notifications(
        runtime.registry,
        runtime.settings,
        amqp_url=amqp_url,
        observer=runtime.dispatcher.observer,
        watch=health.watch_notifications,
    )


def _register_with_vcd(runtime: Runtime) -> bool:
    """Reconcile the registration and teach the dispatcher the right ids vCD assigned.

    A vCD that cannot be reached or refuses a change is logged and ``False`` returned: the
    services it already knows keep being served.
    """
    from .vcd import RegistrationResult, VcdError, register_services

    observer = runtime.dispatcher.observer
    try:
        result = register_services(runtime, runtime.settings, messages=runtime.bundle_messages())
    except VcdError as exc:
        log.error("registration with vCD failed; serving what vCD already knows: %s", exc)
        observer.registration("failed", 0)
        return False
    if isinstance(result, RegistrationResult):  # AMQP: services, filters, links, rights
        changes = len(result.plan.rows()) if result.changed else 0
        observer.registration("ok" if result.contacted else "skipped", changes)
    else:  # MQTT: API extensions
        observer.registration("ok", len(result.steps) if result.changed else 0)
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    if isinstance(result, RegistrationResult) and result.contacted:
        _connect_authorizer(runtime)
    elif not isinstance(result, RegistrationResult):  # MQTT: the extensions' admin services
        _connect_authorizer(runtime, result.namespaces)
    for warning in result.warnings:
        log.warning("registration: %s", warning)
    log.info("registration: %s", result.summary())
    return True


def _connect_authorizer(runtime: Runtime, namespaces: Mapping[str, str] | None = None) -> None:
    """Give handlers vCD's authorization framework (``ctx.authorize``, service resources)
    through a client of its own, when some service declares resource classes; ``namespaces``
    (plugin → namespace of the vCD service holding its classes) defaults to the plugins'."""
    from .vcd import VcdClient, VcdError
    from .vcd.authorization import VcdAuthorizer

    services = runtime.registry.services
    if not runtime.settings.vcd.url or not any(s.resource_classes for s in services.values()):
        return
    client = VcdClient.from_settings(runtime.settings)
    try:
        client.connect()
    except VcdError as exc:
        log.error("vCD's authorization check is not available: %s", exc)
        return
    if namespaces is None:
        namespaces = {plugin: s.namespace for plugin, s in services.items()}
    runtime.dispatcher.authorizer = VcdAuthorizer(client, namespaces)
