"""pytest fixtures for vcdext service authors (registered under the ``pytest11`` entry point).

``vcdext_client_for(*plugins, rights=...)`` builds a runtime with just those plugins and
returns a :class:`~vcdext.testing.TestClient`; nothing is imported until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def vcdext_client_for() -> Callable[..., Any]:
    """Factory: ``vcdext_client_for(plugin_module, rights=[...], user=..., org=...)``."""
    from .client import TestClient, make_runtime

    def factory(*plugins: Any, **client_options: Any) -> TestClient:
        return TestClient(make_runtime(*plugins), **client_options)

    return factory
