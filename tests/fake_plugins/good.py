from vcdext import Registrar, hookimpl


def hello(request):
    return "<Good/>"


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.service(name="good", namespace="io.example.good")
    registrar.add_operation("GET", "/api/good", hello)
