"""The app factory: settings → plugins → frozen registry → dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pluggy

from .dispatch import Dispatcher
from .plugins import LoadedPlugins, PluginFailure, declaration_failed, load_plugins
from .registry import Registrar, Registry, build_registry
from .settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """One vcdext application: its settings, plugins, services and dispatcher.

    Build it with :func:`create_runtime`. It holds no connection; transports (the AMQP server,
    the local cell, the test client) drive :attr:`dispatcher`.
    """

    def __init__(self, settings: Settings, loaded: LoadedPlugins, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.dispatcher = Dispatcher(registry, timeout=settings.runtime.timeout)
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
        """Run ``vcdext_runtime_started`` (once)."""
        if not self._started:
            self._started = True
            self.plugin_manager.hook.vcdext_runtime_started(runtime=self)

    def stop(self) -> None:
        """Run ``vcdext_runtime_stopping``; a failing plugin is logged, the others still run."""
        if not self._started:
            return
        self._started = False
        for impl in self.plugin_manager.hook.vcdext_runtime_stopping.get_hookimpls():
            try:
                impl.function(runtime=self)
            except Exception:
                log.exception("plugin %r failed in vcdext_runtime_stopping", impl.plugin_name)

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
    hook = loaded.manager.hook.vcdext_register
    per_plugin = [(impl.plugin_name, _caller(impl)) for impl in reversed(hook.get_hookimpls())]
    order = {name: i for i, name in enumerate(loaded.names)}
    per_plugin.sort(key=lambda pair: order.get(pair[0], len(order)))
    registry = build_registry(
        per_plugin,
        settings.plugins.for_plugin,
        on_error=lambda name, exc: declaration_failed(loaded, settings, name, exc),
    )
    return Runtime(settings, loaded, registry)


def _caller(impl: pluggy.HookImpl) -> Any:
    # Each plugin gets its own registrar, so the hook is called per implementation.
    def call(registrar: Registrar) -> None:
        impl.function(**{name: registrar for name in impl.argnames if name == "registrar"})

    return call
