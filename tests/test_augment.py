"""DiffAugment (training/augment.py, --augment): the transforms, the setting, a real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import warm
from tests.test_training import run_training
from training.augment import parse_policy
from training.config import TrainConfig, resume_config

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
FILL = -1.0


@pytest.fixture(scope="module")
def tf():
    from models.tf_runtime import import_tensorflow

    return import_tensorflow()


def images(tf, shape, n=16, seed=0):
    """Images with no pixel equal to the fill value (so every filled pixel is visible)."""
    return tf.constant(np.random.default_rng(seed).uniform(0.1, 1.0, (n, *shape)).astype(np.float32))


def apply(tf, name, x, seed=1):
    from training.augment import cutout, translate

    rng = tf.random.Generator.from_seed(seed)
    return {"translation": translate, "cutout": cutout}[name](x, rng, FILL).numpy()


def find_shift(src, out, limit):
    """The (dy, dx) with out == src shifted (fill where uncovered), or None."""
    h, w = src.shape[:2]
    for dy in range(-limit, limit + 1):
        for dx in range(-limit, limit + 1):
            want = np.full_like(src, FILL)
            want[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[
                max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
            ]
            if np.array_equal(want, out):
                return dy, dx
    return None


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 1)])
def test_ops_keep_shape_and_dtype_for_every_preset_shape(tf, shape):
    from training.augment import make_augment

    x = images(tf, shape, n=4)
    out = make_augment("translation,cutout", tf.random.Generator.from_seed(0), (FILL, 1.0))(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert make_augment("none", tf.random.Generator.from_seed(0), (FILL, 1.0)) is None


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_translation_moves_each_image_by_its_own_whole_pixel_shift_within_an_eighth(tf, shape):
    x = images(tf, shape, n=24)
    out = apply(tf, "translation", x)
    shifts = [find_shift(x.numpy()[i], out[i], shape[0] // 8) for i in range(len(out))]
    assert None not in shifts  # every image is a pure shift, fill where uncovered
    assert len(set(shifts)) > 5  # per sample, not one shift for the batch


@pytest.mark.parametrize("shape", [(28, 28, 1), (64, 64, 3)])
def test_cutout_fills_one_square_of_half_the_side_and_leaves_the_rest(tf, shape):
    x = images(tf, shape, n=24)
    out = apply(tf, "cutout", x)
    side = shape[0] // 2
    corners = set()
    for src, img in zip(x.numpy(), out):
        filled = np.all(img == FILL, axis=-1)
        assert np.array_equal(img[~filled], src[~filled])  # untouched outside the square
        ys, xs = np.nonzero(filled)
        assert len(ys) > 0
        box = filled[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.all()  # one filled rectangle ...
        assert box.shape[0] <= side and box.shape[1] <= side  # ... the square, clipped at edges
        assert box.shape[0] == side or ys.min() == 0 or ys.max() == shape[0] - 1
        assert box.shape[1] == side or xs.min() == 0 or xs.max() == shape[1] - 1
        corners.add((ys.min(), xs.min()))
    assert len(corners) > 5  # per sample


def test_augmentation_is_differentiable_in_the_image(tf):
    from training.augment import make_augment

    x = tf.Variable(images(tf, (28, 28, 1), n=8))
    augment = make_augment("translation,cutout_grey", tf.random.Generator.from_seed(3), (FILL, 1.0))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(augment(x) * 2.0)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all()
    # each kept pixel passes the gradient 2.0; pixels shifted out or cut out get 0
    assert set(np.unique(grad)) <= {0.0, 2.0}
    per_image = (grad == 2.0).reshape(8, -1).mean(axis=1)
    assert (per_image > 0.3).all() and (per_image < 1.0).all()


def test_policy_is_checked_in_one_line():
    assert parse_policy("none") == "none" and parse_policy(" Translation, cutout ") == "translation,cutout"
    for bad in ("flip", "translation,translation", "translation;cutout"):
        with pytest.raises(ValueError, match="--augment must be 'none' or a comma list") as err:
            parse_policy(bad)
        assert "\n" not in str(err.value)


def test_cli_refuses_a_bad_value_in_one_line_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    proc = warm.run(
        [
            sys.executable,
            "-m",
            "training",
            "--run-dir",
            str(run_dir),
            "--augment",
            "flip",
            "--data",
            str(MNIST),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "--augment must be 'none' or a comma list of translation, cutout" in proc.stderr
    assert not run_dir.exists()


def test_dcgan_trains_with_diffaugment_by_default_and_cdcgan_and_scgan_without():
    assert TrainConfig(run_dir="x", preset="dcgan").resolved().augment == "translation,cutout_grey"
    assert TrainConfig(run_dir="x").resolved().augment == "none"  # the default, scgan
    assert TrainConfig(run_dir="x", preset="cdcgan").resolved().augment == "none"
    assert TrainConfig(run_dir="x", augment="none").resolved().augment == "none"


def test_resume_keeps_the_run_setting_and_older_runs_stay_unaugmented(tmp_path):
    saved = {"config": dict(TrainConfig(run_dir="x", augment="cutout").to_json())}
    cfg = resume_config(TrainConfig(run_dir=str(tmp_path), augment="translation"), tmp_path, saved)
    assert cfg.resolved().augment == "cutout"
    del saved["config"]["augment"]  # a run.json written before --augment existed
    cfg = resume_config(TrainConfig(run_dir=str(tmp_path)), tmp_path, saved)
    assert cfg.resolved().augment == "none"


def test_a_real_run_with_augmentation_records_it_and_writes_a_loadable_snapshot(tmp_path):
    run_dir = tmp_path / "run"
    args = ["--run-dir", str(run_dir), "--data", str(MNIST), "--max-images", "256", "--epochs", "1"]
    args += ["--batch-size", "32", "--quality-samples", "0", "--augment", "translation,cutout"]
    run_training(*args)  # the CLI, as tests/test_training.py runs it
    info = json.loads((run_dir / "run.json").read_text())
    assert info["config"]["augment"] == "translation,cutout" and info["epochs_done"] == 1
    import keras

    g = keras.saving.load_model(run_dir / "epochs" / "epoch-0001" / "generator.keras", safe_mode=True)
    out = np.asarray(g(np.zeros((2, info["latent_dim"]), np.float32), training=False))
    assert out.shape == (2, 28, 28, 1) and np.isfinite(out).all()


def test_cutout_grey_fills_with_the_middle_of_the_pixel_range(tf):
    from training.augment import make_augment

    x = images(tf, (28, 28, 1), n=8)
    for lo, hi in ((-1.0, 1.0), (0.0, 1.0)):
        out = make_augment("cutout_grey", tf.random.Generator.from_seed(5), (lo, hi))(x).numpy()
        filled = (out == (lo + hi) / 2).reshape(8, -1).sum(axis=1)
        assert (filled >= 7 * 7).all() and (filled <= 14 * 14).all()
