"""The retry pacing helper: growth, cap, jitter, retries, deadline, stop event."""

import threading
import time

import pytest

from vcdext.retry import Backoff


def delays(backoff: Backoff, n: int) -> list[float | None]:
    return [backoff.next_delay() for _ in range(n)]


def test_delays_double_up_to_the_cap():
    assert delays(Backoff(initial=1.0, cap=15.0), 6) == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_reset_starts_again_at_initial():
    backoff = Backoff(initial=0.5, cap=10.0)
    assert delays(backoff, 3) == [0.5, 1.0, 2.0]
    assert backoff.attempt == 3
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_jitter_shortens_each_delay_by_up_to_its_fraction():
    low = Backoff(initial=4.0, cap=4.0, jitter=0.25, rand=lambda: 1.0)
    high = Backoff(initial=4.0, cap=4.0, jitter=0.25, rand=lambda: 0.0)
    assert low.next_delay() == 3.0
    assert high.next_delay() == 4.0
    spread = {Backoff(initial=4.0, jitter=0.25).next_delay() for _ in range(50)}
    assert len(spread) > 1
    assert all(3.0 <= d <= 4.0 for d in spread if d is not None)


def test_retries_bound_the_number_of_delays():
    assert delays(Backoff(initial=1.0, retries=2), 4) == [1.0, 2.0, None, None]
    assert Backoff(retries=0).next_delay() is None


def test_no_delay_ends_past_the_deadline():
    now = [100.0]
    backoff = Backoff(initial=1.0, cap=15.0, deadline=104.0, clock=lambda: now[0])
    assert backoff.next_delay() == 1.0
    now[0] = 101.0
    assert backoff.next_delay() == 2.0
    now[0] = 103.0
    assert backoff.next_delay() is None  # 4 s would end at 107


def test_a_set_stop_event_ends_the_wait_at_once_and_hands_out_no_more_delays():
    stop = threading.Event()
    backoff = Backoff(initial=30.0, stop=stop)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert backoff.wait(30.0) is False
    assert time.monotonic() - started < 20  # ended by the stop event, not the 30 s wait
    assert backoff.next_delay() is None


def test_wait_without_stop_event_sleeps_through_the_given_sleep():
    slept: list[float] = []
    backoff = Backoff(sleep=slept.append)
    assert backoff.wait(0.5) is True
    assert backoff.wait(0.0) is True
    assert slept == [0.5]


def test_a_full_wait_with_an_unset_stop_event_says_go_on():
    assert Backoff(stop=threading.Event()).wait(0.01) is True


@pytest.mark.parametrize(
    "options", [{"initial": -1}, {"cap": -1}, {"factor": 0.5}, {"jitter": 1.5}]
)
def test_nonsense_parameters_are_refused(options):
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**options)


def test_an_outage_of_any_length_keeps_handing_out_the_cap():
    # The AMQP consumer and reply publisher retry without a limit: at a 15 s cap, 1100
    # delays are under five hours of broker outage, and factor**n overflows a float at 1024.
    backoff = Backoff(initial=1.0, cap=15.0)
    assert delays(backoff, 1100)[-3:] == [15.0, 15.0, 15.0]
    assert backoff.attempt == 1100
