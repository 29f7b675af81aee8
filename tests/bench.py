"""`make bench`: vcdext's AMQP server against a bare kombu consumer, same broker, same run.

Both answer the same vCD-shaped GET with a small XML body. The baseline is the least a
correct service can do: one thread, decode JSON, build the reply, publish it, then ack.
vcdext adds routing, authorization, the worker pool and publisher confirms. Each side is
driven by the same client keeping a fixed number of requests in flight; the report prints
throughput, latency percentiles and the ratios vcdext/baseline. No assertion: numbers only.
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
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

import vcdext_hello.plugin as hello
from tests.support.rabbitmq import RabbitNode
from tests.support.vcd_side import VcdSide
from vcdext.app import create_transport
from vcdext.protocol import encode_request
from vcdext.settings import load_settings
from vcdext.testing import make_runtime

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
    side = VcdSide(url, exchange)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = 0
    message = encode_request(
        "GET",
        "/api/hello",
        request_id="bench",
        headers={"Accept": "application/*+xml;version=5.1"},
        user="urn:vcloud:user:bench",
    )
    started = time.perf_counter()
    next_index = 0
    while done < total:
        while next_index < total and len(sent) < window:
            cid = uuid.uuid4().hex
            sent[cid] = time.perf_counter()
            side.publish_raw(message, KEY, correlation_id=cid)
            next_index += 1
        try:
            side.conn.drain_events(timeout=5)
        except TimeoutError as exc:
            raise RuntimeError("the service stopped answering") from exc
        for cid in [c for c in sent if c in side.replies]:
            latencies.append(time.perf_counter() - sent.pop(cid))
            side.replies.pop(cid)
            done += 1
    elapsed = time.perf_counter() - started
    side.close()
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

        def start_vcdext(exchange: str) -> Callable[[], None]:
            settings = load_settings(
                None,
                environ={
                    "VCDEXT_AMQP_URL": url,
                    "VCDEXT_AMQP_EXCHANGE": exchange,
                    "VCDEXT_RUNTIME_LOG_LEVEL": "WARNING",
                },
            )
            server = create_transport(make_runtime(hello=hello, settings=settings))
            thread = threading.Thread(target=server.run)
            thread.start()
            server.ready.wait(10)
            return lambda: (server.stop(), thread.join())  # type: ignore[func-returns-value]

        import logging

        logging.getLogger("vcdext").setLevel(logging.WARNING)
        base = run_case("bare", start_bare, url, args.requests, args.window)
        ours = run_case("vcdext", start_vcdext, url, args.requests, args.window)

    print(f"{args.requests} requests, {args.window} in flight, one RabbitMQ node on loopback")
    print(f"{'':18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for label, row in (("bare kombu", base), ("vcdext", ours)):
        print(f"{label:18}{row['rps']:>10.0f}{row['p50']:>10.2f}{row['p99']:>10.2f}")
    print(
        f"{'vcdext / bare':18}{ours['rps'] / base['rps']:>10.2f}"
        f"{ours['p50'] / base['p50']:>10.2f}{ours['p99'] / base['p99']:>10.2f}"
    )


if __name__ == "__main__":
    main()
