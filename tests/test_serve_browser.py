"""The ``faseg serve`` page in a real headless browser (Debian's chromium and chromedriver, via selenium)."""

import base64
import shutil
import socket
import threading
import time

import pytest

from tests import imagefiles

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium installed: apt-get install chromium chromium-driver (.ci/run does)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


@pytest.fixture
def server(segmenter):
    """The app on a free loopback port, served by uvicorn in a thread."""
    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is installed with the [test] extra")
    from faseg_cli.serve.app import create_app
    from faseg_cli.serve.service import CandidateModels, SegmentService

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = SegmentService(
        segmenter, CandidateModels(["voc"], "both", "clip", "blip", "cpu", None), "tiny", random_weights=True
    )
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(100):
        if running.started:
            break
        time.sleep(0.1)
    assert running.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/"
    running.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed with the [test] extra")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_upload_type_classes_see_overlay_and_fractions(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = imagefiles.rgb(tmp_path / "photo.png", 360, 240)
    browser.get(server)
    assert browser.title == "faseg"
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: b.find_element(By.ID, "threshold-value").text == "0.55")
    browser.find_element(By.ID, "file").send_keys(str(photo))
    assert browser.find_element(By.ID, "hint").text == "photo.png"
    browser.find_element(By.ID, "classes").send_keys("dog, person")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda b: b.find_element(By.ID, "status").text.startswith(("done", "error")))
    assert browser.find_element(By.ID, "status").text == "done"
    overlay = browser.find_element(By.ID, "overlay")
    assert overlay.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", overlay) == 360
    rows = [row.text.split() for row in browser.find_elements(By.CSS_SELECTOR, "#fractions tr")]
    assert [row[0] for row in rows] == ["background", "dog", "person"]
    assert sum(float(row[-1].rstrip("%")) for row in rows) == pytest.approx(100, abs=0.2)
    download = browser.find_element(By.ID, "download")
    assert download.get_attribute("download") == "photo.png"
    mask = base64.b64decode(download.get_attribute("href").removeprefix("data:image/png;base64,"))
    assert mask.startswith(b"\x89PNG")
    assert browser.save_screenshot(str(tmp_path / "page.png"))


def test_page_explains_a_missing_image_and_server_errors(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    browser.find_element(By.ID, "go").click()
    assert browser.find_element(By.ID, "status").text == "pick or drop an image first"
    (tmp_path / "notes.png").write_text("not an image")
    browser.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.png"))
    browser.find_element(By.ID, "classes").send_keys("dog")
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "status").text.startswith("error:"))
    assert "not an image" in browser.find_element(By.ID, "status").text


def test_an_error_clears_the_previous_result_and_the_page_names_the_test_model(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: b.find_element(By.ID, "random").is_displayed())
    assert "random weights" in browser.find_element(By.ID, "random").text
    assert "FA-Seg" in browser.find_element(By.ID, "what").text
    options = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "vocab")).options]
    assert options == ["", "voc"]
    browser.find_element(By.ID, "file").send_keys(str(imagefiles.rgb(tmp_path / "photo.png", 360, 240)))
    browser.find_element(By.ID, "classes").send_keys("dog")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda b: b.find_element(By.ID, "status").text == "done")
    assert browser.find_element(By.ID, "result").is_displayed()
    browser.find_element(By.ID, "classes").clear()
    browser.find_element(By.ID, "classes").send_keys("dog, Dog")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda b: b.find_element(By.ID, "status").text.startswith("error:"))
    assert "duplicate class name" in browser.find_element(By.ID, "status").text
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert "duplicate class name" in browser.find_element(By.ID, "empty").text
    assert browser.find_element(By.ID, "overlay").get_attribute("src") in (None, "")
    assert browser.save_screenshot(str(tmp_path / "error.png"))
