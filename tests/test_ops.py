"""Running in production, without a broker: the observer the dispatcher calls, the Prometheus
metrics, the health probes and their HTTP server, `vcdext health`, JSON logs and the vCD
request id carried from the request to the reply and the log line."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import vcdext_hello.plugin as hello
from tests.vcd.fake_vcd import HOST, PASSWORD, FakeVcd
from vcdext import app, hookimpl
from vcdext.cli import main
from vcdext.health import HealthServer, HealthState, probe
from vcdext.logs import JsonFormatter, TextFormatter, configure_logging
from vcdext.metrics import Metrics
from vcdext.observer import Observer
from vcdext.settings import AmqpSettings, PluginsSettings, Settings, VcdSettings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcloud.media import H_REQUEST_ID
from vcdext.vcloud.message import encode_request

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
ORG = "urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, ctype = metrics.render()
    assert ctype.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def request_done(self, service: str, operation: str, status: int, seconds: float) -> None:
        self.calls.append(("done", service, operation, status, seconds))

    def dropped_late(self, service: str) -> None:
        self.calls.append(("late", service))


# -- the observer and the metrics ------------------------------------------------------------


def test_the_dispatcher_reports_service_operation_status_and_duration():
    runtime = make_runtime(hello=hello)
    recorder = Recorder()
    runtime.dispatcher.observer = recorder
    client = TestClient(runtime)
    assert client.get("/api/hello").status == 200
    assert client.get("/api/nothing-here").status == 404
    assert client.get("/api/hello", routing_key="io.vcdext.hello").status == 200
    runtime.handle_message(b"{not json", routing_key="io.vcdext.hello")
    done = [c[1:4] for c in recorder.calls]
    assert done == [
        ("hello", "hello", 200),
        ("", "", 404),
        ("hello", "hello", 200),
        ("hello", "", 400),
    ]
    assert all(isinstance(c[4], float) and c[4] >= 0 for c in recorder.calls)


def test_a_request_past_the_deadline_is_reported_dropped():
    runtime = make_runtime(hello=hello)
    recorder = Recorder()
    runtime.dispatcher.observer = recorder
    message = encode_request("GET", "/api/hello", request_id="late", user=USER, org=ORG)
    runtime.dispatcher.handle_message(message, received=time.monotonic() - 60)
    assert recorder.calls[0] == ("late", "hello")
    assert recorder.calls[1][1:4] == ("hello", "hello", 503)


def test_metrics_count_requests_and_latency_by_service_operation_and_status():
    runtime = make_runtime(hello=hello)
    metrics = Metrics()
    runtime.dispatcher.observer = metrics
    client = TestClient(runtime)
    for _ in range(3):
        client.get("/api/hello")
    client.post("/api/hello/echo", body="<x/>", headers={"Content-Type": "application/xml"})
    labels = {"service": "hello", "operation": "hello"}
    assert value(metrics, "vcdext_requests_total", status="200", **labels) == 3
    assert value(metrics, "vcdext_requests_total", service="hello", operation="echo", status="200")
    assert value(metrics, "vcdext_request_duration_seconds_count", **labels) == 3
    assert value(metrics, "vcdext_request_duration_seconds_bucket", le="+Inf", **labels) == 3
    assert value(metrics, "vcdext_request_duration_seconds_sum", **labels) > 0


def test_every_other_metric_counts_what_it_is_told():
    metrics = Metrics()
    metrics.watch(lambda: (2, 5))
    metrics.redelivered("hello")
    metrics.dropped_late("hello")
    metrics.reconnected("consumer")
    metrics.reconnected("consumer")
    metrics.registration("ok", 3)
    metrics.registration("failed", 0)
    metrics.task_state("success")
    assert value(metrics, "vcdext_requests_in_progress") == 2
    assert value(metrics, "vcdext_requests_waiting") == 5
    assert value(metrics, "vcdext_redeliveries_total", service="hello") == 1
    assert value(metrics, "vcdext_dropped_after_deadline_total", service="hello") == 1
    assert value(metrics, "vcdext_reconnects_total", connection="consumer") == 2
    assert value(metrics, "vcdext_registration_runs_total", outcome="ok") == 1
    assert value(metrics, "vcdext_registration_runs_total", outcome="failed") == 1
    assert value(metrics, "vcdext_registration_changes_total") == 3
    assert value(metrics, "vcdext_task_states_total", state="success") == 1
    assert value(metrics, "vcdext_last_reply_age_seconds") == -1
    metrics.replied()
    assert 0 <= value(metrics, "vcdext_last_reply_age_seconds") < 5


def test_two_runtimes_never_share_their_numbers():
    one, two = Metrics(), Metrics()
    one.request_done("hello", "hello", 200, 0.01)
    assert value(one, "vcdext_requests_total", service="hello", operation="hello", status="200")
    assert (
        value(two, "vcdext_requests_total", service="hello", operation="hello", status="200")
        is None
    )


# -- health -----------------------------------------------------------------------------------


def test_healthz_and_readyz_follow_the_runtime_through_its_life():
    state = HealthState()
    assert state.healthz()[0] == 503  # nothing started
    assert state.readyz()[0] == 503
    stop = threading.Event()
    state.consumer = threading.Thread(target=stop.wait, daemon=True)
    state.consumer.start()
    status, doc = state.healthz()
    assert (status, doc["consumer_thread"], doc["broker_connected"]) == (503, True, False)
    state.connected.set()
    assert state.healthz()[0] == 200
    status, doc = state.readyz()
    assert (status, doc["topology_declared"], doc["registration_done"]) == (503, True, False)
    state.registered.set()
    assert state.readyz() == (
        200,
        {
            "status": "ready",
            "topology_declared": True,
            "registration_done": True,
            "draining": False,
        },
    )
    state.draining.set()  # SIGTERM: out of the load balancer, still alive while it drains
    assert state.readyz()[0] == 503
    assert state.healthz()[0] == 200
    state.connected.clear()  # the broker went away
    assert state.healthz()[1]["broker_connected"] is False
    stop.set()
    state.consumer.join()
    assert state.healthz()[1]["consumer_thread"] is False


@pytest.fixture
def health_server():
    state = HealthState()
    metrics = Metrics()
    server = HealthServer(state, "127.0.0.1", 0, metrics.render)
    yield server, state, metrics
    server.close()


def test_the_health_server_serves_the_probes_and_the_metrics(health_server):
    server, state, metrics = health_server
    status, body = probe("127.0.0.1", server.port, "/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "failing"
    state.consumer = threading.current_thread()
    state.connected.set()
    state.registered.set()
    assert probe("127.0.0.1", server.port, "/readyz")[0] == 200
    metrics.request_done("hello", "hello", 200, 0.002)
    status, body = probe("127.0.0.1", server.port, "/metrics")
    assert status == 200
    assert 'vcdext_requests_total{operation="hello",service="hello",status="200"} 1.0' in body
    assert probe("127.0.0.1", server.port, "/nope")[0] == 404


def test_vcdext_health_exits_0_when_healthy_and_1_otherwise(health_server, capsys):
    server, state, _ = health_server
    port = str(server.port)
    assert main(["health", "--health-port", port]) == 1
    assert json.loads(capsys.readouterr().out)["broker_connected"] is False
    state.consumer = threading.current_thread()
    state.connected.set()
    assert main(["health", "--health-port", port]) == 0
    assert main(["health", "--health-port", port, "--ready"]) == 1  # registration not done
    server.close()
    assert main(["health", "--health-port", port]) == 1
    assert "nothing answers" in capsys.readouterr().out


def test_vcdext_health_without_a_port_is_a_config_error(capsys):
    assert main(["health"]) == 2
    assert "runtime.health_port: not set" in capsys.readouterr().err


def test_a_health_port_that_cannot_be_bound_stops_start_up(monkeypatch, capsys):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    monkeypatch.setenv("VCDEXT_AMQP_URL", "memory://")
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "hello")
    try:
        port = str(taken.getsockname()[1])
        assert main(["run", "--no-register", "--health-port", port]) == 2
    finally:
        taken.close()
    assert f"--health-port: runtime.health_port: cannot listen on 127.0.0.1:{port}" in (
        capsys.readouterr().err
    )


def test_a_bad_health_port_is_refused_naming_the_flag(capsys):
    assert main(["run", "--health-port", "70000"]) == 2
    assert "--health-port: runtime.health_port: must be a TCP port" in capsys.readouterr().err


# -- logs and the vCD request id --------------------------------------------------------------


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old)


class Chatty:
    """A plugin whose handler logs, to show its lines carry the request's ids."""

    from vcdext import Service

    service = Service("chatty", namespace="io.example.chatty")

    @staticmethod
    @service.operation("GET", "/api/chatty")
    def chat(request):
        logging.getLogger("chatty").info("handler speaking")
        return "<Chat/>"

    @staticmethod
    @service.operation("GET", "/api/chatty/fail")
    def fail(request):
        raise RuntimeError("boom")

    @hookimpl
    def vcdext_register(self, registrar):
        registrar.add_service(self.service)


def test_json_request_lines_carry_the_ids_the_reply_carries(json_log):
    runtime = make_runtime(hello=hello, chatty=Chatty())
    client = TestClient(runtime, user=USER, org=ORG)
    secret = "tok-3f9c-never-logged"
    reply = client.get(
        "/api/chatty",
        headers={H_REQUEST_ID: "vcd-req-42", "x-vcloud-authorization": secret},
        body="<body-never-logged/>",
    )
    assert reply.status == 200
    assert reply.headers[H_REQUEST_ID] == "vcd-req-42"
    lines = json_lines(json_log)  # every line parses on its own
    handler_line = next(line for line in lines if line["message"] == "handler speaking")
    assert handler_line["request_id"] == reply.id
    assert handler_line["vcd_request_id"] == "vcd-req-42"
    assert handler_line["service"] == "chatty"
    request_line = next(line for line in lines if line.get("status") == 200)
    assert request_line["request_id"] == reply.id
    assert {k: request_line[k] for k in ("vcd_request_id", "service", "operation", "user")} == {
        "vcd_request_id": "vcd-req-42",
        "service": "chatty",
        "operation": "chat",
        "user": USER,
    }
    assert request_line["org"] == ORG
    assert request_line["duration_ms"] >= 0
    assert set(request_line) >= {"time", "level", "logger", "message"}
    assert secret not in json_log.getvalue()
    assert "never-logged" not in json_log.getvalue()


def test_without_a_vcd_request_id_the_reply_gets_none(json_log):
    reply = TestClient(make_runtime(hello=hello)).get("/api/hello")
    assert H_REQUEST_ID not in reply.headers
    (line,) = [line for line in json_lines(json_log) if "status" in line]
    assert (line["request_id"], line["vcd_request_id"]) == (reply.id, "")


def test_a_500_logs_its_traceback_inside_one_json_line(json_log):
    reply = TestClient(make_runtime(chatty=Chatty())).get("/api/chatty/fail")
    assert reply.status == 500
    lines = json_lines(json_log)
    failed = next(line for line in lines if "exception" in line)
    assert "RuntimeError: boom" in failed["exception"]
    assert failed["request_id"] == reply.id


def test_configure_logging_picks_the_format():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        configure_logging("INFO", "json", stream)
        logging.getLogger("vcdext.test").warning("hello %s", "there")
    finally:
        root.handlers[:] = saved
    (line,) = json_lines(stream)
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "vcdext.test",
        "hello there",
    )


# -- vcdext run --check ------------------------------------------------------------------------


def check_settings(password: str) -> Settings:
    return Settings(
        amqp=AmqpSettings(url="memory://"),
        plugins=PluginsSettings(enabled=("hello",)),
        vcd=VcdSettings(url=HOST, username="administrator", password=password),
    )


def test_check_prints_the_registration_plan_and_changes_nothing(monkeypatch, capsys):
    fake = FakeVcd()
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    assert app.check(check_settings(PASSWORD)) == 0
    out = capsys.readouterr().out
    assert "registration with vCD (dry run, nothing changed):" in out
    assert "io.vcdext.hello  create  service" in out
    assert "dry run: 7 changes planned for 1 service" in out
    assert out.rstrip().endswith("check passed")
    assert fake.service_by_namespace("io.vcdext.hello") is None


def test_check_fails_when_vcd_refuses_the_login(monkeypatch, capsys):
    fake = FakeVcd()
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    assert app.check(check_settings("wrong-password-1")) == 1
    out = capsys.readouterr().out
    assert "problem: vCD:" in out
    assert "wrong-password-1" not in out
    assert out.rstrip().endswith("check failed: 1 problem(s)")


def test_check_fails_when_a_plugin_failed_to_load(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_AMQP_URL", "memory://")
    monkeypatch.setenv("VCDEXT_PLUGINS_MODULES", "tests.fake_plugins.broken")
    assert main(["run", "--check"]) == 1
    out = capsys.readouterr().out
    assert "problem: plugin 'broken' failed to load" in out


def test_text_lines_name_the_request_they_were_logged_for():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        client = TestClient(make_runtime(chatty=Chatty()))
        reply = client.get("/api/chatty", headers={H_REQUEST_ID: "vcd-7"})
        logging.getLogger("outside").info("no request here")
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    lines = stream.getvalue().splitlines()
    (spoken,) = [line for line in lines if "handler speaking" in line]
    assert spoken.endswith(f"handler speaking [request {reply.id}, vCD vcd-7]")
    (request_line,) = [line for line in lines if "→ 200" in line]
    assert f": {reply.id} GET /api/chatty → 200" in request_line
    assert request_line.endswith(" [vCD vcd-7]")
    (outside,) = [line for line in lines if "no request here" in line]
    assert outside.endswith("outside: no request here")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_the_probes_and_turns_not_ready_on_sigterm():
    import os
    import signal

    port = free_port()
    settings = Settings(plugins=PluginsSettings(enabled=("hello",))).override(
        "runtime.health_port", str(port), source="test"
    )
    seen: list[tuple[str, int]] = []

    def ready(runtime: app.Runtime) -> None:
        seen.append(("readyz", probe("127.0.0.1", port, "/readyz")[0]))
        seen.append(("healthz", probe("127.0.0.1", port, "/healthz")[0]))
        TestClient(runtime).get("/api/hello")  # counted: the runtime's observer is the metrics
        body = probe("127.0.0.1", port, "/metrics")[1]
        seen.append(("counted", body.count('vcdext_requests_total{operation="hello"')))
        os.kill(os.getpid(), signal.SIGTERM)
        seen.append(("draining", probe("127.0.0.1", port, "/readyz")[0]))

    assert app.run(settings, amqp_url="memory://", register=False, on_ready=ready) == 0
    assert seen == [("readyz", 200), ("healthz", 200), ("counted", 1), ("draining", 503)]
    with pytest.raises(ConnectionRefusedError):  # the health server is gone with the runtime
        probe("127.0.0.1", port, "/healthz", timeout=1)


@pytest.mark.parametrize(
    ("listening", "asked"),
    [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::", "::1"), ("10.1.2.3", "10.1.2.3")],
)
def test_vcdext_health_asks_a_wildcard_listener_on_loopback(listening, asked):
    from vcdext.health import probe_host

    assert probe_host(listening) == asked


def test_task_states_are_counted_as_tasks_enter_them():
    from tests.test_tasks import Jobs
    from vcdext.testing import FakeVcd

    runtime = make_runtime(jobs=Jobs(), vcd=FakeVcd())
    metrics = Metrics()
    runtime.tasks.observer = metrics
    client = TestClient(runtime)
    assert client.post("/api/jobs").status == 202
    assert client.post("/api/jobs", query="fail=1").status == 202
    assert value(metrics, "vcdext_task_states_total", state="queued") == 2
    assert value(metrics, "vcdext_task_states_total", state="running") is None
    client.run_tasks()
    assert value(metrics, "vcdext_task_states_total", state="running") == 2
    assert value(metrics, "vcdext_task_states_total", state="success") == 1
    assert value(metrics, "vcdext_task_states_total", state="error") == 1


def test_check_over_mqtt_without_a_token_says_to_register(monkeypatch, capsys, tmp_path):
    # The broker is checked now (tests/transport/test_mqtt_check.py); with no token stored
    # yet it is not even dialled: the one problem says what to do.
    monkeypatch.setenv("VCDEXT_RUNTIME_TRANSPORT", "mqtt")
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "hello")
    monkeypatch.setenv("VCDEXT_MQTT_URL", "ws://127.0.0.1:1/messaging/mqtt")
    monkeypatch.setenv("VCDEXT_MQTT_TOKEN_FILE", str(tmp_path / "tokens.json"))
    assert main(["run", "--check"]) == 1
    out = capsys.readouterr().out
    assert "not checked" not in out
    assert (
        "problem: no extension token for urn:vcloud:extension-api:vcdext:hello:1.0.0 in "
        f"mqtt.token_file ({tmp_path / 'tokens.json'}); run `vcdext register` first"
    ) in out
    assert "cannot be reached" not in out
    assert out.rstrip().endswith("check failed: 1 problem(s)")


def test_the_text_lines_time_is_loggings_default_across_seconds():
    from vcdext.logs import TextFormatter

    ours, default = TextFormatter(), logging.Formatter("%(asctime)s")
    record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
    for created in (1764586999.998, 1764587000.001, 1764587000.5, 1764590000.25):
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.formatTime(record) == default.formatTime(record)
    assert ours.formatTime(record, "%H") == default.formatTime(record, "%H")
