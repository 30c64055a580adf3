# Client addresses (env.md TRUSTED_PROXIES, header-vectors.json X-Forwarded-For): the
# TRUSTED_PROXIES list, and the one pure function naming the rate-limit bucket of a request
# from its TCP peer and X-Forwarded-For.
from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ASCII_WS = " \t\n\r\x0b\x0c"
_PREFIX = re.compile(r"[0-9]{1,3}")
_PORT = re.compile(r"[0-9]{1,5}")
_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
IPV6_BUCKET_BITS = 64


def parse_ip(text: str) -> IPAddress | None:
    """A bare IPv4 or IPv6 address (no zone, no brackets); IPv4-mapped IPv6 is IPv4."""
    if not _ADDRESS_CHARS.fullmatch(text):
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_cidr(entry: str) -> Network:
    """`addr/prefix` or a bare address (a /32 or /128); host bits are masked off."""
    addr_text, slash, prefix_text = entry.partition("/")
    if not _ADDRESS_CHARS.fullmatch(addr_text):
        raise ValueError(f"{entry!r} is not an address or CIDR")
    try:
        addr = ipaddress.ip_address(addr_text)
    except ValueError:
        raise ValueError(f"{entry!r} is not an address or CIDR") from None
    if not slash:
        return ipaddress.ip_network(addr)
    if not _PREFIX.fullmatch(prefix_text) or int(prefix_text) > addr.max_prefixlen:
        raise ValueError(f"{entry!r}: prefix must be 0..{addr.max_prefixlen}")
    return ipaddress.ip_network((addr, int(prefix_text)), strict=False)


def parse_cidr_list(value: str) -> list[str]:
    """TRUSTED_PROXIES: comma list, entries trimmed, empty and duplicate entries dropped,
    each normalised (`10.1.2.3/8` -> `10.0.0.0/8`, `::1` -> `::1/128`)."""
    out: list[str] = []
    for raw in value.split(","):
        entry = raw.strip(_ASCII_WS)
        if not entry:
            continue
        norm = str(parse_cidr(entry))
        if norm not in out:
            out.append(norm)
    return out


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """The normalised TRUSTED_PROXIES strings (Settings.trusted_proxies) as networks."""
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def _hop(text: str) -> IPAddress | None:
    """One X-Forwarded-For entry: an address, `[v6]:port` or `v4:port`."""
    if text.startswith("["):
        close = text.find("]")
        rest = text[close + 1 :] if close > 0 else "x"
        if rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:])):
            return None
        inner = text[1:close]
        ip = parse_ip(inner)
        return ip if ip is not None and ":" in inner else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        ip = parse_ip(host) if _PORT.fullmatch(port) else None
        return ip if isinstance(ip, ipaddress.IPv4Address) else None
    return parse_ip(text)


def bucket(ip: IPAddress) -> str:
    """The rate-limit key of an address: itself for IPv4, its /64 for IPv6 (one host
    usually holds a whole /64, so per-address buckets would be free to multiply)."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET_BITS), strict=False))
    return str(ip)


def _trusted(ip: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def client_key(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The rate-limit bucket of a request from TCP `peer` carrying X-Forwarded-For.

    The header is read only when the peer is a trusted proxy; the client is then the
    rightmost address that is not trusted, walking right to left from the peer (what a
    client wrote further left is not believed). An unparsable hop stops the walk at the
    last trusted address; when every hop is trusted, the leftmost one is the client.
    """
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        return peer or "unknown"
    if not forwarded_for or not trusted or not _trusted(peer_ip, trusted):
        return bucket(peer_ip)
    current = peer_ip
    for raw in reversed(forwarded_for.split(",")):
        text = raw.strip(" \t")
        if not text:
            continue
        hop = _hop(text)
        if hop is None:
            break
        current = hop
        if not _trusted(hop, trusted):
            break
    return bucket(current)
