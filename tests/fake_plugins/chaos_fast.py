"""A service whose one operation answers at once; used by the chaos suite (tests/chaos)."""

from vcdext import Registrar, Request, hookimpl

NAMESPACE = "io.example.chaos-fast"


def fast(request: Request) -> str:
    return "<Fast/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="chaos-fast", namespace=NAMESPACE)
    registrar.add_operation("GET", "/api/chaos/fast", fast)
