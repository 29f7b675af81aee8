"""An in-process test client for vcdext services."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from .. import xml as _xml
from ..app import Runtime, create_runtime
from ..protocol import Reply, decode_reply, encode_request
from ..settings import Settings
from ..tasks import VcdApi
from .tasks import FakeVcd, TaskRun

#: The caller used when a test does not name one.
DEFAULT_USER = "urn:vcloud:user:00000000-0000-4000-8000-000000000001"
DEFAULT_ORG = "urn:vcloud:org:00000000-0000-4000-8000-0000000000aa"
DEFAULT_ACCEPT = "application/*+xml;version=5.1"

_ids = itertools.count(1)


@dataclass(frozen=True)
class TestResponse(Reply):
    """What vCD would hand back to its client: the decoded :class:`Reply`, with helpers."""

    __test__ = False  # not a pytest test class

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def xml(self) -> etree._Element:
        return _xml.parse(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


class TestClient:
    """Send requests to a runtime the way vCD forwards them, and read the replies.

    :param user, org, rights: the default security context of the requests.
    """

    __test__ = False

    def __init__(
        self,
        runtime: Runtime,
        *,
        user: str = DEFAULT_USER,
        org: str = DEFAULT_ORG,
        rights: Iterable[str] = (),
    ) -> None:
        self.runtime = runtime
        self.user, self.org, self.rights = user, org, tuple(rights)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        query: str | Mapping[str, str | Iterable[str]] | None = None,
        user: str | None = None,
        org: str | None = None,
        rights: Iterable[str] | None = None,
        routing_key: str | None = None,
    ) -> TestResponse:
        """Send one request through the real message encoding and dispatch path.

        :param body: the raw body; ``str`` is sent as UTF-8.
        :param query: a query string (``"a=1&b=2"``, no ``?``) or a mapping of names to a
            value or a list of values (``{"a": "1", "tag": ["x", "y"]}``), URL-encoded.
        :param rights: full right names (or URNs) the caller holds, replacing the client's.
        """
        all_headers = {"Accept": DEFAULT_ACCEPT, **(headers or {})}
        data = body.encode("utf-8") if isinstance(body, str) else body
        if query is not None and not isinstance(query, str):
            query = urlencode(
                [
                    (name, v)
                    for name, value in query.items()
                    for v in ([value] if isinstance(value, str) else value)
                ]
            )
        message = encode_request(
            method,
            path,
            request_id=f"test-{next(_ids)}",
            headers=all_headers,
            body=data,
            query_string=query,
            user=self.user if user is None else user,
            org=self.org if org is None else org,
            rights=tuple(self.rights if rights is None else rights),
        )
        reply = decode_reply(self.runtime.handle_message(message, routing_key=routing_key))
        return TestResponse(reply.status, reply.headers, reply.body, reply.id)

    def run_tasks(self) -> list[TaskRun]:
        """Run the work of every task the requests so far started, in this thread, to its
        end; each task's states as vCD received them (the runtime needs a :class:`FakeVcd`:
        ``make_runtime(plugin, vcd=FakeVcd())``)."""
        vcd = self.runtime.tasks.vcd
        if not isinstance(vcd, FakeVcd):
            raise RuntimeError(
                "run_tasks() needs a runtime made with make_runtime(..., vcd=FakeVcd())"
            )
        return [vcd.run(task.id) for task in self.runtime.tasks.run_pending()]

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


def make_runtime(
    *plugins: Any, settings: Settings | None = None, vcd: VcdApi | None = None, **named: Any
) -> Runtime:
    """A runtime with only the given plugin objects (no installed entry points).

    Positional plugins are named after their ``__name__``; keyword ones after the keyword.
    With ``vcd`` (a :class:`FakeVcd`, say) tasks are created there, every progress update is
    sent, and their work runs only when the test calls :meth:`TestClient.run_tasks`.
    """
    pairs = [(getattr(p, "__name__", repr(p)).rsplit(".", 1)[-1], p) for p in plugins]
    pairs += list(named.items())
    runtime = create_runtime(settings, plugins=pairs, autoload=False)
    if vcd is not None:
        use_vcd(runtime, vcd)
    return runtime


def use_vcd(runtime: Runtime, vcd: VcdApi, *, synchronous: bool = True) -> None:
    """Make ``runtime``'s tasks talk to ``vcd``; ``synchronous``: run their work only in
    :meth:`TestClient.run_tasks` (``TaskRunner.run_pending``), and send every update."""
    runner = runtime.tasks
    runner.vcd = vcd
    runner.synchronous = synchronous
    if synchronous:
        runner.update_interval = 0.0
