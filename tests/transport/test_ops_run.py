"""`vcdext run --health-port` against a real RabbitMQ node: readiness, metrics scraped while it
serves, JSON logs that follow one call, and `vcdext run --check`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.tcpproxy import TcpProxy
from tests.support.vcd_side import VcdSide
from vcdext.health import probe
from vcdext.vcloud.media import H_REQUEST_ID
from vcdext.vcloud.message import encode_request

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HELLO_KEY = "io.vcdext.hello"
USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
ORG = "urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vcdext(*args: str, **env: str) -> subprocess.Popen:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "vcdext", *args],
        env=environ,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def get(port: int, path: str) -> tuple[int, str] | None:
    try:
        return probe("127.0.0.1", port, path, timeout=2)
    except OSError:
        return None


def wait_for(port: int, path: str, status: int | None, timeout: float = 30.0) -> tuple[int, str]:
    """The first answer of ``path`` (with ``status``, when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = get(port, path)
        if answer is not None and (status is None or answer[0] == status):
            return answer
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not answer {status}")


@pytest.fixture
def exchange() -> str:
    return f"vcdext-ops-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def proxy(rabbitmq):
    p = TcpProxy(int(rabbitmq.rsplit(":", 1)[1].split("/")[0]))
    yield p
    p.close()


def test_readyz_is_503_until_the_consumer_is_up_then_metrics_and_json_logs_follow_calls(
    rabbitmq, proxy, exchange
):
    port = free_port()
    # The broker is out of reach until the test has seen the process not ready (a fixed cut
    # of a few seconds could end before a loaded machine has even started the process).
    proxy.cut(120)
    proc = vcdext(
        "run",
        "--health-port",
        str(port),
        VCDEXT_AMQP_URL=proxy.url(),
        VCDEXT_AMQP_EXCHANGE=exchange,
        VCDEXT_RUNTIME_LOG_FORMAT="json",
    )
    side = None
    try:
        status, body = wait_for(port, "/readyz", None)
        assert status == 503, body
        assert json.loads(body)["topology_declared"] is False
        status, body = get(port, "/healthz")
        assert status == 503
        assert json.loads(body)["broker_connected"] is False
        proxy.cut(0)  # the broker is back: the next reconnect attempt gets through

        status, body = wait_for(port, "/readyz", 200)
        assert json.loads(body) == {
            "status": "ready",
            "topology_declared": True,
            "registration_done": True,  # no vcd.url: skipped
            "draining": False,
        }
        assert get(port, "/healthz")[0] == 200

        side = VcdSide(rabbitmq, exchange)
        sent = [
            side.publish_raw(
                encode_request(
                    "GET",
                    "/api/hello",
                    request_id=f"msg-{i}",
                    headers={
                        "Accept": "application/*+xml;version=5.1",
                        H_REQUEST_ID: f"vcd-{i}",
                    },
                    user=USER,
                    org=ORG,
                ),
                HELLO_KEY,
            )
            for i in range(5)
        ]
        missing = side.publish_raw(
            encode_request("GET", "/api/hello/nope", request_id="msg-404", user=USER), HELLO_KEY
        )
        replies = side.wait(*sent, missing)
        assert [r.status for r in replies] == [200] * 5 + [404]
        assert replies[0].doc["id"] == "msg-0"
        assert replies[0].delivery.reply().headers[H_REQUEST_ID] == "vcd-0"

        # A worker leaves "in progress" just after handing its reply over, and the broker's
        # confirm (the last reply's age) can come after vCD's side got the reply: scrape until
        # the process has caught up with what vCD saw.
        deadline = time.monotonic() + 30
        while True:
            status, text = get(port, "/metrics")
            assert status == 200
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            settled = found[("vcdext_requests_in_progress", ())] == 0
            if settled and found[("vcdext_last_reply_age_seconds", ())] >= 0:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        ok = (("operation", "hello"), ("service", "hello"), ("status", "200"))
        assert found[("vcdext_requests_total", ok)] == 5
        not_found = (("operation", ""), ("service", "hello"), ("status", "404"))
        assert found[("vcdext_requests_total", not_found)] == 1
        latency = (("operation", "hello"), ("service", "hello"))
        assert found[("vcdext_request_duration_seconds_count", latency)] == 5
        buckets = [k for k in found if k[0] == "vcdext_request_duration_seconds_bucket"]
        assert any(("le", "+Inf") in labels for _, labels in buckets)
        assert found[("vcdext_requests_in_progress", ())] == 0
        assert 0 <= found[("vcdext_last_reply_age_seconds", ())] < 60
        assert found[("vcdext_registration_runs_total", (("outcome", "skipped"),))] == 1
    finally:
        if side is not None:
            side.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out

    lines = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    by_id = {line["request_id"]: line for line in lines if "status" in line}
    first = by_id["msg-0"]  # the id the reply carries
    assert first["vcd_request_id"] == "vcd-0"
    assert (first["service"], first["operation"], first["status"]) == ("hello", "hello", 200)
    assert (first["user"], first["org"]) == (USER, ORG)
    assert by_id["msg-404"]["status"] == 404
    assert any("received SIGTERM" in line["message"] for line in lines)


def test_run_check_reports_plugins_and_broker_and_changes_nothing(rabbitmq, exchange):
    proc = vcdext("run", "--check", VCDEXT_AMQP_URL=rabbitmq, VCDEXT_AMQP_EXCHANGE=exchange)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "plugin hello (vcdext-hello" in out
    assert "service io.vcdext.hello, queue io.vcdext.hello, 3 operation(s)" in out
    assert "logged in" in out
    assert f"exchange {exchange!r}: does not exist yet" in out
    assert "vcd.url is not set: nothing would be registered" in out
    assert out.rstrip().endswith("check passed")
    # Nothing was declared: the exchange still does not exist.
    from kombu import Connection

    with Connection(rabbitmq) as conn, pytest.raises(conn.channel_errors):
        conn.channel().exchange_declare(exchange, "direct", passive=True)


def test_run_check_fails_when_the_broker_refuses_the_login(rabbitmq, exchange):
    bad = rabbitmq.replace("guest:guest@", "guest:wr0ng-pw@")
    proc = vcdext("run", "--check", VCDEXT_AMQP_URL=bad, VCDEXT_AMQP_EXCHANGE=exchange)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "refused the login" in out
    assert "wr0ng-pw" not in out
    assert out.rstrip().endswith("check failed: 1 problem(s)")
