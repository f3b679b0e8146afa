"""Headless Chromium for the page tests: Debian's chromium and chromedriver
(scripts/browser.sh installs them), never Selenium Manager, which would try to
download a browser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH = 1400
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=zh-CN",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    f"--window-size={WIDTH},1200",
)
# Every host name but 127.0.0.1 fails to resolve: a page that needs the internet
# (a CDN, a web font) shows it by not rendering.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@contextmanager
def chromium(profile: Path, log: Path, *extra_args: str) -> Iterator[webdriver.Chrome]:
    """Headless Chromium through Debian's chromedriver; never Selenium Manager,
    which would try to download a browser. Fails (not skips) when it cannot start."""
    hint = "run scripts/browser.sh (make test does) to install chromium and chromium-driver"
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.is_file():
            pytest.fail(f"{binary} is missing: {hint}", pytrace=False)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, *extra_args, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        pytest.fail(f"headless Chromium did not start: {exc.msg}\n{hint}; log: {log}")
    try:
        yield driver
    finally:
        driver.quit()
