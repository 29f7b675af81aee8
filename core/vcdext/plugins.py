"""Building the plugin manager: hook specs, then the enabled entry-point plugins.

Order: specs → explicit plugin objects (tests, embedding) → entry points of the
``vcdext`` group that the config enables; each plugin is checked on registration
(``check_pending``: a misspelled hook is an error, not silently ignored). A plugin that
fails to import is logged by name and skipped, unless it is listed in ``plugins.required``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, PluginError
from .markers import ENTRY_POINT_GROUP, PROJECT_NAME
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    error: str


@dataclass
class LoadedPlugins:
    """The plugin manager plus what was loaded and what failed."""

    manager: pluggy.PluginManager
    names: list[str] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)

    def callers(self, hook: str) -> list[tuple[str, Callable[..., Any]]]:
        """``(plugin name, call)`` for each plugin implementing ``hook``, in load order
        (``tryfirst`` plugins first, ``trylast`` ones last).

        Each call is a pluggy hook call limited to that plugin's implementation plus every
        ``wrapper``/``hookwrapper`` implementation, so wrappers run around each plugin's
        implementation, while each plugin still gets arguments of its own (its Registrar) and
        a failure stays that plugin's.
        """
        impls = getattr(self.manager.hook, hook).get_hookimpls()
        plain = [i for i in impls if not (i.wrapper or i.hookwrapper)]
        order = {name: n for n, name in enumerate(self.names)}
        plain.sort(
            key=lambda i: (
                0 if i.tryfirst else 2 if i.trylast else 1,
                order.get(i.plugin_name, len(order)),
            )
        )
        plugins = list(dict.fromkeys(i.plugin for i in plain))  # one call per plugin
        return [
            (
                self.manager.get_name(plugin) or "?",
                self.manager.subset_hook_caller(hook, [p for p in plugins if p is not plugin]),
            )
            for plugin in plugins
        ]


def installed_entry_points() -> dict[str, EntryPoint]:
    """Every plugin published under the ``vcdext`` entry-point group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def load_plugins(
    settings: Settings,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    autoload: bool = True,
) -> LoadedPlugins:
    """Build the plugin manager.

    :param plugins: extra ``(name, plugin object)`` pairs registered before entry points
        (always enabled: the caller chose them).
    :param autoload: load the installed entry points the config enables.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm)
    for name, obj in plugins:
        _register(loaded, name, obj, "(given)")

    for spec in settings.plugins.modules:
        name, _, module = spec.rpartition("=") if "=" in spec else ("", "", spec)
        name = name.strip() or module.rsplit(".", 1)[-1]
        try:
            _register(loaded, name, importlib.import_module(module.strip()), f"module {module}")
        except Exception as exc:  # import-time failure of the plugin's own code
            _failed(loaded, settings, name, f"module {module}", exc)

    if autoload:
        available = installed_entry_points()
        enabled = settings.plugins.enabled
        known = set(available) | set(loaded.names) | {f.name for f in loaded.failures}
        for name in (*(enabled or ()), *settings.plugins.required):
            if name not in known:
                key = "plugins.enabled" if enabled and name in enabled else "plugins.required"
                have = ", ".join(sorted(known)) or "none"
                raise ConfigError(
                    key, settings.source, f"unknown plugin {name!r} (installed: {have})"
                )
        taken = set(loaded.names) | {f.name for f in loaded.failures}
        wanted = enabled if enabled is not None else sorted(available)
        chosen = [n for n in wanted if n in available and n not in taken]
        for name in chosen:  # each failure is isolated, named and (unless required) skipped
            ep = available[name]
            try:
                obj = ep.load()
                _register(loaded, name, obj, _dist_name(ep))
            except Exception as exc:  # any import-time failure of third-party code
                _failed(loaded, settings, name, _dist_name(ep), exc)
    return loaded


def _register(loaded: LoadedPlugins, name: str, obj: Any, dist: str) -> None:
    try:
        loaded.manager.register(obj, name=name)
    except ValueError as exc:  # pluggy: duplicate name or object
        raise PluginError(name, str(exc)) from None
    except pluggy.PluginValidationError as exc:
        raise PluginError(name, str(exc)) from None
    try:
        loaded.manager.check_pending()  # a misspelled hook name is an error, not ignored
    except pluggy.PluginValidationError as exc:
        loaded.manager.unregister(obj)
        raise PluginError(name, str(exc)) from None
    loaded.names.append(name)
    loaded.distributions[name] = dist


def _failed(
    loaded: LoadedPlugins, settings: Settings, name: str, dist: str, exc: BaseException
) -> None:
    error = f"{type(exc).__name__}: {exc}"
    if name in settings.plugins.required:
        raise PluginError(name, f"required plugin failed to load ({dist}): {error}") from exc
    log.error("plugin %r (%s) failed to load and is skipped: %s", name, dist, error, exc_info=exc)
    loaded.failures.append(PluginFailure(name, dist, error))
