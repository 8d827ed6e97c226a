"""The real app, as a person and a script meet it: app.py served on a free port, driven by
headless Chromium (Playwright) and by gradio_client. Screenshots go to artifacts/screenshots/."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import MNIST, ROOT

SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs: Path, *extra) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(runs.parent / f"app-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py", "--runs-dir", str(runs), "--port", str(port),
                             "--no-browser", *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError((runs.parent / f"app-{port}.log").read_text()[-3000:])
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # answering (e.g. 401 behind --auth)
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("app did not start within 120 s")


@pytest.fixture(scope="module")
def server(trained_runs, tmp_path_factory):
    runs = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(trained_runs, runs)
    proc, url = start_app(runs)
    yield url, runs
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(server[0])
        yield pg
        browser.close()


def latent_src(page) -> str:
    return page.locator("#latent-image").get_attribute("src") or ""


def test_browser_walkthrough(page, server):
    url, runs = server
    # 1. Snapshot: the run's facts, its samples and quality figures
    page.get_by_text("preset", exact=False).first.wait_for()
    facts = page.locator("#facts").inner_text()
    assert "tiny" in facts and "dcgan" in facts and "python -m training" in facts
    page.locator("#quality").get_by_text("FCD").wait_for()
    assert "Epoch 3" in page.locator("#quality").inner_text()
    page.locator("#samples img").wait_for()
    page.screenshot(path=str(SHOTS / "1-snapshot.png"), full_page=True)

    # pick another snapshot from the epoch dropdown
    page.locator("#epoch-dd input").click()
    page.get_by_role("option", name="epoch 2", exact=False).click()
    page.locator("#quality").get_by_text("Epoch 2").wait_for()

    # 2. Sliders: moving a slider changes the image and its score
    page.get_by_role("tab", name="Latent sliders").click()
    page.locator("#latent-image").wait_for()
    before = latent_src(page)
    assert before.startswith("data:image/png;base64,")
    rng = page.locator("#dim-slider-0 input[type=range]")
    rng.fill("3.5")
    page.wait_for_function(
        "(b) => { const i = document.querySelector('#latent-image'); return i && i.src !== b; }",
        arg=before, timeout=30_000)
    assert latent_src(page) != before
    assert "real (D of epoch 2)" in page.locator("#score").inner_text()
    vec = page.locator("#vector textarea").input_value()
    assert len(vec.split(",")) == 64 and "3.5000" in vec
    page.screenshot(path=str(SHOTS / "2-sliders.png"), full_page=True)

    # a pasted vector with words in it: a clear message, nothing breaks
    page.locator("#vector textarea").fill("1, 2, banana")
    page.get_by_role("button", name="Apply pasted vector").click()
    page.get_by_text("words in it").first.wait_for()
    page.get_by_role("button", name="Random point").click()
    page.wait_for_function(
        "() => document.querySelector('#vector textarea').value.split(',').length === 64")

    # 3. Interpolation: N frames, a plot, an animation
    page.get_by_role("tab", name="Interpolation").click()
    page.get_by_role("button", name="A ← random").click()
    page.get_by_role("button", name="B ← current point").click()
    page.wait_for_function(
        "() => document.querySelector('#interp-a textarea').value.split(',').length === 64 && "
        "document.querySelector('#interp-b textarea').value.split(',').length === 64")
    page.locator("#interp-btn").click()
    page.locator("#strip img").wait_for()
    page.locator("#gif img").wait_for()
    page.screenshot(path=str(SHOTS / "3-interpolation.png"), full_page=True)

    # 4. Compare: a grid with epochs as rows and the best epoch named
    page.get_by_role("tab", name="Compare epochs").click()
    page.locator("#compare-btn").click()
    page.locator("#compare-grid img").wait_for()
    page.locator("#best-epoch").get_by_text("Best epoch by FCD").wait_for()
    page.screenshot(path=str(SHOTS / "4-compare.png"), full_page=True)

    # 5. Train: start a short run from the button, watch it, stop it
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-name textarea, #train-name input").first.fill("from-browser")
    page.locator("#train-epochs input").fill("200")
    page.locator("#train-max input").fill("256")
    page.locator("#train-data textarea, #train-data input").first.fill(str(MNIST))
    page.locator("#train-btn").click()
    page.locator("#train-status").get_by_text("process running").wait_for(timeout=60_000)
    page.locator("#train-status").get_by_text("epoch ").first.wait_for(timeout=90_000)
    run = runs / "from-browser"
    deadline = time.time() + 90
    while time.time() < deadline and not (run / "epochs" / "epoch-0001").is_dir():
        time.sleep(0.5)
    assert (run / "epochs" / "epoch-0001").is_dir()
    page.screenshot(path=str(SHOTS / "5-train.png"), full_page=True)
    page.locator("#stop-btn").click()
    page.locator("#train-status").get_by_text("status: stopped").wait_for(timeout=90_000)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and 1 <= info["epochs_done"] < 200
    # the new run shows up in the run picker without a restart
    page.locator("#run-dd input").click()
    page.get_by_role("option", name="from-browser", exact=False).wait_for(timeout=20_000)


def test_gradio_client_named_endpoints(server):
    from gradio_client import Client

    url, _ = server
    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    names = set(api["named_endpoints"])
    assert {"/list_runs", "/generate", "/interpolate", "/compare", "/slide"} <= names
    runs = json.loads(client.predict(api_name="/list_runs"))
    tiny = next(r for r in runs if r["name"] == "tiny")
    assert [e["epoch"] for e in tiny["epochs"]] == [1, 2, 3]
    vec = ", ".join(["0.1"] * 64)
    img, p = client.predict("tiny", 3, vec, api_name="/generate")
    assert img.startswith("data:image/png;base64,") and 0 <= p <= 1
    strip, plot, gif, gif_file = client.predict("tiny", 3, vec, ", ".join(["-0.2"] * 64), 7, "linear",
                                                api_name="/interpolate")
    assert Path(strip).is_file() and Path(gif).read_bytes()[:3] == b"GIF"
    grid, best, *_ = client.predict("tiny", 4, 0, False, api_name="/compare")
    assert Path(grid).is_file() and "Best epoch by FCD" in best


@pytest.mark.parametrize("args,needle", [
    (("tiny", 3, "nan, " * 63 + "1"), "NaN"),
    (("tiny", 3, "1e30, " * 63 + "1"), "within"),
    (("tiny", 3, "0.1, 0.2"), "has 2 numbers"),
    (("tiny", 3, "hello world"), "words"),
    (("../tiny", 3, "0"), "unknown run"),
    (("/etc", 3, "0"), "unknown run"),
    (("tiny", 77, ", ".join(["0"] * 64)), "no epoch 77"),
])
def test_hostile_api_input_is_a_clear_error_and_the_server_keeps_serving(server, args, needle):
    from gradio_client import Client

    client = Client(server[0], verbose=False)
    with pytest.raises(Exception, match=needle):
        client.predict(*args, api_name="/generate")
    img, p = client.predict("tiny", 3, ", ".join(["0"] * 64), api_name="/generate")
    assert 0 <= p <= 1


@pytest.mark.parametrize("steps", [0, 1, 1_000_000])
def test_hostile_interpolation_steps_are_refused(server, steps):
    from gradio_client import Client

    client = Client(server[0], verbose=False)
    v = ", ".join(["0.1"] * 64)
    with pytest.raises(Exception, match="from 2 to 64|minimum value 2|maximum value 64"):
        client.predict("tiny", 3, v, v, steps, "linear", api_name="/interpolate")


def test_files_outside_the_app_are_not_served(server):
    url, runs = server
    for path in ["gradio_api/file=/etc/passwd", "gradio_api/file=" + str(ROOT / "app.py"),
                 "file=/etc/passwd", "gradio_api/file=" + str(runs / "tiny" / "run.json"),
                 "gradio_api/file=../../../../etc/passwd"]:
        try:
            resp = urllib.request.urlopen(url + path, timeout=10)
            body = resp.read()
            assert b"root:" not in body and b"argparse" not in body, path
            assert resp.status >= 400, path
        except urllib.error.HTTPError as exc:
            assert exc.code in (403, 404, 400), (path, exc.code)


def test_auth_protects_pages_and_api(trained_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained_runs, runs)
    proc, url = start_app(runs, "--auth", "alice:s3cret")
    try:
        body = json.dumps({"data": ["tiny", 3, ", ".join(["0"] * 64)]}).encode()
        for path, data in [("config", None), ("gradio_api/info", None),
                           ("gradio_api/call/generate", body), ("gradio_api/call/slide", body)]:
            req = urllib.request.Request(url + path, data=data,
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code in (401, 403), path
        from gradio_client import Client

        client = Client(url, auth=("alice", "s3cret"), verbose=False)
        img, p = client.predict("tiny", 3, ", ".join(["0"] * 64), api_name="/generate")
        assert 0 <= p <= 1
    finally:
        proc.terminate()
        proc.wait(20)


def test_bad_app_arguments_are_clear(tmp_path):
    r = subprocess.run([sys.executable, "app.py", "--auth", "nopassword", "--no-browser"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "user:password" in r.stderr
