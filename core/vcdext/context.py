"""Per-request context, available to handlers and the code they call."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from .protocol import Request


@dataclass(frozen=True)
class RequestContext:
    """What vcdext knows about the request being handled."""

    request: Request
    #: Service (plugin) name the request was routed to.
    plugin: str
    #: Preferred locales from ``Accept-Language``, best first (never the process locale).
    locales: tuple[str, ...] = ()
    #: ``time.monotonic()`` after which vCD has given up waiting (its extensibility.timeout).
    deadline: float = field(default_factory=lambda: time.monotonic() + 10.0)

    @property
    def remaining(self) -> float:
        """Seconds left before vCD stops waiting for the reply (may be negative)."""
        return self.deadline - time.monotonic()


_current: ContextVar[RequestContext] = ContextVar("vcdext_request_context")


def current() -> RequestContext:
    """The context of the request being handled; raises :class:`RuntimeError` outside one."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("no vcdext request is being handled in this context") from None


def parse_accept_language(value: str) -> tuple[str, ...]:
    """Locale tags from an ``Accept-Language`` header, by descending quality."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag.replace("-", "_")))
    return tuple(tag for _, _, tag in sorted(weighted))
