"""The worker pool and the cache of recent replies, without a broker."""

from __future__ import annotations

import threading
import time

from vcdext.transport.amqp import _RecentReplies, _Workers


def wait_until(condition, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a loaded machine
    may take its time to schedule a pool thread, so no fixed sleep stands in for this)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_nothing_a_job_raises_ends_a_thread():
    pool = _Workers(1, ["a"])
    done = threading.Event()

    def explode() -> None:
        raise SystemExit("gone")

    def recurse() -> None:
        raise RecursionError

    pool.submit("a", explode)
    pool.submit("a", recurse)
    pool.submit("a", done.set)
    assert done.wait(5), "the only thread died"
    pool.shutdown()


def test_a_busy_service_leaves_one_thread_to_each_other_service():
    pool = _Workers(3, ["slow", "fast", "other"])
    release = threading.Event()
    started: list[str] = []
    for _ in range(5):
        pool.submit("slow", lambda: (started.append("slow"), release.wait(30)))
    wait_until(lambda: started.count("slow") >= 1)
    time.sleep(0.3)  # time for more to start, were the reserve not kept
    assert started.count("slow") == 1  # two threads kept for "fast" and "other"
    fast, other = threading.Event(), threading.Event()
    pool.submit("fast", fast.set)
    pool.submit("other", other.set)
    assert fast.wait(20) and other.wait(20)
    time.sleep(0.2)
    assert started.count("slow") == 1  # the reserve stays while the others are idle
    release.set()
    pool.shutdown()


def test_one_service_may_use_every_thread():
    pool = _Workers(4, ["only"])
    barrier = threading.Barrier(4, timeout=20)
    passed: list[bool] = []
    for _ in range(4):
        pool.submit("only", lambda: passed.append(barrier.wait() >= 0))
    wait_until(lambda: len(passed) == 4, timeout=30)
    assert passed == [True] * 4
    pool.shutdown()


def test_the_fewest_running_service_goes_first():
    pool = _Workers(2, ["a", "b"])
    gate = threading.Event()
    order: list[str] = []
    pool.submit("a", lambda: gate.wait(30))  # holds one thread; the other is b's reserve
    wait_until(lambda: pool.counts() == (1, 0))
    pool.submit("a", lambda: order.append("a"))
    pool.submit("b", lambda: order.append("b"))
    # b runs on its reserve thread while a's second request waits for a's busy thread.
    wait_until(lambda: order == ["b"])
    time.sleep(0.3)
    assert order == ["b"]
    gate.set()
    wait_until(lambda: len(order) == 2)
    assert order == ["b", "a"]
    pool.shutdown()


def test_recent_replies_reuse_only_for_redeliveries_and_stay_bounded():
    cache = _RecentReplies(max_entries=2, max_bytes=1000)
    assert cache.claim(b"k1", redelivered=False) is None
    cache.finish(b"k1", b"reply-1")
    entry = cache.claim(b"k1", redelivered=True)
    assert entry is not None and entry.done.is_set() and entry.reply == b"reply-1"
    assert cache.claim(b"k1", redelivered=False) is None  # a new request with the same key
    cache.finish(b"k1", b"reply-1b")
    for key in (b"k2", b"k3"):
        assert cache.claim(key, redelivered=False) is None
        cache.finish(key, b"x")
    assert cache.claim(b"k1", redelivered=True) is None  # evicted: the oldest of three


def test_a_redelivery_waits_for_the_delivery_still_running():
    cache = _RecentReplies(max_entries=10, max_bytes=1000)
    assert cache.claim(b"k", redelivered=False) is None
    entry = cache.claim(b"k", redelivered=True)
    assert entry is not None and not entry.done.is_set()
    threading.Timer(0.1, cache.finish, (b"k", b"answer")).start()
    assert entry.done.wait(2) and entry.reply == b"answer"


def test_replies_over_the_byte_budget_are_evicted_oldest_first():
    cache = _RecentReplies(max_entries=100, max_bytes=10)
    for key in (b"a", b"b", b"c"):
        cache.claim(key, redelivered=False)
        cache.finish(key, b"12345")
    assert cache.claim(b"a", redelivered=True) is None
    assert cache.claim(b"c", redelivered=True) is not None


def test_two_runs_of_one_request_do_not_shrink_the_byte_budget():
    # A redelivery that waited past its limit runs the request again while the first run
    # is still going; both finish. The cache then holds one reply and must count one: a
    # reply counted twice would be a phantom that evicts every later reply at once.
    cache = _RecentReplies(max_entries=100, max_bytes=100)
    for _ in range(3):
        assert cache.claim(b"slow", redelivered=False) is None  # the first run
        assert cache.claim(b"slow", redelivered=False) is None  # the second run
        cache.finish(b"slow", b"a" * 40)
        cache.finish(b"slow", b"b" * 40)
    cache.claim(b"next", redelivered=False)
    cache.finish(b"next", b"c" * 50)
    kept = cache.claim(b"next", redelivered=True)
    assert kept is not None and kept.reply == b"c" * 50
