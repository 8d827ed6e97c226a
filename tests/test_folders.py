"""A folder of images as training data, end to end: Debian's oxygen icons (real PNGs no one here
made; scripts/need_icons.sh installs them) trained 2 epochs at 32 px RGB by the real CLI, then
explored through the engine, the views and the in-process app; and the bad folders a user
meets, each refused (or skipped and counted) by the real CLI before TensorFlow is loaded."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import warm
from tests.conftest import MNIST, ROOT
from training.imagefolder import load_image_folder, probe

ICONS = Path("/usr/share/icons/oxygen/base/32x32")
N_ICONS = 300
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return warm.run(
        [sys.executable, "-m", "training", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def png_header(path: Path, w: int, h: int) -> None:
    """A PNG that declares w x h pixels and holds none (the header is all PIL reads to refuse it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def copy_icons(dst: Path, n: int = N_ICONS) -> list[Path]:
    """n oxygen icons spread over the categories, nested two deep: <category>/<first letter>/."""
    assert ICONS.is_dir(), "Debian's oxygen-icon-theme is missing: run scripts/need_icons.sh"
    src = sorted(ICONS.rglob("*.png"))
    picked = src[:: max(1, len(src) // n)][:n]
    out = []
    for f in picked:
        d = dst / f.parent.name / f.name[0]
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
        out.append(d / f.name)
    return out


@pytest.fixture(scope="module")
def icon_run(tmp_path_factory):
    """300 real icons plus a truncated PNG and a 1x1 PNG among them, trained 2 epochs at 32 px
    (channels left to the data: RGB). The decoded images stream from a cache file (the path a
    large folder takes), forced here by a zero memory budget."""
    base = tmp_path_factory.mktemp("folders")
    icons = base / "icons"
    files = copy_icons(icons)
    raw = files[0].read_bytes()
    (icons / "places" / "broken.png").write_bytes(raw[: len(raw) // 2])
    Image.new("RGB", (1, 1), (255, 0, 0)).save(icons / "places" / "dot.png")
    (icons / "places" / "notes.txt").write_text("not an image")
    run = base / "runs" / "icons"
    env = dict(ENV, LATENT_EXPLORER_IMAGE_MEMORY="0", TMPDIR=str(base))
    proc = cli(
        "--run-dir",
        run,
        "--data",
        icons,
        "--image-size",
        32,
        "--epochs",
        2,
        "--batch-size",
        32,
        "--quality-samples",
        200,
        "--quiet",
        "--no-tensorboard",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base, run, proc


def test_the_icons_train_at_32px_rgb_and_the_run_folder_says_how(icon_run):
    base, run, proc = icon_run
    skipped_line = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert len(skipped_line) == 1 and "skipped 2 of 302 image files" in skipped_line[0]
    assert "broken.png" in skipped_line[0] and "1x1 px is too small" in skipped_line[0]
    assert not list(base.glob("latent-explorer-images-*")), "the decoded cache outlived the process"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["image_shape"] == [32, 32, 3]
    ds = info["dataset"]
    assert ds["kind"] == "image folder" and ds["n_images"] == N_ICONS and ds["channels"] == 3
    assert "centre square" in ds["preprocessing"] and "32x32" in ds["preprocessing"]
    assert ds["classes"] == sorted(p.name for p in (base / "icons").iterdir())
    assert {f["file"] for f in ds["skipped"]["files"]} == {"places/broken.png", "places/dot.png"}
    assert info["config"]["image_size"] == 32 and info["config"]["channels"] == 3
    assert "MNIST" in info["quality_note"]
    for e in (1, 2):
        s = json.loads((run / "epochs" / f"epoch-000{e}" / "summary.json").read_text())
        assert s["quality"] is None and s["quality_note"] == info["quality_note"]
    with Image.open(run / "epochs" / "epoch-0002" / "samples.png") as im:
        assert im.mode == "RGB" and im.size == (8 * 34 + 2, 8 * 34 + 2)
        a = np.asarray(im, np.float32)
    assert np.abs(a[..., 0] - a[..., 1]).mean() > 1.0, "the samples grid should be in colour"


@pytest.fixture(scope="module")
def engine(icon_run):
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    return Engine(RunRegistry([icon_run[1].parent]))


def test_the_engine_draws_colour_images_of_the_runs_size(engine):
    from explorer import render

    img, p = engine.generate("icons", 2, np.zeros(64, np.float32))
    assert img.shape == (32, 32, 3) and 0 <= img.min() and img.max() <= 1 and 0 <= p <= 1
    png = render.digit(img, 32)
    assert png.mode == "RGB" and png.size == (32, 32)
    assert np.array_equal(np.asarray(png), render.to_uint8(img))
    imgs, scores, _ = engine.interpolate("icons", 2, np.zeros(64), np.ones(64), 8)
    assert imgs.shape == (8, 32, 32, 3) and scores.shape == (8,)
    gif = Image.open(io.BytesIO(render.gif_bytes(imgs, scores)))
    assert gif.size == (192, 192) and gif.n_frames == 14  # 6x the 32 px side; there and back
    epochs, grid, sc = engine.compare("icons", 4, final_d=True)
    assert epochs == [1, 2] and grid.shape == (2, 4, 32, 32, 3) and sc.shape == (2, 4)
    assert len(engine.top_dims("icons", 2)) == 8 and engine.directions("icons", 2)[0].shape == (6, 64)


def test_the_views_and_the_app_explore_the_colour_run(icon_run, engine, tmp_path):
    from gradio_client import Client

    from explorer.trainer import Trainer
    from explorer.ui import build_app, snapshot
    from explorer.ui.context import Ctx

    runs = icon_run[1].parent
    ctx = Ctx(engine.registry, engine, Trainer(tmp_path / "train"), tmp_path / "train", tmp_path)
    facts, samples, quality, hist = snapshot.view(ctx, "icons", 2)
    assert "32x32x3" in facts and "2 unreadable image file(s) skipped" in facts
    assert samples.mode == "RGB" and "quality not scored: the evaluator knows only MNIST" in quality
    assert hist is None
    app = build_app([runs], tmp_path / "train")
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None)
    try:
        c = Client(url, verbose=False, ssl_verify=False)
        uri, p = c.predict("icons", 2, ", ".join(["0.5"] * 64), api_name="/generate")
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert im.mode == "RGB" and im.size == (32, 32) and 0 <= p <= 1
        page, verdict, _ = c.predict("icons", 2, *([0.5] * 14), api_name="/slide")
        slid = Image.open(io.BytesIO(base64.b64decode(page.split("base64,", 1)[1].split('"', 1)[0])))
        assert slid.mode == "RGB" and slid.size == (336, 336) and "(D of epoch 2)" in verdict["label"]
        out = c.predict("icons", 8, 0, False, api_name="/compare")
        assert "Quality not scored" in out[1] and "MNIST" in out[1]
        strip, *_ = c.predict("icons", 2, "0 " * 64, "1 " * 64, 6, "linear", api_name="/interpolate")
        assert Image.open(strip).mode in ("RGB", "RGBA")
        j = json.loads(c.predict(uri, "icons", 2, api_name="/judge"))  # Your image: D judges, no evaluator
        assert 0 <= j["p_real"] <= 1 and j["label"] is None and "no evaluator" in j["evaluator_note"]
    finally:
        app.close()


# ----------------------------------------------------------------------------- bad folders
def _refused(tmp_path: Path, data, *extra) -> str:
    """The CLI's one-line refusal; it must come before TensorFlow and write no run folder."""
    run = tmp_path / "run"
    proc = cli("--run-dir", run, "--data", data, *extra, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and not run.exists()
    return lines[0]


def test_a_folder_without_images_is_refused_in_one_line(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "readme.txt").write_text("no pictures here")
    msg = _refused(tmp_path, tmp_path / "empty")
    assert "holds no image files" in msg and "cats" in msg


def test_a_folder_of_only_unusable_images_is_refused_naming_why(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.png").write_bytes(b"this is not a png")
    Image.new("L", (1, 1)).save(bad / "dot.png")
    png_header(bad / "huge.png", 20000, 20000)
    msg = _refused(tmp_path, bad)
    assert "no readable image" in msg and "all 3 image file(s) were skipped" in msg
    assert probe(bad / "huge.png")[1].startswith("over PIL's decompression-bomb limit")
    assert "too small" in probe(bad / "dot.png")[1] and "cannot be read" in probe(bad / "garbage.png")[1]


def test_sizes_and_presets_that_do_not_fit_are_refused_before_training(tmp_path):
    folder = tmp_path / "pics"
    copy_icons(folder, 40)
    assert "no networks for 32x32x3" in _refused(tmp_path, folder, "--preset", "keras-io")
    assert "apply to a folder of images" in _refused(tmp_path, MNIST, "--image-size", 32)
    msg = _refused(tmp_path, folder, "--batch-size", 64)  # 40 images: fewer than a batch
    assert "only 40 images" in msg


def test_mixed_modes_are_converted_and_cropped_to_the_centre(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 20:40] = (0, 200, 0)  # the centre square is green; the sides are black
    Image.fromarray(wide).save(d / "a_wide.bmp")
    Image.new("RGBA", (16, 16), (0, 0, 255, 0)).save(d / "b_clear.png")  # transparent -> white
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(d / "c_16bit.png")
    Image.new("L", (16, 16), 100).convert("P").save(d / "d_palette.gif")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(d / "e_cmyk.jpg", quality=95)
    Image.new("LA", (16, 16), (50, 255)).save(d / "f_grey_alpha.png")
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 255, 0), (0, 0, 0))]
    frames[0].save(d / "g_anim.gif", save_all=True, append_images=frames[1:])
    data = load_image_folder(d, 28)
    x = data.images.astype(int)
    assert x.shape == (7, 28, 28, 3) and data.labels is None and data.info["channels"] == 3
    assert (np.abs(x[0] - (0, 200, 0)) <= 2).all(), "the centre square of the wide image"
    assert (x[1] == 255).all() and (x[2] == 255).all() and (abs(x[3] - 100) <= 1).all()
    assert (x[4, ..., 0] > 200).all() and (x[4, ..., 1:] < 60).all(), "CMYK red stays red"
    assert (x[5] == 50).all() and (abs(x[6] - (255, 255, 0)) <= 1).all(), "a GIF's first frame"
    grey = load_image_folder(d, 32, channels=1)
    assert grey.images.shape == (7, 32, 32, 1) and abs(int(grey.images[3].mean()) - 100) <= 1
    only_grey = tmp_path / "grey"
    only_grey.mkdir()
    for name in ("c_16bit.png", "d_palette.gif", "f_grey_alpha.png"):
        shutil.copy(d / name, only_grey / name)
    assert load_image_folder(only_grey).images.shape == (3, 32, 32, 1), "grey images: one channel"


def test_class_sub_folders_are_labels_and_a_large_folder_streams_from_a_cache_file(tmp_path, capsys):
    files = copy_icons(tmp_path / "icons", 60)
    shutil.copy(files[0], tmp_path / "icons" / "top.png")  # ignored: Keras reads only the classes
    mem = load_image_folder(tmp_path / "icons", 32, max_images=50)
    assert "1 image file(s) directly in" in capsys.readouterr().err
    disk = load_image_folder(tmp_path / "icons", 32, max_images=50, memory_budget=0)
    assert isinstance(disk.images, np.memmap) and not isinstance(mem.images, np.memmap)
    assert np.array_equal(np.asarray(disk.images), mem.images) and mem.images.shape == (50, 32, 32, 3)
    classes = mem.info["classes"]
    names = [f.relative_to(tmp_path / "icons").parts[0] for f in sorted(files)][:50]
    assert [classes[i] for i in mem.labels] == sorted(names)


def test_the_dcgan_preset_builds_for_every_size_and_keeps_the_28px_digits_as_they_were():
    from models import get_preset

    dcgan = get_preset("dcgan")
    assert dcgan.for_shape((28, 28, 1)) is dcgan
    for shape in ((32, 32, 1), (64, 64, 3)):  # 32x32x3 is trained above
        p = dcgan.for_shape(shape)
        g, d = p.build_generator(p.latent_dim), p.build_discriminator()
        assert tuple(g.output_shape[1:]) == shape and tuple(d.input_shape[1:]) == shape
        assert d.output_shape[-1] == 1 and p.facts()["image_shape"] == list(shape)
    assert [l.filters for l in g.layers if hasattr(l, "filters")] == [256, 128, 64, 3]  # the paper's G
    with pytest.raises(ValueError, match="no networks for 48x48x3"):
        dcgan.for_shape((48, 48, 3))
