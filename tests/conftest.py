"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.schemas import schema_errors, validation_status


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
def rabbitmq() -> Iterator[str]:
    """The URL of a RabbitMQ node started for this test session (never skipped)."""
    from tests.support.rabbitmq import RabbitNode

    node = RabbitNode.start()
    try:
        yield node.url
    finally:
        node.stop()
