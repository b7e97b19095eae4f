"""The Docker engine calls of the container-agent (docker SDK), errors as ServiceError.

Every call here blocks; the agent makes them on worker threads, never on its ZeroMQ
loop nor on the bridge's event loop. Errors become `ServiceError` with a code and a
message that names the server and the operation; Docker's own text is kept (it is
what an operator needs) with known secret values masked, since an engine error can
quote the container's configuration.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Mapping, Optional

import docker
import docker.errors
import requests.exceptions

from common import server_ids
from common.container_labels import list_filters
from common.container_spec import ContainerSpec, create_kwargs
from common.protocol import ErrorCode, ServiceError
from common.secrets import redact

from .status import split_log

log = logging.getLogger(__name__)

# An engine error text is cut to this length in replies.
MAX_ERROR_CHARS = 500


@contextlib.contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Turn what the SDK raises into a ServiceError whose message starts with `what`."""
    try:
        yield
    except ServiceError:
        raise
    except docker.errors.ImageNotFound as exc:
        raise ServiceError(ErrorCode.FAILED, f"{what}: image not found: {_explain(exc)}") from None
    except docker.errors.NotFound as exc:
        raise ServiceError(ErrorCode.NOT_FOUND, f"{what}: {_explain(exc)}") from None
    except docker.errors.APIError as exc:
        code = ErrorCode.CONFLICT if exc.status_code == 409 else ErrorCode.FAILED
        raise ServiceError(code, f"{what}: {_explain(exc)}") from None
    except (requests.exceptions.Timeout, TimeoutError):
        raise ServiceError(ErrorCode.TIMEOUT, f"{what}: the Docker engine did not answer in time") from None
    except (requests.exceptions.ConnectionError, docker.errors.DockerException, OSError) as exc:
        raise ServiceError(
            ErrorCode.UNAVAILABLE, f"{what}: the Docker engine cannot be reached ({type(exc).__name__})"
        ) from None


def _explain(exc: docker.errors.APIError) -> str:
    text = exc.explanation if isinstance(exc.explanation, str) and exc.explanation else str(exc)
    text = redact(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class DockerOps:
    """Blocking engine calls on one docker.DockerClient (thread-safe for calls)."""

    def __init__(self, client: docker.DockerClient, cluster: str) -> None:
        self.client = client
        self.api = client.api
        self.cluster = cluster

    # --- reading ----------------------------------------------------------------

    def inspect(self, ref: str) -> Optional[dict]:
        """`docker inspect` of a container by id or name; None when there is none."""
        with docker_errors(f"inspect {ref}"):
            try:
                return self.api.inspect_container(ref)
            except docker.errors.NotFound:
                return None

    def inspect_server(self, server_id: str) -> Optional[dict]:
        return self.inspect(server_ids.container_name(server_id))

    def list_ours(self) -> list[dict]:
        """Summaries (`docker ps -a`) of the containers of this cluster's agents."""
        with docker_errors("list containers"):
            return self.api.containers(all=True, filters=list_filters(self.cluster))

    def image_present(self, image: str) -> bool:
        with docker_errors(f"inspect image {image}"):
            try:
                self.api.inspect_image(image)
                return True
            except docker.errors.ImageNotFound:
                return False
            except docker.errors.NotFound:
                return False

    def stderr_lines(self, ref: str, n: int) -> Optional[list[str]]:
        """The last `n` stderr lines Docker logged for the container; None when its log
        driver cannot be read back or the container is gone."""
        if n <= 0:
            return []
        try:
            with docker_errors(f"logs of {ref}"):
                data = self.api.logs(ref, stdout=False, stderr=True, tail=n)
        except ServiceError as exc:
            log.debug("%s", exc.message)
            return None
        return split_log(data)[-n:]

    # --- changing ----------------------------------------------------------------

    def pull(self, image: str, platform: Optional[str]) -> None:
        with docker_errors(f"pull {image}"):
            self.client.images.pull(image, platform=platform or None)

    def create(self, spec: ContainerSpec, name: str, labels: Mapping[str, str]) -> str:
        """Create the container (not started); its id. Env values are revealed to the
        SDK here and nowhere else."""
        kwargs = create_kwargs(spec)
        kwargs["name"] = name
        kwargs["labels"] = {**kwargs.get("labels", {}), **labels}
        image = kwargs.pop("image")
        with docker_errors(f"create {name}"):
            container = self.client.containers.create(image, **kwargs)
        return container.id

    def start(self, container_id: str, state: str = "") -> None:
        with docker_errors(f"start {container_id[:12]}"):
            if state == "paused":
                self.api.unpause(container_id)
            else:
                self.api.start(container_id)

    def stop(self, container_id: str, timeout: Optional[int]) -> None:
        """Stop (SIGTERM or the image's stop signal, then SIGKILL after `timeout`
        seconds; None: the container's own stop timeout)."""
        with docker_errors(f"stop {container_id[:12]}"):
            try:
                self.api.stop(container_id, timeout=timeout)
            except docker.errors.NotFound:
                return

    def kill(self, container_id: str, stop_signal: str, timeout: int) -> None:
        """Stop with `stop_signal`, then SIGKILL after `timeout` seconds (a container whose
        configured stop signal is not the one to stop it with, see swarm_service)."""
        with docker_errors(f"stop {container_id[:12]}"):
            try:
                self.api.kill(container_id, signal=stop_signal)
                try:
                    self.api.wait(container_id, timeout=timeout)
                    return
                except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                    pass
                self.api.kill(container_id, signal="SIGKILL")
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # not running any more: what was asked
                    return
                raise

    def restart(self, container_id: str, timeout: Optional[int]) -> None:
        with docker_errors(f"restart {container_id[:12]}"):
            self.api.restart(container_id, timeout=timeout if timeout is not None else 10)

    def remove(self, container_id: str) -> None:
        """Remove it (killing it if it still runs) and its anonymous volumes, as
        `docker run --rm` would have; named volumes stay."""
        with docker_errors(f"remove {container_id[:12]}"):
            try:
                self.api.remove_container(container_id, v=True, force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and "already in progress" in str(exc.explanation):
                    return  # someone else is removing it: the outcome is the same
                raise


def proxy_address(attrs: Mapping[str, Any], http_port: int) -> Optional[tuple[str, int]]:
    """Where the agent reaches a server that speaks HTTP on `http_port` inside its
    container: the host network, else a host port it is published on, else the
    container's address on its network."""
    host_config = attrs.get("HostConfig") or {}
    if host_config.get("NetworkMode") == "host":
        return "127.0.0.1", http_port
    settings = attrs.get("NetworkSettings") or {}
    for binding in (settings.get("Ports") or {}).get(f"{http_port}/tcp") or []:
        host_ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
        if host_port.isdigit():
            # A wildcard binding is reachable on loopback too.
            ip = "127.0.0.1" if host_ip in ("", "0.0.0.0") else host_ip
            if ip != "::":
                return ip, int(host_port)
    if settings.get("IPAddress"):
        return settings["IPAddress"], http_port
    for network in (settings.get("Networks") or {}).values():
        if isinstance(network, dict) and network.get("IPAddress"):
            return network["IPAddress"], http_port
    return None
