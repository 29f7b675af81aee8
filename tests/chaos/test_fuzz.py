"""Thousands of generated request messages: each answered (an ``Error`` valid against vCD's
schemas unless it was a valid request) or rejected; the runtime stays up with a flat RSS."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.chaos.conftest import FAST_KEY, publish, queue_depth
from vcdext.protocol import encode_request

pytestmark = pytest.mark.integration

EXAMPLES = 80
BATCH = 25  # EXAMPLES * BATCH messages in all
ANSWERS = {200, 400, 403, 404, 405, 413, 415, 500, 503}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["id", "method", "requestUri", "queryString", "headers", "body", "request"]


@st.composite
def mutated_request(draw: Any) -> bytes:
    """A valid request of the fast service with some fields replaced, dropped or added."""
    doc = json.loads(encode_request("GET", "/api/chaos/fast", request_id="fuzz"))
    request, context = doc
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            request.pop(name, None)
        else:
            request[name] = draw(json_values)
    if draw(st.booleans()):
        request["requestUri"] = draw(
            st.sampled_from(["/api/chaos/fast", "/api/chaos/slow", "/api/x"]) | st.text(max_size=30)
        )
        request["method"] = draw(st.sampled_from(["GET", "POST", "DELETE", "get"]))
    if draw(st.booleans()):
        request["body"] = base64.b64encode(draw(st.binary(max_size=64))).decode()
    if draw(st.booleans()):
        context = draw(json_values)
    shape = draw(st.sampled_from(["array", "object", "extra"]))
    if shape == "object":
        return json.dumps({**request, "securityContext": context}).encode()
    extra = [draw(json_values)] if shape == "extra" else []
    return json.dumps([request, context, *extra]).encode()


messages = st.one_of(
    mutated_request(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=100).map(str.encode),
    st.integers(1, 150_000).map(lambda n: b"[" * n),
    st.integers(1, 50_000).map(lambda n: b'{"a":' * n),
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_generated_messages_are_answered_or_rejected(
    vcdext, vcd, rabbitmq, assert_valid_vcd_xml, measured
):
    proc = vcdext()
    rss: list[int] = []
    counts = {"answered": 0, "rejected": 0, "errors": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.tuples(messages, st.integers(0, 19)), min_size=BATCH, max_size=BATCH))
    def batch(items: list[tuple[bytes, int]]) -> None:
        answered = []
        for body, dice in items:
            if dice == 0:  # no reply address: rejected without an answer
                vcd.publish_raw(body, FAST_KEY, reply=False)
                counts["rejected"] += 1
            else:
                answered.append(publish(vcd, body, FAST_KEY))
        for reply in vcd.wait(*answered, timeout=20):
            assert reply.status in ANSWERS, reply.doc
            assert isinstance(reply.doc["id"], str)
            if reply.status >= 400:
                assert_valid_vcd_xml(reply.body)
                counts["errors"] += 1
        counts["answered"] += len(answered)
        vcd.forget()
        assert proc.alive(), proc.output[-3000:]
        rss.append(rss_kib(proc.proc.pid))

    started = time.monotonic()
    batch()
    elapsed = time.monotonic() - started
    assert proc.alive()
    proc.stop()
    assert proc.proc.returncode == 0
    assert queue_depth(rabbitmq, FAST_KEY) == 0
    growth = (rss[-1] - rss[len(rss) // 4]) / 1024
    measured(
        f"{counts['answered'] + counts['rejected']} generated messages in {elapsed:.1f} s: "
        f"{counts['answered']} answered ({counts['errors']} schema-valid Errors), "
        f"{counts['rejected']} without reply address rejected; "
        f"RSS {rss[0] / 1024:.0f} → {rss[-1] / 1024:.0f} MiB"
    )
    assert growth < 25, f"RSS grew {growth:.1f} MiB after warm-up"
