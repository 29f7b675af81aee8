"""Test helpers for service authors: an in-process client and vCD message builders.

``TestClient`` drives the same path as the AMQP transport (vCD message in, vCD reply out),
with no broker. The pytest plugin (``vcdext.testing.pytest_plugin``) adds fixtures.
"""

from .client import TestClient, TestResponse, make_runtime, use_vcd
from .tasks import FakeVcd, TaskRun

__all__ = ["FakeVcd", "TaskRun", "TestClient", "TestResponse", "make_runtime", "use_vcd"]
