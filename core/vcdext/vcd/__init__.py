"""The vCloud Director REST client and the registration reconcile.

``vcdext run`` (and ``vcdext register``) call :func:`register_services`::

    result = register_services(runtime, settings)          # no-op without vcd.url
    runtime.dispatcher.learn_right_ids(result.right_aliases())

Modules: :mod:`.client` (versions, login, retries, errors), :mod:`.connection` (base URL,
secrets, failure reasons), :mod:`.versions` (choosing the API version), :mod:`.model` (desired
and actual state), :mod:`.plan` (the pure diff), :mod:`.observe` (reading vCD), :mod:`.apply`
(writing vCD), :mod:`.bundle` (localization zip), :mod:`.reconcile` (the whole run);
MQTT API extensions: :mod:`.extensions` (registering), :mod:`.extension_prune` (``--prune``,
unregister), :mod:`.tokens` (the token file). The
``register``/``unregister`` commands are in :mod:`vcdext.cli_register`. The XML in and out,
and the objects vCD holds, are :mod:`vcdext.vcloud`'s.
"""

from __future__ import annotations

from ..vcloud.versions import SUPPORTED_VERSIONS
from .bundle import LocalizationBundle, make_bundle
from .client import VcdClient
from .errors import VcdApiError, VcdConnectionError, VcdError, VcdLoginError, VcdVersionError
from .model import DesiredService, desired_service
from .plan import Plan, ServicePlan, plan_service
from .reconcile import (
    RegistrationResult,
    desired_services,
    reconcile,
    register_services,
    unregister_service,
)

__all__ = [
    "SUPPORTED_VERSIONS",
    "DesiredService",
    "LocalizationBundle",
    "Plan",
    "RegistrationResult",
    "ServicePlan",
    "VcdApiError",
    "VcdClient",
    "VcdConnectionError",
    "VcdError",
    "VcdLoginError",
    "VcdVersionError",
    "desired_service",
    "desired_services",
    "make_bundle",
    "plan_service",
    "reconcile",
    "register_services",
    "unregister_service",
]
