"""A plugin with a handler that takes as long as the caller asks (for transport tests)."""

import threading
import time

from vcdext import Registrar, Request, hookimpl


def sleep(request: Request) -> str:
    seconds = float(request.query.get("s", ["0"])[0])
    time.sleep(seconds)
    return f"<Slept seconds='{seconds}'/>"


def thread(request: Request) -> str:
    """The name of the thread that runs the handler (inline or a worker)."""
    return f"<Thread name='{threading.current_thread().name}'/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="slow", namespace="io.example.slow")
    registrar.add_operation("GET", "/api/slow", sleep)
    registrar.add_operation("GET", "/api/slow/thread", thread, name="thread")
    registrar.add_operation("GET", "/api/slow/thread/inline", thread, name="inline", inline=True)
