"""`make bench`: `vcdext run` against a bare kombu echo consumer, same broker, same run.

Every party is its own process: the RabbitMQ node (tests/support/rabbitmq.py), the load
generator playing vCD (tests/bench_load.py: vCD-format request messages, a window of W
requests in flight, replies matched by correlation id), the baseline consumer, and
``vcdext run`` itself (a real ``python -m vcdext run``, default settings, INFO logging to a
file). Rows:

  (a) the bare consumer, W=64 and W=1        (b) vcdext serving GET /api/hello, same
  (c) one request in ten takes 200 ms       (d) RSS after N requests against after 1,000
  (e) time from start to consuming          (f) two vcdext processes on one queue
  (g) `vcdext dev`: a request the cell forwards over the in-memory transport, and one the
      cell answers itself
  (h) `vcdext run` with the Prometheus metrics of --health-port, and the in-process dispatch
      path without and with metrics

Numbers only, no assertion; the targets of issue 13 are printed as met / not met.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kombu import Connection

from tests.bench_load import (
    HELLO_KEY,
    SLOW_KEY,
    Result,
    Target,
    bare_consumer,
    cpu_count,
    cpu_seconds,
    generate_in_child,
    rss_kib,
)
from tests.support.rabbitmq import RabbitNode

REPO = Path(__file__).resolve().parents[1]
FAST = Target(HELLO_KEY, "/api/hello")
SLOW = Target(SLOW_KEY, "/api/slow", "s=0.2", kind="slow")
_ctx = multiprocessing.get_context("spawn")
LOG_LEVEL = "INFO"  # vcdext run's (its default); --log-level changes it
EXTRA_ENV: dict[str, str] = {}  # --vcdext-env


def consumers(url: str, queue: str) -> int:
    try:
        with Connection(url) as conn:
            return int(conn.default_channel.queue_declare(queue, passive=True)[2])
    except Exception:  # not declared yet
        return 0


def wait_consumers(url: str, queue: str, count: int, timeout: float = 30) -> float:
    started = time.perf_counter()
    while consumers(url, queue) < count:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{queue} has no {count} consumer(s) after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - started


@contextlib.contextmanager
def vcdext_run(
    url: str,
    exchange: str,
    log: Path,
    *,
    count: int = 1,
    wrap: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``vcdext run`` processes on ``exchange``; yields them once all consume."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
        "VCDEXT_AMQP_URL": url,
        "VCDEXT_AMQP_EXCHANGE": exchange,
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "VCDEXT_PLUGINS_MODULES": "tests.fake_plugins.slow",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VCDEXT_RUNTIME_LOG_LEVEL": LOG_LEVEL,
        **EXTRA_ENV,
        **(env or {}),
    }
    procs = []
    with open(log, "ab") as out:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    [*(wrap or []), sys.executable, "-m", "vcdext", "run"],
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        wait_consumers(url, HELLO_KEY, count)
        wait_consumers(url, SLOW_KEY, count)
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT if wrap else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def bare(url: str, exchange: str) -> Iterator[int]:
    ready, stop = _ctx.Event(), _ctx.Event()
    proc = _ctx.Process(target=bare_consumer, args=(url, exchange, ready, stop))
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the bare consumer did not start")
        assert proc.pid is not None
        yield proc.pid
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def load(
    url: str, exchange: str, targets: list[Target], total: int, window: int, *pids: int
) -> Result:
    """Run the load generator in its own process and return its result; with ``pids``, the
    CPU time those processes used per request (warm-up included) is in ``result.cpu``."""
    before = sum(cpu_seconds(pid) for pid in pids)
    out = _ctx.Queue()
    proc = _ctx.Process(target=generate_in_child, args=(url, exchange, targets, total, window, out))
    proc.start()
    try:
        result = out.get(timeout=600)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, Result)
    if pids:
        result.cpu = (sum(cpu_seconds(pid) for pid in pids) - before) / (total + min(500, total))
    return result


def row(result: Result, kind: str = "fast") -> dict[str, float]:
    lat = sorted(result.latencies[kind])
    total = sum(len(v) for v in result.latencies.values())
    return {
        "rps": total / result.elapsed,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "n": len(lat),
        "errors": result.errors,
        "cpu": result.cpu * 1000,
    }


def median_row(results: list[dict[str, float]], by: str) -> dict[str, float]:
    """The round whose ``by`` is the median of the rounds (a real round, not a blend)."""
    ordered = sorted(results, key=lambda r: r[by])
    return ordered[(len(ordered) - 1) // 2]


def dispatch_costs(rounds: int = 5000, repeats: int = 15) -> tuple[float, float]:
    """(h) Microseconds per request of the in-process dispatch path (no broker), without and
    with metrics: the part of a request that metrics add to, away from the broker's noise. The
    two are measured in turn and the best of each kept, so that a busy machine hurts both
    alike."""
    import vcdext_hello.plugin as hello
    from vcdext.metrics import Metrics
    from vcdext.testing import make_runtime
    from vcdext.vcloud.message import encode_request

    message = encode_request(
        "GET", "/api/hello", request_id="bench", headers={"Accept": "application/*+xml"}
    )
    plain, counted = make_runtime(hello=hello), make_runtime(hello=hello)
    counted.dispatcher.observer = Metrics()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, runtime in enumerate((plain, counted)):
            started = time.perf_counter()
            for _ in range(rounds):
                runtime.dispatcher.handle_message(message)
            best[i] = min(best[i], (time.perf_counter() - started) / rounds * 1e6)
    return best[0], best[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dev_requests(count: int) -> dict[str, dict[str, float]]:
    """(g): `vcdext dev` as a process; sequential GETs through the cell over one keep-alive
    connection: /api/hello (forwarded to the runtime over memory://) and /api/session (the
    cell answers it itself)."""
    import base64
    import http.client
    import threading

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VCDEXT_PLUGINS_ENABLED": "hello",
        "VCDEXT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcdext", "dev", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        text = ""
        deadline = time.monotonic() + 60
        while "Press Ctrl-C to stop." not in text and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            text += line
        match = re.search(r"local vCD cell at http://([^/\s]+)", text)
        if not match:
            raise RuntimeError(f"vcdext dev did not start:\n{text}")
        # Keep reading its output so that a full pipe never blocks it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        http = http.client.HTTPConnection(match.group(1), timeout=30)
        accept = {"Accept": "application/*+xml;version=5.1"}
        auth = base64.b64encode(b"alice@acme:vmware").decode()
        http.request("POST", "/api/sessions", headers={**accept, "Authorization": f"Basic {auth}"})
        response = http.getresponse()
        response.read()
        headers = {**accept, "x-vcloud-authorization": response.headers["x-vcloud-authorization"]}
        out: dict[str, dict[str, float]] = {}
        for label, path in (("forwarded", "/api/hello"), ("cell itself", "/api/session")):
            lat = []
            for _ in range(count + 20):
                started = time.perf_counter()
                http.request("GET", path, headers=headers)
                response = http.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path}: {response.status}")
                lat.append(time.perf_counter() - started)
            lat = sorted(lat[20:])
            out[label] = {
                "p50": lat[len(lat) // 2] * 1000,
                "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                "rps": len(lat) / sum(lat),
            }
        http.close()
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000, help="per throughput row")
    parser.add_argument("--latency-requests", type=int, default=6000, help="per W=1 row")
    parser.add_argument("--rss-requests", type=int, default=100_000, help="row (d), ≥ 20,000")
    parser.add_argument("--dev-requests", type=int, default=300, help="row (g)")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds of (a) and (b), median shown"
    )
    parser.add_argument(
        "--vcdext-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for every vcdext run (e.g. VCDEXT_AMQP_PREFETCH=64)",
    )
    parser.add_argument("--log-level", default="INFO", help="vcdext run's log level")
    parser.add_argument(
        "--only", default="abcdefgh", help="rows to run, e.g. 'ab' (a and b always pair)"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="run (b) W=64 only, vcdext under py-spy, to FILE"
    )
    args = parser.parse_args()
    global LOG_LEVEL
    LOG_LEVEL = args.log_level
    EXTRA_ENV.update(item.split("=", 1) for item in args.vcdext_env)
    only = set(args.only)
    started = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="vcdext-bench-"))
    log = logdir / "vcdext-run.log"
    W = args.window
    rows: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    ready_times: list[float] = []

    with RabbitNode.start() as node:
        url = node.url

        def exchange() -> str:
            return f"bench-{uuid.uuid4().hex[:6]}"

        if args.profile:
            ex = exchange()
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--threads"]
            spy += ["-r", "250", "-f", "raw", "-o", args.profile, "--"]
            with vcdext_run(url, ex, log, wrap=spy):
                print(row(load(url, ex, [FAST], args.requests, W)))
            return

        if only & set("ab"):
            # Both consumers run at once (each on its own exchange, the idle one asleep), and
            # the loads alternate a, b, a, b, ...: what else the machine does falls on both
            # alike, and each row is the median of its rounds.
            ex_a, ex_b = exchange(), exchange()
            t0 = time.perf_counter()
            with bare(url, ex_a) as pid, vcdext_run(url, ex_b, log) as (proc,):
                ready_times.append(time.perf_counter() - t0)
                rounds: dict[str, list[dict[str, float]]] = {}
                per_round = max(1, args.requests // args.rounds)
                per_round_1 = max(1, args.latency_requests // args.rounds)
                for _ in range(args.rounds):
                    for key, ex, p in (("a", ex_a, pid), ("b", ex_b, proc.pid)):
                        rounds.setdefault(f"{key} W=64", []).append(
                            row(load(url, ex, [FAST], per_round, W, p))
                        )
                    for key, ex, p in (("a", ex_a, pid), ("b", ex_b, proc.pid)):
                        rounds.setdefault(f"{key} W=1", []).append(
                            row(load(url, ex, [FAST], per_round_1, 1, p))
                        )
            for key, results in rounds.items():
                rows[key] = median_row(results, "rps" if key.endswith("W=64") else "p50")
            ratios = [
                b["rps"] / a["rps"] for a, b in zip(rounds["a W=64"], rounds["b W=64"], strict=True)
            ]
            added = [
                b["p50"] - a["p50"] for a, b in zip(rounds["a W=1"], rounds["b W=1"], strict=True)
            ]
            rows["ab"] = {"ratio": statistics.median(ratios), "added": statistics.median(added)}
            notes["ab"] = (
                f"{args.rounds} alternating rounds; throughput ratio per round "
                + " ".join(f"{r:.2f}" for r in ratios)
                + "; added p50 per round "
                + " ".join(f"{x:+.2f}" for x in added)
                + " ms"
            )
        if "c" in only:
            ex = exchange()
            t0 = time.perf_counter()
            with vcdext_run(url, ex, log) as (proc,):
                ready_times.append(time.perf_counter() - t0)
                total = max(2000, args.requests // 10)
                mixed = load(url, ex, [FAST] * 9 + [SLOW], total, W, proc.pid)
                rows["c fast"] = row(mixed, "fast")
                rows["c slow"] = row(mixed, "slow")
        if "d" in only:
            ex = exchange()
            t0 = time.perf_counter()
            with vcdext_run(url, ex, log) as (proc,):
                ready_times.append(time.perf_counter() - t0)
                load(url, ex, [FAST], 500, W)  # + 500 warm-up
                rss_1k = rss_kib(proc.pid)
                load(url, ex, [FAST], 9_500, W)  # + 500 warm-up
                rss_10k = rss_kib(proc.pid)  # the cache of recent replies (4,096) is full
                rest = load(url, ex, [FAST], args.rss_requests - 10_500, W)
                rss_n = rss_kib(proc.pid)
                rows["d"] = {
                    "rss_1k": rss_1k,
                    "rss_10k": rss_10k,
                    "rss_n": rss_n,
                    "n": args.rss_requests,
                }
                rows["d rows"] = row(rest)
        if "e" in only:
            for _ in range(3):
                ex = exchange()
                t0 = time.perf_counter()
                with vcdext_run(url, ex, log):
                    ready_times.append(time.perf_counter() - t0)
        if "f" in only:
            ex = exchange()
            with vcdext_run(url, ex, log, count=2) as procs:
                pids = [p.pid for p in procs]
                rows["f W=64"] = row(load(url, ex, [FAST], args.requests, W, *pids))
        if "h" in only:
            # What `vcdext run --health-port` (Prometheus metrics) adds: (b) W=64 with it.
            ex = exchange()
            metrics_env = {"VCDEXT_RUNTIME_HEALTH_PORT": str(free_port())}
            with vcdext_run(url, ex, log, env=metrics_env) as (proc,):
                rows["h W=64"] = row(load(url, ex, [FAST], args.requests, W, proc.pid))
            plain_us, counted_us = dispatch_costs()
            notes["h"] = (
                f"dispatch in process: {plain_us:.1f} us/request, {counted_us:.1f} with metrics "
                f"(+{counted_us - plain_us:.1f} us)"
            )
        if "g" in only:
            try:
                rows.update({f"g {k}": v for k, v in dev_requests(args.dev_requests).items()})
            except Exception as exc:
                notes["g"] = f"failed: {exc}"

    report(rows, ready_times, notes, args, time.monotonic() - started, log)


def report(
    rows: dict[str, dict[str, float]],
    ready_times: list[float],
    notes: dict[str, str],
    args: Any,
    seconds: float,
    log: Path,
) -> None:
    W = args.window
    print()
    print(
        f"vcdext bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{cpu_count()} CPUs ({platform.processor() or platform.machine()}), one RabbitMQ "
        f"node on loopback; {args.requests} requests per W={W} row, "
        f"{args.latency_requests} per W=1 row; vcdext logs at {args.log_level}; "
        f"took {seconds:.0f} s"
    )
    print(f"{'row':34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}")
    labels = {
        "a W=64": f"(a) bare kombu, W={W}",
        "a W=1": "(a) bare kombu, W=1",
        "b W=64": f"(b) vcdext run, W={W}",
        "b W=1": "(b) vcdext run, W=1",
        "c fast": f"(c) 1 in 10 slow: fast, W={W}",
        "c slow": "(c) 1 in 10 slow: the 200 ms ones",
        "d rows": "(d) the RSS run",
        "f W=64": f"(f) two vcdext run, W={W}",
        "h W=64": f"(h) vcdext run + metrics, W={W}",
        "g forwarded": "(g) vcdext dev: forwarded",
        "g cell itself": "(g) vcdext dev: cell answers",
    }
    for key, label in labels.items():
        if key in rows and "rps" in rows[key]:
            r = rows[key]
            cpu = f"{r['cpu']:>12.3f}" if r.get("cpu") else ""
            print(f"{label:34}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{cpu}")
    for key, note in notes.items():
        print(f"({key}) {note}")
    errors = sum(int(r.get("errors", 0)) for r in rows.values())
    if errors:
        print(f"!! {errors} replies were not 200; see {log}")
    print()
    print("targets (issue 13):")

    def target(text: str, value: str, met: bool) -> None:
        print(f"  {'met    ' if met else 'NOT MET'}  {text}: {value}")

    if "ab" in rows:
        ratio, added = rows["ab"]["ratio"], rows["ab"]["added"]
        target("throughput at W=64 ≥ 0.85 x bare (median round)", f"{ratio:.2f}", ratio >= 0.85)
        target("added p50 at W=1 ≤ 0.3 ms (median round)", f"{added:+.2f} ms", added <= 0.3)
    if "c fast" in rows and "b W=64" in rows:
        ratio = rows["c fast"]["p99"] / rows["b W=64"]["p99"]
        target("(c) fast p99 ≤ 2 x (b) p99", f"{ratio:.2f}x", ratio <= 2)
    if "d" in rows:
        d = rows["d"]
        growth = d["rss_n"] / d["rss_1k"] - 1
        target(
            f"(d) RSS after {d['n']:.0f} within 10% of after 1,000",
            f"{d['rss_1k'] / 1024:.1f} → {d['rss_n'] / 1024:.1f} MiB ({growth:+.1%})",
            growth <= 0.10,
        )
        print(
            f"           after 10,000 (recent-replies cache full): {d['rss_10k'] / 1024:.1f} MiB;"
            f" 10,000 → {d['n']:.0f}: {d['rss_n'] / d['rss_10k'] - 1:+.1%}"
        )
    if ready_times:
        print(
            f"  (e) start to consuming: median {statistics.median(ready_times):.2f} s "
            f"over {len(ready_times)} starts (no target)"
        )
    if "f W=64" in rows and "b W=64" in rows:
        print(
            f"  (f) two processes / one: {rows['f W=64']['rps'] / rows['b W=64']['rps']:.2f}x "
            f"on {cpu_count()} CPUs (no target)"
        )
    if "g forwarded" in rows:
        p50 = rows["g forwarded"]["p50"]
        target("(g) vcdext dev forwarded p50 < 5 ms", f"{p50:.2f} ms", p50 < 5)


if __name__ == "__main__":
    main()
