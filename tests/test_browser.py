"""The real app, as a person and a script meet it: app.py served on a free port, driven by
headless Chromium (Playwright) and by gradio_client. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import MNIST, ROOT

SHOTS = ROOT / "artifacts" / "screenshots"


def shot(page, name: str) -> None:
    """A full-page screenshot into artifacts/screenshots/ when LATENT_EXPLORER_SHOTS=1 is set
    (a full page costs seconds on a loaded CPU; scripts/screenshots.py takes every view's)."""
    if os.environ.get("LATENT_EXPLORER_SHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


DEMO = ROOT / "runs" / "demo"
# Debian's chromium-headless-shell when installed: Chromium's old headless mode (what Playwright
# runs for headless by default), the same engine without the full browser's window and compositor
# layers. Per load of the demo's explorer page on 2 AVX2 cores: 3.9-4.6 CPU-s against 3.8-6.1 for
# the full chromium, and 4.2 against 6.1 for the browser's start with its first page.
# (The binary itself: /usr/bin/chromium-headless-shell is a shell script that does not exec it.)
SHELL = Path("/usr/lib/chromium/chromium-headless-shell")
CHROMIUM = str(SHELL) if SHELL.is_file() else shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs: Path, *extra) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(runs.parent / f"app-{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--runs-dir", str(runs), "--port", str(port), "--no-browser", *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 300  # TensorFlow's import and the warm-up take minutes on a busy machine
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
    raise AssertionError("app did not start within 300 s")


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def link_copy(src: Path, dst: Path) -> Path:
    """A copy made of hard links (no disk space); replace a file with `replace_file`, never in place."""
    shutil.copytree(src, dst, copy_function=_link_or_copy)
    return dst


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def best_epoch_by_fcd(run: Path) -> int:
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
    return min(rows, key=lambda r: r["quality"]["fcd"])["epoch"]


def served_runs(trained_runs: Path, base: Path) -> Path:
    """The runs folder the browser tests serve: 'tiny' and runs made from it (one whose best
    epoch was pruned, one with a broken run.json, one with a truncated snapshot) and the demo."""
    runs = base / "runs"
    shutil.copytree(trained_runs, runs)
    # a run whose best epoch was pruned from disk (metrics.jsonl still has every epoch), as the
    # bundled demo run keeps only a few epochs
    gappy = link_copy(runs / "tiny", runs / "gappy")
    shutil.rmtree(gappy / "epochs" / f"epoch-{best_epoch_by_fcd(gappy):04d}")
    broken = link_copy(runs / "tiny", runs / "broken-json")
    replace_file(broken / "run.json", b'{"latent_dim": 64, "pixel')
    # what a fresh clone opens on: the bundled demo run (hard links: the app never writes into the
    # repository's runs/; test_the_bundled_demo_run_in_the_browser checks it), else a stand-in
    link_copy(DEMO if (DEMO / "run.json").is_file() else runs / "tiny", runs / "demo")
    trunc = link_copy(runs / "tiny", runs / "trunc")
    g = trunc / "epochs" / "epoch-0003" / "generator.keras"
    replace_file(g, g.read_bytes()[:5000])
    return runs


@pytest.fixture(scope="module")
def server(trained_runs, tmp_path_factory):
    """app.py itself, started as a person starts it, over `served_runs`."""
    runs = served_runs(trained_runs, tmp_path_factory.mktemp("browser"))
    proc, url = start_app(runs)
    yield url, runs
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    kill_trainers(runs)


@contextlib.contextmanager
def app_in_process(runs: Path):
    """The app built in this process and launched by app.py's own `serve` (its queue, error
    messages, GIF folder and upload limit) over `runs`, on a free port: its URL. For test
    files whose worker has TensorFlow loaded already: no second TensorFlow process starts and
    loads the models again (app.py's own start is tested here and in test_web_training.py)."""
    from app import serve
    from explorer.ui import build_app

    app = build_app([runs], runs)
    port = free_port()
    serve(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
        app.trainer.close()
        shutil.rmtree(app.gif_dir, ignore_errors=True)
        kill_trainers(runs)


def kill_trainers(runs: Path) -> None:
    """Training started from the Train tab outlives the app by design; a test must not leave
    one behind (a failed test would otherwise leave it eating the CPU of the tests after it)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "training" in args and any(a.startswith(str(runs)) for a in args):
            try:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except OSError:
                pass
    # a trainer forked warm (training/warm.py) has its server's command line: found by its lock
    from training.runfolder import lock_holder

    for run in runs.glob("*") if runs.is_dir() else ():
        pid = lock_holder(run)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is not installed "
            "(apt-get install chromium-headless-shell; scripts/test.sh does it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        b.close()


def new_page(browser, url: str):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(60_000)
    pg.goto(url)
    return pg


@pytest.fixture
def page(server, browser):
    """A page for one test, closed after it: an open Gradio page is not idle (its refresh timers
    keep Chromium and the app drawing and answering, ~25% of a core each, measured)."""
    pg = new_page(browser, server[0])
    yield pg
    pg.close()


def latent_src(page) -> str:
    return page.locator("#latent-image").get_attribute("src") or ""


def pick(page, dropdown: str, option: str) -> None:
    """Choose an option of a Gradio dropdown (re-opening it if a refresh closed it meanwhile)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        if not page.get_by_role("option", name=option, exact=False).first.is_visible():
            page.locator(f"{dropdown} input").click()
        try:
            page.get_by_role("option", name=option, exact=False).first.click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def wait_text(page, selector: str, text: str, timeout: float = 60_000) -> str:
    """Wait until the element's text contains `text` (and no loading timer); return the text."""
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
        arg=[selector, text],
        timeout=timeout,
    )
    return page.locator(selector).inner_text()


def dismiss_toasts(page, within: float = 30.0) -> None:
    """Close the notices on screen. A notice can also close by itself, or move as another arrives,
    while the click is on its way (seen in CI: "element was detached"): that is fine, the goal is
    only that none is left covering the page."""
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        close = page.locator(".toast-close")
        if close.count() == 0:
            return
        try:
            close.first.click(timeout=2_000)
        except PlaywrightError:  # gone or moving: look again
            pass
    assert page.locator(".toast-close").count() == 0, "a notice stayed on screen"


def run_is(page, name: str) -> None:
    """The run picker shows `name`. Waited for, not read once: the answer that sets it also sets
    other boxes, and the picker's shown text follows its value a frame later."""
    page.wait_for_function(
        "(t) => ((document.querySelector('#run-dd input') || {}).value || '').startsWith(t)", arg=name
    )


def vector(page) -> list[float]:
    return [float(x) for x in page.locator("#vector textarea").input_value().split(",")]


def test_browser_walkthrough(page, server):
    url, runs = server
    # 0. it opens on the demo run; the run picker lists every run, the broken ones marked
    wait_text(page, "#facts", "demo · completed")
    run_is(page, "demo")
    page.locator("#run-dd input").click()
    page.get_by_role("option", name="broken-json  (broken: run.json unreadable", exact=False).wait_for()
    page.get_by_role("option", name="trunc  (completed, 3 epochs, 1 broken)", exact=False).wait_for()
    # a run that kept some of its snapshots says so: it trained 3 epochs, 2 are on disk
    page.get_by_role("option", name="gappy  (completed, 3 epochs, 2 on disk)", exact=False).wait_for()

    # a broken snapshot: marked in the epoch picker, and choosing it says why
    pick(page, "#run-dd", "trunc")
    wait_text(page, "#facts", "trunc · completed")
    pick(page, "#epoch-dd", "epoch 3 (broken: generator.keras is truncated")
    wait_text(page, "#quality", "Epoch 3 is broken: generator.keras is truncated")

    # 1. Snapshot: pick the run; its facts, its samples (scored) and quality figures
    pick(page, "#run-dd", "tiny")
    facts = wait_text(page, "#facts", "tiny · completed")
    assert "scgan" in facts and "python -m training" in facts and "snapshots on disk: epochs 1, 2, 3" in facts
    # (trunc's broken epoch 3 also said "Epoch 3": wait for text only tiny's good epoch has)
    quality = wait_text(page, "#quality", "P(real) by epoch 3's D")
    assert "FCD" in quality and "P(real) by epoch 3's D" in quality and "broken" not in quality
    page.locator("#samples img").wait_for()
    shot(page, "1-snapshot.png")

    # pick another snapshot from the epoch dropdown
    pick(page, "#epoch-dd", "epoch 2")
    wait_text(page, "#quality", "Epoch 2")

    # 2. Sliders: moving a slider changes the image and its scores (this epoch's D and the final's)
    page.get_by_role("tab", name="Latent sliders").click()
    page.locator("#latent-caption").get_by_text("D of epoch 2").wait_for()
    before = latent_src(page)
    assert before.startswith("data:image/png;base64,")
    label = page.locator("#dim-slider-0").inner_text()
    dim = int(label.split("z[", 1)[1].split("]", 1)[0])
    page.locator("#dim-slider-0 input[type=range]").fill("3.5")
    page.wait_for_function(
        "(b) => { const i = document.querySelector('#latent-image'); return i && i.src !== b; }",
        arg=before,
    )
    # the box is another output of the slide's answer: it may show the value a frame after the image
    page.wait_for_function(
        "(d) => parseFloat(document.querySelector('#vector textarea').value.split(',')[d]) === 3.5", arg=dim
    )
    assert "(D of epoch 2)" in page.locator("#score").inner_text()
    caption = page.locator("#latent-caption").inner_text()
    assert "by the D of epoch 2" in caption and "by the final epoch's (3) D" in caption
    v0 = vector(page)
    assert len(v0) == 64 and v0[dim] == 3.5
    shot(page, "2-sliders.png")

    # Nudge moves the point on screen a little (the slider's value included), not a stale one
    shown = page.locator("#vector textarea").input_value()
    page.get_by_role("button", name="Nudge").click()
    page.wait_for_function("(v) => document.querySelector('#vector textarea').value !== v", arg=shown)
    v1 = vector(page)
    assert abs(v1[dim] - 3.5) < 1.5 and sum(abs(a - b) for a, b in zip(v0, v1)) / 64 < 0.6

    # a pasted vector with words in it: a clear message, nothing breaks, and the box shows the
    # point on screen again (it does not keep disagreeing with the image)
    shown = page.locator("#vector textarea").input_value()
    page.locator("#vector textarea").fill("1, 2, banana")
    page.get_by_role("button", name="Apply pasted vector").click()
    page.get_by_text("words in it").first.wait_for()
    page.wait_for_function("(v) => document.querySelector('#vector textarea').value === v", arg=shown)
    dismiss_toasts(page)  # read it; close it (it would linger 10 s over the page)
    page.get_by_role("button", name="Random point").click()
    page.wait_for_function("() => document.querySelector('#vector textarea').value.split(',').length === 64")

    # 3. Interpolation: N frames, a plot, an animation
    page.get_by_role("tab", name="Interpolation").click()
    page.get_by_role("button", name="A ← random").click()
    page.get_by_role("button", name="B ← current point").click()
    page.wait_for_function(
        "() => document.querySelector('#interp-a textarea').value.split(',').length === 64 && "
        "document.querySelector('#interp-b textarea').value.split(',').length === 64"
    )
    page.locator("#interp-btn").click()
    page.locator("#strip img").wait_for()
    page.locator("#gif img").wait_for()
    page.locator("#gif-file").get_by_text(".gif").first.wait_for()
    shot(page, "3-interpolation.png")

    # 4. Compare: a grid with epochs as rows and the best epoch named
    page.get_by_role("tab", name="Compare epochs").click()
    page.locator("#compare-btn").click()
    page.locator("#compare-grid img").wait_for()
    page.locator("#best-epoch").get_by_text("Best epoch by FCD").wait_for()
    assert "the 3 snapshot(s) on disk" in page.locator("#best-epoch").inner_text()
    shot(page, "4-compare.png")

    # ... and a run whose best epoch was not kept: plots of every epoch, a grid of those on disk
    pick(page, "#run-dd", "gappy")
    page.wait_for_function("() => document.querySelector('#run-dd input').value.startsWith('gappy')")
    page.locator("#compare-btn").click()
    page.locator("#best-epoch").get_by_text("was not kept on disk").wait_for()
    best = page.locator("#best-epoch").inner_text()
    assert "Plots cover all 3 epochs" in best and "the 2 snapshot(s) on disk" in best
    # the table is another output of that answer (tiny's table, without the line, until it lands)
    expect(page.locator("#epoch-table")).to_contain_text("not kept on disk", timeout=60_000)
    shot(page, "4b-compare-pruned-epochs.png")

    # 5. Train: start a short run from the button, watch it, stop it, resume it, stop it again
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-name textarea, #train-name input").first.fill("from-browser")
    page.locator("#train-epochs input").fill("200")
    page.locator("#train-max input").fill("64")
    page.locator("#train-data textarea, #train-data input").first.fill(str(MNIST))
    # a setting that is not the default, to see that Train and Resume pass it on (not a bfloat16
    # precision: on a CPU without native bf16 it is emulated and doubles this test's training)
    page.locator("#train-batch input").fill("32")
    page.locator("#train-quality input").fill("200")  # of 2,000: each epoch's scoring, 4 s less
    assert page.locator("#stop-btn").is_disabled()  # nothing to stop yet
    page.locator("#train-btn").click()
    page.locator("#train-status").get_by_text("process running").wait_for(timeout=60_000)
    # starting (TensorFlow loads) or training: Stop only; Train and Resume wait
    assert re.search(r"from-browser: (starting|training) ·", page.locator("#train-status").inner_text())
    expect(page.locator("#stop-btn")).to_be_enabled()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#resume-btn")).to_be_disabled()

    # the rest of the app stays responsive while it trains
    page.get_by_role("tab", name="Latent sliders").click()
    before = latent_src(page)
    page.locator("#dim-slider-1 input[type=range]").fill("-2.5")
    page.wait_for_function(  # the page's 60 s: a trainer loading TensorFlow shares the CPU
        "(b) => { const i = document.querySelector('#latent-image'); return i && i.src !== b; }",
        arg=before,
    )
    page.get_by_role("tab", name="Train").click()

    # a trainer's first step: TensorFlow's start (up to ~60 s on 2 loaded cores) and the step's tracing
    page.locator("#train-status").get_by_text("epoch ").first.wait_for(timeout=180_000)
    run = runs / "from-browser"
    page.locator("#train-status").get_by_text("latest samples: epoch").wait_for(timeout=120_000)
    page.locator("#train-samples img").wait_for()
    assert (run / "epochs" / "epoch-0001").is_dir()
    shot(page, "5-train.png")

    # the run in training is in the picker; its facts follow new epochs without a reload
    pick(page, "#run-dd", "from-browser")
    page.get_by_role("tab", name="Snapshot").click()
    facts = wait_text(page, "#facts", "from-browser · training")
    done = int(facts.split("epochs done ", 1)[1].split(" ", 1)[0])
    page.wait_for_function(
        "(n) => { const m = document.querySelector('#facts').innerText.match(/epochs done (\\d+)/);"
        " return m && Number(m[1]) > n; }",
        arg=done,
        timeout=120_000,  # a whole epoch (its quality figures and snapshot) beside the app's work
    )
    page.get_by_role("tab", name="Train").click()
    page.locator("#stop-btn").click()
    page.locator("#train-notice").get_by_text("stop requested").wait_for()
    page.locator("#train-status").get_by_text("status: stopped").wait_for(timeout=90_000)
    page.wait_for_function(  # the process has exited: stopped, not stopping
        "() => document.querySelector('#train-status').innerText.includes('from-browser: stopped')",
        timeout=90_000,
    )
    expect(page.locator("#resume-btn")).to_be_enabled()
    expect(page.locator("#stop-btn")).to_be_disabled()
    assert "stop requested" in page.locator("#train-notice").inner_text()  # not overwritten
    first = json.loads((run / "run.json").read_text())
    assert first["status"] == "stopped" and 1 <= first["epochs_done"] < 200
    assert first["config"]["batch_size"] == 32 and first["config"]["quality_samples"] == 200

    first_pid = json.loads((run / "progress.json").read_text())["pid"]
    page.locator("#resume-btn").click()  # at once: the stopping process is waited for
    # the resumed trainer's first step: TensorFlow's start, the checkpoint's restore, the tracing
    page.locator("#train-status").get_by_text("status: training").wait_for(timeout=180_000)
    assert "process running" in page.locator("#train-status").inner_text()
    assert json.loads((run / "progress.json").read_text())["pid"] != first_pid
    page.locator("#stop-btn").click()
    page.locator("#train-status").get_by_text("status: stopped").wait_for(timeout=90_000)
    second = json.loads((run / "run.json").read_text())
    assert second["status"] == "stopped" and first["epochs_done"] <= second["epochs_done"] < 200
    assert second["config"]["batch_size"] == 32 and second["config"]["quality_samples"] == 200  # kept
    # the new run shows up in the run picker without a restart
    page.locator("#run-dd input").click()
    page.get_by_role("option", name="from-browser", exact=False).wait_for(timeout=20_000)
    page.keyboard.press("Escape")


# Counts every requestAnimationFrame the page's scripts make (an init script runs before them).
COUNT_FRAMES_JS = """(() => { const raf = window.requestAnimationFrame.bind(window);
  window.__frames = 0; window.__asked = {};  // by whom: a failure says which script asks
  window.requestAnimationFrame = (cb) => { window.__frames++;
    const at = (new Error().stack || "").split("\\n").slice(2, 4).join(" < ");
    window.__asked[at] = (window.__asked[at] || 0) + 1; return raf(cb); }; })();"""


def test_an_idle_page_asks_for_no_frames_and_status_counters_still_tick(server, browser):
    """Gradio's status-tracker counter loop, leaked by every page load, asked for 60 frames a
    second (900 in 15 s, 1.6 CPU-s of Chromium) on an untouched page: explorer/ui/idle_page.py."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        pg.add_init_script(COUNT_FRAMES_JS)
        pg.goto(server[0])
        wait_text(pg, "#facts", "snapshots on disk")
        # the page's own entrance animations end within seconds; then two quiet seconds in a row
        # (without the fix never: 60 frames every second, as long as the page is open)
        deadline, quiet, before = time.monotonic() + 60, 0, pg.evaluate("() => window.__frames")
        while quiet < 2:
            asked = json.dumps(pg.evaluate("() => window.__asked"), indent=1)
            assert time.monotonic() < deadline, f"the idle page keeps asking for frames: {asked}"
            pg.wait_for_timeout(1000)
            now = pg.evaluate("() => window.__frames")
            quiet, before = (quiet + 1 if now - before <= 2 else 0), now
        # a counter callback of the tracker's form still runs (from a timer, tenths of a second)
        ran = pg.evaluate(
            """() => new Promise((ok) => { const t0 = performance.now();
                requestAnimationFrame(() => { ok((performance.now() - t0) / 1e3); }); })"""
        )
        assert 0.05 <= ran < 5
        # any other callback is the browser's own animation frame, as before
        n = pg.evaluate("() => new Promise((ok) => requestAnimationFrame((t) => ok(window.__frames)))")
        assert n >= before + 1
    finally:
        pg.close()


def test_a_pick_made_while_the_last_one_loads_is_not_lost(server, browser):
    """A run's first pick takes seconds (its models load). Another run picked meanwhile is what
    the page shows once answered: the pick is not dropped, the earlier answer does not win."""
    url, runs = server
    link_copy(runs / "tiny", runs / "race-a")  # runs no session has loaded yet
    b = link_copy(runs / "tiny", runs / "race-b")
    summary = b / "epochs" / "epoch-0003" / "summary.json"
    replace_file(summary, json.dumps(dict(json.loads(summary.read_text()), elapsed_s=4242)).encode())
    page = new_page(browser, url)
    try:
        wait_text(page, "#facts", "demo · completed")
        page.locator("#run-dd input").click()  # the refresh timer lists new runs within 3 s
        page.get_by_role("option", name="race-b", exact=False).wait_for()
        pick(page, "#run-dd", "race-a")
        pick(page, "#run-dd", "race-b")  # at once: race-a's models are still loading
        quality = wait_text(page, "#quality", "total 4242 s")  # only race-b's epoch 3 says so
        assert "P(real) by epoch 3's D" in quality
        wait_text(page, "#facts", "race-b · completed")
        run_is(page, "race-b")
    finally:
        page.close()


def test_gradio_client_named_endpoints(server):
    from gradio_client import Client

    url, _ = server
    client = Client(url, verbose=False, ssl_verify=False)
    api = client.view_api(return_format="dict", print_info=False)
    names = set(api["named_endpoints"])
    assert {"/list_runs", "/generate", "/interpolate", "/compare", "/slide"} <= names
    runs = json.loads(client.predict(api_name="/list_runs"))
    tiny = next(r for r in runs if r["name"] == "tiny")
    assert [e["epoch"] for e in tiny["epochs"]] == [1, 2, 3]
    vec = ", ".join(["0.1"] * 64)
    img, p = client.predict("tiny", 3, vec, api_name="/generate")
    assert img.startswith("data:image/png;base64,") and 0 <= p <= 1
    strip, plot, gif, gif_file = client.predict(
        "tiny", 3, vec, ", ".join(["-0.2"] * 64), 7, "linear", api_name="/interpolate"
    )
    assert Path(strip).is_file() and Path(gif).read_bytes()[:3] == b"GIF"
    grid, best, *_ = client.predict("tiny", 4, 0, False, api_name="/compare")
    assert Path(grid).is_file() and "Best epoch by FCD" in best
    # the API's slider endpoint moves the measured top dimensions (no browser state needed)
    a = client.predict("tiny", 3, -3.0, *[0.0] * 13, api_name="/slide")
    b = client.predict("tiny", 3, 3.0, *[0.0] * 13, api_name="/slide")
    assert a[0] != b[0] and a[2] != b[2] and 0 <= a[1]["confidences"][0]["confidence"] <= 1


def plot_rows(plot: dict) -> list[dict]:
    return [dict(zip(plot["columns"], row)) for row in plot["data"]]


def test_every_frame_is_scored_by_its_epochs_d_and_by_the_final_d(server):
    from gradio_client import Client

    client = Client(server[0], verbose=False, ssl_verify=False)
    a, b = ", ".join(["0.3"] * 64), ", ".join(["-0.3", "0.5"] * 32)
    _, plot, _, _ = client.predict("tiny", 2, a, b, 6, "spherical", api_name="/interpolate")
    rows = plot_rows(plot)
    by = {r["judged by"] for r in rows}
    assert by == {"D of epoch 2", "D of final epoch 3"} and len(rows) == 12
    assert all(0 <= r["P(real)"] <= 1 for r in rows)
    img, p = client.predict("tiny", 2, a, api_name="/generate")
    first = next(r for r in rows if r["judged by"] == "D of epoch 2" and r["step"] == 0)
    assert first["P(real)"] == pytest.approx(p, abs=1e-4)  # frame 0 is A, scored by epoch 2's D


def test_compare_on_a_run_with_pruned_epochs(server):
    from gradio_client import Client

    url, runs = server
    client = Client(url, verbose=False, ssl_verify=False)
    best = best_epoch_by_fcd(runs / "gappy")
    on_disk = sorted({1, 2, 3} - {best})
    grid, text, loss, acc, fcd, score, table = client.predict("gappy", 4, 0, False, api_name="/compare")
    # the plots hold every epoch of metrics.jsonl, the best one marked
    assert sorted({r["epoch"] for r in plot_rows(loss)}) == [1, 2, 3]
    assert sorted({r["epoch"] for r in plot_rows(acc)}) == [1, 2, 3]
    assert sorted({r["epoch"] for r in plot_rows(score)}) == [1, 2, 3]
    fcd_rows = plot_rows(fcd)
    assert sorted(r["epoch"] for r in fcd_rows if r["series"] == "FCD") == [1, 2, 3]
    marker = [r for r in fcd_rows if r["series"] == f"best: epoch {best}"]
    assert len(marker) == 2 and {r["epoch"] for r in marker} == {best}
    # the text names the best epoch, says it is gone, and names the best one on disk
    assert f"Best epoch by FCD: {best}" in text and f"Epoch {best} was not kept on disk" in text
    assert "the 2 snapshot(s) on disk" in text and f"epochs {on_disk[0]}, {on_disk[1]}" in text
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    assert sorted(r["Epoch"] for r in rows) == [1, 2, 3]
    assert {r["Epoch"]: r["Snapshot"] for r in rows}[best] == "not kept on disk"
    assert [r["Epoch"] for r in rows if r["Best"]] == [best] == [rows[0]["Epoch"]]  # on top
    # the grid has one row per epoch on disk: 2 rows against tiny's 3
    from PIL import Image

    full = client.predict("tiny", 4, 0, False, api_name="/compare")[0]
    h2, h3 = Image.open(grid).height, Image.open(full).height
    assert h2 < h3 and (h2 - 6) / (h3 - 6) == pytest.approx(2 / 3, abs=0.01)


def test_runs_written_after_start_are_usable_over_the_api(server):
    from gradio_client import Client

    url, runs = server
    link_copy(runs / "tiny", runs / "late")
    client = Client(url, verbose=False, ssl_verify=False)
    assert "late" in {r["name"] for r in json.loads(client.predict(api_name="/list_runs"))}
    img, p = client.predict("late", 2, ", ".join(["0.2"] * 64), api_name="/generate")
    assert 0 <= p <= 1
    v = ", ".join(["0.1"] * 64)
    strip, *_ = client.predict("late", 1, v, v, 3, "linear", api_name="/interpolate")
    grid, text, *_ = client.predict("late", 2, 0, False, api_name="/compare")
    assert Path(strip).is_file() and "the 3 snapshot(s) on disk" in text


def test_broken_runs_are_marked_refused_clearly_and_do_not_hurt_the_others(server):
    from gradio_client import Client

    client = Client(server[0], verbose=False, ssl_verify=False)
    runs = {r["name"]: r for r in json.loads(client.predict(api_name="/list_runs"))}
    assert (
        runs["broken-json"]["status"] == "broken" and "run.json unreadable" in runs["broken-json"]["broken"]
    )
    trunc = {e["epoch"]: e["broken"] for e in runs["trunc"]["epochs"]}
    assert trunc[1] is None and trunc[2] is None and "generator.keras is truncated" in trunc[3]
    vec = ", ".join(["0"] * 64)
    with pytest.raises(Exception, match="generator.keras is truncated"):
        client.predict("trunc", 3, vec, api_name="/generate")
    with pytest.raises(Exception, match="run.json unreadable"):
        client.predict("broken-json", 1, vec, api_name="/generate")
    with pytest.raises(Exception, match="run.json unreadable"):
        client.predict("broken-json", 4, 0, False, api_name="/compare")
    grid, text, *_ = client.predict("trunc", 4, 0, False, api_name="/compare")
    assert "the 2 snapshot(s) on disk" in text and "Left out: epoch 3" in text
    assert 0 <= client.predict("trunc", 2, vec, api_name="/generate")[1] <= 1
    assert 0 <= client.predict("tiny", 3, vec, api_name="/generate")[1] <= 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (("tiny", 3, "nan, " * 63 + "1"), "NaN"),
        (("tiny", 3, "1e30, " * 63 + "1"), "within"),
        (("tiny", 3, "0.1, 0.2"), "has 2 numbers"),
        (("tiny", 3, "hello world"), "words"),
        (("../tiny", 3, "0"), "unknown run"),
        (("/etc", 3, "0"), "unknown run"),
        (("tiny", 77, ", ".join(["0"] * 64)), "no epoch 77"),
    ],
)
def test_hostile_api_input_is_a_clear_error_and_the_server_keeps_serving(server, args, needle):
    from gradio_client import Client

    client = Client(server[0], verbose=False, ssl_verify=False)
    with pytest.raises(Exception, match=needle):
        client.predict(*args, api_name="/generate")
    img, p = client.predict("tiny", 3, ", ".join(["0"] * 64), api_name="/generate")
    assert 0 <= p <= 1


def raw_call(url: str, endpoint: str, body: str) -> str:
    """POST a raw JSON body (NaN and Infinity literals included, which clients cannot send)."""
    req = urllib.request.Request(
        f"{url}gradio_api/call/{endpoint}", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    event = json.loads(urllib.request.urlopen(req, timeout=10).read())["event_id"]
    return urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event}", timeout=60).read().decode()


@pytest.mark.parametrize(
    "endpoint,body,needle",
    [
        ("generate", '{"data": ["tiny", NaN, "0"]}', "epoch must be a number"),
        ("generate", '{"data": ["tiny", 1e300, "0"]}', "epoch must be a number"),
        ("generate", '{"data": ["tiny", 3, "<img src=x onerror=alert(1)>"]}', "&lt;img"),
        ("slide", '{"data": ["tiny", 3, NaN, 0,0,0,0,0,0,0,0,0,0,0,0,0]}', "finite"),
        ("slide", '{"data": ["tiny", 3, 0, 0,0,0,0,0,0,0, NaN,0,0,0,0,0]}', "finite"),
        ("slide", '{"data": ["tiny", 3, Infinity, 0,0,0,0,0,0,0,0,0,0,0,0,0]}', "maximum"),
        (
            "slide",
            '{"data": ["tiny", "3; rm -rf /", 0, 0,0,0,0,0,0,0,0,0,0,0,0,0]}',
            "epoch must be a number",
        ),
        ("compare", '{"data": ["tiny", 4, 1e30, false]}', "seed must be a whole number"),
        ("compare", '{"data": ["/etc", 4, 0, false]}', "unknown run"),
        ("interpolate", '{"data": ["tiny", 3, "1, NaN", "0", 5, "linear"]}', "has 2 numbers"),
    ],
)
def test_raw_hostile_values_are_clear_errors(server, endpoint, body, needle):
    out = raw_call(server[0], endpoint, body)
    assert "event: error" in out and needle in out, out[:500]
    assert "<img" not in out
    ok = raw_call(server[0], "generate", json.dumps({"data": ["tiny", 3, ", ".join(["0"] * 64)]}))
    assert "event: complete" in ok


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", ".hidden", "x" * 65, "", "..", "~root"])
def test_train_tab_names_never_leave_the_runs_folder(server, name):
    from gradio_client import Client

    url, runs = server
    client = Client(url, verbose=False, ssl_verify=False)
    before = set(runs.parent.iterdir())
    with pytest.raises(Exception, match="run name"):
        client.predict(name, "dcgan", 1, 64, 10, "", api_name="/train")
    with pytest.raises(Exception, match="run name"):
        client.predict(name, 1, api_name="/resume")
    with pytest.raises(Exception, match="run name"):
        client.predict(name, api_name="/stop")
    assert set(runs.parent.iterdir()) == before and not Path("/tmp/evil").exists()
    with pytest.raises(Exception, match="no run 'nope'"):
        client.predict("nope", 1, api_name="/resume")


def test_train_refuses_an_unknown_precision_and_starts_nothing(server):
    from gradio_client import Client

    url, runs = server
    client = Client(url, verbose=False, ssl_verify=False)
    with pytest.raises(Exception, match="precision|not in the list of choices"):
        client.predict("prec-x", "dcgan", 1, 64, 10, "", "float16", api_name="/train")
    assert not (runs / "prec-x").exists()


@pytest.mark.parametrize("steps", [0, 1, 1_000_000])
def test_hostile_interpolation_steps_are_refused(server, steps):
    from gradio_client import Client

    client = Client(server[0], verbose=False, ssl_verify=False)
    v = ", ".join(["0.1"] * 64)
    with pytest.raises(Exception, match="from 2 to 64|minimum value 2|maximum value 64"):
        client.predict("tiny", 3, v, v, steps, "linear", api_name="/interpolate")


def test_files_outside_the_app_are_not_served(server):
    url, runs = server
    for path in [
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=" + str(ROOT / "app.py"),
        "file=/etc/passwd",
        "gradio_api/file=" + str(runs / "tiny" / "run.json"),
        "gradio_api/file=../../../../etc/passwd",
    ]:
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
        for path, data in [
            ("config", None),
            ("gradio_api/info", None),
            ("gradio_api/openapi.json", None),
            ("gradio_api/call/generate", body),
            ("gradio_api/call/slide", body),
            ("gradio_api/call/train", body),
            ("gradio_api/queue/join", body),
            ("gradio_api/upload", body),
            ("gradio_api/queue/status", None),
            ("gradio_api/file=" + str(runs / "tiny" / "run.json"), None),
        ]:
            req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            assert err.value.code in (401, 403), path
        from gradio_client import Client

        client = Client(url, auth=("alice", "s3cret"), verbose=False, ssl_verify=False)
        img, p = client.predict("tiny", 3, ", ".join(["0"] * 64), api_name="/generate")
        assert 0 <= p <= 1
    finally:
        proc.terminate()
        proc.wait(20)


def test_bad_app_arguments_are_clear(tmp_path):
    r = subprocess.run(
        [sys.executable, "app.py", "--auth", "nopassword", "--no-browser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "user:password" in r.stderr
    r = subprocess.run(
        [sys.executable, "app.py", "--port", "70000", "--no-browser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--port must be from 0 to 65535" in r.stderr
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    r = subprocess.run(
        [sys.executable, "app.py", "--runs-dir", str(not_a_dir), "--no-browser"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "is not a folder" in r.stderr


def test_the_bundled_demo_run_in_the_browser(server, browser):
    """What a fresh clone opens on: the demo run keeps a few epochs on disk, metrics.jsonl has all.
    The module's server serves it (as runs/demo, a copy made of hard links)."""
    if not (DEMO / "run.json").is_file():
        pytest.skip("no bundled demo run in runs/demo")
    url, runs = server
    on_disk = sorted(int(p.name.split("-")[1]) for p in (DEMO / "epochs").glob("epoch-*"))
    logged = sorted(
        {
            json.loads(l)["epoch"]
            for l in (DEMO / "metrics.jsonl").read_text().splitlines()
            if '"kind": "epoch"' in l
        }
    )
    files = sorted(p.relative_to(DEMO) for p in DEMO.rglob("*"))
    page = new_page(browser, url)
    try:
        facts = wait_text(page, "#facts", "demo · ")
        assert f"snapshots on disk: epochs {', '.join(map(str, on_disk))}" in facts
        wait_text(page, "#quality", f"Epoch {on_disk[-1]}")
        page.locator("#samples img").wait_for()
        shot(page, "demo-1-snapshot.png")

        page.get_by_role("tab", name="Latent sliders").click()
        page.locator("#latent-caption").get_by_text(f"D of epoch {on_disk[-1]}").wait_for()
        before = latent_src(page)
        page.locator("#pca-slider-0 input[type=range]").fill("3")
        page.wait_for_function(
            "(b) => { const i = document.querySelector('#latent-image'); return i && i.src !== b; }",
            arg=before,
        )
        shot(page, "demo-2-sliders.png")

        page.get_by_role("tab", name="Compare epochs").click()
        page.locator("#compare-btn").click()
        text = wait_text(page, "#best-epoch", "Best epoch by FCD")
        assert f"Plots cover all {len(logged)} epochs" in text
        assert f"the {len(on_disk)} snapshot(s) on disk (epochs {', '.join(map(str, on_disk))})" in text
        # the table is another output of that answer: waited for, not read once (empty until it lands).
        # It scrolls (only the rows in view are in the page), so the page shows its top rows, and
        # the same answer through /compare is checked row by row below.
        page.wait_for_function(
            "(w) => (document.querySelector('#epoch-table') || {innerText: ''}).innerText.includes(w)",
            arg="not kept on disk" if len(logged) > len(on_disk) else "on disk",
        )
        page.locator("#compare-grid img").wait_for()
        shot(page, "demo-4-compare.png")
    finally:
        page.close()
    from gradio_client import Client

    table = Client(url, verbose=False, ssl_verify=False).predict("demo", 4, 0, False, api_name="/compare")[6]
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    assert sorted(r["Epoch"] for r in rows) == logged
    assert sorted(r["Epoch"] for r in rows if r["Snapshot"] == "on disk") == on_disk
    assert sum(r["Snapshot"] == "not kept on disk" for r in rows) == len(set(logged) - set(on_disk))
    served = runs / "demo"  # the explorer only reads: the served copy is the bundled run, file for file
    assert sorted(p.relative_to(served) for p in served.rglob("*")) == files
