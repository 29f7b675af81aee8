"""A plugin declaring a resource class (tests/authz)."""

from tests.authz.test_resource_classes import vault
from vcdext import Registrar, hookimpl

service = vault()


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.add_service(service)
