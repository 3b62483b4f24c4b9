"""The page of `gruasr serve` in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver (never a driver or browser fetched by Selenium Manager). One browser for the session; its fake
microphone plays real AN4 speech (Chromium's `--use-file-for-fake-audio-capture`: a WAV file, read at its own
rate and converted to the capture's; `%noloop`: once, then silence; every new capture starts the file afresh).

Chromium missing is a failure that says how to install it (`make setup`, or apt-get), never a skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common import selenium_manager
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from tests.server.conftest import RATE, Utterance, an4, recognizer, wav  # noqa: F401 (fixtures shared with tests/server)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 60  # seconds: generous, for a loaded 2-core machine
MIC_UTTERANCES = 6  # AN4 utterances the fake microphone says (three speakers), 1 s of silence after each


@dataclass(frozen=True)
class Microphone:
    """What the fake microphone plays: `samples` (8 kHz float) from `path`, saying `utterances` in order."""

    path: Path
    samples: np.ndarray
    utterances: list[Utterance]

    @property
    def reference(self) -> str:
        return " ".join(u.text for u in self.utterances)


@pytest.fixture(scope="session")
def microphone(an4: list[Utterance], tmp_path_factory: pytest.TempPathFactory) -> Microphone:  # noqa: F811
    """Six AN4 test utterances of three speakers, 0.5 s of silence first and 1 s after each (about 23 s), as
    16-bit PCM WAV at 8 kHz, which Chromium's fake capture reads as it is (the track it gives is 48 kHz; headless,
    without a sound card, the page's audio context runs at 44.1 kHz, and the worklet takes that back to 8 kHz)."""
    chosen = an4[:MIC_UTTERANCES]
    gap = np.zeros(RATE, np.float32)
    samples = np.concatenate([gap[: RATE // 2], *(np.concatenate([u.samples, gap]) for u in chosen)])
    return Microphone(wav(tmp_path_factory.mktemp("mic") / "mic.wav", samples), samples, chosen)


def _no_selenium_manager(*args: object, **kwargs: object) -> None:
    raise AssertionError("Selenium Manager must not run: the tests use Debian's /usr/bin/chromedriver and chromium")


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(microphone: Microphone, downloads: Path) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's chromium and chromedriver; missing: {', '.join(missing)}. Install them "
            "with `make setup` (or: apt-get update && apt-get install -y --no-install-recommends chromium "
            "chromium-driver)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, were it ever called, must not reach a network
    patch = pytest.MonkeyPatch()
    patch.setattr(selenium_manager.SeleniumManager, "binary_paths", _no_selenium_manager)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--window-size=1100,1300",
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone.path}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking",  # nothing but the test server: no updates, no sync, no metrics
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(argument)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox (CI runs as root)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for `console_errors`
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield driver
    finally:
        driver.quit()
        patch.undo()
        shutil.rmtree(downloads, ignore_errors=True)


# -- helpers --------------------------------------------------------------------------------------------------------


def open_page(driver: WebDriver, url: str) -> None:
    """Load the page and wait until its module ran."""
    driver.get(url + "/")
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def wait_state(driver: WebDriver, element: str, states: set[str], timeout: float = WAIT) -> WebElement:
    """Wait until the state line `element` (id) is in one of `states`; its element."""

    def reached(d: WebDriver) -> WebElement | Literal[False]:
        found = d.find_element(By.ID, element)
        return found if found.get_attribute("data-state") in states else False

    try:
        return WebDriverWait(driver, timeout).until(reached)
    except Exception as err:
        found = driver.find_element(By.ID, element)
        raise AssertionError(
            f"#{element} never reached {sorted(states)}: it is {found.get_attribute('data-state')!r}: {found.text!r}"
        ) from err


def console_errors(driver: WebDriver) -> list[str]:
    """The page's console errors since the last call (uncaught exceptions, CSP violations, failed loads)."""
    chrome: Any = driver  # get_log is Chromium's (goog:loggingPrefs), not in WebDriver's type
    return [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]


def finals(driver: WebDriver) -> list[str]:
    """The texts of the live finals on the page."""
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#finals .text")]
