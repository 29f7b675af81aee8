"""Every hook a vcdext plugin can implement, grouped by the phase in which it runs.

Implement a hook with :data:`vcdext.hookimpl` in the module your distribution publishes under
the ``vcdext`` entry-point group::

    [project.entry-points.vcdext]
    hello = "vcdext_hello.plugin"

Hooks are called with keyword arguments; an implementation may accept fewer arguments than the
spec lists, so new arguments can be added without breaking plugins. ``docs/plugin_hooks.md``
documents each hook; a test keeps that page and this module in step.

Lifecycle::

    load plugins → vcdext_register (once per plugin) → registry frozen
                 → vcdext_runtime_started → … serve requests … → vcdext_runtime_stopping

Every hook is a pluggy hook call, made once per implementing plugin (in load order; stopping
in reverse), so a ``wrapper=True`` (or ``hookwrapper=True``) implementation runs around each
plugin's implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .markers import _hookspec

if TYPE_CHECKING:
    from .registry import Registrar, Registry
    from .settings import Settings


class RuntimeView(Protocol):
    """What the lifecycle hooks are handed: the running application (a :class:`vcdext.Runtime`).

    Declared here, below the composition root that builds the runtime, so that this module
    needs nothing from above it.
    """

    @property
    def settings(self) -> Settings:
        """The effective settings."""

    @property
    def registry(self) -> Registry:
        """The frozen registry: every enabled plugin's service."""

    @property
    def plugin_names(self) -> list[str]:
        """Plugins registered, in load order."""


# --- declaration phase -----------------------------------------------------------------------


@_hookspec
def vcdext_register(registrar: Registrar) -> None:
    """Declare the plugin's extension service, its operations, service links and rights.

    Called once per plugin, with a registrar of its own, before the runtime serves anything.
    The plugin's ``[plugins.<name>]`` config table is ``registrar.config``.

    :param registrar: the plugin's :class:`vcdext.Registrar`; it refuses calls after start-up.
    """


# --- runtime phase ---------------------------------------------------------------------------


@_hookspec
def vcdext_runtime_started(runtime: RuntimeView) -> None:
    """Called once the runtime is built and its registry frozen, before the first request.

    Use it to open connections or start background work the plugin needs. An exception stops
    start-up with a :class:`vcdext.PluginError` naming the plugin, after the stopping hooks
    have run (so the plugins started before it release what they acquired).

    :param runtime: the :class:`vcdext.Runtime` (settings, registry).
    """


@_hookspec
def vcdext_runtime_stopping(runtime: RuntimeView) -> None:
    """Called when the runtime shuts down, after in-flight requests have been answered.

    Release what ``vcdext_runtime_started`` acquired. Runs in reverse load order; an exception
    is logged with the plugin's name and the other plugins' hooks still run.

    :param runtime: the :class:`vcdext.Runtime`.
    """
