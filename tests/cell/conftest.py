"""Fixtures for the local cell: a started cell on a free port, and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.cell.support import Client
from vcdext_cell import Cell


@pytest.fixture
def cell() -> Iterator[Cell]:
    """A demo-seeded cell on any free port, with kombu's in-memory broker."""
    c = Cell(amqp_url="memory://", host="127.0.0.1", port=0, timeout=5)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def client(cell: Cell, assert_valid_vcd_xml: Callable[[bytes], None]) -> Callable[..., Client]:
    """``client()`` anonymous, ``client("alice@acme")`` logged in with the demo password."""

    def make(login: str | None = None, password: str = "vmware", **kwargs: str) -> Client:
        c = Client(cell.url, assert_valid_vcd_xml, **kwargs)
        return c.login(login, password) if login else c

    return make


@pytest.fixture
def admin(client: Callable[..., Client]) -> Client:
    return client("administrator@System")


@pytest.fixture
def alice(client: Callable[..., Client]) -> Client:
    return client("alice@acme")


@pytest.fixture
def bob(client: Callable[..., Client]) -> Client:
    return client("bob@acme")
