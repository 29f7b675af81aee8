"""The cell is a development tool: it stays on loopback unless told otherwise."""

from __future__ import annotations

import pytest
import requests

from vcdext_cell import Cell, CellError
from vcdext_cell.server import is_loopback


def test_refuses_to_listen_beyond_loopback_without_allow_remote():
    with pytest.raises(CellError, match="--allow-remote"):
        Cell(amqp_url="memory://", host="0.0.0.0", port=0).start()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("app.localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_requests_for_another_host_name_are_refused(cell, assert_valid_vcd_xml):
    """DNS rebinding: a web page's own host name resolving to 127.0.0.1."""
    url = f"{cell.url}/api/versions"
    refused = requests.get(url, headers={"Host": "attacker.example", "Accept": "*/*"}, timeout=10)
    assert refused.status_code == 403
    assert_valid_vcd_xml(refused.content)
    port = cell.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert requests.get(url, headers={"Host": host}, timeout=10).status_code == 200


def test_allow_remote_answers_any_host_name():
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, allow_remote=True) as cell:
        r = requests.get(f"{cell.url}/api/versions", headers={"Host": "vcd.example"}, timeout=10)
        assert r.status_code == 200
