"""Where a webhook may point: public HTTPS addresses only (server-side request forgery).

A target is refused when its scheme is not ``https``, when its host resolves to any
address that is not globally routable (loopback, private, link-local, the cloud metadata
address 169.254.169.254, carrier-grade NAT, multicast, reserved, unspecified; IPv4 and
IPv6, IPv4-mapped IPv6 included), at registration and again at every delivery (a name may
resolve elsewhere later). Delivery connects to the address that was checked, never
re-resolving the name (no DNS rebinding between check and connect), and never follows a
redirect. ``WEBHOOKS_ALLOWED_PRIVATE_TARGETS`` lists hosts (``host`` or ``host:port``)
exempt from the address rule and from HTTPS; it is empty in production and names the
loopback receiver in the test profile.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

MAX_URL_LENGTH = 2000


class TargetRefused(Exception):
    """The URL may not be called; ``reason`` says why (for the delivery log and the API)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    address: str  # the checked IP address delivery connects to


def _exempt(host: str, port: int) -> bool:
    allowed = {str(t).lower() for t in getattr(settings, "WEBHOOKS_ALLOWED_PRIVATE_TARGETS", ())}
    return host.lower() in allowed or f"{host.lower()}:{port}" in allowed


def address_refusal(address: str) -> str | None:
    """Why ``address`` is not a public one, or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag, what in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata lives there)"),
        ("is_private", "a private address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_unspecified", "an unspecified address"),
    ):
        if getattr(ip, flag):
            return f"{address} is {what}"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve ({exc})") from None
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    return addresses


def target_check(url: str) -> Target:
    """The URL's target, checked; raises TargetRefused otherwise. Every address the host
    resolves to must pass (a name with one private address among public ones is refused)."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused("the URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL ({exc})") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        raise TargetRefused("the URL must be https://host/...")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed")
    port = port or (443 if parts.scheme == "https" else 80)
    exempt = _exempt(host, port)
    if parts.scheme != "https" and not exempt:
        raise TargetRefused("only https:// targets are allowed")
    addresses = _resolve(host, port)
    if not exempt:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                raise TargetRefused(f"{host} resolves to {refusal}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


@dataclass(frozen=True, kw_only=True)
class Response:
    status: int
    excerpt: str  # the first bytes of the body, for the delivery log
    location: str  # a redirect's Location header ("" otherwise)


RESPONSE_EXCERPT_BYTES = 512


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST ``body`` to the checked target: connects to ``target.address`` (the name's TLS
    certificate is still verified against ``target.host``), no redirect followed, no retry
    here (the caller schedules them). Raises ``urllib3.exceptions.HTTPError`` subclasses
    on network errors."""
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **options
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
    try:
        resp = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "Host": host_header}, redirect=False, retries=False, preload_content=False
        )
        try:
            excerpt = resp.read(RESPONSE_EXCERPT_BYTES, decode_content=False).decode("utf-8", "replace")
            return Response(status=resp.status, excerpt=excerpt, location=resp.headers.get("Location", "") if 300 <= resp.status < 400 else "")
        finally:
            resp.release_conn()
    finally:
        pool.close()
