"""Free TCP ports on loopback, found by binding them."""

from __future__ import annotations

import random
import socket

# Below Linux's ephemeral range (32768-60999): no outgoing connection takes them meanwhile.
LOW, HIGH = 20000, 32768


def free_port(host: str = "127.0.0.1") -> int:
    """One port nothing listens on (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_port_range(size: int, host: str = "127.0.0.1") -> tuple[int, int]:
    """(first, last) of `size` consecutive ports nothing listens on, each checked by
    binding it (all held until the whole range is checked)."""
    for _ in range(200):
        start = random.randrange(LOW, HIGH - size)
        held: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                sock = socket.socket()
                held.append(sock)
                sock.bind((host, port))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {size} free consecutive ports found")
