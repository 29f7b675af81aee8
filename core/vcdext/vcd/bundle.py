"""The localization bundle the vCD client uploads, with the digest the reconcile keeps.

A plugin's messages arrive as ``{locale: {key: value}}`` (``{"en_US": {"backupInProgress":
"Backing up {resourceName}"}}``). :func:`make_bundle` turns them into the zip vCD takes (the
format, its limits and its writer are :mod:`vcdext.vcloud.bundle`'s), and a digest of the
files' content (sorted keys, sorted locales), so the digest changes only when a message does.
The reconcile keeps the digest in the service's description and uploads again only when it
differs (see :mod:`vcdext.vcd.model`): vCD offers no way to read a bundle back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..vcloud.bundle import locale_files, normalize_locale, write_bundle

#: Characters of the digest kept in the service description (64 bits).
DIGEST_LENGTH = 16


@dataclass(frozen=True)
class LocalizationBundle:
    """The zip to upload and its digest. Build it with :func:`make_bundle`."""

    data: bytes = field(repr=False)
    #: The first :data:`DIGEST_LENGTH` hex digits of the SHA-256 of the locale files.
    digest: str
    locales: tuple[str, ...]
    messages: Mapping[str, Mapping[str, str]] = field(repr=False, compare=False)


def make_bundle(messages: Mapping[str, Mapping[str, str]]) -> LocalizationBundle:
    """Build the reproducible zip for ``{locale: {key: value}}``.

    :raises ValueError: a bad locale code, key or value (the message names it); it is a
        :class:`vcdext.vcloud.bundle.BundleFormatError`.
    """
    files = locale_files(messages)
    normalized = {
        normalize_locale(locale): MappingProxyType(dict(entries))
        for locale, entries in messages.items()
    }
    # The digest covers the files, not the zip, so a different zlib cannot change it.
    content = hashlib.sha256()
    for code in sorted(files):
        content.update(f"{code}\0{len(files[code])}\0".encode())
        content.update(files[code])
    digest = content.hexdigest()[:DIGEST_LENGTH]
    return LocalizationBundle(
        write_bundle(files), digest, tuple(sorted(files)), MappingProxyType(normalized)
    )
