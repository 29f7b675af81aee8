"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.schemas import schema_errors, schema_root


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own vcdext configuration."""
    for name in list(os.environ):
        if name.startswith("VCDEXT_") and name != "VCDEXT_SCHEMAS":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def assert_valid_vcd_xml() -> Callable[[bytes | str], None]:
    """``assert_valid_vcd_xml(body)``: fail unless body validates against vCD's schemas."""
    if schema_root() is None:
        pytest.skip("vCloud schemas not found beside the checkout (../shared/vcd-schemas)")

    def check(document: bytes | str) -> None:
        errors = schema_errors(document)
        assert not errors, "not valid against the vCloud schemas:\n" + "\n".join(errors)

    return check


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[str]:
    """The URL of a RabbitMQ node started for this test session (never skipped)."""
    from tests.support.rabbitmq import RabbitNode

    node = RabbitNode.start()
    try:
        yield node.url
    finally:
        node.stop()
