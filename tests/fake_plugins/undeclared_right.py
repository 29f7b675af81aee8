"""A plugin whose operation requires a short right name it never declares."""

from vcdext import Registrar, Request, hookimpl


def ws(request: Request) -> str:
    return "<Ws/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="nope", namespace="io.example.nope")
    registrar.add_operation("GET", "/api/nope", ws, rights=["Nope Right"])
