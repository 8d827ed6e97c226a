"""Your image on a colour run: a real oxygen icon (a PNG no one here made) uploaded to a tiny 32 px
RGB run trained one epoch on other icons by the real CLI, judged by D (no evaluator reading: it
knows only 28x28 grey digits), projected into the run's latent space, through the engine and the
tab's handlers in-process. The 28x28 digit path is tests/test_yourdigit.py's."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import yourdigit as yd
from explorer.registry import ExplorerError
from tests.test_folders import ENV, cli, copy_icons

# a colourful icon at 64 px (the run trains on 32 px files; the upload is made 32x32 here)
UPLOAD = Path("/usr/share/icons/oxygen/base/64x64/apps/basket.png")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """64 icons, 1 epoch at 32 px (RGB, from the data): the cheapest real colour run."""
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    base = tmp_path_factory.mktemp("yourimage")
    copy_icons(base / "icons", 64)
    run = base / "runs" / "icons"
    args = ("--data", base / "icons", "--image-size", 32, "--epochs", 1, "--batch-size", 32)
    proc = cli("--run-dir", run, *args, "--quiet", "--no-tensorboard", env=dict(ENV, TMPDIR=str(base)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Engine(RunRegistry([run.parent]))


def upload_uri() -> str:
    assert UPLOAD.is_file(), "Debian's oxygen-icon-theme is missing: run scripts/need_icons.sh"
    return "data:image/png;base64," + base64.b64encode(UPLOAD.read_bytes()).decode()


def test_an_uploaded_icon_becomes_the_runs_32px_colour_image():
    img = yd.prepare(upload_uri(), (32, 32, 3))
    assert img.shape == (32, 32, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    with Image.open(UPLOAD) as im:  # the icon's own pixels, on white, shrunk as the training images were
        rgba = im.convert("RGBA")
        ref = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba).convert("RGB")
        ref = np.asarray(ref.resize((32, 32), Image.Resampling.LANCZOS), np.float32) / 255.0
    assert np.abs(img - ref).mean() < 0.02
    assert np.abs(img[..., 0] - img[..., 2]).mean() > 0.02, "the icon stays in colour"
    grey = yd.prepare(upload_uri(), (32, 32, 1))
    assert grey.shape == (32, 32) and abs(grey.mean() - img.mean()) < 0.1
    with pytest.raises(ExplorerError, match="upload at least 8x8"):
        yd.prepare(Image.new("RGB", (4, 4)), (32, 32, 3))


def test_an_icon_is_judged_and_projected_into_the_colour_run(engine):
    img = yd.prepare(upload_uri(), yd.run_shape(engine, "icons"))
    j = yd.judge(engine, "icons", 1, img)
    assert 0 <= j["p_real"] <= 1 and [r["epoch"] for r in j["by_epoch"]] == [1]
    assert j["label"] is None and "no evaluator" in j["evaluator_note"]
    snap = engine.snapshot("icons", 1)
    r = yd.project(engine, "icons", 1, img, seed=0, steps=30)
    assert r["image"].shape == (32, 32, 3) and len(r["z"]) == 64 and 0 <= r["p_real"] <= 1
    assert np.isfinite(r["distance"]) and r["distance"] < yd.random_distance(snap, img, n=16)
    out = yd.project_epochs(engine, "icons", img, seed=0, steps=10)
    assert out["best_epoch"] == 1 and out["rows"][0]["image"].shape == (32, 32, 3)
    with pytest.raises(ExplorerError, match="this run makes 32x32x3 images"):
        yd.judge(engine, "icons", 1, np.zeros((28, 28), np.float32))  # a digit left from a digit run


def test_the_tabs_handlers_take_an_upload_on_the_colour_run(engine, tmp_path):
    from explorer.trainer import Trainer
    from explorer.ui import yourdigit as ui
    from explorer.ui.context import Ctx

    ctx = Ctx(engine.registry, engine, Trainer(tmp_path / "train"), tmp_path / "train", tmp_path)
    assert "upload" in ui.run_note(ctx, "icons") and "32x32x3" in ui.run_note(ctx, "icons")
    h = ui._handlers(ctx)
    with Image.open(UPLOAD) as im:
        state, seen, verdict, curve = h["take"](im.copy(), "icons", 1)
    assert np.asarray(state).shape == (32, 32, 3) and seen.mode == "RGB"
    assert "P(real)" in verdict and "no evaluator" in verdict and len(curve) == 1
    pair, md, z_txt, found = h["project"](state, "icons", 1, 0, 20)
    z = found["z"]  # for Open in the sliders, with the digit of a conditional run (none here)
    assert found["digit"] is None
    assert pair.mode == "RGB" and "pixel distance" in md and "no evaluator" in md and len(z) == 64
    grid, frame, note = h["project_epochs"](state, "icons", 0, 10)
    assert grid.mode == "RGB" and list(frame["epoch"]) == [1] and "Epoch **1**" in note
    # the tab's nearest-real-images strip says why there is none for a colour run (not "28x28")
    from explorer.neighbours import Neighbours
    from explorer.ui.nearest import strip_html

    ctx.neighbours = Neighbours(engine.registry)
    import html as htmllib

    html = htmllib.unescape(strip_html(ctx, "icons", np.asarray(state, np.float32)))
    assert "unavailable for run 'icons'" in html and "32x32x3" in html and "28x28 pixels" not in html
