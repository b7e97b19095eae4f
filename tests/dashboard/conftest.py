"""Fixtures of the dashboard tests: the app under TestClient with a fake Control."""

from __future__ import annotations

import pytest
from falcon import testing

from common.settings import Settings
from services.dashboard.app import create_app
from tests.dashboard.support import FakeControl, WebUser, make_settings


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def client(settings, control) -> testing.TestClient:
    return testing.TestClient(create_app(settings, control))


@pytest.fixture
def user(client) -> WebUser:
    return WebUser(client)


@pytest.fixture
def logged_in(user) -> WebUser:
    return user.login()
