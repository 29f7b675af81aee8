"""vCloud API version negotiation (pure: no I/O).

vcdext speaks the versions in :data:`SUPPORTED_VERSIONS`: every API from vCD 5.1 (the first
with extension services) to vCD 10.5 (38.0). 39.0 (vCD 10.6) deprecates the AMQP
``AdminService`` API, so it is not chosen unless ``vcd.api_version`` asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from .errors import VcdVersionError
from .media import VERSIONS_NS

log = logging.getLogger(__name__)

#: API versions vcdext supports, oldest first (vCD 5.1, 5.5, 5.6, 5.7, 8.0, 8.10, 8.20,
#: 9.0, 9.1, 9.5, 9.7, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5).
SUPPORTED_VERSIONS: tuple[str, ...] = (
    "5.1",
    "5.5",
    "5.6",
    "5.7",
    "9.0",
    "20.0",
    "27.0",
    "29.0",
    "30.0",
    "31.0",
    "32.0",
    "33.0",
    "34.0",
    "35.0",
    "36.0",
    "37.0",
    "38.0",
)
#: The oldest API with extension services.
MINIMUM = "5.1"
#: From this version on, log in through ``/cloudapi/1.0.0/sessions`` with a Bearer token.
CLOUDAPI_LOGIN = "33.0"


def version_key(version: str) -> tuple[int, ...]:
    """``"5.10"`` → ``(5, 10)``, ``"36"`` and ``"36.0.0"`` → ``(36, 0)``.

    :raises ValueError: anything but dotted numbers.
    """
    parts = version.strip().split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"not a vCloud API version: {version!r}")
    key = [int(p) for p in parts]
    while len(key) > 2 and key[-1] == 0:
        key.pop()
    while len(key) < 2:
        key.append(0)
    return tuple(key)


def _valid(version: str) -> bool:
    try:
        version_key(version)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ServerVersion:
    """One ``VersionInfo`` of ``GET /api/versions``."""

    version: str
    login_url: str
    deprecated: bool = False


def parse_supported_versions(root: etree._Element) -> list[ServerVersion]:
    """The ``VersionInfo`` entries of a ``SupportedVersions`` document (unparsable ones skipped)."""
    found = []
    for info in root.iter(f"{{{VERSIONS_NS}}}VersionInfo"):
        version = (info.findtext(f"{{{VERSIONS_NS}}}Version") or "").strip()
        login = (info.findtext(f"{{{VERSIONS_NS}}}LoginUrl") or "").strip()
        if _valid(version):
            found.append(ServerVersion(version, login, info.get("deprecated") == "true"))
    return found


def negotiate(
    offered: Iterable[str],
    *,
    wanted: str = "",
    supported: Iterable[str] = SUPPORTED_VERSIONS,
    url: str = "vCD",
) -> str:
    """The API version to use: ``wanted`` if the server offers it, else the highest common one.

    :raises VcdVersionError: ``wanted`` is not offered, the server offers nothing from 5.1 on,
        or there is no common version.
    """
    server = sorted({v for v in offered if _valid(v)}, key=version_key)
    minimum = version_key(MINIMUM)
    listing = ", ".join(server) or "none"
    if wanted:
        if not _valid(wanted):
            raise VcdVersionError(f"vcd.api_version {wanted!r} is not a version like 36.0")
        match = next((v for v in server if version_key(v) == version_key(wanted)), None)
        if match is None:
            raise VcdVersionError(
                f"{url} does not offer vCloud API {wanted} (vcd.api_version); it offers {listing}"
            )
        if version_key(match) < minimum:
            raise VcdVersionError(
                f"vcd.api_version {wanted} is older than {MINIMUM}, the first with extensions"
            )
        if match not in supported:
            log.warning("vCloud API %s is not among those vcdext is tested with", match)
        return match
    if not server or version_key(server[-1]) < minimum:
        raise VcdVersionError(
            f"{url} offers vCloud API {listing}; vcdext needs {MINIMUM} or later "
            "(vCloud Director 5.1+)"
        )
    ours = {version_key(v) for v in supported}
    common = [v for v in server if version_key(v) in ours]
    if not common:
        ours_text = ", ".join(sorted(supported, key=version_key))
        raise VcdVersionError(
            f"no vCloud API version in common with {url}: it offers {listing}, vcdext supports "
            f"{ours_text} (set vcd.api_version to force one)"
        )
    return common[-1]


def uses_cloudapi_login(version: str) -> bool:
    """Whether this version logs in through ``/cloudapi`` (Bearer token)."""
    return version_key(version) >= version_key(CLOUDAPI_LOGIN)
