"""Pacing for retry loops: exponential backoff with a cap and jitter, stop- and deadline-aware.

The one helper behind every loop that waits before trying again: the AMQP consumer and reply
publisher, the local cell's forwarder and the vCD client. It only computes delays and waits;
what to retry, and what to log, stays with the caller. (Not tenacity: its decorators own the
whole retry loop, while our loops interleave other work between attempts, such as sending
replies meanwhile or serving the stop flag, and need only the delay and a stoppable wait.)
::

    backoff = Backoff(initial=1.0, cap=15.0, jitter=0.2, stop=stopping)
    while True:
        try:
            conn = connect()
        except OSError as exc:
            delay = backoff.next_delay()
            if delay is None:          # stopped, out of retries or past the deadline
                raise
            log.warning("unreachable (%s); retrying in %.1f s", exc, delay)
            if not backoff.wait(delay):
                return                 # stop() was called meanwhile
            continue
        backoff.reset()                # a success starts the next outage at `initial` again
        ...

No threads and no I/O of its own: the clock, the random source and the sleep can be given,
so tests need no real time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class Backoff:
    """Delays that grow ``initial * factor**n`` up to ``cap``, each shortened by up to
    ``jitter`` (a fraction) at random so that many processes do not retry in lockstep.

    :param retries: how many delays to hand out before :meth:`next_delay` says stop
        (``None``: no limit).
    :param stop: an event that ends waiting at once; once set, there is no next delay.
    :param deadline: a :func:`time.monotonic` instant; a delay that would end past it is not
        handed out.
    :param sleep: how to wait without a stop event (default: :func:`time.sleep`, looked up at
        each call).
    """

    def __init__(
        self,
        *,
        initial: float = 1.0,
        cap: float = 15.0,
        factor: float = 2.0,
        jitter: float = 0.0,
        retries: int | None = None,
        stop: threading.Event | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if initial < 0 or cap < 0 or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("backoff needs initial >= 0, cap >= 0, factor >= 1, 0 <= jitter <= 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.retries = retries
        self.stop = stop
        self.deadline = deadline
        self._clock = clock
        self._rand = rand
        self._sleep = sleep
        self._handed_out = 0

    @property
    def attempt(self) -> int:
        """Delays handed out since the last :meth:`reset`."""
        return self._handed_out

    def reset(self) -> None:
        """After a success: the next failure waits ``initial`` again."""
        self._handed_out = 0

    def next_delay(self) -> float | None:
        """The pause before the next attempt, or ``None`` if there is to be none (the stop
        event is set, the retries are used up, or the pause would end past the deadline)."""
        if self.stop is not None and self.stop.is_set():
            return None
        if self.retries is not None and self._handed_out >= self.retries:
            return None
        try:
            nominal = min(self.cap, self.initial * self.factor**self._handed_out)
        except OverflowError:  # a long outage: factor**n is past any float, so past the cap
            nominal = self.cap
        delay = nominal * (1.0 - self.jitter * self._rand())
        if self.deadline is not None and self._clock() + delay > self.deadline:
            return None
        self._handed_out += 1
        return delay

    def wait(self, delay: float) -> bool:
        """Pause ``delay`` seconds; ``False`` if the stop event was set (then stop trying)."""
        if self.stop is not None:
            return not self.stop.wait(delay) if delay > 0 else not self.stop.is_set()
        if delay > 0:
            (self._sleep or time.sleep)(delay)
        return True
