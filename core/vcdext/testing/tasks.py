"""Testing task-returning operations in process: an in-memory vCD that keeps every state of
every task, and a runtime that runs task work when the test says so.

::

    vcd = FakeVcd()
    vcd.add_document("/api/vApp/vapp-42", vapp_xml)
    client = TestClient(make_runtime(my_plugin, vcd=vcd))
    reply = client.post("/api/vApp/vapp-42/action/backup")
    assert reply.status == 202                      # the Task, as vCD created it
    (run,) = client.run_tasks()                     # the work runs now, in this thread
    assert [s.status for s in run.states] == ["queued", "running", "running", "success"]
    assert run.events[0].type == "backupComplete"
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, replace

from lxml import etree

from .. import xml as _xml
from ..vcd.errors import VcdApiError, VcdConnectionError
from ..vcloud import media
from ..vcloud.model import Event, Held, Link, Reference, Task
from ..vcloud.task import write_event, write_task

#: The base URL of a :class:`FakeVcd` unless told otherwise.
FAKE_VCD_URL = "https://vcd.test"


@dataclass(frozen=True)
class TaskRun:
    """One task from creation to its end: every state vCD received, and its events."""

    __test__ = False

    id: str
    href: str
    states: tuple[Task, ...]
    events: tuple[Event, ...]

    @property
    def final(self) -> Task:
        """The last state (``success``, ``error``, ``canceled`` or ``aborted`` once ended)."""
        return self.states[-1]

    @property
    def statuses(self) -> list[str]:
        """The status of each state, in order (repeats kept: each is one update)."""
        return [s.status for s in self.states]


class FakeVcd:
    """An in-memory vCD for tasks, events and ``GET``\\ s of documents the test adds.

    Implements :class:`vcdext.tasks.VcdApi`. Thread-safe. Every ``PUT`` of a task is kept
    (:meth:`states`), every event (:attr:`events`); :meth:`request_cancel` does what a user's
    ``POST /api/task/{id}/action/cancel`` does; :meth:`unavailable` makes the next calls fail
    as an unreachable vCD would.
    """

    def __init__(self, base_url: str = FAKE_VCD_URL) -> None:
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()
        self._documents: dict[str, bytes] = {}
        self._history: dict[str, list[Held[Task]]] = {}
        self._cancel: set[str] = set()
        self._failures = 0
        self._ids = itertools.count(1)
        #: ``(org id, event)`` of every event posted, oldest first.
        self.posted: list[tuple[str, Event]] = []
        #: Every call, as ``"METHOD path"`` (for rate assertions).
        self.calls: list[str] = []

    # -- what the test sets up ----------------------------------------------------------

    def add_document(self, path: str, document: bytes | str | etree._Element) -> None:
        """Serve ``document`` at ``path`` (``/api/vApp/vapp-42``, or a full href)."""
        if isinstance(document, etree._Element):
            document = _xml.tostring(document)
        data = document.encode("utf-8") if isinstance(document, str) else document
        with self._lock:
            self._documents[self._path(path)] = data

    def remove_document(self, path: str) -> None:
        """Stop serving ``path`` (a later ``GET`` is a 404, as for a deleted object)."""
        with self._lock:
            self._documents.pop(self._path(path), None)

    def request_cancel(self, task_id: str) -> None:
        """A user asks to cancel the task (vCD records ``cancelRequested``)."""
        with self._lock:
            self._cancel.add(task_id)

    def unavailable(self, calls: int) -> None:
        """The next ``calls`` calls fail as if vCD could not be reached."""
        with self._lock:
            self._failures = calls

    # -- what the test reads --------------------------------------------------------------

    def task_ids(self) -> list[str]:
        """Every task created, oldest first."""
        with self._lock:
            return list(self._history)

    def states(self, task_id: str) -> list[Task]:
        """Every state of the task vCD received: as created, then each ``PUT`` as sent."""
        with self._lock:
            return [h.value for h in self._history[task_id]]

    def documents(self, task_id: str) -> list[bytes]:
        """Each state of the task as the ``Task`` document vCD would answer with."""
        with self._lock:
            return [_xml.tostring(write_task(h)) for h in self._history[task_id]]

    def event_documents(self) -> list[bytes]:
        """Every posted event as the ``Event`` document that was sent."""
        with self._lock:
            return [_xml.tostring(write_event(e)) for _, e in self.posted]

    def events_of(self, task_id: str) -> list[Event]:
        """The events posted for a task (their ``taskId`` property)."""
        with self._lock:
            return [e for _, e in self.posted if ("taskId", task_id) in e.properties]

    def run(self, task_id: str) -> TaskRun:
        """The task's states and events so far."""
        href = f"{self.base_url}/api/task/{task_id}"
        return TaskRun(task_id, href, tuple(self.states(task_id)), tuple(self.events_of(task_id)))

    # -- VcdApi -----------------------------------------------------------------------------

    def _path(self, href: str) -> str:
        return "/" + href.removeprefix(self.base_url).lstrip("/")

    def _enter(self, call: str) -> None:
        """Record the call; fail it if the test made vCD unavailable (holding the lock)."""
        self.calls.append(call)
        if self._failures > 0:
            self._failures -= 1
            raise VcdConnectionError(self.base_url, "connection refused (FakeVcd.unavailable)")

    def get(self, href: str) -> etree._Element:
        path = self._path(href)
        with self._lock:
            self._enter(f"GET {path}")
            data = self._documents.get(path)
        if data is None:
            raise VcdApiError(
                method="GET",
                url=self.base_url + path,
                status=404,
                minor_code="RESOURCE_NOT_FOUND",
                message=f"No resource at {path}",
            )
        return _xml.parse(data)

    def _held(self, task_id: str, task: Task, *, as_sent: bool = False) -> Held[Task]:
        """The task as vCD answers it (its own ``cancelRequested``), or ``as_sent``."""
        href = f"{self.base_url}/api/task/{task_id}"
        links = () if task.finished else (Link(media.REL_TASK_CANCEL, f"{href}/action/cancel"),)
        if not as_sent:
            task = replace(task, cancel_requested=task_id in self._cancel)
        return Held(
            task,
            href=href,
            id=f"urn:vcloud:task:{task_id}",
            type=media.TASK,
            links=(*links, Link(media.REL_EDIT, href, media.TASK)),
        )

    def create_task(self, org_id: str, task: Task) -> Held[Task]:
        with self._lock:
            self._enter(f"POST /api/tasksList/{org_id}")
            task_id = str(uuid.UUID(int=next(self._ids)))
            organization = Reference(
                f"{self.base_url}/api/org/{org_id}", media.ORG, id=f"urn:vcloud:org:{org_id}"
            )
            created = replace(
                task, start_time="2026-01-01T00:00:00.000Z", organization=organization
            )
            held = self._held(task_id, created)
            self._history[task_id] = [held]
            return held

    def _task_id(self, href: str) -> str:
        return href.rstrip("/").rsplit("/", 1)[-1]

    def update_task(self, href: str, task: Task) -> Held[Task]:
        task_id = self._task_id(href)
        with self._lock:
            self._enter(f"PUT /api/task/{task_id}")
            first = self._history[task_id][0].value
            received = replace(task, start_time=first.start_time, organization=first.organization)
            self._history[task_id].append(self._held(task_id, received, as_sent=True))
            return self._held(task_id, received)

    def get_task(self, href: str) -> Held[Task]:
        task_id = self._task_id(href)
        with self._lock:
            self._enter(f"GET /api/task/{task_id}")
            return self._held(task_id, self._history[task_id][-1].value)

    def post_event(self, org_id: str, event: Event) -> None:
        with self._lock:
            self._enter(f"POST /api/admin/org/{org_id}/events")
            self.posted.append((org_id, event))
