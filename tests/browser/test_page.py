"""The page's basics in Chromium: every control has an accessible name, the state and results are live regions,
focus is visible from the keyboard; and its signal path (dsp.js, run in the page) against the project's Python:
G.711 mu-law code for code, the resampler's low-pass before decimation, the phone line's voice band."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from tests.browser.conftest import console_errors, open_page
from tests.server.conftest import Running, running

from gruasr.audio.g711 import lin2ulaw, ulaw2lin
from gruasr.audio.telephony import band_limit
from gruasr.server.keys import KeyStore
from gruasr.streaming import StreamingRecognizer


@pytest.fixture(scope="module")
def server(recognizer: StreamingRecognizer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server with keys (so the page shows its key field too)."""
    store = KeyStore(Path(tmp_path_factory.mktemp("keys")) / "keys.json")
    store.add("page")
    with running(recognizer, keys_file=str(store.path)) as r:
        yield r


def test_every_control_has_an_accessible_name_and_results_are_live(browser: WebDriver, server: Running) -> None:
    console_errors(browser)
    open_page(browser, server.url)
    assert console_errors(browser) == []  # no CSP violation, nothing failed to load
    controls = browser.find_elements(By.CSS_SELECTOR, "button, input, select, textarea, a[href], meter, canvas")
    assert len(controls) >= 7
    for control in controls:
        if control.is_displayed():
            assert control.accessible_name.strip(), control.get_attribute("outerHTML")
    # actions are real buttons: nothing else pretends to be one
    assert browser.find_elements(By.CSS_SELECTOR, "[role=button], [onclick], [tabindex]") == []
    assert browser.find_element(By.ID, "mic").tag_name == "button"
    # the state lines and the results are announced
    for element in ("state", "file-state"):
        assert browser.find_element(By.ID, element).get_attribute("role") == "status"
    for element in ("state", "finals", "legs"):
        assert browser.find_element(By.ID, element).get_attribute("aria-live") == "polite"
    # keyboard: Tab reaches the key field, then the microphone button, with a visible focus ring
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    seen = []
    for _ in range(6):
        active = browser.switch_to.active_element
        seen.append(active.get_attribute("id"))
        if active.get_attribute("id") == "mic":
            break
        active.send_keys(Keys.TAB)
    assert seen[0] == "token" and seen[-1] == "mic", seen
    outline = browser.execute_script(
        "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]"
    )
    assert outline[0] != "none" and outline[1] != "0px", outline


def _in_page(driver: WebDriver, body: str) -> Any:
    """Run `body` (JavaScript with `m`, the page's dsp.js module, in scope; it returns a value) in the page."""
    script = (
        "const done = arguments[arguments.length - 1];"
        f"import('/web/dsp.js').then((m) => {{ {body} }}).then(done, (e) => done({{error: String(e)}}));"
    )
    result = driver.execute_async_script(script)
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def test_mu_law_in_the_page_equals_g711_for_every_sample(browser: WebDriver, server: Running) -> None:
    open_page(browser, server.url)
    codes, back = _in_page(
        browser,
        "const codes = []; for (let v = -32768; v < 32768; v++) codes.push(m.linearToUlaw(v));"
        "const back = []; for (let c = 0; c < 256; c++) back.push(m.ulawToLinear(c)); return [codes, back];",
    )
    assert np.array_equal(np.array(codes), lin2ulaw(np.arange(-32768, 32768)))
    assert np.array_equal(np.array(back), ulaw2lin(np.arange(256)))


def _gain_db(x: np.ndarray, hz: float, rate: int) -> float:
    """Amplitude of the `hz` component of x (its second half: past the filters' transients), in dB re 1."""
    y = x[len(x) // 2 :]
    n = np.arange(len(x) // 2, len(x))
    phasor = np.exp(-2j * np.pi * hz * n / rate)
    return float(20 * np.log10(2 * abs(np.mean(y * phasor)) + 1e-12))


@pytest.mark.parametrize("rate", [48000, 44100])
def test_the_resampler_keeps_the_band_and_stops_what_would_alias(
    browser: WebDriver, server: Running, rate: int
) -> None:
    """A full-scale tone at the microphone's rate down to 8 kHz: 300-3400 Hz within 0.1 dB; tones above 4 kHz,
    which plain decimation folds into the band, at least 60 dB down at the frequency they would fold to."""
    open_page(browser, server.url)
    tones = [300, 1000, 3000, 3400, 4500, 5000, 7000, 12000]
    outputs = _in_page(
        browser,
        f"const rate = {rate}; const out = [];"
        f"for (const hz of {tones}) {{ const r = new m.Resampler(rate, 8000); const y = [];"
        "  for (let start = 0; start < rate; start += 128) {"  # one second in 128-sample render quanta
        "    const x = new Float32Array(128);"
        "    for (let i = 0; i < 128; i++) x[i] = 0.9 * Math.sin(2 * Math.PI * hz * (start + i) / rate);"
        "    y.push(...r.push(x)); }"
        "  out.push(y); }"
        "return out;",
    )
    for hz, y in zip(tones, outputs, strict=True):
        y = np.array(y)
        assert abs(len(y) - 8000) <= 40, (hz, len(y))
        if hz <= 3400:
            assert abs(_gain_db(y, hz, 8000) - 20 * np.log10(0.9)) < 0.1, hz
        else:
            folded = abs(hz - 8000 * round(hz / 8000))
            assert _gain_db(y, folded, 8000) < 20 * np.log10(0.9) - 60, hz


def test_the_phone_line_band_matches_the_projects_telephone_channel(browser: WebDriver, server: Running) -> None:
    """The page's 300-3400 Hz band (cascaded Butterworth sections) against gruasr.audio.telephony.band_limit
    (scipy's order-4 band-pass): within 1.5 dB wherever the band passes more than -30 dB, and both below -30 dB
    at 100 Hz and 3.9 kHz."""
    open_page(browser, server.url)
    tones = [100, 200, 300, 500, 1000, 2000, 3000, 3400, 3600, 3900]
    outputs = _in_page(
        browser,
        f"return {tones}.map((hz) => {{ const line = new m.PhoneLine(8000); const y = [];"
        "  for (let i = 0; i < 8000; i++) y.push(line.band(0.5 * Math.sin(2 * Math.PI * hz * i / 8000)));"
        "  return y; });",
    )
    n = np.arange(8000)
    for hz, y in zip(tones, outputs, strict=True):
        page = _gain_db(np.array(y), hz, 8000) - 20 * np.log10(0.5)
        ours = _gain_db(band_limit(0.5 * np.sin(2 * np.pi * hz * n / 8000), 8000), hz, 8000) - 20 * np.log10(0.5)
        if ours > -30:
            assert abs(page - ours) < 1.5, (hz, page, ours)
        if hz in (100, 3900):
            assert page < -30 and ours < -30, (hz, page, ours)
