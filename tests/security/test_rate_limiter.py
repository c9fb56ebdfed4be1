"""The sliding-window limiter behind the API's throttles, on the suite's Redis cache."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from marketplace.core import throttling
from marketplace.core.throttling import SlidingWindowLimiter, hit_together

T0 = 1_800_000_000.0  # the start of a 60 s window


def test_the_suite_counts_on_redis():
    assert isinstance(caches["default"], RedisCache)


def test_it_lets_the_limit_through_and_refuses_the_next_without_counting_it():
    limiter = SlidingWindowLimiter(3, 60)
    results = [limiter.hit("client-a", now=T0 + 1) for _ in range(5)]
    assert [allowed for allowed, _ in results] == [True, True, True, False, False]
    # This window is full: the wait runs into the next one, until its share of these 3 is 2.
    assert results[3][1] == pytest.approx(59 + 20)
    # The refused requests were taken back out: the counter holds only the three let through.
    assert cache.get(f"rl:60:client-a:{int(T0 // 60)}") == 3


def test_it_resets_as_the_window_slides():
    limiter = SlidingWindowLimiter(3, 60)
    assert all(limiter.hit("client-a", now=T0)[0] for _ in range(3))
    assert limiter.hit("client-a", now=T0 + 59)[0] is False
    # 20 s into the next window two thirds of the last window's 3 still count: room for one.
    assert limiter.hit("client-a", now=T0 + 80)[0] is True
    assert limiter.hit("client-a", now=T0 + 80)[0] is False
    # Two whole windows later nothing of them is left.
    assert [limiter.hit("client-a", now=T0 + 180)[0] for _ in range(4)] == [True, True, True, False]


def test_two_keys_do_not_interfere():
    limiter = SlidingWindowLimiter(2, 60)
    assert [limiter.hit("client-a", now=T0)[0] for _ in range(3)] == [True, True, False]
    assert [limiter.hit("client-b", now=T0)[0] for _ in range(3)] == [True, True, False]
    # Another period is another limit, even on the same key.
    assert SlidingWindowLimiter(2, 3600).hit("client-a", now=T0)[0] is True


def test_concurrent_requests_are_all_counted():
    limiter = SlidingWindowLimiter(50, 60)
    allowed = []
    lock = threading.Lock()

    def client():
        for _ in range(10):
            ok, _ = limiter.hit("crowd", now=T0 + 5)
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 80 and allowed.count(True) == 50
    assert cache.get(f"rl:60:crowd:{int(T0 // 60)}") == 50


def test_a_limit_needs_a_positive_rate():
    with pytest.raises(ValueError, match="at least one"):
        SlidingWindowLimiter(0, 60)


def test_without_redis_it_counts_the_same_in_the_process_cache():
    from django.core.cache.backends.locmem import LocMemCache

    limiter = SlidingWindowLimiter(2, 60, cache=LocMemCache("rate-limiter-test", {}))
    assert [limiter.hit("client-a", now=T0)[0] for _ in range(3)] == [True, True, False]
    assert limiter.hit("client-a", now=T0 + 90)[0] is True  # half of the last window's 2 still counts
    assert limiter.hit("client-a", now=T0 + 90)[0] is False


def test_limiters_counted_together_decide_each_as_on_its_own():
    tight, loose = SlidingWindowLimiter(2, 60, prefix="tight"), SlidingWindowLimiter(3, 60, prefix="loose")
    together = [hit_together([(tight, "client-a"), (loose, "client-a")], now=T0 + 1) for _ in range(4)]
    alone_tight, alone_loose = SlidingWindowLimiter(2, 60, prefix="t2"), SlidingWindowLimiter(3, 60, prefix="l2")
    alone = [[alone_tight.hit("client-a", now=T0 + 1), alone_loose.hit("client-a", now=T0 + 1)] for _ in range(4)]
    assert together == alone
    assert [[allowed for allowed, _ in pair] for pair in together] == [[True, True], [True, True], [False, True], [False, False]]
    assert cache.get(f"tight:60:client-a:{int(T0 // 60)}") == 2 and cache.get(f"loose:60:client-a:{int(T0 // 60)}") == 3


def test_an_anonymous_request_is_counted_by_both_throttles_in_one_round_trip(client, db, monkeypatch):
    import time

    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "anon": "5/min", "user": "3/min"})
    calls = []
    real = throttling._redis_hit

    def counting(cache, *, keys, args):
        calls.append(len(keys) // 2)
        return real(cache, keys=keys, args=args)

    monkeypatch.setattr(throttling, "_redis_hit", counting)
    if time.time() % 60 > 45:  # the four requests below fall in one rate window
        time.sleep(61 - time.time() % 60)
    window = int(time.time() // 60)
    responses = [client.get("/api/v1/listings/", REMOTE_ADDR="192.0.2.150") for _ in range(4)]
    assert int(time.time() // 60) == window
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert int(responses[3]["Retry-After"]) >= 1
    assert calls == [2, 2, 2, 2]  # the anonymous and the user throttle's counters, one script call each request
    # Each counted as on its own: the anonymous limit let the fourth through, the user limit did not.
    assert cache.get(f"rl:60:throttle_anon_192.0.2.150:{window}") == 4
    assert cache.get(f"rl:60:throttle_user_192.0.2.150:{window}") == 3
