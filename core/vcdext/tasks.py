"""Long work as vCD tasks: the core owns the whole lifecycle, the plugin only does the work.

::

    @service.operation("POST", "/api/vApp/vapp-{id}/action/backup",
                       produces=["application/vnd.vmware.vcloud.task+xml"])
    def backup(request: Request, id: str) -> RunningTask:
        return current().start_task(
            copy_vapp, operation_name="backupVApp", operation="Backing up my-vapp",
            owner=vapp_ref, event="backupComplete")

    def copy_vapp(task: RunningTask) -> str:
        task.progress(40, details="Reading the vApp")    # raises Cancelled once asked to
        ...
        return "Backup 42 created"                        # the final Details

:meth:`TaskRunner.start` ``POST``\\ s a ``queued`` vCD ``Task`` to the org's task list; the
handler returns it, so vCD's client gets ``202 Accepted`` with the Task at once. The work then
runs in the runner's own bounded pool of threads (never one thread per task); it is ``running``
while it runs and ends ``success``, ``error`` (an exception: its message in the Task's
``Error``), ``canceled`` (it raised :class:`Cancelled`) or ``aborted`` (vcdext stopped first).
A task is never left running.

* Progress is coalesced: at most one ``PUT`` per ``update_interval`` per task; a later state
  replaces an unsent one, and a monitor thread sends what is left. A ``PUT`` that fails (vCD
  unavailable) is tried again with backoff (:class:`vcdext.retry.Backoff`).
* The monitor reads each running task from vCD every ``cancel_interval`` seconds (a ``PUT``'s
  answer counts as a read); once vCD says ``cancelRequested``, :attr:`RunningTask.cancel_requested`
  is true and the work's next :meth:`RunningTask.progress` raises :class:`Cancelled`.
* :meth:`TaskRunner.shutdown` waits up to ``drain_timeout`` for the work; tasks still running
  then end ``aborted`` with a message.

This module writes no XML and knows no HTTP: it talks to vCD through :class:`VcdApi`
(:class:`vcdext.vcd.shared.SharedVcd` in a runtime, a fake in tests).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from lxml import etree

from .errors import HTTPError, ServiceUnavailable, VcdExtError
from .observer import NO_OBSERVER, Observer
from .protocol import Response
from .retry import Backoff
from .vcloud import media
from .vcloud.model import Event, Held, Reference, Task, TaskError
from .vcloud.task import write_task

log = logging.getLogger(__name__)

#: What a task's work is: called with its :class:`RunningTask`; what it returns (if a string)
#: becomes the task's final ``Details``.
Work = Callable[["RunningTask"], "str | None"]


class VcdApi(Protocol):
    """What the task runner (and a task's work) may ask of vCD."""

    #: vCD's base URL (``https://vcd.example.com``, no ``/api``).
    base_url: str

    def get(self, href: str) -> etree._Element:
        """``GET`` a document."""
        ...

    def create_task(self, org_id: str, task: Task) -> Held[Task]:
        """``POST`` a task to the org's task list; vCD's copy."""
        ...

    def update_task(self, href: str, task: Task) -> Held[Task]:
        """``PUT`` a task's new state; vCD's copy."""
        ...

    def get_task(self, href: str) -> Held[Task]:
        """``GET`` a task."""
        ...

    def post_event(self, org_id: str, event: Event) -> None:
        """``POST`` an event to the org's events."""
        ...


class Cancelled(Exception):
    """Raised by :meth:`RunningTask.progress` once a user asked vCD to cancel the task; let it
    propagate (clean up in ``finally``) and the task ends ``canceled``."""


def now_xs() -> str:
    """The current time as an ``xs:dateTime`` in UTC, with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_href(base_url: str, urn: str) -> str:
    """The API href of a ``urn:vcloud:<kind>:<id>`` (users, orgs, vApps, VMs)."""
    kind, _, ident = urn.removeprefix("urn:vcloud:").partition(":")
    paths = {
        "user": f"admin/user/{ident}",
        "org": f"org/{ident}",
        "vapp": f"vApp/vapp-{ident}",
        "vm": f"vApp/vm-{ident}",
        "vdc": f"vdc/{ident}",
    }
    return f"{base_url}/api/{paths.get(kind, f'entity/{urn}')}"


@dataclass
class _State:
    """A task's state on our side (guarded by its :class:`RunningTask`'s lock)."""

    task: Task
    #: Incremented at every change; ``sent`` is the version vCD last accepted.
    version: int = 0
    sent: int = 0
    last_put: float = 0.0
    next_attempt: float = 0.0
    last_read: float = 0.0
    cancel_requested: bool = False
    final: bool = False
    backoff: Backoff = field(
        default_factory=lambda: Backoff(initial=0.5, cap=30.0, jitter=0.2, retries=None)
    )


class RunningTask:
    """One vCD task, as the handler that started it and the work that runs it see it.

    A handler returns it (the reply is ``202`` with the Task); the work receives it and calls
    :meth:`progress`. Plugins never build Task XML or ``PUT`` a task: this object does.
    """

    def __init__(
        self,
        runner: TaskRunner,
        held: Held[Task],
        work: Work,
        *,
        org_id: str,
        event: str | None,
        event_properties: Mapping[str, str],
    ) -> None:
        self._runner = runner
        self._work = work
        self._lock = threading.Lock()
        self._io = threading.Lock()  # one PUT at a time per task, in order
        self._created = held
        self._state = _State(held.value, last_put=time.monotonic(), last_read=time.monotonic())
        self._done = threading.Event()
        self._key = held.href
        self.org_id = org_id
        self.event = event
        #: Properties of the event posted when the task ends (the work may add some).
        self.event_properties: dict[str, str] = dict(event_properties)

    def __repr__(self) -> str:
        return f"RunningTask({self.id!r}, {self.status!r})"

    # -- what it is -----------------------------------------------------------------------

    @property
    def href(self) -> str:
        """The task's href in vCD (``.../api/task/<id>``)."""
        return self._created.href

    @property
    def id(self) -> str:
        """The task's id (the UUID part of its URN)."""
        return (self._created.id or self.href).rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]

    @property
    def status(self) -> str:
        """The status as this process last set it (``queued``, ``running``, … ``aborted``)."""
        with self._lock:
            return self._state.task.status

    @property
    def task(self) -> Task:
        """The task's current state on this side."""
        with self._lock:
            return self._state.task

    @property
    def finished(self) -> bool:
        """Whether the task has reached a final status."""
        with self._lock:
            return self._state.final

    @property
    def vcd(self) -> VcdApi:
        """The runtime's vCD client (to read what the work needs from vCD)."""
        return self._runner.vcd_api

    @property
    def cancel_requested(self) -> bool:
        """Whether a user asked vCD to cancel the task (as last read from vCD)."""
        with self._lock:
            return self._state.cancel_requested

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task has ended and its last state was sent; ``False`` on timeout."""
        return self._done.wait(timeout)

    def response(self) -> Response:
        """The ``202 Accepted`` reply carrying the Task as vCD created it."""
        return Response.xml(write_task(self._created), status=202, content_type=media.TASK)

    # -- what the work does ---------------------------------------------------------------

    def progress(self, percent: int, *, details: str | None = None) -> None:
        """Report progress (0-100) and, optionally, what is happening now (``Details``).

        Cheap to call often: vCD sees at most one update per ``update_interval``.

        :raises Cancelled: a user asked to cancel the task (or vcdext stopped and ended it
            ``aborted``).
        """
        if self.cancel_requested or self.finished:
            raise Cancelled(f"task {self.id} was canceled")
        percent = max(0, min(100, int(percent)))
        self._change(progress=percent, **({} if details is None else {"details": details}))
        self._runner._flush(self)
        self._runner._check_cancel(self)
        if self.cancel_requested:
            raise Cancelled(f"task {self.id} was canceled")

    # -- lifecycle (the runner's) ---------------------------------------------------------

    def _change(self, **changes: object) -> bool:
        with self._lock:
            if self._state.final:
                return False
            self._state.task = dataclasses.replace(self._state.task, **changes)  # type: ignore[arg-type]
            self._state.version += 1
            if self._state.task.finished:
                self._state.final = True
            return True


class TaskRunner:
    """Starts vCD tasks, runs their work in a bounded pool, keeps vCD up to date.

    :param vcd: how to reach vCD; ``None`` when ``vcd.url`` is not set (starting a task is
        then a 503 naming the setting).
    :param workers: threads running the work of tasks (tasks beyond them wait, ``queued``).
    :param max_tasks: tasks at most at once (running or queued); more are refused with 503.
    :param update_interval: least seconds between two progress ``PUT``\\ s of one task.
    :param cancel_interval: seconds between two reads of a running task's ``cancelRequested``.
    :param drain_timeout: how long :meth:`shutdown` waits for running work.
    :param synchronous: tests only: queue the work and run it in :meth:`run_pending`'s thread,
        with no pool and no monitor thread.
    """

    def __init__(
        self,
        vcd: VcdApi | None,
        *,
        workers: int = 4,
        max_tasks: int = 256,
        update_interval: float = 0.5,
        cancel_interval: float = 2.0,
        drain_timeout: float = 30.0,
        synchronous: bool = False,
        missing: str = "vcd.url is not set ([vcd] section)",
    ) -> None:
        self.vcd = vcd
        self.workers = max(1, workers)
        self.max_tasks = max(1, max_tasks)
        self.update_interval = update_interval
        self.cancel_interval = cancel_interval
        self.drain_timeout = drain_timeout
        self.synchronous = synchronous
        self._missing = missing
        self._lock = threading.Lock()
        self._active: dict[str, RunningTask] = {}
        self._starting = 0  # starts waiting for vCD to create their task
        self._pending: queue.Queue[RunningTask | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._ids = itertools.count(1)
        #: Told each status a task enters (metrics); by default nobody is.
        self.observer: Observer = NO_OBSERVER

    @property
    def vcd_api(self) -> VcdApi:
        """The vCD client; :class:`ServiceUnavailable` naming the setting when there is none."""
        if self.vcd is None:
            raise ServiceUnavailable(
                f"This operation needs vCD, and none is configured: {self._missing}"
            )
        return self.vcd

    def active(self) -> list[RunningTask]:
        """Tasks started and not yet ended, oldest first."""
        with self._lock:
            return list(self._active.values())

    # -- starting -------------------------------------------------------------------------

    def start(
        self,
        work: Work,
        *,
        namespace: str,
        org_id: str,
        user: str,
        operation_name: str,
        operation: str = "",
        owner: Reference | None = None,
        details: str | None = None,
        description: str = "",
        event: str | None = None,
        event_properties: Mapping[str, str] | None = None,
    ) -> RunningTask:
        """Create the task in vCD (``queued``); its work runs once :meth:`launch` is called.

        :param user: the URN of the user the task belongs to (the caller).
        :raises ServiceUnavailable: no vCD configured, vCD unreachable, too many tasks, or
            shutting down.
        """
        vcd = self.vcd_api
        if self._closing.is_set():
            raise ServiceUnavailable("vcdext is stopping; start the task again later")
        with self._lock:  # a slot is held while vCD creates the task (starts race for it)
            if len(self._active) + self._starting >= self.max_tasks:
                raise ServiceUnavailable(
                    f"{len(self._active)} tasks are running already; try again later"
                )
            self._starting += 1
        try:
            return self._create(
                vcd,
                work,
                namespace=namespace,
                org_id=org_id,
                user=user,
                operation_name=operation_name,
                operation=operation,
                owner=owner,
                details=details,
                description=description,
                event=event,
                event_properties=event_properties,
            )
        finally:
            with self._lock:
                self._starting -= 1

    def _create(
        self,
        vcd: VcdApi,
        work: Work,
        *,
        namespace: str,
        org_id: str,
        user: str,
        operation_name: str,
        operation: str,
        owner: Reference | None,
        details: str | None,
        description: str,
        event: str | None,
        event_properties: Mapping[str, str] | None,
    ) -> RunningTask:
        user_ref = Reference(entity_href(vcd.base_url, user), media.USER, id=user) if user else None
        task = Task(
            status="queued",
            service_namespace=namespace,
            operation=operation,
            operation_name=operation_name,
            description=description,
            owner=owner,
            user=user_ref,
            organization=Reference(
                entity_href(vcd.base_url, f"urn:vcloud:org:{org_id}"),
                media.ORG,
                id=f"urn:vcloud:org:{org_id}",
            ),
            progress=0,
            details=details,
        )
        try:
            held = vcd.create_task(org_id, task)
        except (VcdExtError, OSError) as exc:
            if isinstance(exc, HTTPError):
                raise
            log.warning("creating a %s task in org %s failed: %s", operation_name, org_id, exc)
            raise ServiceUnavailable(f"vCD did not create the task: {exc}") from None
        running = RunningTask(
            self,
            held,
            work,
            org_id=org_id,
            event=event,
            event_properties=event_properties or {},
        )
        running._key = held.href or f"task-{next(self._ids)}"
        with self._lock:
            self._active[running._key] = running
        log.info("task %s (%s) created in org %s", running.id, operation_name, org_id)
        self.observer.task_state("queued")
        return running

    def launch(self, task: RunningTask) -> None:
        """Hand the task's work to the pool (in synchronous mode: queue it)."""
        if self._closing.is_set():
            self._end(
                task,
                "aborted",
                TaskError("vcdext stopped before the task started", 503, "SERVICE_UNAVAILABLE"),
            )
            return
        self._pending.put(task)
        if not self.synchronous:
            self._ensure_threads()

    def fail(self, task: RunningTask, message: str) -> None:
        """End a task whose work never ran (the request that started it failed)."""
        self._end(task, "error", TaskError(message))

    def post_event(
        self,
        *,
        namespace: str,
        org_id: str,
        user: str,
        type: str,
        success: bool = True,
        owner: Reference | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """``POST`` an event to the org's events, as belonging to ``user`` (a URN).

        :raises ServiceUnavailable: no vCD configured, or vCD did not take the event.
        """
        vcd = self.vcd_api
        event = Event(
            type=type,
            service_namespace=namespace,
            success=success,
            owner=owner,
            user=Reference(entity_href(vcd.base_url, user), media.USER, id=user),
            properties=tuple((properties or {}).items()),
        )
        try:
            vcd.post_event(org_id, event)
        except (VcdExtError, OSError) as exc:
            if isinstance(exc, HTTPError):
                raise
            raise ServiceUnavailable(f"vCD did not take the {type} event: {exc}") from None

    # -- running --------------------------------------------------------------------------

    def run_pending(self) -> list[RunningTask]:
        """Synchronous mode: run every queued work in this thread, in order, to its end."""
        ran: list[RunningTask] = []
        while True:
            try:
                task = self._pending.get_nowait()
            except queue.Empty:
                return ran
            if task is not None:
                self._run(task)
                ran.append(task)

    def _ensure_threads(self) -> None:
        with self._lock:
            if self._threads:
                return
            for n in range(self.workers):
                t = threading.Thread(target=self._worker, name=f"vcdext-task-{n + 1}", daemon=True)
                t.start()
                self._threads.append(t)
            monitor = threading.Thread(
                target=self._monitor, name="vcdext-task-monitor", daemon=True
            )
            monitor.start()
            self._threads.append(monitor)

    def _worker(self) -> None:
        while True:
            task = self._pending.get()
            if task is None:
                return
            try:
                self._run(task)
            except BaseException:  # never lose a worker thread
                log.exception("task %s: the runner failed", task.id)

    def _run(self, task: RunningTask) -> None:
        if not task._change(status="running"):
            return  # aborted while queued
        self.observer.task_state("running")
        self._flush(task, force=True)  # a status change is never held back
        try:
            result = task._work(task)
        except Cancelled:
            log.info("task %s canceled", task.id)
            self._end(task, "canceled", None)
        except HTTPError as exc:
            log.info("task %s failed: %s", task.id, exc.message)
            self._end(task, "error", TaskError(exc.message, exc.status, exc.minor_code))
        except BaseException as exc:  # SystemExit too: a task is never left running
            log.exception("task %s (%s) failed", task.id, task.task.operation_name)
            what = task.task.operation or task.task.operation_name
            message = f"{what} failed: {type(exc).__name__}: {exc}"
            self._end(task, "error", TaskError(message))
        else:
            details = result if isinstance(result, str) else None
            self._end(task, "success", None, details=details)

    def _end(
        self, task: RunningTask, status: str, error: TaskError | None, *, details: str | None = None
    ) -> None:
        changes: dict[str, object] = {"status": status, "end_time": now_xs(), "error": error}
        if status == "success":
            changes["progress"] = 100
        if details is not None:
            changes["details"] = details
        if not task._change(**changes):
            return  # ended already (aborted at shutdown, say)
        self.observer.task_state(status)
        try:
            self._send_final(task)
            if task.event:
                self._post_event(task, status)
        finally:  # whatever happened on the way to vCD, the task has ended here
            with self._lock:
                self._active.pop(task._key, None)
            task._done.set()
        log.info("task %s ended %s", task.id, status)

    def _send_final(self, task: RunningTask) -> None:
        # A few tries when stopping (vcdext run must exit), about 45 s of them otherwise.
        pacing = Backoff(
            initial=0.5, cap=10.0, jitter=0.2, retries=2 if self._closing.is_set() else 8
        )
        while not self._flush(task, force=True):
            delay = pacing.next_delay()
            if delay is None:
                log.error("task %s: vCD never accepted its final state (%s)", task.id, task.status)
                return
            pacing.wait(delay)

    def _post_event(self, task: RunningTask, status: str) -> None:
        assert task.event is not None
        state = task.task
        success = status == "success"
        event = Event(
            type=task.event if success else f"FAILED.{task.event}",
            service_namespace=state.service_namespace,
            success=success,
            owner=state.owner,
            user=state.user,
            properties=tuple(
                {
                    **task.event_properties,
                    "taskId": task.id,
                    "status": status,
                    **({"error": state.error.message} if state.error else {}),
                }.items()
            ),
        )
        try:
            self.vcd_api.post_event(task.org_id, event)
        except (VcdExtError, OSError) as exc:
            log.error("task %s: the %s event was not posted: %s", task.id, event.type, exc)

    # -- talking to vCD -------------------------------------------------------------------

    def _flush(self, task: RunningTask, *, force: bool = False) -> bool:
        """Send the task's latest state if it changed and is due; ``False`` if a send failed."""
        now = time.monotonic()
        with task._lock:
            s = task._state
            if s.version == s.sent:
                return True
            if not force and (now - s.last_put < self.update_interval or now < s.next_attempt):
                return True
        with task._io:
            with task._lock:
                snapshot, version = s.task, s.version
                if version == s.sent:
                    return True
            try:
                vcd_copy = self.vcd_api.update_task(task.href, snapshot)
            except (VcdExtError, OSError) as exc:
                with task._lock:
                    delay = s.backoff.next_delay() or 30.0
                    s.next_attempt = time.monotonic() + delay
                log.warning(
                    "task %s: vCD did not take the update (%s); retrying in %.1f s",
                    task.id,
                    exc,
                    delay,
                )
                return False
            with task._lock:
                s.sent = max(s.sent, version)
                s.last_put = s.last_read = time.monotonic()
                s.backoff.reset()
                s.next_attempt = 0.0
                if vcd_copy.value.cancel_requested:
                    self._cancel_seen(s)
            return True

    def _check_cancel(self, task: RunningTask) -> None:
        now = time.monotonic()
        with task._lock:
            s = task._state
            if s.final or s.cancel_requested or now - s.last_read < self.cancel_interval:
                return
            if now < s.next_attempt:
                return
            s.last_read = now
        try:
            vcd_copy = self.vcd_api.get_task(task.href)
        except (VcdExtError, OSError) as exc:
            log.debug("task %s: reading it from vCD failed: %s", task.id, exc)
            return
        if vcd_copy.value.cancel_requested:
            with task._lock:
                self._cancel_seen(task._state)
            log.info("task %s: cancel requested", task.id)

    @staticmethod
    def _cancel_seen(s: _State) -> None:
        """vCD says a user asked to cancel; later PUTs repeat it rather than clear it."""
        s.cancel_requested = True
        s.task = dataclasses.replace(s.task, cancel_requested=True)

    def poll(self) -> None:
        """One round of the monitor: send coalesced progress, read cancel requests."""
        for task in self.active():
            if task.status == "running":
                self._check_cancel(task)
            self._flush(task)

    def _monitor(self) -> None:
        tick = max(0.05, min(self.update_interval, self.cancel_interval) / 2)
        while not self._closing.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            try:
                self.poll()
            except Exception:  # the monitor must outlive any one failure
                log.exception("the task monitor failed; it goes on")

    # -- stopping -------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> list[RunningTask]:
        """Take no more tasks, wait up to ``timeout`` (default ``drain_timeout``) for running
        work, and end what is left ``aborted``; returns the aborted tasks."""
        self._closing.set()
        wait = self.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        for task in self.active():
            task.wait(max(0.0, deadline - time.monotonic()))
        aborted = [t for t in self.active() if not t.finished]
        for task in aborted:
            self._end(
                task,
                "aborted",
                TaskError(
                    f"vcdext stopped before the task finished (waited {wait:g} s)",
                    503,
                    "SERVICE_UNAVAILABLE",
                ),
            )
        for _ in self._threads:
            self._pending.put(None)
        self._wake.set()
        self._threads = []
        close = getattr(self.vcd, "close", None)
        if callable(close):  # log out of vCD
            close()
        return aborted
