"""``vcdext run --check``'s look at the broker: log in, look for the topology, change nothing.

Only passive declarations are made: an exchange or queue that does not exist yet is reported
(``vcdext run`` declares it), never created, and nothing is consumed or published.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from amqp.exceptions import AccessRefused
from kombu.connection import Connection

from ..settings import AmqpSettings, mask_secret
from .amqp import TransportError


def check_broker(
    settings: AmqpSettings, queues: Iterable[str], *, timeout: float = 10.0
) -> list[str]:
    """What the broker of ``settings`` holds of vcdext's topology, one line per part.

    :raises TransportError: the broker cannot be reached or refuses the login.
    """
    url = mask_secret(settings.url)
    conn = Connection(settings.url, connect_timeout=timeout)
    try:
        try:
            conn.connect()
        except AccessRefused as exc:
            raise TransportError(f"the broker at {url} refused the login: {exc}") from None
        except (*conn.connection_errors, OSError) as exc:
            raise TransportError(f"the broker at {url} cannot be reached: {exc}") from None
        lines = [f"broker {url}: logged in"]
        lines.append(_passive(conn, "exchange", settings.exchange))
        lines += [_passive(conn, "queue", name) for name in queues]
        return lines
    finally:
        conn.release()


def _passive(conn: Connection, kind: str, name: str) -> str:
    channel = conn.channel()
    try:
        if kind == "exchange":
            channel.exchange_declare(name, "direct", passive=True)
            return f"exchange {name!r}: exists"
        _, waiting, consumers = channel.queue_declare(name, passive=True)
        return f"queue {name!r}: exists, {waiting} waiting, {consumers} consumer(s)"
    except conn.channel_errors:  # 404: the broker closed this channel, the connection lives
        return f"{kind} {name!r}: does not exist yet (vcdext run declares it)"
    finally:
        with contextlib.suppress(Exception):  # already closed by the broker's refusal
            channel.close()
