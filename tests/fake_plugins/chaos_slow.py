"""A service with a slow operation, an operation that creates something (and records every run
of its handler) and handlers that misbehave; used by the chaos suite (tests/chaos).

``CHAOS_RUNS`` (environment) names a file that gets one line ``<pid> <request id>`` per handler
run of ``create``, so a test can count runs across processes.
"""

from __future__ import annotations

import os
import time

from vcdext import Registrar, Request, hookimpl

NAMESPACE = "io.example.chaos-slow"


def sleep(request: Request) -> str:
    seconds = float(request.query.get("s", ["0"])[0])
    time.sleep(seconds)
    return f"<Slept seconds='{seconds}'/>"


def create(request: Request) -> str:
    runs = os.environ.get("CHAOS_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {request.id}\n")
    time.sleep(float(request.query.get("s", ["0"])[0]))
    return f"<Created request='{request.id}' at='{time.time()}'/>"


def leave(request: Request) -> str:
    # Not an Exception: escapes the dispatcher's handler guard and reaches the worker thread.
    raise SystemExit("a handler that exits")


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="chaos-slow", namespace=NAMESPACE)
    registrar.add_operation("GET", "/api/chaos/slow", sleep)
    registrar.add_operation("POST", "/api/chaos/create", create)
    registrar.add_operation("GET", "/api/chaos/exit", leave)
