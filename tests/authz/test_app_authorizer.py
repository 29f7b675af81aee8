"""`vcdext run` connects vCD's authorization framework for handlers after registering, only
when vCD is configured and a service declares resource classes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from vcdext import app
from vcdext.settings import PluginsSettings, Settings, VcdSettings
from vcdext.vcd.authorization import VcdAuthorizer
from vcdext_cell import Cell


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


def run_and_look(settings: Settings) -> list[object]:
    seen: list[object] = []

    def ready(runtime: app.Runtime) -> None:
        seen.append(runtime.dispatcher.authorizer)
        os.kill(os.getpid(), signal.SIGTERM)

    assert app.run(settings, amqp_url="memory://", on_ready=ready) == 0
    return seen


def test_run_connects_the_authorizer_after_registering(cell):
    settings = Settings(
        plugins=PluginsSettings(enabled=(), modules=("tests.fake_plugins.vault",)),
        vcd=VcdSettings(url=cell.url, username="administrator", password="vmware"),
    )
    (authorizer,) = run_and_look(settings)
    assert isinstance(authorizer, VcdAuthorizer)
    assert authorizer.namespaces == {"vault": "io.example.vault"}
    assert cell.service("io.example.vault").authorization_enabled


def test_without_vcd_url_there_is_none_and_run_still_serves():
    settings = Settings(plugins=PluginsSettings(enabled=(), modules=("tests.fake_plugins.vault",)))
    assert run_and_look(settings) == [None]


def test_a_service_without_classes_needs_none(cell):
    settings = Settings(
        plugins=PluginsSettings(enabled=("hello",)),
        vcd=VcdSettings(url=cell.url, username="administrator", password="vmware"),
    )
    assert run_and_look(settings) == [None]
