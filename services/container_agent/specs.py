"""The container specs the agent creates from: its own reading of mcp.config.json.

Env values are secrets and never travel in a message, so `container.ensure` carries
only the server id and the spec hash; the agent finds the spec (env values included)
in the same file the scheduler reads. When its copy has another hash for the server,
the file changed since it was read: it is read again, once per request. Still
different means the two processes see different files (or environments): an error
that says so, never a container built from a guess.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable, Optional

from common.config import McpConfig, ServerConfig, load_config
from common.protocol import ErrorCode, ServiceError

log = logging.getLogger(__name__)

Loader = Callable[[], McpConfig]


class ServerSpecs:
    def __init__(self, path: os.PathLike | str, port_range: tuple[int, int], loader: Optional[Loader] = None) -> None:
        self.path = Path(path)
        self._loader = loader or (lambda: load_config(self.path, port_range=port_range))
        self._lock = threading.Lock()
        self._config: Optional[McpConfig] = None

    def reload(self) -> McpConfig:
        config = self._loader()
        with self._lock:
            self._config = config
        if not config.readable:
            log.warning("%s", "; ".join(str(i) for i in config.errors) or f"{self.path}: unusable")
        else:
            log.info("read %s: %d server(s)", self.path, len(config.servers))
        return config

    def current(self) -> McpConfig:
        with self._lock:
            config = self._config
        return config if config is not None else self.reload()

    def find(self, server_id: str) -> Optional[ServerConfig]:
        """The server as last read (no re-read), e.g. for its stop timeout."""
        return self.current().servers.get(server_id)

    def lookup(self, server_id: str, spec_hash: str) -> ServerConfig:
        """The server whose spec has `spec_hash`; ServiceError when there is none."""
        server = self.current().servers.get(server_id)
        if server is None or server.spec_hash != spec_hash:
            server = self.reload().servers.get(server_id)
        if server is None:
            config = self.current()
            if server_id in config.invalid:
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"server {server_id!r} is invalid in {self.path}; see `mcp-orchestrator validate`",
                )
            if not config.readable:
                raise ServiceError(
                    ErrorCode.UNAVAILABLE,
                    f"{self.path} cannot be used by the container-agent: {'; '.join(str(i) for i in config.errors)}",
                )
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"server {server_id!r} is not in {self.path} as read by the container-agent"
            )
        if server.spec_hash != spec_hash:
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"server {server_id!r}: the container-agent's {self.path} gives "
                f"spec hash {server.spec_hash}, the request asks for {spec_hash}: "
                f"the scheduler and the container-agent read different files or "
                f"environments",
            )
        return server
