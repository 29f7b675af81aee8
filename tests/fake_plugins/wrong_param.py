"""A plugin whose path parameter is not an argument of its handler."""

from vcdext import Registrar, Request, Service, hookimpl

service = Service("ws", namespace="io.example.ws")


@service.operation("GET", "/api/ws/{vm_id}")
def f(request: Request, vmid: str) -> str:
    return "<Ws/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.add_service(service)
