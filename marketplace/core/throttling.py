"""The client address every rate limit is keyed on, and DRF throttles that use it.

A client writes ``X-Forwarded-For`` itself, so the header counts only as far as it was
written by proxies this deployment trusts (``TRUSTED_PROXY_COUNT`` /
``TRUSTED_PROXY_RANGES``, see the README's configuration): with neither set the address
is the TCP peer's, whatever the header says. IPv6 clients are keyed by their /64, the
block one subscriber gets, so rotating addresses inside it is no new bucket.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle

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


class ClientAddressMixin:
    def get_ident(self, request) -> str:
        return client_address(request)


class ClientAnonRateThrottle(ClientAddressMixin, AnonRateThrottle):
    """Anonymous requests, per client address."""


class ClientUserRateThrottle(ClientAddressMixin, UserRateThrottle):
    """Authenticated requests per user (anonymous ones per client address)."""


class ClientScopedRateThrottle(ClientAddressMixin, ScopedRateThrottle):
    """A view's own scope (``throttle_scope``), per user or client address."""
