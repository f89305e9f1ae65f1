"""Which network addresses a fetch may connect to (the SSRF policy).

The operator's own URLs (`[[targets]]`, a site's feeds and sitemaps) are trusted as written: people
watch intranet pages, and a page on loopback is as legitimate as any. What a third party controls
is not: a redirect, or a post URL listed in a feed or sitemap. Such a URL may reach a non-public
address only when the configured URL it came from resolves into that same class of address, when
`allow_private` is set, or when the address is inside an `allow_networks` CIDR.

The decision is made per resolved address at connect time (see monitor/transport.py), for every
hop, never by looking at the URL's text: `http://2852039166/` is 169.254.169.254.

>>> address_class("127.0.0.1"), address_class("::ffff:10.1.2.3"), address_class("93.184.216.34")
('loopback', 'private', 'public')
>>> Policy.for_classes({"loopback"}).refusal("169.254.169.254")
'169.254.169.254 is a link-local address'
>>> Policy.for_classes({"loopback"}).refusal("127.0.0.2") is None
True
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PUBLIC = "public"
# Checked in this order; an address in none of them and not globally routable is "reserved".
_CLASSES: tuple[tuple[str, tuple[Network, ...]], ...] = tuple(
    (name, tuple(ipaddress.ip_network(n) for n in nets)) for name, nets in (
        ("unspecified", ("0.0.0.0/8", "::/128")),
        ("loopback", ("127.0.0.0/8", "::1/128")),
        ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
        ("link-local", ("169.254.0.0/16", "fe80::/10")),
        ("CGNAT", ("100.64.0.0/10",)),
        ("multicast", ("224.0.0.0/4", "ff00::/8")),
    ))
CLASSES = tuple(name for name, _ in _CLASSES) + ("reserved", PUBLIC)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(OSError):
    """A connection the address policy forbids; no packet was sent. The message names the address
    and its class."""


def _embedded(ip: Address) -> Address:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64, 6to4), else itself."""
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_class(address: str | Address) -> str:
    """One of CLASSES for an IP address."""
    ip = _embedded(ipaddress.ip_address(address))
    for name, networks in _CLASSES:
        if any(ip in net for net in networks if net.version == ip.version):
            return name
    if ip.version == 6 and ip.teredo is not None:
        return "reserved"
    return PUBLIC if ip.is_global else "reserved"


@dataclass(frozen=True)
class Policy:
    """The address classes a fetch may connect to, and the networks allowed whatever their class."""

    classes: frozenset[str] = frozenset({PUBLIC})
    networks: tuple[Network, ...] = ()

    @classmethod
    def for_classes(cls, classes, networks=()) -> "Policy":
        return cls(frozenset(classes) | {PUBLIC}, tuple(networks))

    @classmethod
    def anything(cls) -> "Policy":
        return cls(frozenset(CLASSES))

    def refusal(self, address: str | Address) -> str | None:
        """Why a connection to `address` is refused, or None when it is allowed."""
        ip = ipaddress.ip_address(address)
        kind = address_class(ip)
        if kind in self.classes:
            return None
        plain = _embedded(ip)
        if any(ip in net or plain in net for net in self.networks):
            return None
        return f"{ip} is {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} address"

    def check(self, address: str | Address, url: str = "") -> None:
        reason = self.refusal(address)
        if reason:
            where = f" ({url})" if url else ""
            raise AddressRefused(f"refused to connect{where}: {reason}, reached through a redirect or a "
                                 "listed URL (set allow_private or allow_networks to permit it)")


def literal(host: str) -> Address | None:
    """The address a URL's host names literally (brackets allowed), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
