"""This project's bridge in a process of its own, serving one running container.

    python -m benchmarks.bridge_host --server-id ID --container CONTAINER [--port N]
                                     [--profile FILE]

Runs `BridgeThread` as the container-agent does (the bridge on its own thread, the
main thread free), serves the container's stdio on 127.0.0.1, waits until the MCP
handshake is done and prints one JSON line `{"port": N}` on stdout. It runs until its
stdin closes or SIGTERM arrives. With --profile, the bridge's thread (where all of its
work happens) is profiled with cProfile and the statistics are written to FILE on exit.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Optional, Sequence

DOCKER_API_VERSION = "1.41"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge_host", description=__doc__.split("\n")[0])
    parser.add_argument("--server-id", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", default="")
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no traffic counting and no access log (the product counts and logs every request)",
    )
    parser.add_argument(
        "--access-log",
        default="info",
        choices=("off", "debug", "info", "warning"),
        help="the access log's level when not --quiet (off: counted, not logged)",
    )
    args = parser.parse_args(argv)

    import docker

    from common.logs import setup_logging
    from services.container_agent.bridge import BridgeConfig, BridgeThread

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = docker.from_env(version=DOCKER_API_VERSION, timeout=60)
    if args.quiet:
        config = BridgeConfig(bind_host="127.0.0.1", access_log_level="off", count_traffic=False)
    else:  # as the container-agent runs it: an access line per request on stderr, counted
        setup_logging("INFO", "container-agent")
        config = BridgeConfig(bind_host="127.0.0.1", access_log_level=args.access_log)
    bridge = BridgeThread(client, config)
    bridge.start()
    # cProfile sees only the thread that enables it: the bridge's own (the main one waits).
    profiler = _profile_loop(bridge) if args.profile else None
    try:
        port = bridge.serve(args.server_id, args.port, args.container)
        if not bridge.wait_ready(args.server_id, 60):
            health = bridge.health(args.server_id)
            print(json.dumps({"error": f"not ready: {health.reason if health else 'unknown'}"}), flush=True)
            return 1
        print(json.dumps({"port": port}), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
        return 0
    finally:
        if profiler is not None:
            profiler.disable_sync(bridge)
            profiler.profiler.dump_stats(args.profile)
        bridge.stop()
        client.close()


class _LoopProfiler:
    def __init__(self) -> None:
        import cProfile

        self.profiler = cProfile.Profile()

    def disable_sync(self, bridge) -> None:
        async def off() -> None:
            self.profiler.disable()

        bridge.call(off, timeout=10)


def _profile_loop(bridge) -> _LoopProfiler:
    holder = _LoopProfiler()

    async def on() -> None:
        holder.profiler.enable()

    bridge.call(on, timeout=10)
    return holder


if __name__ == "__main__":
    sys.exit(main())
