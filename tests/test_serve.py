"""`vaekit serve`: every endpoint and its bad inputs through the framework's test client, and the page in a
real headless browser (Debian's chromium driven by Selenium at that binary; skipped with a reason without it)."""

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vaekit.serve
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
    return TestClient(create_app(views, poems, port=8000), base_url="http://127.0.0.1:8000")


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
    import vaekit
    from vaekit.poetry import VerseRules, kept_in_place, reconstruct
    from vaekit.poetry.verse import check

    assert "quatrain" in client.get("/api/poems").json()["forms"]
    poems = client.post("/api/poem", json={"form": "quatrain", "n": 3, "seed": 2, "acrostic": "春夏秋冬"}).json()["poems"]
    assert len(poems) == 3 and all([line[0] for line in p] == list("春夏秋冬") for p in poems)
    assert all(check("".join(p)).fits for p in poems)
    simple = client.post("/api/poem", json={"form": "quatrain", "n": 1, "seed": 2, "simplified": True}).json()
    assert len(simple["poems"][0]) == 4
    answer = client.post("/api/poem/interpolate", json={"form": "couplet", "a": "床前明月光，疑是地上霜。",
                                                        "b": "舉頭望明月，低頭思故鄉。", "steps": 4}).json()
    path = answer["poems"]
    assert len(path) == 4 and all(len(p) == 2 for p in path)
    ends = ("床前明月光疑是地上霜", "舉頭望明月低頭思故鄉")  # the page says how much of each end is told back
    assert answer["kept"] == [sum(x == y for x, y in zip(given, "".join(p), strict=True)) / 10
                              for given, p in zip(ends, (path[0], path[-1]), strict=True)]
    assert all(check("".join(p), "couplet").fits for p in path)  # the page keeps the rules along the line too
    a, b = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。", "紅豆生南國，春來發幾枝。願君多采擷，此物最相思。"
    answer = client.post("/api/poem/interpolate", json={"form": "quatrain", "a": a, "b": b, "steps": 3}).json()
    told = reconstruct(vaekit.load("quatrain-recall"), a, rules=VerseRules("quatrain"))  # the model that tells back
    assert "".join(answer["poems"][0]) == told and answer["kept"][0] == kept_in_place(a, told)


def test_the_page_the_command_line_and_the_library_share_one_sampling_default(client):
    import inspect
    from dataclasses import asdict

    from vaekit.cli import build_parser
    from vaekit.poetry import SAMPLING, write
    from vaekit.poetry.decode import decode

    assert client.get("/api/poems").json()["sampling"] == asdict(SAMPLING)
    args = build_parser().parse_args(["poem", "write"])
    assert (args.temperature, args.top_p, args.repeat_penalty, args.beam, args.best_of) == (
        SAMPLING.temperature, SAMPLING.top_p, SAMPLING.repeat_penalty, SAMPLING.beam, SAMPLING.best_of)
    for fn in (write, decode):
        defaults = {k: v.default for k, v in inspect.signature(fn).parameters.items()}
        assert all(defaults[k] == v for k, v in asdict(SAMPLING).items() if k in defaults), fn.__name__
    page = (Path(vaekit.serve.__file__).parent / "static" / "index.html").read_text()
    assert 'value="' not in page.split('id="poem-t"')[1].split(">")[0]  # filled from /api/poems, not typed twice


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
    *[(path, {"run": run, "point": [0, 0]}, "run must be one of") for path in ("/api/decode", "/api/encode",
                                                                             "/api/sample", "/api/interpolate")
      for run in ([], {}, {"a": 1}, 3)],
    ("/api/decode", {"run": "vae", "point": [10**400, 0]}, "point must be between"),
    ("/api/sample", {"run": "vae", "temperature": 10**400}, "temperature must be between"),
    ("/api/sample", {"run": "vae", "seed": 2**64}, "seed must be between"),
    ("/api/poem", {"form": ["quatrain"]}, "form must be one of"),
    ("/api/poem", {"form": "quatrain", "temperature": -10**400}, "temperature must be between"),
    ("/api/poem", {"form": "quatrain", "acrostic": "□夏秋冬"}, "mark for an unknown character"),
    ("/api/poem", {"form": "quatrain", "first_line": "白日依山□"}, "mark for an unknown character"),
    ("/api/poem", {"form": "quatrain", "keywords": "□"}, "mark for an unknown character"),
    ("/api/poem", {"form": "quatrain", "first_line": "白日依山盡", "template": "平起首句入韵"}, "does not rhyme"),
])
def test_bad_inputs_get_a_json_error_not_a_traceback(client, path, body, message):
    import json

    response = client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] and "Traceback" not in response.text


def test_a_body_that_is_not_json_is_refused(client):
    for content in (b"[1", b'{"n": ' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000 if False else b"[" * 30_000,
                    b"\xff\xfe"):
        response = client.post("/api/sample", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error"] == "the request body must be a JSON object"


def test_none_means_no_rule_on_the_page_as_on_the_command_line(client):
    from vaekit.poetry.verse import check

    poems = client.post("/api/poem", json={"form": "quatrain", "n": 6, "seed": 4, "rhyme": "none",
                                           "template": "none"}).json()["poems"]
    assert len(poems) == 6 and all(len(p) == 4 for p in poems)
    assert not all(check("".join(p)).fits for p in poems)  # no rule kept means some poem breaks a template


# ---------------------------------------------------------------- the API is for the page on this machine

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("headers", "message"), [
    ({"Content-Type": "text/plain", "Origin": "http://elsewhere.example"}, "another site"),  # a "simple" request
    ({"Content-Type": "text/plain"}, "must be JSON"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "must be JSON"),
    ({**JSON, "Origin": "http://elsewhere.example"}, "another site"),
    ({**JSON, "Origin": "null"}, "another site"),
    ({**JSON, "Origin": "http://127.0.0.1:9999"}, "another site"),
    ({**JSON, "Host": "rebound.example:8000"}, "addressed to"),  # DNS rebinding: the page's name is not ours
])
def test_cross_origin_and_rebinding_requests_are_refused(client, headers, message):
    import json

    response = client.post("/api/poem", content=json.dumps({"form": "quatrain", "n": 1}), headers=headers)
    assert response.status_code == 403 and message in response.json()["error"]


def test_the_pages_own_requests_pass_the_guard(client):
    own = client.post("/api/poem", json={"form": "quatrain", "n": 1}, headers={"Origin": "http://127.0.0.1:8000"})
    assert own.status_code == 200 and len(own.json()["poems"]) == 1
    assert client.get("/api/runs", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")


def test_a_body_far_larger_than_any_valid_one_is_413(client):
    big = b'{"run": "vae", "pixels": [' + b"0.5, " * 40_000 + b'0.5]}'
    response = client.post("/api/encode", content=big, headers=JSON)
    assert response.status_code == 413 and "larger than any valid one" in response.json()["error"]


def test_model_work_runs_off_the_event_loop_behind_a_bounded_queue(runs, monkeypatch):
    import threading

    import vaekit.poetry
    from vaekit.serve.app import QUEUE

    release, started = threading.Event(), threading.Event()

    def slow_write(*args, **kwargs):
        started.set()
        release.wait(60)
        return ["床前明月光疑是地上霜舉頭望明月低頭思故鄉"]

    monkeypatch.setattr(vaekit.poetry, "write", slow_write)
    import time

    views, poems = open_runs([runs / "vae"])
    codes: list[int] = []
    app = create_app(views, poems, port=8000)
    worker = app.app.state.worker
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        def ask():
            codes.append(client.post("/api/poem", json={"form": "quatrain", "n": 1}).status_code)

        threads = [threading.Thread(target=ask) for _ in range(QUEUE + 1)]
        threads[0].start()
        assert started.wait(30)
        for t in threads[1:]:
            t.start()
        deadline = time.monotonic() + 60
        while worker.pending < QUEUE + 1 and time.monotonic() < deadline:  # every request in, before the probe
            time.sleep(0.01)
        assert worker.pending == QUEUE + 1
        # the worker is held: the page's own request is still answered, and one request more than the queue is 503
        assert client.get("/api/runs").status_code == 200
        over = client.post("/api/poem", json={"form": "quatrain", "n": 1})
        assert over.status_code == 503 and "busy" in over.json()["error"]
        assert not release.is_set() and codes == []  # nothing finished while the worker was held
        release.set()
        for t in threads:
            t.join(30)
    assert codes == [200] * (QUEUE + 1)


ENDPOINT_KEYS = {
    "/api/decode": ["run", "point", "sliders", "label"],
    "/api/encode": ["run", "pixels", "label"],
    "/api/sample": ["run", "n", "seed", "temperature", "label"],
    "/api/interpolate": ["run", "steps", "seed", "source", "label"],
    "/api/poem": ["form", "n", "seed", "temperature", "acrostic", "first_line", "keywords", "rhyme", "template",
                  "simplified", "theme"],
    "/api/poem/interpolate": ["form", "a", "b", "steps", "simplified"],
}


def _json_values():
    from hypothesis import strategies as st

    good = st.sampled_from(["vae", "cvae", "gan", "quatrain", "couplet", "test", "samples", "春夏秋冬", "none",
                            "auto", "白日依山盡", "床前明月光疑是地上霜", "autumn", "七陽", ""])
    scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
               | st.sampled_from([10**400, -(10**400), 2**63, 2**64, 0, 1, 2, 3, 20])
               | st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False) | st.text(max_size=12) | good)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4),
                                                                                             inner, max_size=3),
                        max_leaves=12)


def test_fuzzed_bodies_on_every_endpoint_never_get_a_500(client):
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = {"/api/decode": {"run": "vae", "point": [0, 0]}, "/api/encode": {"run": "vae", "pixels": [0.0] * 784},
            "/api/sample": {"run": "vae", "n": 2}, "/api/interpolate": {"run": "vae", "steps": 3},
            "/api/poem": {"form": "quatrain", "n": 1},
            "/api/poem/interpolate": {"form": "couplet", "a": "床前明月光疑是地上霜", "b": "舉頭望明月低頭思故鄉",
                                      "steps": 2}}
    # a valid body with up to three of its endpoint's keys set to fuzzed values: both answers are reached
    poems = st.sampled_from(["床前明月光疑是地上霜", "舉頭望明月，低頭思故鄉。", "白日依山盡黃河入海流"])
    plausible = {"run": st.sampled_from(["vae", "cvae", "gan"]), "label": st.integers(0, 9),
                 "point": st.lists(st.floats(-6, 6, allow_subnormal=False), min_size=2, max_size=2),
                 "sliders": st.lists(st.floats(-6, 6, allow_subnormal=False), max_size=2), "n": st.integers(1, 20),
                 "seed": st.integers(0, 2**32 - 1), "temperature": st.floats(0, 2, allow_subnormal=False),
                 "steps": st.integers(2, 12),
                 "source": st.sampled_from(["test", "samples"]), "form": st.sampled_from(["quatrain", "couplet"]),
                 "acrostic": st.sampled_from(["春夏秋冬", "明月"]), "first_line": st.sampled_from(["白日依山盡", "山"]),
                 "keywords": st.sampled_from(["月,山", "水"]), "rhyme": st.sampled_from(["none", "auto", "七陽", "光"]),
                 "template": st.sampled_from(["none", "auto", "仄起"]), "simplified": st.booleans(),
                 "theme": st.sampled_from(["autumn", "moon"]), "a": poems, "b": poems,
                 "pixels": st.just([0.5] * 784)}
    overrides = lambda keys: st.lists(st.sampled_from(keys), max_size=3, unique=True).flatmap(  # noqa: E731
        lambda chosen: st.fixed_dictionaries({k: plausible[k] | _json_values() for k in chosen}))
    # a valid body with up to three of its endpoint's keys set to plausible or fuzzed values: both answers reached
    bodies = st.sampled_from(sorted(ENDPOINT_KEYS)).flatmap(
        lambda path: st.tuples(st.just(path), overrides(ENDPOINT_KEYS[path]).map(lambda d, p=path: {**base[p], **d})))

    seen: dict[int, int] = {}

    @settings(max_examples=150, deadline=20_000, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(bodies)
    def one(case):
        path, body = case
        response = client.post(path, content=json.dumps(body), headers=JSON)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400), (path, body, response.text)
        if response.status_code == 400:
            error = response.json()["error"]
            assert "\n" not in error and len(error) < 400 and "Traceback" not in error

    one()
    assert seen.get(400, 0) > 20 and seen.get(200, 0) > 20, seen


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


NO_BROWSER = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are absent (`make test` installs them as root with apt)")


@contextlib.contextmanager
def _page(run_dirs: list[Path]):
    """`vaekit serve` over the runs in a subprocess, and headless chromium on its page once the page is ready."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "vaekit.cli", "serve", *map(str, run_dirs), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        yield driver, wait
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=10)


@NO_BROWSER
def test_the_page_in_a_real_browser(runs, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from vaekit.poetry.tunes import check_ci

    with _page([runs / "vae", runs / "cvae"]) as (driver, wait):
        decoded = driver.find_element(By.ID, "decoded")
        wait.until(lambda d: (decoded.get_attribute("src") or "").startswith("data:image/png"))
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

        for form in ("quatrain", "couplet", "regulated"):  # the ends shown fit the form: interpolate works untouched
            Select(driver.find_element(By.ID, "poem-form")).select_by_value(form)
            driver.find_element(By.ID, "poem-interpolate").click()
            lines = {"quatrain": 4, "couplet": 2, "regulated": 8}[form]
            wait.until(lambda d, n=lines: (p := d.find_elements(By.CSS_SELECTOR, "#poem-path .poem"))
                       and len(p[0].text.splitlines()) == n)
            assert not driver.find_element(By.ID, "message").is_displayed()
            assert len(driver.find_elements(By.CSS_SELECTOR, "#poem-path .poem")) == 6
            assert "told back" in driver.find_element(By.ID, "poem-kept").text  # the ends beside the poems given

        Select(driver.find_element(By.ID, "poem-form")).select_by_value("ci")  # a ci to a tune chosen from a list
        assert driver.find_element(By.ID, "poem-tune-label").is_displayed()
        assert not driver.find_element(By.ID, "poem-acrostic").is_displayed()
        assert not driver.find_element(By.ID, "poem-interpolate-row").is_displayed()
        Select(driver.find_element(By.ID, "poem-tune")).select_by_value("菩萨蛮")
        driver.find_element(By.ID, "poem-write").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#poems .poem")[0].text.splitlines()) == 8)
        ci_lines = driver.find_elements(By.CSS_SELECTOR, "#poems .poem")[0].text.splitlines()
        assert [len(line) - 1 for line in ci_lines] == [7, 7, 5, 5, 5, 5, 5, 5]  # its stops come with it
        assert check_ci("".join(ci_lines), "菩萨蛮") == []  # traditional characters, judged by their simplified tones
        driver.save_screenshot(str(tmp_path / "ci.png"))
        Select(driver.find_element(By.ID, "poem-form")).select_by_value("quatrain")
        assert driver.find_element(By.ID, "poem-acrostic").is_displayed()

        driver.find_element(By.ID, "poem-acrostic").clear()
        driver.find_element(By.ID, "poem-acrostic").send_keys("春")
        driver.find_element(By.ID, "poem-write").click()
        wait.until(lambda d: d.find_element(By.ID, "message").is_displayed())
        assert "needs 4 characters" in driver.find_element(By.ID, "message").text
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000


@NO_BROWSER
def test_a_hierarchical_run_in_a_real_browser(runs, tmp_path):
    """The pad moves an hvae's top group; the lower groups' temperature shows for it alone and changes its images."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    hvae = tmp_path / "hvae"
    assert main(["train", "--run-dir", str(hvae), "--model", "hvae", "--width", "16", "--latent-dim", "2",
                 "--groups", "1,1", *SMALL]) == 0
    with _page([hvae, runs / "vae"]) as (driver, wait):
        info = driver.find_element(By.ID, "run-info").text
        assert "hvae · 2 latent groups" in info and "conv" not in info  # a group at each of its two scales
        decoded = driver.find_element(By.ID, "decoded")
        wait.until(lambda d: (decoded.get_attribute("src") or "").startswith("data:image/png"))
        lower = driver.find_element(By.ID, "lower-t")
        assert lower.is_displayed()
        at_mean = decoded.get_attribute("src")
        lower.clear()
        lower.send_keys("1")
        driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", lower)
        wait.until(lambda d: decoded.get_attribute("src") != at_mean)  # the lower groups drawn, not at their mean
        driver.find_element(By.ID, "sample").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples img")) == 16)
        assert not driver.find_element(By.ID, "message").is_displayed()
        driver.save_screenshot(str(tmp_path / "hvae.png"))
        Select(driver.find_element(By.ID, "run")).select_by_value("vae")
        assert not lower.is_displayed()  # a flat run has no lower groups
