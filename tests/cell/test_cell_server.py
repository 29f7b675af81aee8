"""The cell's HTTP server under hostile or heavy clients: strict body framing, a real listen
backlog, an idle timeout and a bound on connections. Loopback only; each test takes well under
a few seconds (a server that reads until close, or never times out, fails on a socket timeout
instead of hanging)."""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from lxml import etree

from tests.cell.support import Client, service_xml
from vcdext_cell import Cell, demo_seed
from vcdext_cell.server import MAX_API_BODY, App, CellHTTPServer
from vcdext_cell.state import State

ACCEPT = "application/*+xml;version=36.0"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _answer(sock: socket.socket) -> tuple[int, bytes, http.client.HTTPResponse]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read(), response


def send_raw(url: str, head: str, body: bytes = b"", *, close_write: bool = False):
    """Send a hand-made request, keep the socket open (unless ``close_write``), read the answer."""
    with socket.create_connection(_address(url), timeout=3) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        return _answer(sock)


def post_head(**headers: str) -> str:
    lines = ["POST /api/sessions HTTP/1.1", "Host: 127.0.0.1", f"Accept: {ACCEPT}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


def assert_error(status: int, body: bytes, expected: int, assert_valid_vcd_xml) -> None:
    assert status == expected, body
    assert_valid_vcd_xml(body)
    assert etree.fromstring(body).get("majorErrorCode") == str(expected)


# -- body framing -------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["-1", "-0", "+10", "0x10", "1_0", " ", "zz", "1" * 1100])
def test_a_malformed_chunk_size_is_400_without_reading_until_close(
    cell: Cell, assert_valid_vcd_xml, size: str
) -> None:
    status, body, _ = send_raw(
        cell.url, post_head(Transfer_Encoding="chunked"), f"{size}\r\n".encode()
    )
    assert_error(status, body, 400, assert_valid_vcd_xml)


@pytest.mark.parametrize("size", ["80001", "0000000000080001", "f" * 40])
def test_a_chunk_declared_over_the_limit_is_413_before_it_is_sent(
    cell: Cell, assert_valid_vcd_xml, size: str
) -> None:
    assert int(size, 16) > MAX_API_BODY
    status, body, _ = send_raw(
        cell.url, post_head(Transfer_Encoding="chunked"), f"{size}\r\n".encode()
    )
    assert_error(status, body, 413, assert_valid_vcd_xml)


def test_chunks_over_the_limit_are_413_as_soon_as_the_limit_is_passed(
    cell: Cell, assert_valid_vcd_xml
) -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    chunks = chunk * (MAX_API_BODY // (64 * 1024) + 1)  # one chunk past the limit, no end
    status, body, _ = send_raw(cell.url, post_head(Transfer_Encoding="chunked"), chunks)
    assert_error(status, body, 413, assert_valid_vcd_xml)


def test_a_chunk_shorter_than_its_size_or_without_its_crlf_is_400(
    cell: Cell, assert_valid_vcd_xml
) -> None:
    short = send_raw(
        cell.url, post_head(Transfer_Encoding="chunked"), b"10\r\nabc", close_write=True
    )
    assert_error(short[0], short[1], 400, assert_valid_vcd_xml)
    no_crlf = send_raw(cell.url, post_head(Transfer_Encoding="chunked"), b"3\r\nabcXY0\r\n\r\n")
    assert_error(no_crlf[0], no_crlf[1], 400, assert_valid_vcd_xml)


def test_a_well_formed_chunked_body_is_read(admin: Client) -> None:
    data = etree.tostring(service_xml("chunky", "io.example.chunky"))
    r = admin.request(
        "POST",
        "/api/admin/extension/service",
        data=iter([data[:10], data[10:50], data[50:]]),  # requests sends a generator chunked
        headers={"Content-Type": "application/vnd.vmware.admin.service+xml"},
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201, r.text
    assert etree.fromstring(r.content).get("name") == "chunky"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content_Length": "-5"},
        {"Content_Length": "+5"},
        {"Content_Length": "5 5"},
        {"Content_Length": "0x5"},
        {"Transfer_Encoding": "gzip"},
    ],
)
def test_a_malformed_length_or_coding_is_400(
    cell: Cell, assert_valid_vcd_xml, headers: dict[str, str]
) -> None:
    status, body, _ = send_raw(cell.url, post_head(**headers), b"hello")
    assert_error(status, body, 400, assert_valid_vcd_xml)


def test_two_different_content_lengths_are_400(cell: Cell, assert_valid_vcd_xml) -> None:
    head = post_head(Content_Length="5") + "Content-Length: 3\n"
    status, body, _ = send_raw(cell.url, head, b"hello")
    assert_error(status, body, 400, assert_valid_vcd_xml)


def test_a_body_shorter_than_its_content_length_is_400(cell: Cell, assert_valid_vcd_xml) -> None:
    status, body, _ = send_raw(cell.url, post_head(Content_Length="10"), b"abc", close_write=True)
    assert_error(status, body, 400, assert_valid_vcd_xml)


# -- connections --------------------------------------------------------------------------


@pytest.fixture
def make_server() -> Iterator[Callable[..., CellHTTPServer]]:
    """``make_server(serve=True, **options)``: a CellHTTPServer on a free loopback port."""
    made: list[tuple[CellHTTPServer, threading.Thread | None]] = []

    def make(*, serve: bool = True, **options: float) -> CellHTTPServer:
        app = App(State(demo_seed()), None, timeout=1, rights_format="urn")  # type: ignore[arg-type]
        server = CellHTTPServer(("127.0.0.1", 0), app, **options)  # type: ignore[arg-type]
        thread = None
        if serve:
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
        made.append((server, thread))
        return server

    yield make
    for server, thread in made:
        if thread is not None:
            server.shutdown()
        server.server_close()


def test_the_listen_backlog_holds_a_burst_of_connections(make_server) -> None:
    """Nothing accepts: every connection of the burst must still complete its handshake
    (with socketserver's backlog of 5, all but 6 would wait for SYN retries)."""
    server = make_server(serve=False)
    burst = 100
    assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    clients = []
    try:
        for _ in range(burst):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", server.port))
            clients.append(c)
        pending, deadline = list(clients), time.monotonic() + 1.0
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], pending, [], 0.1)
            pending = [c for c in pending if c not in writable]
        connected = [c for c in clients if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
        assert not pending and len(connected) == burst
    finally:
        for c in clients:
            c.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_silent_connections_are_closed_after_the_idle_timeout(make_server) -> None:
    server = make_server(idle_timeout=0.3)
    address = ("127.0.0.1", server.port)
    started = time.monotonic()
    with (
        socket.create_connection(address) as silent,
        socket.create_connection(address) as half_head,
        socket.create_connection(address) as half_body,
    ):
        half_head.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        half_body.sendall(
            post_head(Content_Length="100").replace("\n", "\r\n").encode() + b"\r\nab"
        )
        for sock in (silent, half_head, half_body):
            assert _closed_within(sock, 10)
    assert time.monotonic() - started < 10  # each closed by the 0.3 s idle timeout


def test_a_kept_alive_connection_is_served_then_closed_when_idle(make_server) -> None:
    server = make_server(idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        for _ in range(2):
            sock.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, response = _answer(sock)
            assert status == 200 and not response.will_close
        assert _closed_within(sock, 10)


def test_connections_beyond_the_limit_get_503_at_once(make_server, assert_valid_vcd_xml) -> None:
    server = make_server(max_connections=2)
    address = ("127.0.0.1", server.port)
    held = [socket.create_connection(address) for _ in range(2)]
    try:
        # Each held connection has its thread once one request on it has been answered.
        for sock in held:
            sock.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(3)
            assert _answer(sock)[0] == 200
        with socket.create_connection(address, timeout=3) as extra:
            extra.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, body, response = _answer(extra)
        assert status == 503 and response.getheader("Retry-After") == "1"
        assert response.getheader("X-VMWARE-VCLOUD-REQUEST-ID")
        assert_valid_vcd_xml(body)
        assert etree.fromstring(body).get("minorErrorCode") == "SERVICE_UNAVAILABLE"
    finally:
        held.pop().close()
    # A freed slot serves the next connection.
    deadline = time.monotonic() + 20
    while True:
        with socket.create_connection(address, timeout=3) as sock:
            sock.sendall(b"GET /api/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status = _answer(sock)[0]
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200
    for sock in held:
        sock.close()
