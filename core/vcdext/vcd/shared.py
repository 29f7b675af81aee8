"""The runtime's own vCD client while it serves: one login, shared by every handler and task.

:class:`~vcdext.vcd.client.VcdClient` is not thread-safe; :class:`SharedVcd` serialises the
calls of many worker threads through one lock, logs in on first use (so a runtime starts even
while vCD is down) and logs in again after a failed login; once closed (at shutdown) it stays
closed, so work still running then cannot open a session nobody logs out. It offers what
:class:`vcdext.tasks.VcdApi` names: reading documents, and creating, updating and reading tasks
and posting events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from lxml import etree

from ..vcloud.model import Event, Held, Task
from .client import VcdClient
from .connection import normalize_base_url
from .errors import VcdConnectionError

T = TypeVar("T")


class SharedVcd:
    """A :class:`VcdClient` for many threads: each call holds the lock for its duration.

    :param factory: builds the (not yet connected) client; called again after a failed login.
    """

    def __init__(self, base_url: str, factory: Callable[[], VcdClient]) -> None:
        self.base_url = normalize_base_url(base_url)
        self._factory = factory
        self._client: VcdClient | None = None
        self._closed = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SharedVcd({self.base_url!r})"

    def _call(self, use: Callable[[VcdClient], T]) -> T:
        with self._lock:
            if self._closed:
                raise VcdConnectionError(self.base_url, "vcdext closed its vCD session")
            if self._client is None:
                client = self._factory()
                client.connect()  # raises VcdLoginError; the next call tries again
                self._client = client
            return use(self._client)

    def close(self) -> None:
        """Log out (if logged in); later calls fail with :class:`VcdConnectionError`."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
        if client is not None:
            client.close()

    # -- documents ------------------------------------------------------------------------

    def get(self, href: str, *, params: Mapping[str, str] | None = None) -> etree._Element:
        """``GET`` a document (see :meth:`VcdClient.get`)."""
        return self._call(lambda c: c.get(href, params=params))

    def read(self, href: str, reader: Callable[[etree._Element], T]) -> T:
        """``GET`` a document and read it with a :mod:`vcdext.vcloud` reader."""
        return self._call(lambda c: c.read(href, reader))

    # -- tasks and events -----------------------------------------------------------------

    def create_task(self, org_id: str, task: Task) -> Held[Task]:
        """See :meth:`VcdClient.create_task`."""
        return self._call(lambda c: c.create_task(org_id, task))

    def update_task(self, href: str, task: Task) -> Held[Task]:
        """See :meth:`VcdClient.update_task`."""
        return self._call(lambda c: c.update_task(href, task))

    def get_task(self, href: str) -> Held[Task]:
        """See :meth:`VcdClient.get_task`."""
        return self._call(lambda c: c.get_task(href))

    def post_event(self, org_id: str, event: Event) -> None:
        """See :meth:`VcdClient.post_event`."""
        self._call(lambda c: c.post_event(org_id, event))
