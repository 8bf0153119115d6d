"""`vaekit serve`: every endpoint and its bad inputs through the framework's test client, and the page in a
real headless browser (Debian's chromium driven by Selenium at that binary; skipped with a reason without it)."""

import shutil
import socket
import subprocess
import sys
import time

import pytest

from vaekit.cli import main

starlette = pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from vaekit.serve import open_runs  # noqa: E402
from vaekit.serve.app import create_app  # noqa: E402

SMALL = ["--train-size", "256", "--eval-size", "64", "--epochs", "1", "--batch-size", "64", "--no-tensorboard"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    assert main(["train", "--run-dir", str(root / "vae"), "--arch", "mlp", "--hidden", "32", "--latent-dim", "4",
                 *SMALL]) == 0
    assert main(["train", "--run-dir", str(root / "cvae"), "--model", "cvae", "--arch", "mlp", "--hidden", "32",
                 "--latent-dim", "2", *SMALL]) == 0
    assert main(["train", "--run-dir", str(root / "gan"), "--model", "gan", "--latent-dim", "8", *SMALL]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs):
    views, poems = open_runs([runs / "vae", runs / "cvae", runs / "gan"])
    return TestClient(create_app(views, poems))


def test_runs_are_described_with_their_codes(client):
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"vae", "cvae", "gan"}
    assert runs["vae"]["shape"] == [1, 28, 28] and runs["vae"]["sliders"] == 2 and len(runs["vae"]["codes"]) == 1000
    assert runs["cvae"]["conditional"] and runs["cvae"]["sliders"] == 0
    assert not runs["gan"]["has_encoder"] and runs["gan"]["codes"] == []
    page = client.get("/")
    assert page.status_code == 200 and "Latent explorer" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_decoding_follows_the_point(client):
    a = client.post("/api/decode", json={"run": "vae", "point": [-2, 1]}).json()["image"]
    b = client.post("/api/decode", json={"run": "vae", "point": [2, -1], "sliders": [1, 0]}).json()["image"]
    assert a.startswith("data:image/png;base64,") and a != b
    c0 = client.post("/api/decode", json={"run": "cvae", "point": [0, 0], "label": 0}).json()["image"]
    c7 = client.post("/api/decode", json={"run": "cvae", "point": [0, 0], "label": 7}).json()["image"]
    assert c0 != c7


def test_a_drawing_is_encoded_and_read(client):
    pixels = [0.0] * 784
    for r in range(5, 23):
        pixels[r * 28 + 14] = 1.0
    out = client.post("/api/encode", json={"run": "vae", "pixels": pixels}).json()
    assert out["reconstruction"].startswith("data:image/png") and len(out["point"]) == 2 and out["spread"] > 0
    assert out["classifier"]["label"] in [str(i) for i in range(10)]
    gan = client.post("/api/encode", json={"run": "gan", "pixels": pixels})
    assert gan.status_code == 400 and "GAN has no encoder" in gan.json()["error"]


def test_samples_and_interpolations(client):
    out = client.post("/api/sample", json={"run": "cvae", "n": 5, "seed": 1, "label": 3}).json()
    assert len(out["images"]) == 5
    same = client.post("/api/sample", json={"run": "cvae", "n": 5, "seed": 1, "label": 3}).json()
    assert same == out
    for run, source in (("vae", "test"), ("gan", "samples")):
        strip = client.post("/api/interpolate", json={"run": run, "steps": 6, "source": source}).json()
        assert len(strip["images"]) == 6


def test_poems_keep_their_shape_and_rules(client):
    from vaekit.poetry.verse import check

    assert "quatrain" in client.get("/api/poems").json()["forms"]
    poems = client.post("/api/poem", json={"form": "quatrain", "n": 3, "seed": 2, "acrostic": "春夏秋冬"}).json()["poems"]
    assert len(poems) == 3 and all([line[0] for line in p] == list("春夏秋冬") for p in poems)
    assert all(check("".join(p)).fits for p in poems)
    simple = client.post("/api/poem", json={"form": "quatrain", "n": 1, "seed": 2, "simplified": True}).json()
    assert len(simple["poems"][0]) == 4
    path = client.post("/api/poem/interpolate", json={"form": "couplet", "a": "床前明月光，疑是地上霜。",
                                                      "b": "舉頭望明月，低頭思故鄉。", "steps": 4}).json()["poems"]
    assert len(path) == 4 and all(len(p) == 2 for p in path)
    assert all(check("".join(p), "couplet").fits for p in path)  # the page keeps the rules along the line too


def test_the_themed_model_writes_to_a_theme(client):
    from vaekit.poetry.verse import check

    listing = client.get("/api/poems").json()
    assert "quatrain" in listing["themed"] and "autumn" in listing["themes"]
    poems = client.post("/api/poem", json={"form": "quatrain", "n": 4, "seed": 1, "theme": "autumn"}).json()["poems"]
    assert len(poems) == 4 and all(check("".join(p)).fits for p in poems)
    bad = client.post("/api/poem", json={"form": "quatrain", "theme": "winter"})
    assert bad.status_code == 400 and "theme must be one of" in bad.json()["error"]


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/decode", {"run": "nope", "point": [0, 0]}, "run must be one of"),
    ("/api/decode", {"run": "vae", "point": [0]}, "point must be a list"),
    ("/api/decode", {"run": "vae", "point": [0, float("nan")]}, "point must be a number"),
    ("/api/decode", {"run": "vae", "point": [0, 99]}, "point must be between"),
    ("/api/decode", {"run": "vae", "point": [0, 0], "sliders": [0, 0, 0, 0]}, "sliders must be a list"),
    ("/api/decode", {"run": "vae", "point": [0, 0], "label": 3}, "not conditional"),
    ("/api/decode", {"run": "cvae", "point": [0, 0], "label": 10}, "label must be between 0 and 9"),
    ("/api/encode", {"run": "vae", "pixels": [0.5] * 10}, "pixels must be a list of 784"),
    ("/api/encode", {"run": "vae", "pixels": [2.0] * 784}, "between 0 and 1"),
    ("/api/sample", {"run": "vae", "n": 0}, "n must be between 1 and 64"),
    ("/api/sample", {"run": "vae", "seed": -1}, "seed must be between"),
    ("/api/sample", {"run": "vae", "temperature": "hot"}, "temperature must be a number"),
    ("/api/interpolate", {"run": "vae", "source": "elsewhere"}, "source must be samples or test"),
    ("/api/interpolate", {"run": "gan", "source": "test"}, "GAN has no encoder"),
    ("/api/poem", {"form": "sonnet"}, "form must be one of"),
    ("/api/poem", {"form": "quatrain", "acrostic": "春"}, "needs 4 characters"),
    ("/api/poem", {"form": "quatrain", "keywords": "x" * 100}, "at most 64 characters"),
    ("/api/poem", {"form": "quatrain", "simplified": "yes"}, "simplified must be true or false"),
    ("/api/poem/interpolate", {"form": "couplet", "a": "hello", "b": "床前明月光疑是地上霜"}, "not a Chinese"),
])
def test_bad_inputs_get_a_json_error_not_a_traceback(client, path, body, message):
    import json

    response = client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] and "Traceback" not in response.text


def test_a_body_that_is_not_json_is_refused(client):
    response = client.post("/api/sample", content=b"[1", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON object" in response.json()["error"]


def test_serve_refuses_what_is_not_a_run(tmp_path, capsys):
    from vaekit.serve import serve

    with pytest.raises(ValueError, match="no such run directory"):
        serve([tmp_path / "missing"], port=1)


# ---------------------------------------------------------------- the page in a real browser

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="Debian's chromium and chromium-driver are absent (`make test` installs them as root with apt)")
def test_the_page_in_a_real_browser(runs, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "vaekit.cli", "serve", str(runs / "vae"), str(runs / "cvae"),
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = None
    try:
        line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        for _ in range(50):  # uvicorn prints the URL just before it listens
            try:
                driver.get(f"http://127.0.0.1:{port}/")
                break
            except Exception:  # noqa: BLE001 (connection refused while it starts)
                time.sleep(0.2)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        decoded = driver.find_element(By.ID, "decoded")
        wait.until(lambda d: decoded.get_attribute("src").startswith("data:image/png"))
        pad = driver.find_element(By.ID, "pad")
        ActionChains(driver).move_to_element_with_offset(pad, -120, -100).perform()
        wait.until(lambda d: "u -2." in d.find_element(By.ID, "pad-coords").text)
        first = decoded.get_attribute("src")
        ActionChains(driver).move_to_element_with_offset(pad, 120, 100).perform()
        wait.until(lambda d: "u 2." in d.find_element(By.ID, "pad-coords").text)
        assert decoded.get_attribute("src") != first  # the decoded image follows the pointer

        draw = driver.find_element(By.ID, "draw")
        ActionChains(driver).move_to_element_with_offset(draw, 0, -60).click_and_hold().move_by_offset(0, 60) \
            .move_by_offset(0, 60).release().perform()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#reconstruction-wrap img"))
        assert "classifier reads" in driver.find_element(By.ID, "draw-info").text

        driver.find_element(By.ID, "poem-acrostic").send_keys("春夏秋冬")
        driver.find_element(By.ID, "poem-write").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#poems .poem"))
        poems = driver.find_elements(By.CSS_SELECTOR, "#poems .poem")
        assert len(poems) == 4
        for poem in poems:
            lines = poem.text.splitlines()
            assert [line[0] for line in lines] == list("春夏秋冬") and all(len(line) == 6 for line in lines)

        for form in ("quatrain", "couplet"):  # the ends shown fit the form, so interpolate works untouched
            Select(driver.find_element(By.ID, "poem-form")).select_by_value(form)
            driver.find_element(By.ID, "poem-interpolate").click()
            lines = 4 if form == "quatrain" else 2
            wait.until(lambda d, n=lines: (p := d.find_elements(By.CSS_SELECTOR, "#poem-path .poem"))
                       and len(p[0].text.splitlines()) == n)
            assert not driver.find_element(By.ID, "message").is_displayed()
            assert len(driver.find_elements(By.CSS_SELECTOR, "#poem-path .poem")) == 6
        Select(driver.find_element(By.ID, "poem-form")).select_by_value("quatrain")

        driver.find_element(By.ID, "poem-acrostic").clear()
        driver.find_element(By.ID, "poem-acrostic").send_keys("春")
        driver.find_element(By.ID, "poem-write").click()
        wait.until(lambda d: d.find_element(By.ID, "message").is_displayed())
        assert "needs 4 characters" in driver.find_element(By.ID, "message").text
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=10)
