"""Choosing the vCloud API version to talk to a vCD with (pure: no I/O).

The version list, comparison and the ``SupportedVersions`` document are vCloud vocabulary
(:mod:`vcdext.vcloud.versions`); this module holds only the client's choice among them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..vcloud.versions import MINIMUM, SUPPORTED_VERSIONS, is_version, version_key
from .errors import VcdVersionError

log = logging.getLogger(__name__)


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
    server = sorted({v for v in offered if is_version(v)}, key=version_key)
    minimum = version_key(MINIMUM)
    listing = ", ".join(server) or "none"
    if wanted:
        if not is_version(wanted):
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
