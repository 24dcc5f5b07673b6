"""Which client a request comes from: REMOTE_ADDR without proxies, the address the outermost trusted
proxy saw with them; IPv6 grouped by /64."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from hybridsite.clients import bucket_of, client_bucket, client_ip


def request(remote: str = "10.0.0.5", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_proxies_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    assert client_ip(request("203.0.113.9", forwarded="1.2.3.4")) == "203.0.113.9"


@pytest.mark.parametrize(
    "hops, forwarded, expected",
    [
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote 6.6.6.6 itself
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", "198.51.100.1"),
        (1, "[2001:db8::1]:4431", "2001:db8::1"),
        (1, "198.51.100.1:51000", "198.51.100.1"),
        (1, "::ffff:198.51.100.1", "198.51.100.1"),
        (1, "garbage", "10.0.0.5"),
    ],
)
def test_behind_proxies_the_outermost_trusted_hop_decides(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_HOPS = hops
    assert client_ip(request(forwarded=forwarded)) == expected


def test_behind_a_proxy_clients_get_their_own_buckets(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_bucket(request(forwarded="198.51.100.1")) != client_bucket(request(forwarded="198.51.100.2"))


def test_ipv6_clients_are_grouped_by_64():
    assert bucket_of("2001:db8:1:2:aaaa::1") == bucket_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert bucket_of("2001:db8:1:3::1") != bucket_of("2001:db8:1:2::1")
    assert bucket_of("203.0.113.9") == "203.0.113.9"
    assert bucket_of(None) == bucket_of("not-an-ip") == "unknown"
