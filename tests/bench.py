"""`make bench`: vcdext's AMQP server against a bare kombu consumer, same broker, same run.

Both answer the same vCD-shaped GET with a small XML body. The baseline is the least a
correct service can do: one thread, decode JSON, build the reply, publish it, then ack.
vcdext adds routing, authorization, the worker pool and publisher confirms. Each side is
driven by the same client keeping a fixed number of requests in flight; the report prints
throughput, latency percentiles and the ratios vcdext/baseline. vcdext also runs with the
Prometheus metrics of `vcdext run --health-port` (`vcdext+metrics`), and the in-process dispatch
path is timed without and with them. No assertion: numbers only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

import vcdext_hello.plugin as hello
from tests.support.rabbitmq import RabbitNode
from vcdext.app import create_transport
from vcdext.metrics import Metrics
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.vcloud.message import encode_request
from vcdext_cell.forwarder import Delivery, Forwarder

KEY = "io.vcdext.hello"


def bare_consumer(url: str, exchange: str, stop: threading.Event, ready: threading.Event) -> None:
    """The baseline: reply then ack, in the consuming thread, no confirms."""
    with Connection(url) as conn:
        channel = conn.channel()
        ex = Exchange(exchange, type="direct", durable=True)
        queue = Queue(KEY, ex, routing_key=KEY, durable=True)
        queue(channel).declare()
        producer = Producer(channel)

        def on_message(message: Any) -> None:
            request = json.loads(message.body)[0]
            body = b"<Greeting>hello</Greeting>"
            reply = {
                "id": request["id"],
                "statusCode": 200,
                "request": False,
                "headers": {"Content-Type": "application/xml", "Content-Length": len(body)},
                "body": base64.b64encode(body).decode(),
            }
            producer.publish(
                json.dumps(reply),
                exchange=message.headers["replyToExchange"],
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties["correlation_id"],
            )
            message.ack()

        consumer = Consumer(channel, [queue], on_message=on_message, accept=None)
        consumer.qos(prefetch_count=16)
        consumer.consume()
        ready.set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=0.1)


def drive(url: str, exchange: str, total: int, window: int) -> tuple[float, list[float]]:
    """Send `total` requests keeping `window` in flight; returns (seconds, latencies)."""
    side = Forwarder(url)
    side.start()
    sent: dict[Future[Delivery], float] = {}
    latencies: list[float] = []
    message = encode_request(
        "GET",
        "/api/hello",
        request_id="bench",
        headers={"Accept": "application/*+xml;version=5.1"},
        user="urn:vcloud:user:bench",
    )
    started = time.perf_counter()
    next_index = 0
    while len(latencies) < total:
        while next_index < total and len(sent) < window:
            sent[side.send(exchange, KEY, message)] = time.perf_counter()
            next_index += 1
        done, _ = wait(sent, timeout=5, return_when=FIRST_COMPLETED)
        if not done:
            raise RuntimeError("the service stopped answering")
        for future in done:
            latencies.append(time.perf_counter() - sent.pop(future))
    elapsed = time.perf_counter() - started
    side.stop()
    return elapsed, latencies


def _drive_in_child(url: str, exchange: str, total: int, window: int, out: Any) -> None:
    drive(url, exchange, min(200, total), window)  # warm-up
    out.put(drive(url, exchange, total, window))


def run_case(
    name: str, start: Callable[[str], Callable[[], None]], url: str, total: int, window: int
) -> dict[str, float]:
    exchange = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    stop = start(exchange)
    # The client runs in its own process so that it does not compete for the server's GIL.
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_drive_in_child, args=(url, exchange, total, window, results))
    try:
        child.start()
        elapsed, lat = results.get(timeout=600)
        child.join()
    finally:
        if child.is_alive():
            child.kill()
        stop()
    lat.sort()
    return {
        "rps": total / elapsed,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[int(len(lat) * 0.99)] * 1000,
        "mean": statistics.fmean(lat) * 1000,
    }


def dispatch_costs(rounds: int = 5000, repeats: int = 15) -> tuple[float, float]:
    """Microseconds per request of the in-process dispatch path (no broker), without and with
    metrics: the part of a request that metrics add to, away from the broker's noise. The two
    are measured in turn and the best of each kept, so that a busy machine hurts both alike."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--window", type=int, default=32, help="requests in flight")
    args = parser.parse_args()

    with RabbitNode.start() as node:
        url = node.url

        def start_bare(exchange: str) -> Callable[[], None]:
            stop, ready = threading.Event(), threading.Event()
            thread = threading.Thread(target=bare_consumer, args=(url, exchange, stop, ready))
            thread.start()
            ready.wait(10)
            return lambda: (stop.set(), thread.join())  # type: ignore[func-returns-value]

        def start_vcdext(exchange: str, metrics: bool = False) -> Callable[[], None]:
            settings = load_settings(
                None,
                environ={
                    "VCDEXT_AMQP_URL": url,
                    "VCDEXT_AMQP_EXCHANGE": exchange,
                    "VCDEXT_RUNTIME_LOG_LEVEL": "WARNING",
                },
            )
            server = create_transport(make_runtime(hello=hello, settings=settings))
            if metrics:  # what `vcdext run --health-port` adds on the request path
                server.dispatcher.observer = Metrics()
            thread = threading.Thread(target=server.run)
            thread.start()
            server.ready.wait(10)
            return lambda: (server.stop(), thread.join())  # type: ignore[func-returns-value]

        import logging

        logging.getLogger("vcdext").setLevel(logging.WARNING)
        base = run_case("bare", start_bare, url, args.requests, args.window)
        # With and without metrics in A-B-B-A order, the better run of each kept: on a busy
        # machine the spread between runs of one case is larger than what metrics cost.
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for metrics in (False, True, True, False):
            runs[metrics].append(
                run_case(
                    "metrics" if metrics else "vcdext",
                    lambda e, m=metrics: start_vcdext(e, m),
                    url,
                    args.requests,
                    args.window,
                )
            )
        ours, counted = (max(runs[m], key=lambda r: r["rps"]) for m in (False, True))

    print(f"{args.requests} requests, {args.window} in flight, one RabbitMQ node on loopback")
    print(f"{'':18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for label, row in (("bare kombu", base), ("vcdext", ours), ("vcdext+metrics", counted)):
        print(f"{label:18}{row['rps']:>10.0f}{row['p50']:>10.2f}{row['p99']:>10.2f}")
    print(
        f"{'vcdext / bare':18}{ours['rps'] / base['rps']:>10.2f}"
        f"{ours['p50'] / base['p50']:>10.2f}{ours['p99'] / base['p99']:>10.2f}"
    )
    bare_us, counted_us = dispatch_costs()
    print(
        f"dispatch in process: {bare_us:.1f} us/request, {counted_us:.1f} with metrics "
        f"(+{counted_us - bare_us:.1f} us)"
    )
    print(
        f"{'metrics / vcdext':18}{counted['rps'] / ours['rps']:>10.2f}"
        f"{counted['p50'] / ours['p50']:>10.2f}{counted['p99'] / ours['p99']:>10.2f}"
    )


if __name__ == "__main__":
    main()
