"""The patterns of an authorized_keys `from="…"` option (sshd's PATTERNS in sshd(8)), checked
the way sshd and asyncssh would read them: `problem` says why a pattern cannot be what it
says (sshd refuses the whole key; asyncssh matches no one), `every_address_in` whether a
list admits every client address (SPEC §4: a system user's key must name its addresses).
"""

from __future__ import annotations

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
    """What of a from= value admits every client address — one pattern
    (`_allows_every`), or networks that together are a whole address family
    (`0.0.0.0/1,128.0.0.0/1`) — said as "… allows" / "… together allow", or None.
    A negated pattern excepts a few addresses and leaves the rest allowed."""
    single = next((p for p in patterns if _allows_every(p)), None)
    if single is not None:
        return f"{single} allows"
    for whole in _WHOLE_FAMILIES:
        found = (_network(p) for p in patterns)
        networks = [n for n in found if n is not None and n.version == whole.version]
        # (One family, as collapse_addresses needs: mypy cannot see it through the filter.)
        if networks and list(ipaddress.collapse_addresses(networks)) == [whole]:  # type: ignore[type-var]
            return f"{','.join(map(str, networks))} together allow"
    return None


_WHOLE_FAMILIES = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def _network(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The addresses a plain from= pattern (an address or address/mask) admits, or None for
    a wildcard, a negation or a host name."""
    if pattern.startswith("!") or "*" in pattern or "?" in pattern:
        return None
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


def _allows_every(pattern: str) -> bool:
    """Whether a from= pattern admits every client address: wildcards and dots alone
    (`*`, `*.*.*.*`), or a network with mask /0 (`0.0.0.0/0`, `::/0`)."""
    if pattern.startswith("!"):
        return False
    if "*" in pattern and set(pattern) <= {"*", "."}:
        return True
    return pattern.endswith("/0")
