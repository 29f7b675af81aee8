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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import _hookspec

if TYPE_CHECKING:
    from .registry import Registrar
    from .runtime import Runtime


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
def vcdext_runtime_started(runtime: Runtime) -> None:
    """Called once the runtime is built and its registry frozen, before the first request.

    Use it to open connections or start background work the plugin needs.

    :param runtime: the :class:`vcdext.Runtime` (settings, registry).
    """


@_hookspec
def vcdext_runtime_stopping(runtime: Runtime) -> None:
    """Called when the runtime shuts down, after in-flight requests have been answered.

    Release what ``vcdext_runtime_started`` acquired. Exceptions are logged and ignored.

    :param runtime: the :class:`vcdext.Runtime`.
    """
