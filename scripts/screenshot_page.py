"""The README's picture of the browser page (docs/page.png), taken the way a person would use the page: a server
on loopback, headless Chromium (Debian's, driven by Selenium as tests/browser does) whose fake microphone says two
real AN4 test utterances through the phone line, and the sample stereo call (src/gruasr/samples/call.wav) uploaded.
The picture is taken while the second utterance is being said: the first final, the live partial, the level and
the spectrum of what is sent.

    python scripts/screenshot_page.py [--data ../shared/data] [--out docs/page.png]

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make setup`) and the AN4 corpus ($GRUASR_DATA).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gruasr.audio.io import AN4_RAW, load_audio, save_wav
from gruasr.server.config import ServerConfig
from gruasr.server.runner import build

ROOT = Path(__file__).resolve().parents[1]
CALL = ROOT / "src" / "gruasr" / "samples" / "call.wav"
RATE = 8000
UTTERANCES = ["an4test_clstk/fcaw/cen7-fcaw-b.raw", "an4test_clstk/fcaw/cen8-fcaw-b.raw"]  # a phone number, a date
WIDTH = 1000


def microphone(data: Path, out: Path) -> Path:
    """Two AN4 test utterances with pauses, as 16-bit PCM WAV at 8 kHz (what Chromium's fake capture reads)."""
    gap = np.zeros(RATE, np.float32)
    parts = [gap[: RATE // 2]]
    for name in UTTERANCES:
        parts += [load_audio(data / "an4" / "wav" / name, raw=AN4_RAW, sample_rate=RATE).channel(0), gap]
    save_wav(out, np.concatenate(parts), RATE)
    return out


def chromium(mic: Path) -> webdriver.Chrome:
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", f"--window-size={WIDTH},1200", "--use-fake-ui-for-media-stream",
                     "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={mic}%noloop",
                     "--disable-background-networking", "--no-first-run", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def state(driver: webdriver.Chrome, element: str) -> str:
    return driver.find_element(By.ID, element).get_attribute("data-state") or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("GRUASR_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", default=str(ROOT / "docs" / "page.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, server = build(ServerConfig(port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    with tempfile.TemporaryDirectory() as tmp:
        driver = chromium(microphone(Path(args.data), Path(tmp) / "mic.wav"))
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(url)
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
            driver.find_element(By.ID, "file").send_keys(str(CALL))
            wait.until(lambda d: state(d, "file-state") == "done")
            driver.find_element(By.ID, "phone").click()
            driver.find_element(By.ID, "mic").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#finals .utterance"))
            wait.until(lambda d: len(d.find_element(By.ID, "partial").text.split()) >= 3)
            driver.execute_script("document.activeElement.blur()")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, height + 120)  # the window's frame: the page whole, no scrolling
            png = driver.get_screenshot_as_png()
            driver.find_element(By.ID, "mic").click()
            wait.until(lambda d: state(d, "state") == "stopped")
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(30)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)  # a few shades of text: small, sharp
    image.save(args.out, optimize=True)
    print(f"{args.out}: {image.size[0]}x{image.size[1]}, {Path(args.out).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
