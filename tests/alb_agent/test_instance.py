"""Which instance is registered: settings, else IMDSv2, else a clear error."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.instance import InstanceIdError, resolve_instance_id
from common.settings import AwsSettings
from services.alb_agent.aws_client import ApiCallCounter
from services.alb_agent.model import INSTANCE_ID, DesiredRoute
from services.alb_agent.router import AlbRouter
from tests.alb_agent.listener_view import groups


def config(**values) -> AwsSettings:
    base = dict(region="us-east-1", alb_arn="arn:alb", listener_arn="arn:listener")
    base.update(values)
    return AwsSettings(**base)


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class StrictImds(BaseHTTPRequestHandler):
    """IMDSv2 as EC2 enforces it: no token, no answer."""

    seen: list = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        self.seen.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")))
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._answer(200, b"token-123")
        else:
            self._answer(400, b"")

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("X-aws-ec2-metadata-token")))
        if self.headers.get("X-aws-ec2-metadata-token") != "token-123":
            self._answer(401, b"")
        elif self.path == "/latest/meta-data/instance-id":
            self._answer(200, b"i-0abcdef1234567890")
        else:
            self._answer(404, b"")


@pytest.fixture
def strict_imds():
    StrictImds.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StrictImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_setting_wins_and_nothing_is_asked(dead_url):
    assert resolve_instance_id(config(instance_id="i-settings", imds_endpoint=dead_url)) == "i-settings"


def test_from_moto_instance_metadata(moto_url):
    assert resolve_instance_id(config(imds_endpoint=moto_url)) == "i-fake"


def test_imdsv2_token_then_instance_id(strict_imds):
    assert resolve_instance_id(config(imds_endpoint=strict_imds)) == "i-0abcdef1234567890"
    assert StrictImds.seen == [
        ("PUT", "/latest/api/token", "300"),
        ("GET", "/latest/meta-data/instance-id", "token-123"),
    ]


def test_a_clear_error_when_nothing_answers(dead_url):
    with pytest.raises(InstanceIdError) as err:
        resolve_instance_id(config(imds_endpoint=dead_url))
    message = str(err.value)
    assert dead_url in message and "[aws] instance_id" in message


def test_a_silent_metadata_service_times_out():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(InstanceIdError):
            resolve_instance_id(config(imds_endpoint=url), timeout=0.3)


def test_the_router_reports_it_and_calls_no_aws(aws, dead_url):
    router = AlbRouter(aws.config(instance_id="", imds_endpoint=dead_url))
    counter = ApiCallCounter(router.client)
    result = router.apply({"time": DesiredRoute(8001)})
    assert result.failure.code == INSTANCE_ID
    assert "instance_id" in result.failure.message
    assert counter.order == [] and router.degraded


def test_the_router_registers_the_instance_metadata_reports(aws):
    router = AlbRouter(aws.config(instance_id="", imds_endpoint=aws.url))
    assert router.apply({"time": DesiredRoute(8001)}).ok
    (ours,) = [g for g in groups(aws) if g.tags]
    assert ours.targets == (("i-fake", 8001),)
