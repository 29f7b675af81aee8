"""vCloud API versions: the one list vcdext speaks, comparing versions, reading the version a
client asked for, and the ``SupportedVersions`` document of ``GET /api/versions``.

vcdext speaks every API from vCD 5.1 (the first with extension services) to vCD 10.5 (38.0).
39.0 (vCD 10.6) deprecates the AMQP ``AdminService`` API, so the vCD client does not choose it
unless ``vcd.api_version`` asks for it, and the local cell does not offer it.

Versions are compared as tuples of integers (:func:`version_key`), never as floats:
``5.10`` is newer than ``5.9``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from lxml import etree

from .media import VERSIONS_NS

#: API versions vcdext supports, oldest first (vCD 5.1, 5.5, 5.6, 5.7, 8.0, 8.10, 8.20,
#: 9.0, 9.1, 9.5, 9.7, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5). The local cell offers these.
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

_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")


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


def is_version(version: str) -> bool:
    """Whether ``version`` is dotted numbers (``36.0``)."""
    try:
        version_key(version)
    except ValueError:
        return False
    return True


def at_least(version: str, minimum: str) -> bool:
    """Whether ``version`` is ``minimum`` or newer (``False`` for a malformed ``version``)."""
    return is_version(version) and version_key(version) >= version_key(minimum)


def uses_cloudapi_login(version: str) -> bool:
    """Whether this version logs in through ``/cloudapi`` (Bearer token)."""
    return at_least(version, CLOUDAPI_LOGIN)


def supported(version: str, versions: Iterable[str] = SUPPORTED_VERSIONS) -> str | None:
    """The entry of ``versions`` equal to ``version`` (``36`` finds ``36.0``), else ``None``."""
    if not is_version(version):
        return None
    key = version_key(version)
    return next((v for v in versions if version_key(v) == key), None)


def accept_versions(accept: str) -> list[str]:
    """The ``version=`` parameters of an ``Accept`` header, in order.

    Any media range counts (``application/*+xml``, an exact vCD type, JSON); values that are
    not dotted numbers are ignored, so nothing else from the header is ever echoed back.
    """
    versions = []
    for media_range in accept.split(","):
        for param in media_range.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            value = value.strip().strip('"')
            if key.strip().lower() == "version" and _VERSION.fullmatch(value):
                versions.append(value)
    return versions


# -- SupportedVersions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerVersion:
    """One ``VersionInfo`` of ``GET /api/versions``."""

    version: str
    login_url: str
    deprecated: bool = False


def _ver(name: str) -> str:
    return f"{{{VERSIONS_NS}}}{name}"


def write_supported_versions(versions: Iterable[ServerVersion]) -> etree._Element:
    """``SupportedVersions`` (versions namespace) with one ``VersionInfo`` per version."""
    el = etree.Element(_ver("SupportedVersions"), nsmap=cast("dict[str, str]", {None: VERSIONS_NS}))
    for v in versions:
        info = etree.SubElement(
            el, _ver("VersionInfo"), deprecated="true" if v.deprecated else "false"
        )
        etree.SubElement(info, _ver("Version")).text = v.version
        etree.SubElement(info, _ver("LoginUrl")).text = v.login_url
    return el


def read_supported_versions(root: etree._Element) -> list[ServerVersion]:
    """The ``VersionInfo`` entries of a ``SupportedVersions`` document (unparsable ones skipped)."""
    found = []
    for info in root.iter(_ver("VersionInfo")):
        version = (info.findtext(_ver("Version")) or "").strip()
        login = (info.findtext(_ver("LoginUrl")) or "").strip()
        if is_version(version):
            found.append(ServerVersion(version, login, info.get("deprecated") == "true"))
    return found
