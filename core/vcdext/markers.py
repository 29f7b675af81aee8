"""The project's name, its entry-point group and the pluggy markers."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "vcdext"
#: Entry-point group under which plugin distributions publish their plugin module.
ENTRY_POINT_GROUP = "vcdext"

#: Marks a plugin function as the implementation of a hook in :mod:`vcdext.hookspecs`.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
#: Marks a hook specification (private to the core).
_hookspec = pluggy.HookspecMarker(PROJECT_NAME)
