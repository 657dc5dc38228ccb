"""A headless Chromium for the report's browser test: Debian's `chromium` and `chromium-driver`, driven by selenium,
never a downloaded browser (selenium's manager is bypassed by naming both executables)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGE_LOAD_TIMEOUT_S = 90  # a 5 MB page on a loaded 2-core machine: generous, and only ever a ceiling
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver", "chromium-driver")


def find_executable(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def chromium_paths() -> tuple[str, str] | None:
    browser, driver = find_executable(CHROMIUM_NAMES), find_executable(DRIVER_NAMES)
    return (browser, driver) if browser and driver else None


def chromium_or_skip() -> tuple[str, str]:
    """The browser and driver paths for a browser test's fixture: skipped without them, failed under CI (`.ci/run`
    installs them, so a missing browser there is a broken install, not a reason to skip)."""
    paths = chromium_paths()
    if paths is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium/chromium-driver are not installed (.ci/run installs them)")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    return paths


@contextmanager
def headless_chromium(browser: str, driver_path: str, *, width: int = 1280, height: int = 900) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
        "--disable-dev-shm-usage",  # containers give /dev/shm little room
        "--disable-gpu",
        "--allow-file-access-from-files",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        driver.set_script_timeout(PAGE_LOAD_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()
