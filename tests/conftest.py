"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.schemas import schema_errors, validation_status

if TYPE_CHECKING:
    from tests.support.rabbitmq import RabbitNode


def pytest_report_header() -> str:
    return validation_status()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own vcdext configuration."""
    for name in list(os.environ):
        if name.startswith("VCDEXT_") and name != "VCDEXT_SCHEMAS":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def assert_valid_vcd_xml() -> Callable[[bytes | str], None]:
    """``assert_valid_vcd_xml(body)``: fail unless body is a well-formed vCloud document, and,
    where the schemas are found, valid against them (never skips: see tests/support/schemas.py)."""

    def check(document: bytes | str) -> None:
        errors = schema_errors(document)
        assert not errors, "not a valid vCloud document:\n" + "\n".join(errors)

    return check


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitNode]:
    """A RabbitMQ node started for this test session (never skipped), serving AMQP and MQTT
    over WebSocket (rabbitmq_web_mqtt): one broker for both transports."""
    from tests.support.rabbitmq import RabbitNode

    node = RabbitNode.start(mqtt=True)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def rabbitmq(rabbitmq_node: RabbitNode) -> str:
    """The AMQP URL of the session's RabbitMQ node."""
    return rabbitmq_node.url


@pytest.fixture(scope="session")
def mqtt_broker(rabbitmq_node: RabbitNode) -> str:
    """The MQTT-over-WebSocket URL of the session's node (ws://guest:guest@.../messaging/mqtt)."""
    return rabbitmq_node.mqtt_url
