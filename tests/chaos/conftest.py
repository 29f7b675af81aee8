"""Fixtures of the chaos suite: a `vcdext run` process, vCD's side, queue clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from tests.fake_plugins import chaos_fast, chaos_slow
from tests.support.vcd_side import VcdSide

REPO = Path(__file__).resolve().parents[2]
SLOW_KEY = chaos_slow.NAMESPACE
FAST_KEY = chaos_fast.NAMESPACE
KEYS = (SLOW_KEY, FAST_KEY)


class Vcdext:
    """One ``vcdext run`` process serving the chaos plugins; its output goes to a file."""

    def __init__(self, url: str, exchange: str, log: Path, env: dict[str, str]) -> None:
        self.url = url
        self.log = log
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
            "VCDEXT_AMQP_URL": url,
            "VCDEXT_AMQP_EXCHANGE": exchange,
            "VCDEXT_PLUGINS_ENABLED": "[]",
            "VCDEXT_PLUGINS_MODULES": "tests.fake_plugins.chaos_slow,tests.fake_plugins.chaos_fast",
            "PYTHONPATH": str(REPO),
            **env,
        }
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vcdext", "run", "--no-register"],
                env=environ,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM; returns the seconds it took to exit (raises if it did not in time)."""
        started = time.monotonic()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


def consumers(url: str, name: str) -> int:
    with Connection(url) as conn:
        _, _, count = conn.default_channel.queue_declare(name, passive=True)
        return int(count)


def queue_depth(url: str, name: str) -> int:
    with Connection(url) as conn:
        _, count, _ = conn.default_channel.queue_declare(name, passive=True)
        return int(count)


def wait_serving(
    url: str, count: int = 1, timeout: float = 30.0, proc: Vcdext | None = None
) -> None:
    """Until every chaos queue has ``count`` consumers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"vcdext exited with {proc.proc.returncode}:\n{proc.output}")
        try:
            if all(consumers(url, key) >= count for key in KEYS):
                return
        except Exception:  # not declared yet
            pass
        time.sleep(0.1)
    raise TimeoutError("vcdext did not start consuming")


def declare_topology(url: str, exchange: str) -> None:
    """What `vcdext run` declares, so that requests can wait in the queues before it starts."""
    with Connection(url) as conn:
        channel = conn.default_channel
        ex = Exchange(exchange, type="direct", durable=True)
        ex(channel).declare()
        for key in KEYS:
            Queue(key, ex, routing_key=key, durable=True)(channel).declare()


def delete_queues(url: str) -> None:
    with Connection(url) as conn:
        for key in KEYS:
            channel = conn.channel()
            try:
                channel.queue_delete(key)
            except Exception:  # never declared
                pass
            finally:
                channel.close() if channel.is_open else None


@pytest.fixture
def exchange() -> str:
    return f"vcdext-chaos-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def vcd(rabbitmq: str, exchange: str) -> Iterator[VcdSide]:
    side = VcdSide(rabbitmq, exchange)
    yield side
    side.close()


@pytest.fixture
def vcdext(rabbitmq: str, exchange: str, tmp_path: Path) -> Iterator[Any]:
    """``vcdext(**env)`` starts a `vcdext run` process (waiting until it consumes)."""
    procs: list[Vcdext] = []
    delete_queues(rabbitmq)

    def start(url: str | None = None, wait: bool = True, **env: str) -> Vcdext:
        proc = Vcdext(url or rabbitmq, exchange, tmp_path / f"vcdext-{len(procs)}.log", env)
        procs.append(proc)
        if wait:
            wait_serving(rabbitmq, count=1, proc=proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
    delete_queues(rabbitmq)


def runs(path: Path) -> list[str]:
    """The request ids whose ``create`` handler ran (one per run), from a CHAOS_RUNS file."""
    if not path.exists():
        return []
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


def publish(
    vcd: VcdSide,
    body: bytes,
    routing_key: str,
    *,
    reply_exchange: str | None = None,
    headers: dict[str, Any] | None = None,
    **properties: Any,
) -> str:
    """Publish like vCD does, with extra headers/properties (timestamp, another exchange)."""
    extra = {"replyToExchange": reply_exchange} if reply_exchange else {}
    return vcd.publish_raw(body, routing_key, headers={**extra, **(headers or {})}, **properties)


# -- the chaos table (`make chaos` prints it; docs/reliability.md keeps a copy) -------------

_MEASURED: dict[str, str] = {}
_OUTCOME: dict[str, str] = {}


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Any:
    """``measured("…")`` records what the test observed, for the chaos table."""

    def record(text: str) -> None:
        _MEASURED[request.node.nodeid] = text

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/chaos/" in report.nodeid and (report.when == "call" or report.outcome != "passed"):
        _OUTCOME[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = [(nid, _OUTCOME[nid], _MEASURED[nid]) for nid in _OUTCOME if nid in _MEASURED]
    if not rows:
        return
    write = terminalreporter.write_line
    write("")
    write("| case | outcome | measured |")
    write("|---|---|---|")
    for nodeid, outcome, text in rows:
        write(f"| `{nodeid.split('::')[-1]}` | {outcome} | {text} |")
