"""Handlers of the network flags: -p, --expose, --add-host, --dns*, --network."""

from __future__ import annotations

import ipaddress
import re
from typing import Tuple

from common.container_spec import PortBinding
from common.docker_args.run import Bad, Run
from common.docker_args.values import DOMAIN_NAME


def _parse_port_range(text: str, what: str) -> Tuple[int, int]:
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
    if not m:
        raise Bad(f"invalid {what} '{text}'")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    if end < start or end > 65535:
        raise Bad(f"invalid {what} '{text}'")
    return start, end


_PROTOCOLS = ("tcp", "udp", "sctp")


def publish(run: Run, written: str, value: str) -> None:
    spec = value
    if "=" in value:  # long syntax: published=8080,target=80[,protocol=udp]
        params = {"protocol": "tcp"}
        for param in value.split(","):
            k, eq, v = param.partition("=")
            if not eq:
                raise Bad(f"'{value}': expected name=value, got '{param}'")
            params[k] = v
        spec = f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in _PROTOCOLS:
        raise Bad(f"'{value}': unknown protocol '{proto}' (tcp, udp or sctp)")
    parts = rest.split(":")
    container = parts[-1]
    host_port = parts[-2] if len(parts) >= 2 else ""
    host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    if host_ip.startswith("[") and host_ip.endswith("]"):
        host_ip = host_ip[1:-1]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise Bad(f"'{value}': invalid host IP '{host_ip}'") from None
    if not container:
        raise Bad(f"'{value}': no container port")
    c_start, c_end = _parse_port_range(container, f"container port in '{value}'")
    if c_start == 0:
        raise Bad(f"'{value}': the container port cannot be 0")
    h_start = h_end = 0
    if host_port:
        h_start, h_end = _parse_port_range(host_port, f"host port in '{value}'")
        if (c_end - c_start) != (h_end - h_start) and c_end != c_start:
            raise Bad(f"'{value}': the host and container port ranges differ in size")
    for offset, port in enumerate(range(c_start, c_end + 1)):
        if not host_port:
            hp = ""
        elif c_end == c_start and h_end != h_start:
            hp = host_port  # one container port, a host range: Docker picks one
        else:
            hp = str(h_start + offset)
        run.add("ports", PortBinding(port, proto, host_ip, hp))


def expose(run: Run, written: str, value: str) -> None:
    if ":" in value:
        raise Bad(f"'{value}': --expose takes PORT[/PROTOCOL] or a range, not a mapping (use -p to publish)")
    port, _, proto = value.partition("/")
    proto = proto or "tcp"
    if proto not in _PROTOCOLS:
        raise Bad(f"'{value}': unknown protocol '{proto}' (tcp, udp or sctp)")
    start, end = _parse_port_range(port, f"port in '{value}'")
    for p in range(start, end + 1):
        run.add("exposed", f"{p}/{proto}")


def add_host(run: Run, written: str, value: str) -> None:
    host, eq, ip = value.partition("=")
    if not eq:
        host, _, ip = value.partition(":")
    if not host or not ip:
        raise Bad(f"'{value}': expected HOST:IP or HOST=IP")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise Bad(f"'{value}': '{ip}' is not an IP address (or host-gateway)") from None
    run.add("extra_hosts", f"{host}:{ip}")


def _go_ip_string(text: str) -> str:
    ip = ipaddress.ip_address(text.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def dns(run: Run, written: str, value: str) -> None:
    try:
        run.add("dns", _go_ip_string(value))
    except ValueError:
        raise Bad(f"'{value}' is not an IP address") from None


_DOMAIN_RE = re.compile(DOMAIN_NAME)


def dns_search(run: Run, written: str, value: str) -> None:
    text = value.strip(" ")
    if text == ".":
        run.add("dns_search", text)
        return
    domain = text.rstrip()
    domain = domain[:-1] if domain.endswith(".") else domain
    if not _DOMAIN_RE.fullmatch(domain) or len(domain) >= 255:
        raise Bad(f"'{value}' is not a valid domain")
    run.add("dns_search", domain)


def dns_option(run: Run, written: str, value: str) -> None:
    run.add("dns_options", value)


def network(run: Run, written: str, value: str) -> None:
    if "=" in value:
        raise Bad(
            f"'{value}': the advanced --network syntax (name=...,alias=...) is not "
            "supported by the orchestrator; write --network NAME"
        )
    if not value.strip():
        raise Bad("no network name")
    run.networks.append(value)
