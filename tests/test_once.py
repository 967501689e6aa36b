"""OnceCache: one build per key across threads; other keys do not wait; failures retry."""

import threading

import pytest

from workbench.once import OnceCache


def test_concurrent_asks_build_once():
    cache: OnceCache[int] = OnceCache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def build() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", build)))]
    threads[0].start()
    assert started.wait(10)
    threads += [threading.Thread(target=lambda: results.append(cache.get("k", build)))]
    threads[1].start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == [42, 42] and len(calls) == 1 and cache.builds == 1


def test_other_keys_do_not_wait_for_a_slow_build():
    cache: OnceCache[str] = OnceCache()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "slow"

    worker = threading.Thread(target=lambda: cache.get("slow", slow))
    worker.start()
    assert started.wait(10)
    assert cache.get("fast", lambda: "fast") == "fast"  # would deadlock behind one lock
    assert cache.peek("slow") is None and "slow" not in cache
    release.set()
    worker.join(10)
    assert cache.peek("slow") == "slow" and len(cache) == 2


def test_a_failed_build_stores_nothing():
    cache: OnceCache[int] = OnceCache()

    def fail() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert "k" not in cache and cache.builds == 0
    assert cache.get("k", lambda: 1) == 1 and cache.values() == [1]
