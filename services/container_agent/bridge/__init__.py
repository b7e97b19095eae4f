"""The MCP bridge: the container-agent's data plane.

Serves each running MCP server over HTTP on its own host port, under the prefix
`/mcp/{id}/`: Streamable HTTP at `/mcp/{id}/mcp`, the legacy HTTP+SSE transport
at `/mcp/{id}/sse` + `/mcp/{id}/messages`, and `/mcp/{id}/health` for the ALB.
A stdio server is reached by attaching to its container; a server that speaks
HTTP itself is reverse-proxied.

    bridge = Bridge(docker.from_env(), BridgeConfig(bind_host="0.0.0.0"), on_event=...)
    await bridge.start()
    port = await bridge.serve("time", 8101, container_id)
    await bridge.wait_ready("time", 30)
    bridge.health("time"); bridge.stderr_tail("time", 50)
    await bridge.unserve("time"); await bridge.close()

`BridgeThread` runs the same on a background thread with blocking calls.
"""

from __future__ import annotations

from .bridge import Bridge, BridgeError, BridgeEvent, ServerHealth
from .config import BridgeConfig
from .thread import BridgeThread

__all__ = ["Bridge", "BridgeConfig", "BridgeError", "BridgeEvent", "BridgeThread", "ServerHealth"]
