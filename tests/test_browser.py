"""The page of `tinyser serve` in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by .ci/run in CI) driven by Selenium against a real server.

1. A fake microphone fed from a generated WAV (--use-file-for-fake-audio-capture): the live
   timeline fills with rows whose labels are those `tinyser listen --input FILE` gives.
2. A file dropped on the page: the label shown is `tinyser predict`'s.

Skipped only where Chromium, its driver, Selenium or the [web] extra is missing.
TINYSER_SCREENSHOT=docs/web-page.png keeps a screenshot of the page (the README's)."""
from __future__ import annotations

import base64
import collections
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import serve_in_thread, write_speechlike
from typer.testing import CliRunner

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium and chromedriver not installed "
                                                         "(apt install chromium chromium-driver)"),
    pytest.mark.slow,
]

from tinyser.cli import app as cli  # noqa: E402
from tinyser.inference import load_model  # noqa: E402
from tinyser.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    # 6 s of speech-like audio at 48 kHz (the rate Chromium's fake device plays)
    return write_speechlike(tmp_path_factory.mktemp("browser") / "talk.wav", 6.0, 48000, subtype="PCM_16")


@pytest.fixture(scope="module")
def server():
    with serve_in_thread(create_app(load_model())) as (port, _, _):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser(clip):
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1000", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={clip}", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(fn, seconds: float = 30.0, every: float = 0.25):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(every)
    return fn()


def _listen_labels(path: Path) -> list[tuple[str, bool]]:
    log = path.with_suffix(".jsonl")
    log.unlink(missing_ok=True)
    r = CliRunner().invoke(cli, ["listen", "--input", str(path), "--log", str(log)])
    assert r.exit_code == 0, r.output
    return [(row["label"], row["voiced"]) for row in map(json.loads, log.read_text().splitlines())]


def test_fake_microphone_fills_the_live_timeline_with_listens_labels(browser, server, clip):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait(lambda: "model" in browser.find_element(By.ID, "card-body").text)
    browser.find_element(By.ID, "mic").click()
    rows = _wait(lambda: [(li.get_attribute("data-label"), li.get_attribute("data-voiced") == "true")
                          for li in browser.find_elements(By.CSS_SELECTOR, "#live-rows li")] if len(
        browser.find_elements(By.CSS_SELECTOR, "#live-rows li")) >= 5 else None, 40)
    status = browser.find_element(By.ID, "mic-status").text
    assert rows, f"no live rows; status: {status!r}"
    assert "Listening" in status, status
    expected = _listen_labels(clip)
    voiced = [label for label, v in rows if v]
    want = collections.Counter(label for label, v in expected if v)
    assert voiced, rows
    # the fake device loops the file from wherever capture starts: the labels heard are listen's
    assert set(voiced) <= set(want), (rows, expected)
    assert collections.Counter(voiced).most_common(1)[0][0] == want.most_common(1)[0][0]
    assert browser.find_element(By.ID, "now-label").text in set(voiced) | {"(no speech)"}
    width = browser.execute_script("return document.getElementById('live-canvas').width")
    assert width > 0
    shot = os.environ.get("TINYSER_SCREENSHOT")
    if shot:
        browser.find_element(By.ID, "mic").click()  # stop
        _drop(browser, clip)
        _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".verdict[data-label]"))
        time.sleep(1.0)
        browser.save_screenshot(shot)


def _drop(browser, path: Path) -> None:
    """Drop a file on the page's drop zone, as a drag from the desktop does."""
    data = base64.b64encode(path.read_bytes()).decode()
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], arguments[1], {type: "audio/wav"}));
        const zone = document.getElementById("drop");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    """, data, path.name)


def test_dropped_file_shows_predicts_label(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    clip = write_speechlike(tmp_path / "dropped.wav", 3.0, 16000, subtype="PCM_16")
    browser.get(server + "/")
    _drop(browser, clip)
    verdict = _wait(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".verdict[data-label]")], 30)
    assert verdict, browser.find_element(By.ID, "results").text
    expected = load_model().predict_file(clip)
    assert verdict[0].get_attribute("data-label") == expected["label"]
    assert expected["label"] in verdict[0].text
    assert "dropped.wav" in browser.find_element(By.ID, "results").text
    canvases = browser.execute_script(
        "return [...document.querySelectorAll('.result canvas')].map((c) => c.width)")
    assert len(canvases) == 2 and min(canvases) > 0  # waveform and timeline drawn


@pytest.mark.parametrize("setting,device,words", [("denied", True, "refused"), ("granted", False, "No microphone")])
def test_the_page_says_when_the_microphone_is_refused_or_absent(server, setting, device, words):
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    if device:  # a (fake) microphone the user refuses; without it this machine has none
        opts.add_argument("--use-fake-device-for-media-stream")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.execute_cdp_cmd("Browser.setPermission", {"permission": {"name": "microphone"},
                                                         "setting": setting, "origin": server})
        driver.get(server + "/")
        driver.find_element(By.TAG_NAME, "body").send_keys("m")  # the keyboard shortcut
        status = _wait(lambda: (lambda t: t if words in t else None)(driver.find_element(By.ID, "mic-status").text),
                       15)
        assert status and words in status, driver.find_element(By.ID, "mic-status").text
        assert "error" in driver.find_element(By.ID, "mic-status").get_attribute("class")
        assert driver.find_element(By.ID, "mic").get_attribute("aria-pressed") == "false"
    finally:
        driver.quit()


def test_a_ten_minute_file_fits_then_zooms_and_scrolls(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    clip = write_speechlike(tmp_path / "ten-minutes.wav", 600.0, 8000, subtype="PCM_16")
    browser.get(server + "/")
    _drop(browser, clip)
    assert _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".verdict[data-label]"), 60), \
        browser.find_element(By.ID, "results").text
    size = "const s = document.querySelector('.result .scroll'), c = s.querySelectorAll('canvas')[1];" \
           "return [c.width, s.clientWidth, s.scrollWidth];"
    assert _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".result canvas[data-px-per-s]"), 30)
    fit, view, _ = browser.execute_script(size)
    assert fit <= view  # the whole 10 minutes at once
    zoom_in = browser.find_element(By.CSS_SELECTOR, ".result .tools button[aria-label='zoom in']")
    for _ in range(3):
        zoom_in.click()
    wide, view, scroll = browser.execute_script(size)
    assert wide >= 7 * fit and scroll > view  # zoomed: one window is several pixels, scrolled sideways
    browser.find_element(By.CSS_SELECTOR, ".result .scroll").send_keys("-")  # the keyboard zooms out
    assert browser.execute_script(size)[0] < wide
