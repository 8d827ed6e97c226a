"""The conditional preset (cdcgan) as a user meets it: trained through the CLI on real labelled
digits, its snapshots taking (z, label), the run folder saying so, the explorer drawing the same
latent point as the digit picked, and clear errors for labels that are not a digit.

One module-scoped run: one epoch, then --resume to the second (resume is part of what is shown).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import warm
from tests._demo import DEMO_FINAL

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def run_cli(*args) -> subprocess.CompletedProcess:
    return warm.run(
        [sys.executable, "-m", "training", "--quiet", "--no-tensorboard", *args],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=600,
    )


def cli(*args) -> subprocess.CompletedProcess:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(cond_run, tmp_path_factory) -> Path:
    """A runs folder holding 'cond': cdcgan, epoch 1 on 384 real digits (the session's shared run,
    conftest.COND_ARGS), then resumed to epoch 2 (seed 0)."""
    runs = tmp_path_factory.mktemp("cdcgan-runs")
    shutil.copytree(cond_run / "cond", runs / "cond")  # a real copy: the resume appends to its files
    cli("--run-dir", str(runs / "cond"), "--resume", "--epochs", "2")
    return runs


def load(path: Path):
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def png_pixels(data_uri: str) -> np.ndarray:
    raw = base64.b64decode(data_uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("L"), np.float32)


# ----------------------------------------------------------------------------- the run folder
def test_run_json_says_conditional_with_ten_classes_and_the_resume(runs):
    info = json.loads((runs / "cond" / "run.json").read_text())
    assert info["preset"] == "cdcgan" and info["status"] == "completed" and info["epochs_done"] == 2
    assert info["conditional"] is True and info["num_classes"] == 10
    assert [r["optimizer_state"] for r in info["resumes"]] == ["restored from checkpoint/"]

    from explorer.registry import RunRegistry

    run = RunRegistry([runs]).get("cond")
    assert run.num_classes == 10 and [e.epoch for e in run.good_epochs()] == [1, 2]


def test_the_saved_generator_takes_z_and_a_label_and_the_label_changes_the_digit(runs):
    epoch = runs / "cond" / "epochs" / "epoch-0002"
    g, d = load(epoch / "generator.keras"), load(epoch / "discriminator.keras")
    assert len(g.inputs) == 2 and len(d.inputs) == 2
    z = np.repeat(np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32), 10, axis=0)
    labels = np.arange(10, dtype=np.int32)
    x = np.asarray(g([z, labels], training=False))
    assert x.shape == (10, 28, 28, 1) and x.min() >= -1 and x.max() <= 1
    # the same z drawn as each digit: ten different images (pixels on the 0-1 scale)
    diffs = [np.abs(x[i] - x[j]).mean() / 2 for i in range(10) for j in range(i + 1, 10)]
    assert min(diffs) > 1e-3, min(diffs)
    logits = np.asarray(d([x, labels], training=False))
    assert logits.shape == (10, 1) and np.isfinite(logits).all()


def test_the_samples_grid_has_one_row_per_digit_with_the_same_points_in_each_column(runs):
    grid = np.asarray(Image.open(runs / "cond" / "epochs" / "epoch-0002" / "samples.png"), np.float32)
    assert grid.shape == (10 * 30 + 2, 8 * 30 + 2)
    rows = [grid[2 + r * 30 : r * 30 + 30, 2:-2] for r in range(10)]
    assert min(np.abs(rows[i] - rows[j]).mean() for i in range(10) for j in range(i + 1, 10)) > 0


def test_every_epoch_reports_the_share_drawn_as_the_digit_asked_for(runs):
    from explorer.registry import RunRegistry

    for e in (1, 2):
        s = json.loads((runs / "cond" / "epochs" / f"epoch-{e:04d}" / "summary.json").read_text())
        acc = s["quality"]["conditional_accuracy"]
        assert 0.0 <= acc <= 1.0 and s["quality"]["n_samples"] == 200
    rows = [json.loads(l) for l in (runs / "cond" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(0 <= r["quality"]["conditional_accuracy"] <= 1 for r in epochs)
    run = RunRegistry([runs]).get("cond")
    assert run.epochs[-1].facts.quality.conditional_accuracy == pytest.approx(acc)


def test_a_conditional_run_also_gets_the_neighbour_index_and_the_memorisation_figure(runs):
    q = json.loads((runs / "cond" / "epochs" / "epoch-0002" / "summary.json").read_text())["quality"]
    assert (runs / "cond" / "neighbours.npz").is_file()
    assert 0.0 <= q["memorised_share"] <= 1.0 and 0.0 <= q["conditional_accuracy"] <= 1.0


# ----------------------------------------------------------------------------- the engine
@pytest.fixture(scope="module")
def engine(runs):
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    return Engine(RunRegistry([runs, ROOT / "runs"]))  # 'cond' and the bundled (unconditional) demo


def test_the_engine_draws_one_point_as_any_digit(engine):
    z = np.random.default_rng(3).standard_normal(64).astype(np.float32)
    imgs = [engine.generate("cond", 2, z, label)[0] for label in (0, 3, "7", 9)]
    assert all(np.abs(a - b).mean() > 1e-3 for i, a in enumerate(imgs) for b in imgs[i + 1 :])
    again, p = engine.generate("cond", 2, z, 3)
    np.testing.assert_allclose(again, imgs[1], atol=1e-6)  # the same point and digit: the same image
    assert 0 <= p <= 1
    # D judges an image as the digit named, or (no label) as the digit it finds most plausible
    by_label = [float(engine.scores("cond", 2, again[None], [y])[0]) for y in range(10)]
    assert float(engine.scores("cond", 2, again[None])[0]) == pytest.approx(max(by_label), abs=1e-6)


def test_a_path_from_one_digit_to_another_keeps_the_point(engine):
    from explorer import conditional

    z = np.random.default_rng(5).standard_normal(64).astype(np.float32)
    frames, p = conditional.digit_path(engine, "cond", 2, z, "1", 7, 6)
    assert frames.shape == (6, 28, 28) and p.shape == (6,) and ((0 <= p) & (p <= 1)).all()
    # its ends are the point drawn as each digit; in between, the label's embedding moves
    np.testing.assert_allclose(frames[0], engine.generate("cond", 2, z, 1)[0], atol=1e-5)
    np.testing.assert_allclose(frames[-1], engine.generate("cond", 2, z, 7)[0], atol=1e-5)
    assert np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2)).min() > 0


def test_compare_and_interpolation_draw_the_digit_asked_for(engine):
    epochs, three, _ = engine.compare("cond", 4, 0, label=3)
    _, five, _ = engine.compare("cond", 4, 0, label="5")
    assert epochs == [1, 2] and three.shape == five.shape == (2, 4, 28, 28)
    assert np.abs(three - five).mean() > 1e-3
    a, b = np.zeros(64, np.float32), np.ones(64, np.float32)
    imgs, _, _ = engine.interpolate("cond", 2, a, b, 3, "linear", label=8)
    np.testing.assert_allclose(imgs[0], engine.generate("cond", 2, a, 8)[0], atol=1e-5)


def test_a_digit_is_found_in_a_conditional_run_as_the_digit_it_reads(engine):
    """Your digit in a conditional run: the search is for the style, G drawing the digit the
    evaluator reads in it (or the one named): nearer than the run's random points drawn as it."""
    from explorer import yourdigit
    from explorer.registry import ExplorerError

    snap = engine.snapshot("cond", 2)
    target, _ = snap.generate(np.random.default_rng(11).standard_normal((1, 64)), [6])
    target = target[0]  # an image this epoch can draw, as 6: projection should get close to it
    read = yourdigit.read(target)[0]
    r = yourdigit.project(engine, "cond", 2, target, seed=0, steps=60)
    assert r["drawn_as"] == read and len(r["z"]) == 64 and r["image"].shape == (28, 28)
    drawn, _ = engine.generate("cond", 2, np.array(r["z"], np.float32), read)
    np.testing.assert_allclose(drawn, r["image"], atol=1e-5)  # z drawn as that digit is the image
    z = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    rand, _ = snap.generate(z, [read] * 16)
    random_rms = np.sqrt(((rand - target) ** 2).mean(axis=(1, 2))).mean()
    # (a tiny run's images are all much alike: the search beats its random points and its own start)
    start = yourdigit.project(engine, "cond", 2, target, seed=0, steps=1)
    assert r["distance"] < min(random_rms, start["distance"]), (r["distance"], random_rms, start)
    named = yourdigit.project(engine, "cond", 2, target, seed=0, steps=10, digit="3")
    assert named["drawn_as"] == 3
    every = yourdigit.project_epochs(engine, "cond", target, seed=0, steps=10, digit=6)
    assert every["drawn_as"] == 6 and [row["drawn_as"] for row in every["rows"]] == [6, 6]
    with pytest.raises(ExplorerError, match="0 to 9"):
        yourdigit.project(engine, "cond", 2, target, steps=5, digit=12)
    # an unconditional run draws no chosen digit
    assert yourdigit.project(engine, "demo", DEMO_FINAL, target, steps=5)["drawn_as"] is None
    with pytest.raises(ExplorerError, match="not conditional"):
        yourdigit.project(engine, "demo", DEMO_FINAL, target, steps=5, digit=3)


@pytest.mark.parametrize("bad", [11, -1, "x", 2.5, True, "10"])
def test_a_label_that_is_not_a_digit_is_a_clear_error(engine, bad):
    from explorer.registry import ExplorerError

    z = np.zeros(64, np.float32)
    with pytest.raises(ExplorerError, match="whole number from 0 to 9"):
        engine.generate("cond", 2, z, bad)
    assert 0 <= engine.generate("cond", 2, z, 4)[1] <= 1  # and the next request is served


def test_an_unconditional_run_refuses_a_label_and_draws_as_before_without_one(engine):
    from explorer.registry import ExplorerError

    z = np.zeros(64, np.float32)
    with pytest.raises(ExplorerError, match="not conditional"):
        engine.generate("demo", DEMO_FINAL, z, 3)
    img, p = engine.generate("demo", DEMO_FINAL, z)
    assert img.shape == (28, 28) and engine.generate("demo", DEMO_FINAL, z, "")[1] == p


# ----------------------------------------------------------------------------- the app
@contextlib.contextmanager
def served_app(runs_dirs: list, train_dir: Path):
    """The explorer app built in this process over ``runs_dirs``, served on a free port (app.url)."""
    from explorer.ui import build_app
    from tests.test_browser import free_port

    app = build_app(runs_dirs, train_dir)
    port = free_port()
    app.url = f"http://127.0.0.1:{port}/"
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="module")
def app(runs, tmp_path_factory):
    with served_app([runs], tmp_path_factory.mktemp("train")) as app:
        yield app


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False, ssl_verify=False)


def test_the_snapshot_grid_has_a_row_per_digit_each_judged_as_its_digit(app, monkeypatch):
    asked = []
    scores = app.engine.scores
    monkeypatch.setattr(app.engine, "scores", lambda *a: asked.append(a[3]) or scores(*a))
    grid, note = app.ctx.scored_samples("cond", app.registry.get("cond").epochs[-1])
    assert note == "" and grid.height > grid.width  # 10 rows, labelled "digit 0".."digit 9", of 8
    np.testing.assert_array_equal(asked[0], np.repeat(np.arange(10), 8))  # D judges row r as digit r


def test_the_digit_picker_redraws_the_same_point_as_the_digit_picked(client):
    listed = {r["name"]: r for r in json.loads(client.predict(api_name="/list_runs"))}
    assert listed["cond"]["num_classes"] == 10
    sliders = [0.5] * 8 + [0.0] * 6
    shown = {}
    for digit in ("2", "8", "2"):
        html_, label, vector = client.predict("cond", 2, *sliders, digit, api_name="/slide_digit")
        assert f"digit <b>{digit}</b>" in html_ and 0 <= label["confidences"][0]["confidence"] <= 1
        shown.setdefault(digit, []).append((html_.split('src="', 1)[1].split('"', 1)[0], vector))
    (two, z2), (eight, z8) = shown["2"][0], shown["8"][0]
    assert z2 == z8, "the picker changes the digit, not the point"
    assert np.abs(png_pixels(two) - png_pixels(eight)).mean() > 0.5
    assert shown["2"][1][0] == two  # back to 2: the same image again
    without = client.predict("cond", 2, *sliders, api_name="/slide")[0]  # /slide: the picker's digit
    assert "digit <b>0</b>" in without


def test_generate_draws_digit_0_and_generate_digit_takes_the_label_and_explains_a_bad_one(client):
    vec = ", ".join(["0.3"] * 64)
    a, pa = client.predict("cond", 2, vec, "1", api_name="/generate_digit")
    b, pb = client.predict("cond", 2, vec, "6", api_name="/generate_digit")
    assert np.abs(png_pixels(a) - png_pixels(b)).mean() > 0.5 and 0 <= pa <= 1 and 0 <= pb <= 1
    assert (
        client.predict("cond", 2, vec, api_name="/generate")[0]
        == client.predict("cond", 2, vec, "0", api_name="/generate_digit")[0]
    )  # no label: digit 0
    for bad in ("11", "-1", "x"):
        with pytest.raises(Exception, match="whole number from 0 to 9"):
            client.predict("cond", 2, vec, bad, api_name="/generate_digit")


def test_the_interpolation_endpoints_take_digits(client):
    a, b = ", ".join(["-0.5"] * 64), ", ".join(["0.5"] * 64)
    strips = [client.predict("cond", 2, a, b, 4, "linear", d, api_name="/interpolate_digit")[0] for d in "36"]
    x, y = (np.asarray(Image.open(s).convert("L"), np.float32) for s in strips)
    assert x.shape == y.shape and np.abs(x - y).mean() > 0.5  # the same path drawn as 3, then as 6
    # /interpolate keeps its 6 values (the picker's digit is a state: 0 for an API caller)
    old = client.predict("cond", 2, a, b, 4, "linear", api_name="/interpolate")[0]
    zero = client.predict("cond", 2, a, b, 4, "linear", "0", api_name="/interpolate_digit")[0]
    assert np.array_equal(np.asarray(Image.open(old)), np.asarray(Image.open(zero)))
    strip, plot, gif, _ = client.predict("cond", 2, a, "2", "9", 5, api_name="/digit_path")
    assert Image.open(strip).width > Image.open(strip).height and len(plot["data"]) == 5
    assert Image.open(gif).n_frames >= 5
    with pytest.raises(Exception, match="'x'.*not in the list of choices: \\['0', '1'"):
        client.predict("cond", 2, a, "2", "x", 5, api_name="/digit_path")  # the digit picker's own check


def test_the_public_endpoints_keep_their_inputs_for_raw_callers(client):
    """/slide, /interpolate, /generate and /compare take what they took before the digit (raw HTTP
    callers send exactly that many values); the digit has endpoints of its own."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    counts = {name: len(api[name]["parameters"]) for name in api}
    assert counts["/slide"] == 16 and counts["/interpolate"] == 6 and counts["/generate"] == 3
    assert counts["/compare"] == 4
    assert counts["/interpolate_digit"] == 7 and counts["/generate_digit"] == 4  # /slide_digit: unlisted


def test_d_gradients_on_a_conditional_run_judge_the_digit_asked_and_refuse_a_bad_one(engine):
    from explorer import directions
    from explorer.registry import ExplorerError

    snap = engine.snapshot("cond", 2)
    img, p, grad = directions.look(engine, snap, np.zeros(64, np.float32), 4)  # more: test_cdcgan_more
    assert p == pytest.approx(engine.generate("cond", 2, np.zeros(64, np.float32), 4)[1], abs=1e-5)
    with pytest.raises(ExplorerError, match="whole number from 0 to 9") as exc:
        directions.look(engine, snap, np.zeros(64, np.float32), 10)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- bad input, no TF
def test_data_without_labels_is_refused_for_the_conditional_preset(tmp_path):
    from training.data import DataError, class_labels

    with pytest.raises(DataError, match="needs a label for every image"):
        class_labels(None, 10, "digits.npz")
    with pytest.raises(DataError, match="from 0 to 9"):
        class_labels(np.array([0, 3, 12]), 10, "digits.npz")
    assert class_labels(np.array([0, 9], np.uint8), 10, "x").dtype == np.int32


def test_run_json_with_an_impossible_conditional_field_is_a_clear_error():
    from explorer.facts import FactsError, run_facts

    base = {"latent_dim": 64, "pixel_range": [-1, 1]}
    assert run_facts(base).num_classes == 0  # runs made before the field: unconditional
    assert run_facts({**base, "conditional": True, "num_classes": 10}).num_classes == 10
    with pytest.raises(FactsError, match="conditional is 'yes'"):
        run_facts({**base, "conditional": "yes"})
    with pytest.raises(FactsError, match="num_classes"):
        run_facts({**base, "conditional": True})


def _refused(tmp_path: Path, *args) -> str:
    """The training CLI's one-line refusal (exit 2) for the conditional preset; no run folder."""
    run = tmp_path / "run"
    proc = run_cli("--run-dir", str(run), "--preset", "cdcgan", *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and not run.exists()
    return lines[0]


def test_image_folders_the_conditional_preset_cannot_train_on_are_refused_in_one_line(tmp_path):
    from models.presets import PRESETS

    assert PRESETS["cdcgan"].sizes == (28,) and not PRESETS["cdcgan"].colour  # not dcgan's 28/32/64
    colour, grey = tmp_path / "colour", tmp_path / "grey"
    for i in range(4):
        (colour / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (40 * i, 200, 10)).save(colour / f"c{i % 2}" / f"{i}.png")
        grey.mkdir(exist_ok=True)
        Image.new("L", (28, 28), 60 * i).save(grey / f"{i}.png")
    msg = _refused(tmp_path, "--data", str(colour))
    assert "'cdcgan' has no networks for 32x32x3" in msg and "28 px grey" in msg
    msg = _refused(tmp_path, "--data", str(grey), "--image-size", "28", "--channels", "1")
    assert "needs a label for every image" in msg and "one sub-folder per class" in msg
