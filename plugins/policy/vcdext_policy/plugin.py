"""The policy plugin: decides every ``vappDeploy`` that vCD blocks.

A deployment is refused (the blocked task is failed with a message saying why, and an event
explaining it is posted to the vApp's organization) when the vApp

* lacks one of the metadata keys ``required_metadata`` names, or
* has more VMs than its organization's quota in ``max_vms`` (org name → count);

otherwise it is resumed. Configuration::

    [plugins.policy]
    required_metadata = ["cost-centre"]
    max_vms = { acme = 4 }

Registration adds ``vappDeploy`` to vCD's blocking task operations and enables notifications
(``[notifications] manage_vcd``); the administrator's timeout and default action apply when
the service does not answer.

The messages are in ``[notifications] locale`` (a blocked task carries no locale of its user),
from the plugin's catalogs in ``vcdext_policy/locales`` (English, German, French).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vcdext import Registrar, Service, hookimpl
from vcdext.i18n import bundle_key
from vcdext.notifications import BlockingRequest, Decision, fail, resume
from vcdext.vcloud import media
from vcdext.vcloud.elements import v
from vcdext.vcloud.metadata import read_metadata
from vcdext.vcloud.model import Event, Reference

log = logging.getLogger(__name__)

NAMESPACE = "io.vcdext.policy"
#: The type of the event posted when a deployment is refused (vCD shows its bundle text).
REFUSED_EVENT = bundle_key(
    "io.vcdext.policy/deploy/refused", "Deployment of vApp {resourceName} refused by policy"
)
bundle_key("io.vcdext.policy", "Deployment Policy")  # the service's name in vCD (= NAMESPACE)

service = Service(
    "policy",
    namespace=NAMESPACE,
    vendor="vcdext",
    description="Refuses vApp deployments that lack required metadata or exceed an org quota",
)


def problems(request: BlockingRequest) -> list[str]:
    """What is wrong with the vApp the blocked deployment would deploy (empty: nothing), in
    the request's locale."""
    config: Mapping[str, Any] = request.config
    owner = request.task.task_owner
    if owner is None:
        return [request.gettext("the blocked task names no vApp")]
    found: list[str] = []
    required = [str(k) for k in config.get("required_metadata", [])]
    if required:
        metadata = request.vcd.read(f"{owner.href}/metadata", read_metadata)
        missing = [k for k in required if not metadata.get(k)]
        if missing:
            found.append(
                request.gettext(
                    "vApp {vapp} lacks the metadata {keys}",
                    vapp=owner.name,
                    keys=", ".join(missing),
                )
            )
    org = request.task.organization.name
    quotas: Mapping[str, Any] = config.get("max_vms", {})
    quota = next((q for name, q in quotas.items() if name.lower() == org.lower()), None)
    if quota is not None:
        vapp = request.vcd.get(owner.href)
        vms = len(vapp.findall(f"{v('Children')}/{v('Vm')}"))
        if vms > quota:
            found.append(
                request.ngettext(
                    "vApp {vapp} has {n} VM, over org {org}'s quota of {quota}",
                    "vApp {vapp} has {n} VMs, over org {org}'s quota of {quota}",
                    vms,
                    vapp=owner.name,
                    org=org,
                    quota=quota,
                )
            )
    return found


@service.blocking_task("vappDeploy")
def check_deploy(request: BlockingRequest) -> Decision:
    """Resume a deployment that follows the policy; fail one that does not, and say why."""
    found = problems(request)
    if not found:
        return resume(request.gettext("Deployment allowed by policy"))
    message = request.gettext("Deployment refused by policy: {problems}", problems="; ".join(found))
    _post_event(request, message)
    return fail(message)


def _post_event(request: BlockingRequest, message: str) -> None:
    """Post the refusal to the organization's events (``VcdClient.post_event``)."""
    task = request.task
    org_id = task.organization.href.rstrip("/").rsplit("/", 1)[-1]
    user = task.user or Reference(task.organization.href, media.ORG, task.organization.name)
    event = Event(
        type=REFUSED_EVENT,
        service_namespace=NAMESPACE,
        success=False,
        owner=task.task_owner,
        user=user,
        properties=(("message", message[:255]),),
    )
    try:
        request.vcd.post_event(org_id, event)
    except Exception as exc:  # the decision stands even if the event cannot be posted
        log.warning("policy: could not post the refusal event: %s", exc)


def check_config(config: Mapping[str, Any]) -> None:
    """:class:`ValueError` naming the key when ``[plugins.policy]`` is malformed (reported
    when the plugin loads, not at the first deployment)."""
    required = config.get("required_metadata", [])
    if not isinstance(required, list) or not all(isinstance(k, str) and k for k in required):
        raise ValueError("[plugins.policy] required_metadata must be a list of metadata keys")
    quotas = config.get("max_vms", {})
    if not isinstance(quotas, Mapping) or not all(
        isinstance(q, int) and not isinstance(q, bool) and q >= 0 for q in quotas.values()
    ):
        raise ValueError("[plugins.policy] max_vms must map org names to VM counts (0 or more)")


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    check_config(registrar.config)
    registrar.add_service(service)
