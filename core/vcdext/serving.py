"""Running a runtime: the AMQP server, registration with vCD once it is ready, signals.

Shared by ``vcdext run`` and ``vcdext dev``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from .runtime import Runtime
from .settings import Settings

log = logging.getLogger("vcdext")


def register_with_vcd(runtime: Runtime, settings: Settings) -> bool:
    """Reconcile the registration and teach the dispatcher the right ids vCD assigned.

    A vCD that cannot be reached or refuses a change is logged and ``False`` returned: the
    services it already knows keep being served. A bad ``[vcd]`` config raises
    :class:`~vcdext.errors.ConfigError`.
    """
    from .vcd import VcdError, register_services

    try:
        result = register_services(runtime, settings)
    except VcdError as exc:
        log.error("registration with vCD failed; serving what vCD already knows: %s", exc)
        return False
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    for warning in result.warnings:
        log.warning("registration: %s", warning)
    log.info("registration: %s", result.summary())
    return True


def serve(
    runtime: Runtime,
    *,
    amqp_url: str | None,
    register: bool,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Serve over AMQP until SIGTERM/SIGINT; register with vCD once the topology exists.

    ``on_ready`` is called once the server consumes (and registration, if any, is done).

    Returns the process exit code: 0 after a clean stop, 1 if the broker refused us.
    """
    from .transport.amqp import AmqpServer, TransportError

    if register and runtime.settings.vcd.url:
        from .vcd import VcdClient

        # An incomplete [vcd] section is a config error: report it before serving anything.
        VcdClient.from_settings(runtime.settings).close()
    server = AmqpServer(runtime, url=amqp_url)
    failure: list[TransportError] = []

    def run() -> None:
        try:
            server.run()
        except TransportError as exc:
            failure.append(exc)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; finishing in-flight requests", signal.Signals(signum).name)
        server.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=run, name="vcdext-consumer")
    runtime.start()
    try:
        thread.start()
        # vCD answers 500 for filters whose exchange does not exist yet, so register only
        # once the exchange and queues are declared.
        while not server.ready.wait(0.2) and thread.is_alive():
            pass
        if server.ready.is_set():
            if register:
                register_with_vcd(runtime, runtime.settings)
            if on_ready is not None:
                on_ready()
        while thread.is_alive():
            thread.join(0.5)
    finally:
        # Also on an exception above (say, in registration): never leave the consumer running.
        server.stop()
        thread.join(timeout=runtime.settings.runtime.timeout * 3 + 15)
        runtime.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failure:
        print(f"vcdext: error: {failure[0]}", file=sys.stderr)
        return 1
    return 0
