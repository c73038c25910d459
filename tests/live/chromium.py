"""Debian's chromium, headless, driven by Selenium: for the live page's tests and its benchmark."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


@contextlib.contextmanager
def headless_chromium(chromium: str, chromedriver: str, load_timeout_s: float) -> Iterator[Any]:
    """A headless Chromium with a throw-away profile, quit (and the profile removed) afterwards."""
    options = Options()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="socklab-live-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_page_load_timeout(load_timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
