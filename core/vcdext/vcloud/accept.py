"""Content negotiation against an ``Accept`` header, the way vCD clients write it.

vCD clients send ``application/*+xml;version=36.0`` or ``application/*+json;version=36.0``: a
``*`` in the subtype before ``+xml``/``+json`` stands for any vCloud type of that family, and
also matches the plain ``application/xml``/``application/json``. ``version`` is an API version,
not a media-type parameter to match. ``q=`` orders the ranges as in RFC 9110; ``q=0`` refuses.
Pure: no I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class MediaRange:
    """One range of an ``Accept`` header: ``type/subtype``, its quality, its position."""

    type: str
    subtype: str
    quality: float = 1.0
    index: int = 0

    def matches(self, media_type: str) -> bool:
        """Whether ``media_type`` (``type/subtype``, parameters ignored) is in this range."""
        kind, _, sub = bare(media_type).partition("/")
        if self.type != "*" and self.type != kind:
            return False
        if self.subtype == "*":
            return True
        if self.subtype.startswith("*+"):  # vCD's application/*+xml, application/*+json
            suffix = self.subtype[2:]
            return sub == suffix or sub.endswith("+" + suffix)
        return self.subtype == sub

    @property
    def specificity(self) -> int:
        """2 for an exact type, 1 for ``type/*+suffix`` or ``type/*``, 0 for ``*/*``."""
        if self.type == "*":
            return 0
        return 1 if self.subtype.startswith("*") else 2

    @property
    def family(self) -> str:
        """``"json"`` or ``"xml"`` when the range names that family, else ``""``."""
        for fam in ("json", "xml"):
            if self.subtype == fam or self.subtype.endswith("+" + fam):
                return fam
        return ""


def bare(media_type: str) -> str:
    """A media type without parameters, lower-case."""
    return media_type.split(";", 1)[0].strip().lower()


def parse_accept(value: str) -> tuple[MediaRange, ...]:
    """The ranges of an ``Accept`` header, best first (quality, then order of appearance).

    Malformed ranges are skipped; an empty header gives ``()`` (the client accepts anything).
    """
    ranges: list[MediaRange] = []
    for index, part in enumerate(value.split(",")):
        media, *params = part.split(";")
        kind, slash, sub = bare(media).partition("/")
        if not slash or not kind or not sub:
            continue
        quality = 1.0
        for param in params:
            key, _, number = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(number), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append(MediaRange(kind, sub, quality, index))
    return tuple(sorted(ranges, key=lambda r: (-r.quality, r.index)))


def negotiate(accept: str, offered: tuple[str, ...] | list[str]) -> str | None:
    """The offered media type the client prefers, or ``None`` when it accepts none of them.

    An empty ``Accept`` takes the first offer. Among offers of equal quality the earlier one
    wins. An offer of ``*/*`` (the handler sets the type itself) is acceptable to every client
    but loses to any concrete offer the client accepts. Remembered per distinct ``Accept``
    and offer (clients send few distinct headers; the cache is bounded).
    """
    if len(accept) > _CACHED_HEADER:  # long headers are not kept: the cache stays small
        return _negotiate.__wrapped__(accept, tuple(offered))
    return _negotiate(accept, tuple(offered))


#: The longest header value the parse caches keep (vCD clients send short ones).
_CACHED_HEADER = 256


@functools.lru_cache(maxsize=512)
def _negotiate(accept: str, offered: tuple[str, ...]) -> str | None:
    if not offered:
        return None
    ranges = parse_accept(accept)
    if not ranges:
        return offered[0]
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for position, offer in enumerate(offered):
        if bare(offer) == "*/*":
            quality = 0.001  # acceptable to anyone, but any real match wins
        else:
            fitting = [r for r in ranges if r.matches(offer)]
            if not fitting:
                continue
            # The most specific fitting range sets the quality (RFC 9110, 12.5.1).
            top = max(fitting, key=lambda r: (r.specificity, -r.index))
            quality = top.quality
        if quality <= 0:
            continue
        key = (round(quality, 3), -position, 0)
        if best is None or key > best:
            best, chosen = key, offer
    return chosen


def preferred_family(accept: str) -> str:
    """``"json"`` when the client's most preferred range that names a family is JSON, else
    ``"xml"`` (errors use this: they are sent whatever the client accepts)."""
    for media_range in parse_accept(accept):
        if media_range.quality > 0 and media_range.family:
            return media_range.family
    return "xml"


__all__ = ["MediaRange", "bare", "negotiate", "parse_accept", "preferred_family"]
