"""The cell's reading of an uploaded localization bundle: vCD's format, refused with a 400.

The format, its limits and its reader are :mod:`vcdext.vcloud.bundle`'s (the vCD client writes
bundles with the same module); the cell only turns what the reader refuses into the
``BadRequest`` vCD answers.
"""

from __future__ import annotations

from vcdext.errors import BadRequest
from vcdext.vcloud import bundle as _format


def read_bundle(data: bytes) -> dict[str, dict[str, str]]:
    """locale → key → value for every file of a bundle zip; raises :class:`BadRequest`."""
    try:
        return _format.read_bundle(data)
    except _format.BundleFormatError as exc:
        raise BadRequest(str(exc)) from None
