"""vCD tasks from handlers: the lifecycle the core owns (vcdext.tasks), through the test kit's
in-memory vCD (vcdext.testing.FakeVcd), in process."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from vcdext import NotFound, Request, Response, Service, current, hookimpl
from vcdext.errors import ServiceUnavailable
from vcdext.tasks import Cancelled, RunningTask, TaskRunner
from vcdext.testing import FakeVcd, TestClient, make_runtime, use_vcd
from vcdext.testing.client import DEFAULT_ORG, DEFAULT_USER
from vcdext.vcloud.model import Held, Reference, Task
from vcdext.vcloud.task import read_task
from vcdext.xml import parse

TASK_TYPE = "application/vnd.vmware.vcloud.task+xml"
ORG_ID = DEFAULT_ORG.rsplit(":", 1)[-1]

service = Service("jobs", namespace="io.example.jobs")
#: Lets a test hold a job's work until it says so.
gate = threading.Event()


def job(request: Request) -> object:
    """The work of /api/jobs, shaped by the query: steps, fail, http, wait, poll."""
    query = {k: v[0] for k, v in request.query.items()}
    steps = int(query.get("steps", "3"))

    def work(task: RunningTask) -> str:
        for i in range(steps):
            task.progress((i + 1) * 100 // (steps + 1), details=f"step {i + 1}")
        if "wait" in query:
            while not gate.wait(0.02):
                if "poll" in query and task.cancel_requested:
                    raise Cancelled("asked to stop")
                task.progress(50)
        if "fail" in query:
            raise RuntimeError("the disk is full")
        if "http" in query:
            raise NotFound("The thing went away")
        if "exit" in query:
            raise SystemExit(3)
        return f"{steps} steps done"

    return work


@service.operation("POST", "/api/jobs", produces=[TASK_TYPE])
def start_job(request: Request) -> RunningTask:
    owner = Reference("https://vcd.test/api/org/x", "application/vnd.vmware.vcloud.org+xml", "x")
    task = current().start_task(
        job(request),
        operation_name="runJob",
        operation="Running a job",
        owner=owner,
        details="waiting for a worker",
        event="jobComplete",
        event_properties={"job": "1"},
    )
    if "after" in request.query:
        raise RuntimeError("the handler failed after starting the task")
    if "broken" in request.query:  # a handler bug: a Response vcdext cannot send
        return Response(b"", status=1000)  # type: ignore[return-value]
    return task


@service.operation("POST", "/api/jobs/event")
def announce(request: Request) -> None:
    current().post_event(type="jobAnnounced", success=True, properties={"by": "test"})


@hookimpl
def vcdext_register(registrar):
    registrar.add_service(service)


class Jobs:
    vcdext_register = staticmethod(vcdext_register)


@pytest.fixture(autouse=True)
def _open_gate():
    gate.clear()
    yield
    gate.set()


@pytest.fixture
def vcd() -> FakeVcd:
    return FakeVcd()


@pytest.fixture
def client(vcd: FakeVcd) -> TestClient:
    return TestClient(make_runtime(jobs=Jobs(), vcd=vcd))


def validate_all(vcd: FakeVcd, task_id: str, assert_valid_vcd_xml) -> None:
    for document in vcd.documents(task_id) + vcd.event_documents():
        assert_valid_vcd_xml(document)


def test_the_reply_is_202_with_the_task_and_the_work_runs_after(client, vcd, assert_valid_vcd_xml):
    reply = client.post("/api/jobs")
    assert reply.status == 202
    assert reply.content_type == TASK_TYPE
    assert_valid_vcd_xml(reply.body)
    created = read_task(reply.body).value
    assert created.status == "queued"
    assert created.service_namespace == "io.example.jobs"
    assert created.operation_name == "runJob"
    assert created.user is not None and created.user.id == DEFAULT_USER
    assert vcd.calls == [f"POST /api/tasksList/{ORG_ID}"], "the work ran before the reply"

    (run,) = client.run_tasks()
    assert run.statuses == ["queued", "running", "running", "running", "running", "success"]
    assert [s.progress for s in run.states] == [0, 0, 25, 50, 75, 100]
    assert [s.details for s in run.states][2:] == ["step 1", "step 2", "step 3", "3 steps done"]
    assert run.final.end_time and run.final.error is None
    (event,) = run.events
    assert (event.type, event.success) == ("jobComplete", True)
    assert dict(event.properties) == {"job": "1", "taskId": run.id, "status": "success"}
    assert event.user is not None and event.user.id == DEFAULT_USER
    validate_all(vcd, run.id, assert_valid_vcd_xml)


def test_an_exception_in_the_work_ends_the_task_in_error(client, vcd, assert_valid_vcd_xml):
    assert client.post("/api/jobs", query={"fail": "1"}).status == 202
    (run,) = client.run_tasks()
    assert run.final.status == "error"
    assert run.final.error is not None
    assert "the disk is full" in run.final.error.message
    assert "Running a job failed" in run.final.error.message
    assert run.final.error.major == 500
    (event,) = run.events
    assert (event.type, event.success) == ("FAILED.jobComplete", False)
    assert dict(event.properties)["status"] == "error"
    validate_all(vcd, run.id, assert_valid_vcd_xml)


def test_an_http_error_in_the_work_keeps_its_code(client):
    client.post("/api/jobs", query={"http": "1"})
    (run,) = client.run_tasks()
    assert run.final.error is not None
    assert (run.final.error.major, run.final.error.minor) == (404, "RESOURCE_NOT_FOUND")
    assert run.final.error.message == "The thing went away"


def test_even_system_exit_in_the_work_ends_the_task_in_error(client):
    client.post("/api/jobs", query={"exit": "1"})
    (run,) = client.run_tasks()
    assert run.final.status == "error"
    assert run.final.error is not None and "SystemExit" in run.final.error.message


def test_once_canceled_later_updates_do_not_clear_the_request(client, vcd):
    reply = client.post("/api/jobs", query={"steps": "2"})
    vcd.request_cancel(task_id(reply))
    (run,) = client.run_tasks()
    # The "running" update is the first answer that tells the runner; every later one
    # repeats the request instead of clearing it.
    assert run.statuses == ["queued", "running", "canceled"]
    assert [s.cancel_requested for s in run.states] == [False, False, True]


def test_a_cancel_request_ends_the_task_canceled(client, vcd, assert_valid_vcd_xml):
    reply = client.post("/api/jobs", query={"steps": "5"})
    vcd.request_cancel(read_task(reply.body).value and reply.xml().get("id").rsplit(":", 1)[-1])
    (run,) = client.run_tasks()
    assert run.final.status == "canceled"
    assert "success" not in run.statuses
    assert run.events[0].type == "FAILED.jobComplete"
    validate_all(vcd, run.id, assert_valid_vcd_xml)


def test_without_vcd_url_starting_a_task_is_a_503_naming_the_setting():
    client = TestClient(make_runtime(jobs=Jobs()))
    started = time.monotonic()
    reply = client.post("/api/jobs")
    assert time.monotonic() - started < 10  # refused at once, not after a 30 s vCD call timeout
    assert reply.status == 503
    assert "vcd.url" in reply.xml().get("message")
    assert client.post("/api/jobs/event").status == 503


def test_vcd_unreachable_at_creation_is_a_503_and_no_task(client, vcd):
    vcd.unavailable(1)
    reply = client.post("/api/jobs")
    assert reply.status == 503
    assert "vCD did not create the task" in reply.xml().get("message")
    assert vcd.task_ids() == []


def test_a_handler_failing_after_starting_a_task_ends_it_in_error_unrun(client, vcd):
    reply = client.post("/api/jobs", query={"after": "1"})
    assert reply.status == 500
    (task_id,) = vcd.task_ids()
    assert [s.status for s in vcd.states(task_id)] == ["queued", "error"]
    assert client.run_tasks() == []


def test_a_handler_returning_a_broken_reply_after_starting_a_task_ends_it_unrun(client, vcd):
    reply = client.post("/api/jobs", query={"broken": "1"})
    assert reply.status == 500
    (task_id,) = vcd.task_ids()
    assert [s.status for s in vcd.states(task_id)] == ["queued", "error"]
    assert client.run_tasks() == []


def test_post_event_from_a_handler(client, vcd, assert_valid_vcd_xml):
    assert client.post("/api/jobs/event").status == 204
    ((org, event),) = vcd.posted
    assert org == ORG_ID
    assert (event.type, event.service_namespace) == ("jobAnnounced", "io.example.jobs")
    assert event.user is not None and event.user.href.endswith(DEFAULT_USER.rsplit(":", 1)[-1])
    assert_valid_vcd_xml(vcd.event_documents()[0])


# -- the threaded runner: coalescing, retries, cancel polling, bounded pool, shutdown --------


def threaded(vcd: FakeVcd, **options: float) -> TestClient:
    runtime = make_runtime(jobs=Jobs())
    use_vcd(runtime, vcd, synchronous=False)
    for name, value in options.items():
        setattr(runtime.tasks, name, value)
    return TestClient(runtime)


def task_id(reply) -> str:
    return reply.xml().get("id").rsplit(":", 1)[-1]


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def puts(vcd: FakeVcd, tid: str) -> int:
    return sum(1 for c in vcd.calls if c == f"PUT /api/task/{tid}")


def test_progress_is_coalesced_and_the_latest_state_still_arrives(vcd):
    client = threaded(vcd, update_interval=0.3, cancel_interval=60)
    started = time.monotonic()
    reply = client.post("/api/jobs", query={"steps": "400", "wait": "1"})
    tid = task_id(reply)
    time.sleep(1.0)  # 400 progress calls, then progress(50) every 20 ms
    sent = puts(vcd, tid)
    # The bound follows the time that really passed (a loaded machine oversleeps): one PUT
    # per 0.3 s, plus the forced "running" one and slack, against ~450 uncoalesced.
    assert sent <= (time.monotonic() - started) / 0.3 + 3
    wait_for(lambda: vcd.states(tid)[-1].progress == 50)
    gate.set()
    runtime_task = client.runtime.tasks.active()
    for t in runtime_task:
        assert t.wait(10)
    assert vcd.states(tid)[-1].status == "success"


def test_updates_are_retried_with_backoff_while_vcd_is_unavailable(vcd):
    client = threaded(vcd, update_interval=0.0, cancel_interval=60)
    reply = client.post("/api/jobs", query={"steps": "1", "wait": "1"})
    tid = task_id(reply)
    wait_for(lambda: vcd.states(tid)[-1].progress == 50)
    vcd.unavailable(3)
    gate.set()
    wait_for(lambda: vcd.states(tid)[-1].finished)
    assert vcd.states(tid)[-1].status == "success"
    assert vcd.states(tid)[-1].progress == 100


def test_cancel_requested_is_watched_at_a_bounded_rate(vcd):
    client = threaded(vcd, update_interval=60, cancel_interval=0.2)
    started = time.monotonic()
    reply = client.post("/api/jobs", query={"steps": "0", "wait": "1", "poll": "1"})
    tid = task_id(reply)

    def reads() -> int:
        return sum(1 for c in vcd.calls if c == f"GET /api/task/{tid}")

    wait_for(lambda: vcd.states(tid)[-1].status == "running")
    wait_for(lambda: reads() >= 1)  # it is watched...
    time.sleep(1.0)
    # ...at most once per 0.2 s of the time that really passed (the "running" PUT counts as
    # a read), against one read per progress call (every 20 ms) unbounded.
    assert reads() <= (time.monotonic() - started) / 0.2 + 2
    vcd.request_cancel(tid)
    wait_for(lambda: vcd.states(tid)[-1].finished)
    assert vcd.states(tid)[-1].status == "canceled"


def test_the_pool_is_bounded(vcd):
    client = threaded(vcd, workers=2, update_interval=0.0)
    before = threading.active_count()
    ids = [task_id(client.post("/api/jobs", query={"wait": "1"})) for _ in range(5)]
    wait_for(lambda: sum(vcd.states(t)[-1].status == "running" for t in ids) == 2)
    time.sleep(0.2)
    assert sum(vcd.states(t)[-1].status == "queued" for t in ids) == 3
    assert threading.active_count() - before <= 3  # two workers and the monitor
    gate.set()
    wait_for(lambda: all(vcd.states(t)[-1].status == "success" for t in ids))


def test_too_many_tasks_are_refused(vcd):
    client = threaded(vcd, max_tasks=1)
    assert client.post("/api/jobs", query={"wait": "1"}).status == 202
    refused = client.post("/api/jobs", query={"wait": "1"})
    assert refused.status == 503
    assert "tasks are running" in refused.xml().get("message")


def test_shutdown_aborts_tasks_still_running_after_the_drain(vcd, assert_valid_vcd_xml):
    client = threaded(vcd, update_interval=0.0)
    running = task_id(client.post("/api/jobs", query={"wait": "1"}))
    wait_for(lambda: vcd.states(running)[-1].status == "running")
    aborted = client.runtime.tasks.shutdown(timeout=0.2)
    assert [t.id for t in aborted] == [running]
    final = vcd.states(running)[-1]
    assert final.status == "aborted"
    assert final.error is not None and "stopped before the task finished" in final.error.message
    assert vcd.events_of(running)[0].type == "FAILED.jobComplete"
    validate_all(vcd, running, assert_valid_vcd_xml)
    assert client.post("/api/jobs").status == 503  # no new tasks once stopping
    gate.set()
    time.sleep(0.1)
    assert vcd.states(running)[-1].status == "aborted"  # the late work changes nothing


def test_shutdown_waits_for_work_that_ends_within_the_drain(vcd):
    client = threaded(vcd, update_interval=0.0)
    tid = task_id(client.post("/api/jobs", query={"steps": "2"}))
    assert client.runtime.tasks.shutdown(timeout=30) == []
    assert vcd.states(tid)[-1].status == "success"


def test_a_runner_without_vcd_names_the_setting():
    runner = TaskRunner(None)
    with pytest.raises(ServiceUnavailable, match=r"vcd\.url"):
        runner.start(lambda t: None, namespace="a.b", org_id="o", user="", operation_name="x")


def test_task_state_is_a_plain_vcloud_task():
    vcd = FakeVcd()
    runner = TaskRunner(vcd, synchronous=True, update_interval=0)
    task = runner.start(
        lambda t: t.progress(30) or None,
        namespace="a.b",
        org_id="o",
        user="urn:vcloud:user:u",
        operation_name="x",
    )
    runner.launch(task)
    runner.run_pending()
    assert isinstance(task.task, Task)
    assert task.status == "success"
    assert parse(task.response().body_bytes).get("status") == "queued"


def test_vcdext_run_aborts_tasks_still_running_after_the_drain(monkeypatch, caplog):
    import os
    import signal

    from vcdext import app
    from vcdext.settings import PluginsSettings, RuntimeSettings, Settings

    vcd = FakeVcd()
    started: list[str] = []
    monkeypatch.setattr(app, "load_plugins", _with_jobs(app.load_plugins), raising=True)

    def ready(runtime: app.Runtime) -> None:
        use_vcd(runtime, vcd, synchronous=False)
        reply = TestClient(runtime).post("/api/jobs", query={"wait": "1"})
        started.append(task_id(reply))
        wait_for(lambda: vcd.states(started[0])[-1].status == "running")
        os.kill(os.getpid(), signal.SIGTERM)

    settings = Settings(plugins=PluginsSettings(enabled=()), runtime=RuntimeSettings(timeout=0.2))
    assert app.run(settings, amqp_url="memory://", register=False, on_ready=ready) == 0
    final = vcd.states(started[0])[-1]
    assert final.status == "aborted"
    assert final.error is not None and "waited 0.6 s" in final.error.message
    assert any("aborted" in r.getMessage() for r in caplog.records)


def _with_jobs(load):
    def load_plugins(settings, *, plugins=(), autoload=True):
        return load(settings, plugins=[*plugins, ("jobs", Jobs())], autoload=autoload)

    return load_plugins


def test_max_tasks_holds_for_starts_at_the_same_time():
    """Two starts racing for the last slot: vCD's slow POST must not let both in."""
    both_in_create = threading.Barrier(2, timeout=2)

    class SlowVcd(FakeVcd):
        def create_task(self, org_id: str, task: Task):  # type: ignore[no-untyped-def]
            with contextlib.suppress(threading.BrokenBarrierError):
                both_in_create.wait()  # only passes if both starts reached vCD
            return super().create_task(org_id, task)

    vcd = SlowVcd()
    runner = TaskRunner(vcd, synchronous=True, max_tasks=1)
    outcomes: list[str] = []

    def start() -> None:
        try:
            runner.start(lambda t: None, namespace="a.b", org_id="o", user="", operation_name="x")
            outcomes.append("started")
        except ServiceUnavailable:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes) == ["refused", "started"]
    assert len(vcd.task_ids()) == 1


def test_text_xml_cannot_hold_still_ends_the_task(assert_valid_vcd_xml):
    """Details and an error message with control characters (a work's return value, an
    exception quoting raw data) must not stop the task's end from reaching vCD."""
    from vcdext.vcloud.task import write_event, write_task

    class SerializingVcd(FakeVcd):  # sends documents as the real client does
        def update_task(self, href: str, task: Task):  # type: ignore[no-untyped-def]
            write_task(Held(task, href=href))
            return super().update_task(href, task)

        def post_event(self, org_id: str, event):  # type: ignore[no-untyped-def]
            write_event(event)
            return super().post_event(org_id, event)

    vcd = SerializingVcd()
    runner = TaskRunner(vcd, synchronous=True, update_interval=0)

    def ok(task: RunningTask) -> str:
        task.progress(50, details="reading \x00 raw")
        return "done \x07"

    def bad(task: RunningTask) -> str:
        raise RuntimeError("the device said \x1b[31m no")

    for work in (ok, bad):
        started = runner.start(
            work, namespace="a.b", org_id="o", user="", operation_name="x", event="done"
        )
        runner.launch(started)
        runner.run_pending()
        assert started.wait(5), "the task was left running"
        assert vcd.states(started.id)[-1].finished
        assert runner.active() == []
        for document in vcd.documents(started.id):
            assert_valid_vcd_xml(document)
    assert [e.type for _, e in vcd.posted] == ["done", "FAILED.done"]
