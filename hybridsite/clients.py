"""Who a request comes from, for rate limits and lockouts.

Behind ``TRUSTED_PROXY_HOPS`` proxies the client is the address the outermost of them saw: the
n-th entry of ``X-Forwarded-For`` counted from the right (each proxy appends the address it was
called from; whatever a client writes there itself stays to the left and is ignored). Without
proxies ``X-Forwarded-For`` is not read at all. IPv6 clients are grouped by /64, the block a
single subscriber usually holds, so that one client cannot rotate through its own addresses.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPV6_PREFIX = 64
UNKNOWN = "unknown"


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("["):  # "[2001:db8::1]:443"
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # "203.0.113.7:51000"
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# The server's REMOTE_ADDR (short, and the same for many requests) parsed once; a client-written
# X-Forwarded-For is parsed each time, never kept.
_parse_remote = lru_cache(maxsize=4096)(_parse)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the trusted proxies saw it (REMOTE_ADDR without proxies); None
    when the request carries no usable address."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            address = _parse(forwarded[-min(hops, len(forwarded))])
            if address is not None:
                return str(address)
    address = _parse_remote(request.META.get("REMOTE_ADDR", ""))
    return str(address) if address is not None else None


@lru_cache(maxsize=4096)
def bucket_of(ip: str | None) -> str:
    """An IPv4 address as it is, an IPv6 address as its /64."""
    address = _parse(ip or "")
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def client_bucket(request: HttpRequest) -> str:
    """The rate-limit identity of a request: its client's IPv4 address or IPv6 /64."""
    return bucket_of(client_ip(request))
