"""A plugin with a handler that takes as long as the caller asks (for transport tests)."""

import time

from vcdext import Registrar, Request, hookimpl


def sleep(request: Request) -> str:
    seconds = float(request.query.get("s", ["0"])[0])
    time.sleep(seconds)
    return f"<Slept seconds='{seconds}'/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="slow", namespace="io.example.slow")
    registrar.add_operation("GET", "/api/slow", sleep)
