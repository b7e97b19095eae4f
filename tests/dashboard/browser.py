"""Headless Chromium from Debian, driven by Selenium (scripts/ensure-browser.sh installs it)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags TESTING.md lists: no sandbox (root in a container), nothing phoning home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


class Browser:
    def __init__(self) -> None:
        webdriver = pytest.importorskip("selenium.webdriver")
        from selenium.webdriver.chrome.service import Service

        for path in (CHROMIUM, CHROMEDRIVER):
            if not Path(path).exists():
                # A CI run must not skip the real thing silently (like the Docker fixture).
                missing = pytest.fail if os.environ.get("CI") else pytest.skip
                missing(f"{path} is missing: run scripts/ensure-browser.sh")
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        # An explicit driver path: Selenium never looks for (or downloads) one itself.
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    def wait(self, condition: Callable[[Any], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition(self.driver)
                if value:
                    return value
            except Exception as exc:  # the DOM is replaced under us every second
                last_error = exc
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what}"
            + (f" ({type(last_error).__name__}: {last_error})" if last_error else "")
            + f"\nURL {self.driver.current_url}"
        )

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def click(self, css: str, timeout: float = 5.0) -> None:
        """Click `css`, finding it again if the live update replaced it meanwhile."""
        from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
        from selenium.webdriver.common.by import By

        deadline = time.monotonic() + timeout
        while True:
            try:
                element = self.driver.find_element(By.CSS_SELECTOR, css)
                # Centred, so that the sticky page header cannot be in the way.
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
                element.click()
                return
            except (StaleElementReferenceException, ElementClickInterceptedException):
                if time.monotonic() > deadline:
                    raise

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
