"""The composition root: run() builds, registers, serves and tears down; a dead transport is
never a clean exit."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vcdext_hello.plugin as hello
from tests.vcd.fake_vcd import HOST, PASSWORD, FakeVcd
from vcdext import app
from vcdext.cli import main
from vcdext.settings import AmqpSettings, PluginsSettings, Settings, VcdSettings
from vcdext.testing import make_runtime
from vcdext.transport.amqp import AmqpServer

REPO = Path(__file__).resolve().parents[1]


def stop_myself(runtime: app.Runtime) -> None:
    """on_ready: ask the running process to stop, as an operator's SIGTERM would."""
    os.kill(os.getpid(), signal.SIGTERM)


def test_run_registers_once_serves_then_tears_down_in_reverse(monkeypatch, caplog):
    fake = FakeVcd()
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    settings = Settings(
        plugins=PluginsSettings(enabled=("hello",)),
        vcd=VcdSettings(url=HOST, username="administrator", password=PASSWORD),
    )
    seen: list[str] = []

    def ready(runtime: app.Runtime) -> None:
        seen.append(", ".join(runtime.registry.services))
        stop_myself(runtime)

    with caplog.at_level(logging.INFO):
        code = app.run(settings, amqp_url="memory://", on_ready=ready)
    assert code == 0
    assert seen == ["hello"]
    assert fake.service_by_namespace("io.vcdext.hello") is not None
    # The registration summary is reported once (reconcile used to log it too).
    summaries = [r for r in caplog.records if "vCD updated:" in r.getMessage()]
    assert len(summaries) == 1, [r.getMessage() for r in summaries]
    messages = [r.getMessage() for r in caplog.records]
    assert "received SIGTERM; finishing in-flight requests" in messages
    assert "stopped" in messages  # the transport ended before run() returned


def test_run_restores_the_signal_handlers(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)
    settings = Settings(plugins=PluginsSettings(enabled=("hello",)))
    assert app.run(settings, amqp_url="memory://", register=False, on_ready=stop_myself) == 0
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "error",
    [KeyError("No such transport: http"), ValueError("Port could not be cast"), RuntimeError()],
)
def test_a_transport_that_dies_of_anything_exits_1_with_one_line(monkeypatch, capsys, error):
    def die(self: AmqpServer) -> None:
        raise error

    monkeypatch.setattr(AmqpServer, "run", die)
    monkeypatch.setenv("VCDEXT_AMQP_URL", "memory://")
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "hello")
    assert main(["run", "--no-register"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"vcdext: error: the AMQP transport failed: {type(error).__name__}")
    assert "Traceback" not in err


def test_a_stopping_hook_runs_even_when_the_transport_dies(monkeypatch):
    from vcdext import hookimpl

    stopped: list[str] = []

    class Plugin:
        @hookimpl
        def vcdext_runtime_stopping(self, runtime):
            stopped.append("yes")

    monkeypatch.setattr(AmqpServer, "run", lambda self: 1 / 0)
    monkeypatch.setattr(
        app,
        "create_runtime",
        lambda settings: make_runtime(hello=hello, plugin=Plugin(), settings=settings),
    )
    assert app.run(Settings(), amqp_url="memory://", register=False) == 1
    assert stopped == ["yes"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8082", "amqp://guest:guest@localhost:notaport//"]
)
def test_vcdext_run_with_a_url_kombu_cannot_use_never_exits_0(url):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
        "VCDEXT_PLUGINS_ENABLED": "hello",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "vcdext", "run", "--no-register", "--amqp-url", url],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vcdext: error:")]
    assert len(errors) == 1, proc.stderr


def test_the_transport_is_given_the_dispatcher_and_the_amqp_settings_only():
    runtime = make_runtime(hello=hello)
    server = AmqpServer(
        runtime.dispatcher, AmqpSettings(url="memory://", exchange="ex", prefetch=0), workers=3
    )
    assert [q.name for q in server.queues] == ["io.vcdext.hello"]
    assert (server.exchange.name, server.prefetch, server.workers) == ("ex", 12, 3)
    assert server.reply_ttl == runtime.dispatcher.timeout
    via_root = app.create_transport(runtime, amqp_url="memory://")
    assert via_root.url == "memory://"
    assert via_root.workers == runtime.settings.runtime.workers


def test_sigterm_drains_the_notification_consumer_alongside_the_transport(monkeypatch):
    # Both drain at once after SIGTERM: one after the other took up to 3 x runtime.timeout
    # + 5 s plus the notification consumer's 30 s grace, past the stop timeout of the unit.
    import threading
    import time

    events: list[str] = []
    transport_drained = threading.Event()
    real_run = AmqpServer.run

    def slow_drain(self: AmqpServer) -> None:
        real_run(self)
        events.append("transport stopping")
        transport_drained.wait(30)  # a request still being answered
        events.append("transport drained")

    def notifications(*_: object):  # type: ignore[no-untyped-def]
        def stop() -> None:
            events.append("notifications stopped")
            transport_drained.set()

        return stop

    monkeypatch.setattr(AmqpServer, "run", slow_drain)
    monkeypatch.setattr(app, "_start_notifications", notifications)
    settings = Settings(plugins=PluginsSettings(enabled=("hello",)))
    started = time.monotonic()
    assert app.run(settings, amqp_url="memory://", register=False, on_ready=stop_myself) == 0
    assert sorted(events) == ["notifications stopped", "transport drained", "transport stopping"]
    assert events.index("notifications stopped") < events.index("transport drained")
    assert time.monotonic() - started < 20  # not the 30 s a drain after the other takes
