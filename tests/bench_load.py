"""The processes of `make bench` other than `vcdext run`: vCD's side (the load generator) and
the baseline (a bare kombu echo consumer). Each runs in its own process (see tests/bench.py).

The load generator plays vCD on one thread with py-amqp directly, so that it costs the broker
and the CPU as little as a client can: it publishes vCD-format request messages (the JSON
array written by :func:`vcdext.vcloud.message.encode_request`, the headers and properties
vCD sets) keeping ``window`` requests in flight, and matches each reply to its request by
correlation id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import amqp
from kombu import Connection, Consumer, Exchange, Producer, Queue

from vcdext.vcloud.message import encode_request

HELLO_KEY = "io.vcdext.hello"
SLOW_KEY = "io.example.slow"
REPLY_EXCHANGE = "bench.replies"
_ID = "00000000-0000-0000-0000-000000000000"  # replaced by each request's own id


@dataclass(frozen=True)
class Target:
    """What one request asks for: a routing key and the method/path/query of the request."""

    routing_key: str
    path: str
    query: str | None = None
    kind: str = "fast"


@dataclass
class Result:
    elapsed: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    cpu: float = 0.0  # CPU seconds per request of the processes measured (see bench.load)


def _template(target: Target) -> bytes:
    return encode_request(
        "GET",
        target.path,
        request_id=_ID,
        headers={"Accept": "application/*+xml;version=5.1", "x-vcloud-authorization": "t"},
        query_string=target.query,
        user="urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09",
        org="urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae",
        rights=["urn:vcloud:right:0b1d9c1e-1a52-3e1a-9a60-6b1e4e4a2d11"],
    )


def generate(
    url: str, exchange: str, targets: list[Target], total: int, window: int, timeout: float = 30
) -> Result:
    """Send ``total`` requests (cycling through ``targets``), ``window`` in flight."""
    with Connection(url) as kconn:
        kconn.connect()
        conn: amqp.Connection = kconn.connection
        channel = conn.channel()
        channel.exchange_declare(REPLY_EXCHANGE, "direct", durable=True, auto_delete=False)
        reply_queue = f"bench.cell.{uuid.uuid4().hex[:8]}"
        channel.queue_declare(reply_queue, exclusive=True, auto_delete=True)
        channel.queue_bind(reply_queue, REPLY_EXCHANGE, routing_key=reply_queue)
        templates = [_template(t) for t in targets]
        sent: dict[str, tuple[float, str]] = {}
        result = Result(latencies={t.kind: [] for t in targets})
        done = 0

        def on_reply(message: amqp.Message) -> None:
            nonlocal done
            started, kind = sent.pop(message.properties["correlation_id"])
            result.latencies[kind].append(time.perf_counter() - started)
            body = message.body if isinstance(message.body, str) else message.body.decode()
            if '"statusCode": 200' not in body and '"statusCode":200' not in body:
                result.errors += 1
            done += 1

        channel.basic_consume(reply_queue, no_ack=True, callback=on_reply)
        headers = {"replyToExchange": REPLY_EXCHANGE, "messageType": "ProcessHttpRequest"}
        index = 0
        started = time.perf_counter()
        while done < total:
            while index < total and len(sent) < window:
                which = index % len(targets)
                request_id = str(uuid.uuid4())
                body = templates[which].replace(_ID.encode(), request_id.encode(), 1)
                message = amqp.Message(
                    body,
                    correlation_id=request_id,
                    reply_to=reply_queue,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=1,
                    timestamp=int(time.time()),
                    application_headers=headers,
                )
                sent[request_id] = (time.perf_counter(), targets[which].kind)
                channel.basic_publish(message, exchange, targets[which].routing_key)
                index += 1
            try:
                conn.drain_events(timeout=timeout)
            except TimeoutError:
                raise RuntimeError(f"no reply within {timeout} s ({done} of {total})") from None
        result.elapsed = time.perf_counter() - started
        return result


def generate_in_child(
    url: str, exchange: str, targets: list[Target], total: int, window: int, out: Any
) -> None:
    """Process target: a warm-up, then the measured run; puts the :class:`Result` on ``out``."""
    try:
        generate(url, exchange, targets, min(500, total), window)
        out.put(generate(url, exchange, targets, total, window))
    except BaseException as exc:
        out.put(exc)


def bare_consumer(url: str, exchange: str, ready: Any, stop: Any) -> None:
    """The baseline: decode the request, publish a canned reply, ack, all on the consuming
    thread, no publisher confirms. Process target."""
    with Connection(url) as conn:
        channel = conn.channel()
        ex = Exchange(exchange, type="direct", durable=True)
        ex(channel).declare()
        # A queue of its own (vcdext's is named after the routing key): both consumers may
        # run at once, each getting only the load sent to its own exchange.
        queue = Queue(f"bare.{exchange}", ex, routing_key=HELLO_KEY, durable=True)
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
                content_type="application/json",
            )
            message.ack()

        consumer = Consumer(channel, [queue], on_message=on_message, accept=None)
        consumer.qos(prefetch_count=16)
        consumer.consume()
        ready.set()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, socket.timeout):
                conn.drain_events(timeout=0.2)


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` used so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
