"""Who a request really comes from, when proxies we trust stand in front.

Behind the ALB every connection comes from a load balancer node, so limits kept per
peer address would put every client in one bucket. `X-Forwarded-For` names the real
client, but anyone can send that header: it is believed only from peers in
`[service] trusted_proxies`, read from the right (the hop nearest to us) and only as
far as the chain stays inside the trusted networks.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Sequence, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs; ValueError names the first bad entry."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def networks_problem(text: str) -> Optional[str]:
    """The settings check for a list of networks (None when it parses)."""
    try:
        parse_networks(text)
    except ValueError as exc:
        return str(exc)
    return None


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: Optional[str], forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The address limits should count against.

    `peer` is the connection's address; `forwarded_for` every X-Forwarded-For header
    value in order. Without trusted proxies (or from an untrusted peer) the peer it is.
    """
    address = peer or "unknown"
    if not trusted or not _trusted(address, trusted):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        address = hop
        if not _trusted(hop, trusted):
            break
    return address
