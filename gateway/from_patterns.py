"""The patterns of an authorized_keys `from="…"` option (sshd's PATTERNS in sshd(8)), checked
the way sshd and asyncssh would read them: `problem` says why a pattern cannot be what it
says (sshd refuses the whole key; asyncssh matches no one), `every_address_in` whether a
list admits every client address (SPEC §4: a system user's key must name its addresses).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re

IPV4_LIKE = re.compile(r"[0-9.]+")
MASK_BITS = re.compile(r"[0-9]{1,3}")


def problem(pattern: str) -> str | None:
    """Why one pattern of a from= list cannot be what it says, or None. Host names and
    wildcards are free; a mask, or a pattern made of digits and dots or holding a colon (no
    host name is either), must be an address: `300.1.1.1` would match no client."""
    body = pattern.removeprefix("!")
    if not body:
        return "an empty pattern (between commas, or after !)"
    if any(char.isspace() for char in body):
        return f'"{pattern}" holds a blank (patterns are separated by commas alone)'
    if "/" in body:
        return _mask_problem(body)
    if "*" in body or "?" in body:
        return None
    if IPV4_LIKE.fullmatch(body) or ":" in body:
        try:
            ipaddress.ip_address(body)
        except ValueError:
            version = "IPv6" if ":" in body else "IPv4"
            return f"{body} is not an {version} address"
    return None


def _mask_problem(pattern: str) -> str | None:
    address, _, mask = pattern.partition("/")
    try:
        host = ipaddress.ip_address(address)
    except ValueError:
        return f"{pattern}: a mask (/n) must follow an IP address"
    if not MASK_BITS.fullmatch(mask) or int(mask) > host.max_prefixlen:
        return f"{pattern}: the mask of an IPv{host.version} address is /0 to /{host.max_prefixlen}"
    network = ipaddress.ip_network(f"{host}/{mask}", strict=False)
    if network.network_address != host:
        return f"{pattern} has bits set after its mask (the network is {network})"
    return None


def every_address_in(patterns: list[str]) -> str | None:
    """What of a from= value admits every client address: the patterns that match
    addresses spread over all of IPv4 or of IPv6 — one alone (`*`, `*.*.*.*`, `?*`,
    `0.0.0.0/0`, `*:*`) or together (`0.0.0.0/1,128.0.0.0/1`, `1*,2*,…,9*`) — said as
    "… allows" / "… together allow", or None. A negated pattern excepts a few addresses
    and leaves the rest allowed. (The probes are matched the way sshd and asyncssh match a
    from= pattern: `*` and `?` on the address, or a network; asyncssh itself is not
    loaded for a check every start makes.)"""
    allowed = [p.lower() for p in patterns if p and not p.startswith("!")]
    for probes in _PROBES:
        alone = next((p for p in allowed if all(_matches(p, ip) for ip in probes)), None)
        if alone is not None:
            return f"{alone} allows"
        if allowed and all(any(_matches(p, ip) for p in allowed) for ip in probes):
            return f"{','.join(allowed)} together allow"
    return None


# Addresses spread over each family: a from= list that lets every one of them in names no
# addresses a system connects from.
_FIRST_OCTETS = (1, 9, 10, 42, 99, 100, 127, 128, 172, 192, 203, 255)
_V4_PROBES = [
    ipaddress.ip_address(f"{a}.{rest}")
    for a in _FIRST_OCTETS
    for rest in ("0.0.1", "37.142.200", "255.255.254")
]
_V6_PROBES = [
    ipaddress.ip_address(text)
    for text in ("::1", "2001:db8::1", "2a02:26f0:1:2::3", "fd00:1234::5", "fe80::1",
                 "ff02::1", "3fff:ffff::7", "8000::1", "c000::1")
]  # fmt: skip
_PROBES = (_V4_PROBES, _V6_PROBES)


def _matches(pattern: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if "/" in pattern:
        try:
            return ip in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False  # (refused by `problem` all the same)
    return fnmatch.fnmatchcase(str(ip), pattern.replace("[", "[[]"))
