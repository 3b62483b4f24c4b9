"""A recorded file through the page in Chromium: chosen with the file input, transcribed by the server's REST
endpoint, shown per leg with a word timeline; the text equals `gruasr transcribe`'s, a stereo call shows its two
legs side by side, and the JSON, SRT and VTT downloads hold what the server itself gives for the file."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from tests.browser.conftest import WAIT, open_page, wait_state
from tests.server.conftest import RATE, Running, Utterance, running, wav

from gruasr.cli.main import main
from gruasr.streaming import StreamingRecognizer


@pytest.fixture(scope="module")
def server(recognizer: StreamingRecognizer) -> Iterator[Running]:
    with running(recognizer) as r:
        yield r


def server_transcription(url: str, path: Path, fmt: str) -> str:
    """POST the file to the server's REST endpoint as the page does (multipart: file, model, response_format,
    timestamp_granularities[]=word): the response body."""
    boundary = uuid.uuid4().hex
    fields = {"model": "gruasr", "response_format": fmt, "timestamp_granularities[]": "word"}
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        f"Content-Type: audio/wav\r\n\r\n".encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/v1/audio/transcriptions", b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=WAIT) as response:  # noqa: S310
        return response.read().decode()


def cli_transcript(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`gruasr transcribe FILE`'s lines (one per channel: "A: text" for a call's legs, the text for mono)."""
    capsys.readouterr()
    assert main(["transcribe", str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def upload(driver: WebDriver, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))
    state = wait_state(driver, "file-state", {"done", "error", "refused", "gone"})
    assert state.get_attribute("data-state") == "done", state.text


def legs(driver: WebDriver) -> dict[str, str]:
    """The legs shown: {leg ("" for mono): text}."""
    found = driver.find_elements(By.CSS_SELECTOR, ".leg")
    return {e.get_attribute("data-leg") or "": e.get_attribute("data-text") or "" for e in found}


@pytest.fixture(scope="module")
def stereo(an4: list[Utterance], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-leg call: the caller (A, channel 0) speaks, then the agent (B, channel 1) answers."""
    a, b = an4[4].samples, an4[5].samples
    gap = int(0.5 * RATE)
    n = gap + len(a) + gap + len(b) + gap
    call = np.zeros((2, n), np.float32)
    call[0, gap : gap + len(a)] = a
    call[1, 2 * gap + len(a) : 2 * gap + len(a) + len(b)] = b
    return wav(tmp_path_factory.mktemp("call") / "call.wav", call)


def test_a_file_shows_what_gruasr_transcribe_gives(
    browser: WebDriver, server: Running, an4: list[Utterance], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = wav(tmp_path / "one.wav", an4[4].samples)
    open_page(browser, server.url)
    upload(browser, path)
    assert legs(browser) == {"": cli_transcript(path, capsys)[0]}
    words = browser.find_elements(By.CSS_SELECTOR, ".leg .segments .word")
    marks = browser.find_elements(By.CSS_SELECTOR, ".leg .timeline .mark")
    assert words and len(marks) == len(words)  # the word timeline: one mark per word
    assert all((m.get_attribute("style") or "").startswith("left:") for m in marks)
    assert "one.wav" in browser.find_element(By.ID, "file-state").text


def test_a_stereo_call_shows_two_legs_side_by_side_and_downloads_the_servers_formats(
    browser: WebDriver, server: Running, stereo: Path, downloads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_page(browser, server.url)
    upload(browser, stereo)
    expected = dict(line.split(": ", 1) for line in cli_transcript(stereo, capsys))
    assert set(expected) == {"A", "B"} and all(expected.values())
    assert legs(browser) == expected
    a, b = browser.find_elements(By.CSS_SELECTOR, ".leg")
    assert a.location["y"] == b.location["y"] and a.location["x"] < b.location["x"]  # side by side
    assert a.find_element(By.TAG_NAME, "h3").text == "Leg A (channel 0)"
    # the downloads: what the server gives for the same file
    for name in ("call.json", "call.srt", "call.vtt"):
        (downloads / name).unlink(missing_ok=True)
    for fmt in ("json", "srt", "vtt"):
        browser.find_element(By.ID, f"download-{fmt}").click()
    got = {}
    for fmt in ("json", "srt", "vtt"):
        target = downloads / f"call.{fmt}"
        deadline = time.monotonic() + WAIT
        # Chrome puts an empty file under the final name when a download starts and writes NAME.crdownload
        # beside it until it is done: wait for the download, not its placeholder
        while not (target.exists() and not list(downloads.glob("*.crdownload"))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.exists(), f"no download {target.name}: {sorted(p.name for p in downloads.iterdir())}"
        got[fmt] = target.read_text(encoding="utf-8")
    assert json.loads(got["json"]) == json.loads(server_transcription(server.url, stereo, "verbose_json"))
    assert got["srt"] == server_transcription(server.url, stereo, "srt")
    assert got["vtt"] == server_transcription(server.url, stereo, "vtt")
    assert "A: " in got["srt"] and "<v B>" in got["vtt"]


def test_a_refused_key_shows_the_servers_reason_and_a_good_key_works(
    browser: WebDriver, recognizer: StreamingRecognizer, an4: list[Utterance], tmp_path: Path
) -> None:
    """Keys on: the page itself opens without one and asks for it; a wrong key is refused with the server's
    reason, on the microphone (WebSocket close 1008) and on an upload (401); a good key, kept for the tab, works."""
    from gruasr.server.keys import KeyStore

    store = KeyStore(tmp_path / "keys.json")
    good = store.add("page")
    path = wav(tmp_path / "one.wav", an4[4].samples)
    with running(recognizer, keys_file=str(store.path)) as r:
        open_page(browser, r.url)
        field = browser.find_element(By.ID, "token")
        assert field.is_displayed()
        field.send_keys("gk_not-a-key")
        browser.find_element(By.ID, "mic").click()
        state = wait_state(browser, "state", {"refused", "gone", "error"})
        assert state.get_attribute("data-state") == "refused", state.text
        assert "unauthorized: unknown or revoked API key" in state.text
        browser.find_element(By.ID, "file").send_keys(str(path))
        state = wait_state(browser, "file-state", {"refused", "done", "error", "gone"})
        assert state.get_attribute("data-state") == "refused" and "unauthorized" in state.text, state.text
        field.clear()
        field.send_keys(good)
        browser.refresh()  # the key stays for the tab (sessionStorage)
        open_page(browser, r.url)
        assert browser.find_element(By.ID, "token").get_attribute("value") == good
        upload(browser, path)
        assert legs(browser)[""]
        browser.find_element(By.ID, "mic").click()
        wait_state(browser, "state", {"listening"})
        browser.find_element(By.ID, "mic").click()
        wait_state(browser, "state", {"stopped"})
        browser.execute_script("sessionStorage.clear()")
