"""moto running as a real HTTP server on loopback, and a load balancer inside it.

The server lives for the whole session; every test gets a reset backend with a fresh
VPC, two subnets, an instance, an ALB and an HTTP listener.
"""

from __future__ import annotations

import logging
import os

import pytest

from tests.alb_agent.moto_world import REGION, AwsWorld, make_world, reset_moto


@pytest.fixture(scope="session")
def moto_url():
    moto_server = pytest.importorskip("moto.server")
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_EC2_METADATA_DISABLED",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        )
    }
    # Credentials for moto, and no lookup of the real instance-metadata address.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def aws(moto_url) -> AwsWorld:
    yield make_world(moto_url)
    reset_moto(moto_url)
