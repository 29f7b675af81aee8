"""The AMQP request/reply loop against a real RabbitMQ node (started by the tests)."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Exchange

import vcdext_hello.plugin as hello
from tests.fake_plugins import slow
from tests.support.metrics import free_port, wait_for_metric
from tests.support.vcd_side import VcdSide
from vcdext.app import create_transport
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.transport.amqp import AmqpServer, TransportError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HELLO_KEY = "io.vcdext.hello"
SLOW_KEY = "io.example.slow"
USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
ORG = "urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae"


def e2(
    path: str,
    request_id: str = "r-1",
    method: str = "GET",
    body: bytes = b"",
    headers: dict | None = None,
) -> bytes:
    """A message shaped like example E2/E4 of the protocol notes."""
    request = {
        "id": request_id,
        "method": method,
        "scheme": "https",
        "protocol": "HTTP/1.1",
        "headers": headers
        or {"Accept": "application/*+xml;version=5.1", "x-vcloud-authorization": "tok"},
        "queryString": None,
        "localPort": 443,
        "remoteAddr": "10.0.0.5",
        "remotePort": 51000,
        "localAddr": "10.0.0.1",
        "request": True,
        "requestUri": path,
        "body": base64.b64encode(body).decode(),
    }
    return json.dumps([request, {"user": USER, "org": ORG, "rights": []}]).encode()


@pytest.fixture
def exchange() -> str:
    return f"vcdext-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def serve(rabbitmq, exchange):
    """serve(**env) starts an AmqpServer with hello and slow in a thread; stops it after."""
    servers = []

    def start(**env: str) -> AmqpServer:
        environ = {"VCDEXT_AMQP_URL": rabbitmq, "VCDEXT_AMQP_EXCHANGE": exchange, **env}
        runtime = make_runtime(
            hello=hello, slow=slow, settings=load_settings(None, environ=environ)
        )
        server = create_transport(runtime)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        assert server.ready.wait(30), "server did not come up"
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(20)
        assert not thread.is_alive(), "server did not stop"


@pytest.fixture
def vcd(rabbitmq, exchange):
    side = VcdSide(rabbitmq, exchange)
    yield side
    side.close()


def ask_hello(
    conn: Connection, server: AmqpServer, request_id: str, reply_to: str, reply_exchange: str
) -> None:
    """Publish GET /api/hello as vCD would, its reply wanted on ``reply_exchange``."""
    conn.Producer().publish(
        e2("/api/hello", request_id),
        exchange=server.exchange.name,
        routing_key=HELLO_KEY,
        correlation_id=request_id,
        reply_to=reply_to,
        headers={"replyToExchange": reply_exchange},
    )


def queue_depth(url: str, name: str) -> int:
    with Connection(url) as conn:
        _, count, _ = conn.default_channel.queue_declare(name, passive=True)
        return int(count)


def test_answers_an_e2_shaped_get(serve, vcd, assert_valid_vcd_xml):
    serve()
    cid = vcd.publish_raw(e2("/api/hello"), HELLO_KEY, correlation_id="c-1")
    (reply,) = vcd.wait(cid)
    assert reply.correlation_id == "c-1"
    assert (reply.exchange, reply.routing_key) == (vcd.reply_exchange, vcd.reply_key)
    assert set(reply.doc) == {"id", "headers", "statusCode", "body", "request"}
    assert (reply.doc["id"], reply.status, reply.doc["request"]) == ("r-1", 200, False)
    assert reply.doc["headers"]["Content-Length"] == len(reply.body)
    assert USER.encode() in reply.body


def test_answers_an_e4_shaped_post_with_body(serve, vcd):
    serve()
    payload = b"<ticket><message>hi</message></ticket>"
    cid = vcd.publish_raw(
        e2("/api/hello/echo", "r-4", "POST", payload, {"Content-Type": "application/xml"}),
        HELLO_KEY,
    )
    (reply,) = vcd.wait(cid)
    assert (reply.status, reply.body) == (200, payload)
    assert reply.doc["headers"]["Content-Type"] == "application/xml"


def test_garbage_with_reply_address_gets_400_and_serving_goes_on(serve, vcd, assert_valid_vcd_xml):
    serve()
    bad = vcd.publish_raw(b"\x00 definitely not json", HELLO_KEY)
    (reply,) = vcd.wait(bad)
    assert reply.status == 400
    assert_valid_vcd_xml(reply.body)
    good = vcd.publish_raw(e2("/api/hello", "r-2"), HELLO_KEY)
    assert vcd.wait(good)[0].status == 200


def test_garbage_without_reply_address_is_rejected_not_requeued(serve, vcd, rabbitmq):
    server = serve()
    vcd.publish_raw(b"garbage", HELLO_KEY, reply=False)
    good = vcd.publish_raw(e2("/api/hello", "r-3"), HELLO_KEY)
    assert vcd.wait(good)[0].status == 200
    # Once the consumer is gone, anything it held unacked is back in the queue: nothing is.
    server.stop()
    time.sleep(1.0)
    assert queue_depth(rabbitmq, HELLO_KEY) == 0


def test_unknown_path_and_wrong_method_are_error_replies(serve, vcd, assert_valid_vcd_xml):
    serve()
    missing = vcd.publish_raw(e2("/api/hello/nope"), HELLO_KEY)
    wrong = vcd.publish_raw(e2("/api/hello", method="DELETE"), HELLO_KEY)
    r404, r405 = vcd.wait(missing, wrong)
    assert (r404.status, r405.status) == (404, 405)
    assert_valid_vcd_xml(r404.body)
    assert_valid_vcd_xml(r405.body)


def test_slow_handler_does_not_block_other_requests(serve, vcd):
    serve(VCDEXT_RUNTIME_WORKERS="2")
    # The slow handler takes 4 s: the fast ones are answered well before it ends, with room
    # for a loaded machine (a reply through the broker can take a second there).
    slow_cid = vcd.request("GET", "/api/slow", SLOW_KEY, query_string="s=4")
    time.sleep(0.1)
    fast = [vcd.request("GET", "/api/hello", HELLO_KEY) for _ in range(5)]
    started = time.monotonic()
    replies = vcd.wait(*fast)
    assert all(r.status == 200 for r in replies)
    assert slow_cid not in vcd.replies, "fast requests waited for the slow one"
    assert time.monotonic() - started < 3.0
    assert vcd.wait(slow_cid)[0].status == 200


def test_only_declared_queues_are_bound_and_exchange_is_durable_direct(serve, rabbitmq, exchange):
    serve()
    with Connection(rabbitmq) as conn:
        channel = conn.default_channel
        # A passive declare with matching type/durability succeeds; a mismatch would raise.
        Exchange(exchange, type="direct", durable=True, passive=True)(channel).declare()
        for key in (HELLO_KEY, SLOW_KEY):
            channel.queue_declare(key, passive=True)


def test_exchange_of_the_wrong_type_is_a_clear_error(rabbitmq):
    name = f"vcdext-fanout-{uuid.uuid4().hex[:6]}"
    with Connection(rabbitmq) as conn:
        Exchange(name, type="fanout", durable=True)(conn.default_channel).declare()
    runtime = make_runtime(
        hello=hello,
        settings=load_settings(
            None, environ={"VCDEXT_AMQP_URL": rabbitmq, "VCDEXT_AMQP_EXCHANGE": name}
        ),
    )
    with pytest.raises(TransportError, match="refused the topology"):
        create_transport(runtime).run()


# --- the `vcdext run` process --------------------------------------------------------------


def vcdext_run(rabbitmq: str, exchange: str, *extra_env: tuple[str, str]) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
        "VCDEXT_AMQP_URL": rabbitmq,
        "VCDEXT_AMQP_EXCHANGE": exchange,
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "VCDEXT_PLUGINS_MODULES": "tests.fake_plugins.slow",
        "PYTHONPATH": str(REPO),
        **dict(extra_env),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "vcdext", "run"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_queue(url: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Connection(url) as conn:
                _, _, consumers = conn.default_channel.queue_declare(name, passive=True)
                if consumers:
                    return
        except Exception:  # not declared yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"nobody consumes {name}")


def test_vcdext_run_answers_e2_e4_and_garbage_then_keeps_serving(
    rabbitmq, exchange, vcd, assert_valid_vcd_xml
):
    proc = vcdext_run(rabbitmq, exchange)
    try:
        wait_for_queue(rabbitmq, HELLO_KEY)
        get = vcd.publish_raw(e2("/api/hello", "r-1"), HELLO_KEY)
        post = vcd.publish_raw(
            e2("/api/hello/echo", "r-4", "POST", b"<t/>", {"Content-Type": "application/xml"}),
            HELLO_KEY,
        )
        garbage = vcd.publish_raw(b"{not json", HELLO_KEY)
        r_get, r_post, r_bad = vcd.wait(get, post, garbage)
        assert (r_get.status, r_post.status, r_bad.status) == (200, 200, 400)
        assert USER.encode() in r_get.body
        assert r_post.body == b"<t/>"
        assert_valid_vcd_xml(r_bad.body)
        after = vcd.publish_raw(e2("/api/hello", "r-5"), HELLO_KEY)
        assert vcd.wait(after)[0].status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_sigterm_finishes_in_flight_work_and_exits_0(rabbitmq, exchange, vcd):
    port = free_port()
    proc = vcdext_run(rabbitmq, exchange, ("VCDEXT_RUNTIME_HEALTH_PORT", str(port)))
    try:
        wait_for_queue(rabbitmq, SLOW_KEY)
        cid = vcd.request("GET", "/api/slow", SLOW_KEY, query_string="s=3")
        # SIGTERM once the request is in its handler (a fixed sleep could signal before the
        # process even received it, leaving nothing in flight and the request unanswered).
        wait_for_metric(port, "vcdext_requests_in_progress", 1)
        proc.send_signal(signal.SIGTERM)
        (reply,) = vcd.wait(cid, timeout=20)
        assert reply.status == 200
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "finishing in-flight requests" in out
    assert queue_depth(rabbitmq, SLOW_KEY) == 0


def test_request_is_not_lost_when_the_service_dies_mid_request(rabbitmq, exchange, vcd):
    """Reply, then ack: a request taken by a process that dies before replying is
    redelivered by the broker and answered by the next instance."""
    port = free_port()
    first = vcdext_run(rabbitmq, exchange, ("VCDEXT_RUNTIME_HEALTH_PORT", str(port)))
    try:
        wait_for_queue(rabbitmq, SLOW_KEY)
        cid = vcd.request("GET", "/api/slow", SLOW_KEY, query_string="s=3")
        wait_for_metric(port, "vcdext_requests_in_progress", 1)  # `first`'s handler sleeping
        first.kill()
        first.communicate(timeout=10)
        assert cid not in vcd.replies
        second = vcdext_run(rabbitmq, exchange)
        try:
            (reply,) = vcd.wait(cid, timeout=30)
            assert reply.status == 200
        finally:
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()


def test_wrong_broker_password_is_one_clear_line(rabbitmq, exchange):
    bad_url = rabbitmq.replace("guest:guest", "guest:wrong-pa55")
    proc = vcdext_run(bad_url, exchange)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "refused the login" in out
    assert "wrong-pa55" not in out


def test_sigterm_while_the_broker_is_unreachable_exits_promptly(exchange):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = vcdext_run(f"amqp://guest:s3cr3t-pw@127.0.0.1:{port}//", exchange)
    # Signal only once it is retrying (its signal handlers are installed by then), however
    # slowly a loaded machine starts it.
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        lines.append(line)
        if "unreachable" in line:
            break
    assert proc.poll() is None, "it should keep retrying: " + "".join(lines)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    out = "".join(lines) + out
    assert proc.returncode == 0, out
    assert "unreachable" in out
    assert "s3cr3t-pw" not in out


# --- failures between the service and the broker -------------------------------------------


@pytest.fixture
def proxy(rabbitmq):
    from tests.support.tcpproxy import TcpProxy

    port = int(rabbitmq.rsplit(":", 1)[1].split("/")[0])
    p = TcpProxy(port)
    yield p
    p.close()


def test_service_recovers_after_the_broker_connection_is_cut(proxy, exchange, vcd, rabbitmq):
    runtime = make_runtime(
        hello=hello,
        settings=load_settings(
            None, environ={"VCDEXT_AMQP_URL": proxy.url(), "VCDEXT_AMQP_EXCHANGE": exchange}
        ),
    )
    server = create_transport(runtime)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(30)
        assert vcd.wait(vcd.publish_raw(e2("/api/hello", "before"), HELLO_KEY))[0].status == 200
        proxy.cut(3.0)
        during = vcd.publish_raw(e2("/api/hello", "during"), HELLO_KEY)
        after_cut = vcd.wait(during, timeout=40)[0]
        assert after_cut.status == 200
        later = vcd.publish_raw(e2("/api/hello", "later"), HELLO_KEY)
        assert vcd.wait(later, timeout=20)[0].status == 200
    finally:
        server.stop()
        thread.join(30)
    assert not thread.is_alive()


def test_no_ack_before_the_reply_is_confirmed(proxy, exchange, vcd, rabbitmq):
    """The reply connection (the process's second connection) is frozen, so the reply is
    never confirmed; the process is then killed. Had the request been acked before its reply
    was confirmed, it would be lost; instead the broker redelivers it to the next instance."""
    port = free_port()
    first = vcdext_run(proxy.url(), exchange, ("VCDEXT_RUNTIME_HEALTH_PORT", str(port)))
    try:
        wait_for_queue(rabbitmq, HELLO_KEY)
        # The reply connection opens with the first reply: answer one request to open it.
        warm = vcd.publish_raw(e2("/api/hello", "warm"), HELLO_KEY)
        assert vcd.wait(warm, timeout=20)[0].status == 200
        # 1 consumes, 2 replies, 3 checked the reply exchange (closed at once)
        assert proxy.connection_count == 3
        proxy.freeze(2)  # before the request: its reply cannot slip through first
        cid = vcd.publish_raw(e2("/api/hello", "frozen"), HELLO_KEY)
        wait_for_metric(port, "vcdext_requests_total", 2)  # answered, its reply held up
        time.sleep(0.5)
        assert cid not in vcd.replies
        first.kill()
        first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    second = vcdext_run(rabbitmq, exchange)
    try:
        (reply,) = vcd.wait(cid, timeout=30)
        assert reply.status == 200
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)


def test_a_reply_the_broker_refuses_rejects_the_request_and_serving_goes_on(
    serve, vcd, rabbitmq, exchange, caplog
):
    server = serve()
    body = e2("/api/hello", "lost")
    with Connection(rabbitmq) as conn:
        conn.Producer().publish(
            body,
            exchange=exchange,
            routing_key=HELLO_KEY,
            correlation_id="x",
            reply_to="nowhere",
            headers={"replyToExchange": "no-such-exchange"},
        )
    time.sleep(1.0)
    good = vcd.publish_raw(e2("/api/hello", "good"), HELLO_KEY)
    assert vcd.wait(good)[0].status == 200
    server.stop()
    time.sleep(1.0)
    assert queue_depth(rabbitmq, HELLO_KEY) == 0  # rejected, not requeued or left unacked


def test_a_reply_exchange_deleted_after_use_refuses_its_reply_alone(serve, vcd, rabbitmq, caplog):
    """A reply exchange is checked once, when first seen. Deleted later, the broker closes the
    publishing channel on the next reply to it: the runtime reopens the channel, refuses that
    reply (its request rejected, not requeued) and goes on serving."""
    server = serve()
    gone = f"vcdext-replies-{uuid.uuid4().hex[:6]}"
    with Connection(rabbitmq) as conn:
        channel = conn.default_channel
        channel.exchange_declare(gone, "direct", durable=False, auto_delete=False)
        reply_queue, _, _ = channel.queue_declare("", exclusive=True)
        channel.queue_bind(reply_queue, gone, routing_key=reply_queue)

        def ask(request_id: str) -> None:
            ask_hello(conn, server, request_id, reply_queue, gone)

        with caplog.at_level(logging.INFO, logger="vcdext.transport.amqp"):
            ask("first")
            deadline = time.monotonic() + 15
            while (reply := channel.basic_get(reply_queue, no_ack=True)) is None:
                assert time.monotonic() < deadline, "no reply through the exchange"
                time.sleep(0.05)
            assert json.loads(reply.body)["statusCode"] == 200
            channel.exchange_delete(gone)
            ask("second")
            deadline = time.monotonic() + 15
            while "refused" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
    assert "reply channel was closed by the broker" in caplog.text
    assert "reply for correlation id second" in caplog.text and "refused" in caplog.text
    good = vcd.publish_raw(e2("/api/hello", "good"), HELLO_KEY)
    assert vcd.wait(good)[0].status == 200
    server.stop()
    time.sleep(1.0)
    assert queue_depth(rabbitmq, HELLO_KEY) == 0  # rejected, not requeued or left unacked


def test_inline_operations_run_on_the_consumer_thread_and_others_on_workers(serve, vcd):
    """``inline=True`` is answered by the thread that consumes (no hand-over to a worker);
    any other operation by a worker, and a redelivered inline request too."""
    server = serve()
    inline = vcd.publish_raw(e2("/api/slow/thread/inline", "i-1"), SLOW_KEY)
    pooled = vcd.publish_raw(e2("/api/slow/thread", "p-1"), SLOW_KEY)
    inline_reply, pooled_reply = vcd.wait(inline, pooled)
    assert (inline_reply.status, pooled_reply.status) == (200, 200)
    assert b"vcdext-worker-" not in inline_reply.body
    assert b"(run)'" in inline_reply.body  # serve()'s thread, the one in server.run()
    assert b"name='vcdext-worker-" in pooled_reply.body
    assert server.load() == (0, 0)


def test_a_channel_closed_while_other_exchanges_are_checked_refuses_none_wrongly(
    serve, vcd, rabbitmq
):
    """A reply goes to an exchange deleted since its check, and in the same turn other
    replies' exchanges are checked, one of them missing: the broker closes the publishing
    channel while those checks run. Only the reply to the missing exchange is refused; the
    one to the existing exchange is delivered, and the reopened channel confirms again (every
    request ends up acked)."""
    server = serve()
    gone, fresh, missing = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("gone", "fresh", "no"))
    with Connection(rabbitmq) as conn:
        ch = conn.default_channel
        for name in (gone, fresh):
            ch.exchange_declare(name, "direct", durable=False, auto_delete=False)
        queue, _, _ = ch.queue_declare("", exclusive=True)
        ch.queue_bind(queue, gone, routing_key=queue)
        ch.queue_bind(queue, fresh, routing_key=queue)

        def ask(request_id: str, reply_exchange: str) -> None:
            ask_hello(conn, server, request_id, queue, reply_exchange)

        def replies(until: str) -> list[str]:
            got: list[str] = []
            deadline = time.monotonic() + 30
            while until not in got and time.monotonic() < deadline:
                message = ch.basic_get(queue, no_ack=True)
                if message is None:
                    time.sleep(0.05)
                else:
                    got.append(message.properties.get("correlation_id"))
            return got

        ask("first", gone)  # checks `gone` once
        assert replies("first") == ["first"]
        ch.exchange_delete(gone)
        ask("second", gone)  # refused by the broker: it closes the publishing channel
        ask("third", missing)  # read in the same turn: checked meanwhile, and refused
        ask("fourth", fresh)  # checked meanwhile, and there
        assert "fourth" in replies("fourth")
        for i in range(5):
            ask(f"later-{i}", fresh)
        assert "later-4" in replies("later-4")
    good = vcd.publish_raw(e2("/api/hello", "good"), HELLO_KEY)
    assert vcd.wait(good)[0].status == 200
    deadline = time.monotonic() + 30
    while server._inflight and time.monotonic() < deadline:
        time.sleep(0.05)
    stuck = sorted(m.properties.get("correlation_id") for m in server._inflight.values())
    assert not stuck, f"requests never acked (the reply channel lost confirm mode): {stuck}"
