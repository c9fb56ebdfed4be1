"""The client address every rate limit is keyed on, and DRF throttles that use it.

The throttles keep DRF's rates and keys ("N/period" per user or client address) but count
with a sliding-window counter instead of DRF's list of every request's timestamp, which is
read, pickled and written back whole on each request (thousands of entries at the user
rate): two integers per key, the current fixed window's and the previous one's, and the
estimate ``previous * (share of the previous window still inside the sliding window) +
current`` must stay within N. On Redis one round trip (a script) counts a request (it runs
atomically, so concurrent requests are all counted); a refused request is taken back out, so
as with DRF only the requests let through count.

A client writes ``X-Forwarded-For`` itself, so the header counts only as far as it was
written by proxies this deployment trusts (``TRUSTED_PROXY_COUNT`` /
``TRUSTED_PROXY_RANGES``, see the README's configuration): with neither set the address
is the TCP peer's, whatever the header says. IPv6 clients are keyed by their /64, the
block one subscriber gets, so rotating addresses inside it is no new bucket.
"""

from __future__ import annotations

import ipaddress
import math
import time
import weakref

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, SimpleRateThrottle, UserRateThrottle

IPV6_CLIENT_PREFIX = 64


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.9:51234"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, ranges) -> bool:
    return any(address.version == net.version and address in net for net in ranges)


def forwarded_client(remote_addr: str, forwarded_for: str | None, *, proxy_count: int, proxy_ranges) -> str:
    """The client's address as the trusted proxies saw it (see the module's docstring)."""
    peer = _parse(remote_addr or "")
    hops = [_parse(part) for part in (forwarded_for or "").split(",") if part.strip()]
    client = peer
    if proxy_ranges:
        if peer is not None and _trusted(peer, proxy_ranges):
            # Right to left: the first hop no trusted proxy vouches for is the client.
            client = None
            for hop in reversed(hops):
                if hop is None:
                    break  # garbage a trusted proxy would never write: stop at the last good hop
                client = hop
                if not _trusted(hop, proxy_ranges):
                    break
            client = client or peer
    elif proxy_count and hops:
        # Each of the N proxies appends the address it received from: the client's is Nth from the right.
        candidate = hops[-min(proxy_count, len(hops))]
        client = candidate or peer
    if client is None:
        return remote_addr or "unknown"
    if client.version == 6:
        if client.ipv4_mapped:
            return str(client.ipv4_mapped)
        return str(ipaddress.ip_network(f"{client}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(client)


def client_address(request) -> str:
    """The key of the client that sent ``request`` (a Django or DRF request)."""
    meta = request.META
    return forwarded_client(
        meta.get("REMOTE_ADDR", ""),
        meta.get("HTTP_X_FORWARDED_FOR"),
        proxy_count=settings.TRUSTED_PROXY_COUNT,
        proxy_ranges=[ipaddress.ip_network(r, strict=False) for r in settings.TRUSTED_PROXY_RANGES],
    )


# One round trip: per limiter (a pair of keys, a triple of arguments), count the request,
# read the previous window's counter, and take the request back out if the estimate is over
# that limiter's limit (a script runs atomically on Redis). Each limiter decides on its own,
# as separate calls would; one call serves the throttles of one request together.
_HIT_SCRIPT = """
local out = {}
for i = 1, #KEYS / 2 do
  local current, previous = KEYS[2 * i - 1], KEYS[2 * i]
  local ttl, weight, limit = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local count = redis.call('INCR', current)
  if count == 1 then redis.call('EXPIRE', current, ttl) end
  local before = tonumber(redis.call('GET', previous) or '0')
  if before * weight + count > limit then
    redis.call('DECR', current)
    out[i] = {0, count - 1, before}
  else
    out[i] = {1, count, before}
  end
end
return out
"""
_hit_script = None
# Django's Redis cache builds a new client object (copying its table of reply parsers) on
# every call; one per cache backend object is enough (a client is safe to share, its pool
# hands out connections).
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _redis_hit(cache: RedisCache, *, keys, args):
    global _hit_script
    client = _clients.get(cache)
    if client is None:
        client = _clients[cache] = cache._cache.get_client(keys[0], write=True)
    if _hit_script is None:
        _hit_script = client.register_script(_HIT_SCRIPT)
    return _hit_script(keys=keys, args=args, client=client)


def hit_together(hits: list[tuple[SlidingWindowLimiter, str]], now: float | None = None) -> list[tuple[bool, float]]:
    """``limiter.hit(key)`` for each pair, each deciding on its own: on one Redis cache in one round trip."""
    now = time.time() if now is None else now
    caches_used = {id(limiter.cache) for limiter, _key in hits}
    if len(caches_used) != 1 or not isinstance(hits[0][0].cache, RedisCache):
        return [limiter.hit(key, now) for limiter, key in hits]
    cache = hits[0][0].cache
    plans = [limiter._plan(key, now) for limiter, key in hits]
    keys, args = [], []
    for current, previous, ttl, weight, limit, _elapsed in plans:
        keys += [cache.make_and_validate_key(current), cache.make_and_validate_key(previous)]
        args += [ttl, repr(weight), limit]
    replies = _redis_hit(cache, keys=keys, args=args)
    return [
        (True, 0.0) if allowed else (False, limiter._wait(count, before, plan[5]))
        for (limiter, _key), plan, (allowed, count, before) in zip(hits, plans, replies, strict=True)
    ]


class SlidingWindowLimiter:
    """At most ``limit`` hits per ``period`` seconds per key, counted in the cache.

    ``hit`` counts one request and says whether it is within the limit; a refused one is
    not counted. ``retry_after`` is how long, with no further requests, until the next
    one fits.
    """

    def __init__(self, limit: int, period: int, *, cache=None, prefix: str = "rl"):
        if limit < 1 or period < 1:
            raise ValueError("a rate limit needs at least one request per at least one second")
        self.limit = limit
        self.period = period
        # ``django.core.cache.cache`` is a proxy: the backend itself says whether it is Redis.
        self.cache = caches["default"] if cache is None or cache is default_cache else cache
        self.prefix = prefix

    def _keys(self, key: str, window: int) -> tuple[str, str]:
        return f"{self.prefix}:{self.period}:{key}:{window}", f"{self.prefix}:{self.period}:{key}:{window - 1}"

    def _plan(self, key: str, now: float) -> tuple[str, str, int, float, int, float]:
        """(current key, previous key, ttl, previous window's weight, limit, seconds into the window)."""
        window = int(now // self.period)
        elapsed = now - window * self.period
        current_key, previous_key = self._keys(key, window)
        weight = 1 - elapsed / self.period  # the previous window's share still inside the sliding one
        ttl = 2 * self.period + 1  # a counter is still read as "previous" during the next window
        return current_key, previous_key, ttl, weight, self.limit, elapsed

    def hit(self, key: str, now: float | None = None) -> tuple[bool, float]:
        """(allowed, retry_after): whether this request fits, and if not how long to wait."""
        now = time.time() if now is None else now
        if isinstance(self.cache, RedisCache):
            return hit_together([(self, key)], now)[0]
        current_key, previous_key, ttl, weight, _limit, elapsed = self._plan(key, now)
        self.cache.add(current_key, 0, timeout=ttl)
        count = self.cache.incr(current_key)
        before = int(self.cache.get(previous_key) or 0)
        allowed = before * weight + count <= self.limit
        if allowed:
            return True, 0.0
        self.cache.decr(current_key)
        return False, self._wait(count - 1, before, elapsed)

    def _wait(self, count: int, previous: int, elapsed: float) -> float:
        """Seconds until one more request fits after ``count`` in this window and ``previous``
        in the last, if none are made meanwhile."""
        room = self.limit - count - 1
        if room >= 0:
            # The previous window's share must fall to ``room``: previous * (1 - t / period) <= room.
            return max(self.period * (1 - room / previous) - elapsed, 0.0) if previous else 0.0
        # This window alone is full: wait into the next, until its share falls to limit - 1.
        return (self.period - elapsed) + self.period * (1 - (self.limit - 1) / count)


class SlidingWindowThrottle(SimpleRateThrottle):
    """DRF's rates and cache keys, counted by a ``SlidingWindowLimiter``. Listed after the
    DRF throttle in a subclass's bases, so that e.g. ``ScopedRateThrottle`` still reads its
    scope from the view first."""

    # (class, key) of the request this throttle counted, else None (see marketplace.accounts.anonymous_get.throttles_counted).
    counted_as: tuple[type, str] | None = None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.counted_as = (type(self), key)
        counted = getattr(request, "_sliding_window_counted", None)
        if counted is not None and (type(self), key) in counted:  # counted with an earlier throttle's request
            allowed, self._retry_after = counted.pop((type(self), key))
            return allowed
        later = self._counted_with(request, view)
        if not later:
            allowed, self._retry_after = self.limiter().hit(key)
            return allowed
        results = hit_together([(self.limiter(), key), *((t.limiter(), k) for t, k in later)])
        request._sliding_window_counted = {(type(t), k): result for (t, k), result in zip(later, results[1:], strict=True)}
        allowed, self._retry_after = results[0]
        return allowed

    def limiter(self) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(self.num_requests, self.duration, cache=self.cache)

    def _counted_with(self, request, view) -> list[tuple[SlidingWindowThrottle, str]]:
        """Throttles the view checks after this one whose counts this one makes in its own round trip."""
        return []

    def wait(self) -> float | None:
        retry_after = getattr(self, "_retry_after", None)
        if retry_after is None:
            return None
        return float(max(1, math.ceil(retry_after)))


class ClientAddressMixin:
    def get_ident(self, request) -> str:
        # Each throttle of a request asks: the address is worked out once per request.
        base = getattr(request, "_request", request)
        ident = getattr(base, "_client_address", None)
        if ident is None:
            ident = base._client_address = client_address(request)
        return ident


class ClientAnonRateThrottle(ClientAddressMixin, AnonRateThrottle, SlidingWindowThrottle):
    """Anonymous requests, per client address.

    An anonymous request is counted by the user throttle too (per client address, at the
    user rate): when the view checks a ClientUserRateThrottle after this one, both counts go
    in one round trip, each deciding as on its own; the user throttle then reads its result.
    """

    def _counted_with(self, request, view) -> list[tuple[SlidingWindowThrottle, str]]:
        classes = list(getattr(view, "throttle_classes", ()))
        if type(self) not in classes:
            return []
        for cls in classes[classes.index(type(self)) + 1 :]:
            if issubclass(cls, ClientUserRateThrottle):
                user = cls()
                key = user.get_cache_key(request, view) if user.rate is not None else None
                return [] if key is None else [(user, key)]
        return []


class ClientUserRateThrottle(ClientAddressMixin, UserRateThrottle, SlidingWindowThrottle):
    """Authenticated requests per user (anonymous ones per client address)."""


class ClientScopedRateThrottle(ClientAddressMixin, ScopedRateThrottle, SlidingWindowThrottle):
    """A view's own scope (``throttle_scope``), per user or client address."""
