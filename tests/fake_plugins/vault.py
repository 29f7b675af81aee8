"""A plugin declaring a resource class (tests/authz)."""

from vcdext import Registrar, hookimpl
from tests.authz.test_resource_classes import vault

service = vault()


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    registrar.add_service(service)
