"""Your own digit: MNIST-style preprocessing, the judge, projection into the latent space of real
snapshots (the bundled demo, trained on real digits), and the named API endpoints of the real app."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from explorer import yourdigit as yd
from explorer.engine import Engine
from explorer.registry import ExplorerError, RunRegistry
from tests import test_browser
from tests._demo import DEMO_FINAL, DEMO_KEPT
from tests.conftest import MNIST, ROOT
from tests.test_browser import app_in_process, link_copy

browser = test_browser.browser  # the module-scoped headless Chromium fixture
STEPS = 100  # enough here: the demo's digits are found within ~60 Adam steps (lr 0.05)


@pytest.fixture(scope="module")
def digits():
    from training.data import read_idx

    x = read_idx(next(MNIST.glob("t10k-images*")))
    y = read_idx(next(MNIST.glob("t10k-labels*")))
    return x[:40], y[:40]


@pytest.fixture(scope="module")
def engine():
    return Engine(RunRegistry([ROOT / "runs"]))


def on_paper(digit_u8: np.ndarray, size=(200, 300)) -> Image.Image:
    """A 28x28 MNIST digit as a person's upload: 7x larger (196 px), dark ink on a white 200x300 page."""
    big = Image.fromarray(255 - digit_u8).resize((196, 196), Image.BICUBIC)
    page = Image.new("L", size, 255)
    page.paste(big, ((size[0] - 196) // 2, (size[1] - 196) // 2))
    return page


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float32) - np.asarray(b, np.float32)) ** 2)))


def test_uploads_of_real_digits_come_back_as_the_mnist_digit(digits):
    """Dark-on-light 200x300 uploads of real digits return within a small distance of the original.

    0.1 RMS (0-1 scale): the resampling 28 -> 196 -> 20-px box blurs edges a little; two different
    real digits are ~0.3 apart (checked below), so 0.1 is the same digit, not a look-alike."""
    x, _ = digits
    back = [yd.preprocess(on_paper(d)) for d in x[:20]]
    dist = [rms(b, d / 255.0) for b, d in zip(back, x)]
    assert np.mean(dist) < 0.1, dist
    assert max(dist) < 0.2, dist
    assert np.mean([rms(x[i] / 255.0, x[i + 1] / 255.0) for i in range(19)]) > 0.25
    # light-on-dark 28x28 (MNIST itself) is nearly a fixed point; RGB and numpy input work the same
    assert np.mean([rms(yd.preprocess(Image.fromarray(d)), d / 255.0) for d in x[:20]]) < 0.05
    rgb = np.repeat(np.asarray(on_paper(x[0]))[..., None], 3, axis=2)
    assert rms(yd.preprocess(rgb), back[0]) < 1e-3


def test_a_drawing_on_a_transparent_pad_is_read_as_ink_on_white(digits):
    """Gradio's Sketchpad: black strokes on transparent pixels, inside a dict under 'composite'."""
    x, _ = digits
    ink = np.asarray(Image.fromarray(x[1]).resize((196, 196), Image.BICUBIC))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[42:238, 42:238, 3] = ink  # black, opaque where the digit is
    got = yd.preprocess({"composite": Image.fromarray(rgba, "RGBA"), "layers": [], "background": None})
    assert rms(got, yd.preprocess(on_paper(x[1]))) < 0.02  # the same as ink on white paper
    assert rms(got, x[1] / 255.0) < 0.2
    assert got.shape == (28, 28) and got.dtype == np.float32 and 0 <= got.min() and got.max() <= 1


@pytest.mark.parametrize(
    "image, needle",
    [
        (Image.new("L", (300, 300), 255), "empty"),  # a blank pad
        (Image.new("RGB", (300, 300), (255, 255, 255)), "empty"),  # a full-white upload
        (Image.new("L", (300, 300), 0), "empty"),  # a full-black one
        (Image.new("L", (1, 1), 0), "at least 8x8"),
        (b"this is not a picture", "not an image"),
        ("hello", "data URI"),
        ("/etc/passwd", "data URI"),  # a string is never opened as a path on the server
        (None, "no image"),
        ({"composite": None, "layers": []}, "no image"),
        (np.array([["a", "b"]]), "not an image"),
        (np.full((30, 30), np.nan), "not an image"),
    ],
)
def test_bad_input_is_a_clear_error(image, needle):
    with pytest.raises(ExplorerError, match=needle):
        yd.preprocess(image)


def test_a_huge_upload_gives_a_sensible_digit(digits):
    x, _ = digits
    page = on_paper(x[2]).resize((4000, 4000), Image.BILINEAR)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert rms(yd.preprocess(uri), x[2] / 255.0) < 0.2


def test_judge_reads_a_real_digit_and_scores_it_by_every_epoch(engine, digits):
    x, y = digits
    j = yd.judge(engine, "demo", DEMO_FINAL, yd.preprocess(on_paper(x[0])))
    assert j["label"] == y[0] and j["confidence"] > 0.9
    assert [r["epoch"] for r in j["by_epoch"]] == DEMO_KEPT and not j["skipped"]
    assert all(0 <= r["p_real"] <= 1 for r in j["by_epoch"])
    assert j["p_real"] == pytest.approx(j["by_epoch"][-1]["p_real"])
    json.dumps(j)  # JSON-friendly


def test_projection_of_real_digits_into_the_final_demo_epoch(engine, digits):
    """The found point draws the digit far better than a random point, as the same digit."""
    x, y = digits
    snap = engine.snapshot("demo", DEMO_FINAL)
    same = 0
    for i in range(3):
        d = yd.preprocess(on_paper(x[i]))
        r = yd.project(engine, "demo", DEMO_FINAL, d, seed=0, steps=STEPS)
        assert r["distance"] < 0.5 * yd.random_distance(snap, d, n=16), (i, r["distance"])
        assert len(r["z"]) == snap.latent_dim and 0 <= r["p_real"] <= 1
        same += yd.read(r["image"])[0] == y[i]
        again = yd.project(engine, "demo", DEMO_FINAL, d, seed=0, steps=STEPS)
        assert again["z"] == pytest.approx(r["z"], abs=1e-4)  # deterministic given the seed
    assert same >= 2


def test_projecting_an_image_g_drew_recovers_it(engine):
    """G(z0) for a known z0 is found again within 0.05 RMS: G's own images lie on its manifold,
    unlike a real digit (those come back at ~0.04-0.07 here, a random sample at ~0.3)."""
    snap = engine.snapshot("demo", DEMO_FINAL)
    z0 = np.random.default_rng(7).standard_normal((1, snap.latent_dim)).astype(np.float32)
    target, _ = snap.generate(z0)
    r = yd.project(engine, "demo", DEMO_FINAL, target[0], seed=1, steps=STEPS)
    assert r["distance"] < 0.05
    assert r["distance"] < 0.25 * yd.random_distance(snap, target[0], n=16)


def test_project_epochs_marks_the_best_epoch(engine, digits):
    x, _ = digits
    out = yd.project_epochs(engine, "demo", yd.preprocess(on_paper(x[3])), seed=0, steps=40)
    dist = {r["epoch"]: r["distance"] for r in out["rows"]}
    assert list(dist) == DEMO_KEPT
    assert out["best_epoch"] == min(dist, key=dist.get)
    assert dist[DEMO_FINAL] < dist[1]  # the trained generator draws real digits better than epoch 1


def test_bad_steps_and_seeds_are_refused(engine, digits):
    d = yd.preprocess(on_paper(digits[0][0]))
    for steps in (0, -3, 2.5, "many", 10**9):
        with pytest.raises(ExplorerError, match="steps"):
            yd.project(engine, "demo", DEMO_FINAL, d, steps=steps)
    with pytest.raises(ExplorerError, match="seed"):
        yd.project(engine, "demo", DEMO_FINAL, d, seed=-1)


@pytest.fixture(scope="module")
def served(trained_runs, tmp_path_factory):
    """One app for this module's app tests, over the shared tiny runs and the bundled demo, in
    this process as app.py serves it (tests.test_browser.app_in_process)."""
    runs = tmp_path_factory.mktemp("yourdigit") / "runs"
    link_copy(trained_runs, runs)
    link_copy(ROOT / "runs" / "demo", runs / "demo")
    with app_in_process(runs) as url:
        yield url


def test_the_endpoints_answer_through_the_real_app(served, digits):
    from gradio_client import Client

    url = served
    buf = io.BytesIO()
    on_paper(digits[0][0]).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    c = Client(url, verbose=False, ssl_verify=False)
    j = json.loads(c.predict(uri, "demo", DEMO_FINAL, api_name="/judge"))
    assert j["label"] == digits[1][0] and len(j["by_epoch"]) == len(DEMO_KEPT)
    assert j["digit_png"].startswith("data:image/png;base64,")
    p = json.loads(c.predict(uri, "tiny", 3, 0, 20, api_name="/project"))
    assert len(p["z"]) == 64 and np.isfinite(p["distance"]) and p["image"].startswith("data:image/png")
    e = json.loads(c.predict(uri, "tiny", 0, 10, api_name="/project_epochs"))
    assert [r["epoch"] for r in e["rows"]] == [1, 2, 3] and e["best_epoch"] in (1, 2, 3)
    with pytest.raises(Exception, match="data URI"):
        c.predict("/etc/passwd", "demo", DEMO_FINAL, api_name="/judge")
    with pytest.raises(Exception, match="empty"):
        blank = io.BytesIO()
        Image.new("L", (100, 100), 255).save(blank, format="PNG")
        c.predict(base64.b64encode(blank.getvalue()).decode(), "demo", DEMO_FINAL, api_name="/judge")
    assert json.loads(c.predict(uri, "demo", 1, api_name="/judge"))["epoch"] == 1  # still serving


def draw_seven(page) -> None:
    """A 7 drawn with the mouse on the pad (the brush tool picked first, as a person does)."""
    page.locator("#digit-pad button[aria-label='Brush']").click()
    page.wait_for_timeout(500)  # the canvas takes the tool
    box = page.locator("#digit-pad canvas").first.bounding_box()
    x0, y0 = box["x"] + box["width"] / 2 - 140, box["y"] + box["height"] / 2 - 140
    page.mouse.move(x0 + 84, y0 + 70)
    page.mouse.down()
    for t in range(1, 11):
        page.mouse.move(x0 + 84 + 11.2 * t, y0 + 70)
    for t in range(1, 16):
        page.mouse.move(x0 + 196 - 4.2 * t, y0 + 70 + 9.8 * t)
    page.mouse.up()


def test_draw_project_and_open_in_the_sliders_in_the_browser(served, browser):
    from tests.test_browser import new_page, pick, shot, wait_text

    url = served
    page = new_page(browser, url)
    pick(page, "#run-dd", "demo")
    page.get_by_role("tab", name="Your digit").click()
    steps = page.locator("#digit-steps input[type=number]")
    steps.fill("40")  # fewer Adam steps than the default: the flow is under test, not the fit
    steps.press("Enter")
    draw_seven(page)
    verdict = wait_text(page, "#digit-verdict", "the evaluator reads", timeout=120_000)
    assert "reads 7" in verdict and "P(real)" in verdict, verdict
    # the toggle lays D's pixel gradient over the digit, by the chosen epoch's D (explorer.ui.named)
    page.locator("#digit-saliency-toggle input").check()
    page.locator("#digit-saliency img").wait_for(state="visible")
    shot(page, "your-digit-saliency.png")
    page.locator("#digit-saliency-toggle input").uncheck()
    page.locator("#digit-saliency").wait_for(state="hidden")
    page.locator("#project-btn").click()
    found = wait_text(page, "#digit-projection", "pixel distance", timeout=180_000)
    assert "reads it as 7" in found, found
    page.wait_for_function(  # the box is another output of that answer: it may land a frame later
        "() => (document.querySelector('#digit-z textarea') || {value: ''}).value.split(',').length === 64"
    )
    z = page.locator("#digit-z textarea").input_value()
    assert len(z.split(",")) == 64
    page.locator("#project-epochs-btn").click()
    best = wait_text(page, "#digit-epochs-note", "draws it best", timeout=240_000)
    assert any(f"Epoch {e} draws" in best for e in DEMO_KEPT), best
    shot(page, "your-digit.png")
    page.get_by_role("button", name="Open in the sliders").click()
    page.wait_for_function(
        "z => { const t = document.querySelector('#vector textarea');"
        " return t && t.value.split(',')[0].trim() === z; }",
        arg=z.split(",")[0].strip(),
        timeout=60_000,
    )
    shot(page, "your-digit-in-sliders.png")
