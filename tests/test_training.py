"""The training script as a user meets it: real digits, real processes, real run folders."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import warm

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
EPOCH_FILES = {"generator.keras", "discriminator.keras", "samples.png", "summary.json"}


def run_training(*args, timeout=300, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = warm.run(
        [sys.executable, "-m", "training", "--quiet", "--no-tensorboard", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def small_args(run_dir, *extra, images=320, epochs=2, quality=200):
    """A small real run; quality=0 where the test does not look at the quality scores."""
    return [
        "--run-dir",
        str(run_dir),
        "--data",
        str(MNIST),
        "--max-images",
        str(images),
        "--epochs",
        str(epochs),
        "--batch-size",
        "32",
        "--quality-samples",
        str(quality),
        *extra,
    ]


def load_model(path):
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def assert_whole_epoch(folder: Path):
    assert {p.name for p in folder.iterdir()} == EPOCH_FILES, folder
    json.loads((folder / "summary.json").read_text())
    load_model(folder / "generator.keras")
    load_model(folder / "discriminator.keras")
    Image.open(folder / "samples.png").verify()


def test_a_run_writes_complete_loadable_snapshots(trained_runs):
    """The shared run 'tiny' (tests/conftest.py: 3 epochs of 512 real digits, batch 32)."""
    run = trained_runs / "tiny"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 3
    assert info["latent_dim"] == 64 and info["pixel_range"] == [-1.0, 1.0]
    assert info["dataset"]["n_images"] == 512
    assert info["command"].startswith("python -m training ")
    epochs = sorted(p.name for p in (run / "epochs").iterdir())
    assert epochs == ["epoch-0001", "epoch-0002", "epoch-0003"]
    lo, hi = info["pixel_range"]
    z = np.random.default_rng(0).standard_normal((16, info["latent_dim"])).astype("float32")
    for e in epochs:
        assert_whole_epoch(run / "epochs" / e)
        g = load_model(run / "epochs" / e / "generator.keras")
        x = np.asarray(g(z, training=False))
        assert x.shape == (16, 28, 28, 1)
        assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
        s = json.loads((run / "epochs" / e / "summary.json").read_text())
        for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
            assert np.isfinite(s[k])
        assert 0 <= s["d_acc_real"] <= 1 and s["steps"] == 16
    a = np.asarray(Image.open(run / "epochs/epoch-0001/samples.png"), dtype=np.int16)
    b = np.asarray(Image.open(run / "epochs/epoch-0002/samples.png"), dtype=np.int16)
    assert a.shape == b.shape == (8 * 30 + 2, 8 * 30 + 2)
    assert np.abs(a - b).mean() > 1.0, "the fixed-z grid must change between epochs"
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3]
    steps = [r for r in rows if r["kind"] == "step"]
    assert steps and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in steps)
    assert (run / "checkpoint" / "state.npz").is_file()


def _wait_for(pred, timeout, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.05)
    return False


def test_sigkill_mid_epoch_then_resume_matches_the_uninterrupted_run(tmp_path, trained_runs):
    """'tiny''s recipe, killed in the middle of epoch 2: only whole epochs on disk; --resume
    finishes it, and epochs 2 and 3 come out as in the uninterrupted run (losses, weights),
    with the metrics reading like one run. (One step per call: the kill lands mid-epoch; the
    number of steps per call does not change the numbers.)"""
    from tests.conftest import TINY_ARGS

    run = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = ["--run-dir", str(run), *TINY_ARGS, "--steps-per-call", "1"]
    proc = warm.popen(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def mid_epoch_two():
        try:
            p = json.loads((run / "progress.json").read_text())
        except (OSError, ValueError):
            return False
        return p.get("epoch") == 2 and 0 < p.get("step_in_epoch", 0) < p.get("steps_per_epoch", 0)

    assert _wait_for(mid_epoch_two, 120, proc), proc.stderr.read().decode()[-2000:]
    proc.kill()
    proc.wait()
    epochs = sorted(p.name for p in (run / "epochs").iterdir() if not p.name.startswith("."))
    assert epochs == ["epoch-0001"]
    assert_whole_epoch(run / "epochs/epoch-0001")
    run_training("--run-dir", str(run), "--resume", "--epochs", "3")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 3
    for e in range(1, 4):
        assert_whole_epoch(run / "epochs" / f"epoch-{e:04d}")
    assert not [p for p in (run / "epochs").iterdir() if p.name.startswith(".")]
    # the killed writer's step lines of epoch 2 were replaced by the re-trained epoch's, once
    from training.runfolder import read_jsonl

    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3]
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(1, 49))
    full = trained_runs / "tiny"
    for e in ("epoch-0002", "epoch-0003"):
        a = json.loads((full / "epochs" / e / "summary.json").read_text())
        b = json.loads((run / "epochs" / e / "summary.json").read_text())
        for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5), (e, k)
    g1 = load_model(full / "epochs/epoch-0003/generator.keras")
    g2 = load_model(run / "epochs/epoch-0003/generator.keras")
    for w1, w2 in zip(g1.get_weights(), g2.get_weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-5)


def test_second_trainer_is_refused_and_sigterm_stops_between_steps(tmp_path):
    """While a run trains, a second trainer on its folder is refused; SIGTERM then stops the
    first between steps with whole epochs only, says how to resume, and frees the folder."""
    run = tmp_path / "locked"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = small_args(run, "--steps-per-call", "1", images=640, epochs=50, quality=0)
    first = warm.popen(
        [sys.executable, "-m", "training", "--quiet", "--no-tensorboard", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(lambda: (run / "progress.json").is_file(), 120, first)
        second = run_training("--run-dir", str(run), "--resume", check=False)
        assert second.returncode == 2
        assert "being trained by another process" in second.stderr
        assert _wait_for(lambda: (run / "epochs/epoch-0001").is_dir(), 120, first)
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, err.decode()[-2000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and 1 <= info["epochs_done"] < 50
    assert b"--resume" in err
    assert len(list((run / "epochs").glob("epoch-*"))) == info["epochs_done"]
    # the stopped trainer holds nothing: the folder's lock is free for a --resume (which the
    # resume tests run; another TensorFlow process here would only cost time)
    from training.runfolder import is_locked

    assert not is_locked(run)


def test_two_logical_devices_under_mirrored_strategy_train_an_epoch(tmp_path):
    run = tmp_path / "mirrored"
    run_training(*small_args(run, "--devices", "2", epochs=1, quality=0))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["config"]["devices"] == 2
    assert_whole_epoch(run / "epochs/epoch-0001")
    s = json.loads((run / "epochs/epoch-0001/summary.json").read_text())
    assert np.isfinite(s["d_loss"]) and np.isfinite(s["g_loss"]) and s["steps"] == 10


@pytest.mark.parametrize("precision,dtype", [("mixed_bfloat16", "bfloat16"), ("onednn_bfloat16", "float32")])
def test_bfloat16_precisions_train_and_snapshot_loadable_models(tmp_path, precision, dtype):
    """Both bf16 options train; onednn_bfloat16 keeps the snapshots plain float32 models."""
    import keras

    from models.cpu import precision_error

    run = tmp_path / precision
    if precision_error(precision):  # oneDNN capped below bf16 on a bf16 CPU (an AVX2 run approached)
        proc = run_training(*small_args(run, "--precision", precision, epochs=1, images=64), check=False)
        assert proc.returncode == 2 and "cannot run with ONEDNN_MAX_CPU_ISA" in proc.stderr
        pytest.skip("bf16 cannot run under this ONEDNN_MAX_CPU_ISA; refused as it should be")
    run_training(*small_args(run, "--precision", precision, epochs=1, images=64))
    s = json.loads((run / "epochs/epoch-0001/summary.json").read_text())
    assert np.isfinite(s["d_loss"]) and np.isfinite(s["g_loss"])
    assert s["quality"]["fcd"] > 0 and np.isfinite(s["quality"]["fcd"])
    g = load_model(run / "epochs/epoch-0001/generator.keras")
    convs = [layer for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert convs and all(layer.compute_dtype == dtype for layer in convs)
    z = np.random.default_rng(0).standard_normal((4, 64)).astype("float32")
    x = np.asarray(g(z, training=False), np.float32)
    assert x.shape == (4, 28, 28, 1) and np.all(np.isfinite(x)) and np.abs(x).max() <= 1


def test_keras_io_preset_trains_with_the_fast_conv_and_snapshots_stock_layers(tmp_path):
    """keras-io's one-map last conv runs on models/fast_ops.py's kernels while training; the
    snapshot is still stock Keras: its last layer a plain Conv2D giving the same images as the
    accelerated copy the explorer makes of it."""
    import keras

    from models.fast_ops import accelerate

    run = tmp_path / "kerasio"
    run_training(*small_args(run, "--preset", "keras-io", epochs=1))
    s = json.loads((run / "epochs/epoch-0001/summary.json").read_text())
    assert np.isfinite(s["d_loss"]) and np.isfinite(s["g_loss"]) and np.isfinite(s["quality"]["fcd"])
    path = run / "epochs/epoch-0001/generator.keras"
    g, fast = load_model(path), load_model(path)
    last_conv = [l for l in g.layers if isinstance(l, keras.layers.Conv2D)][-1]
    assert type(last_conv) is keras.layers.Conv2D and last_conv.filters == 1
    assert accelerate(fast) == 1
    z = np.random.default_rng(0).standard_normal((6, 128)).astype("float32")
    np.testing.assert_allclose(np.asarray(fast(z)), np.asarray(g(z)), atol=1e-5)

    # the explorer loads it (accelerated) and draws what the stock model draws
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    engine = Engine(RunRegistry([tmp_path]))
    epochs, imgs, scores = engine.compare("kerasio", 6, seed=1)
    assert epochs == [1] and imgs.shape == (1, 6, 28, 28)
    assert np.all((scores > 0) & (scores < 1))
    img, p = engine.generate("kerasio", 1, z[0])
    np.testing.assert_allclose(img, np.clip(np.asarray(g(z[:1]))[0, ..., 0], 0, 1), atol=1e-5)
    assert 0 < p < 1


# ----------------------------------------------------------------------------- bad input
def _bad_inputs(tmp: Path):
    garbage = tmp / "garbage"
    garbage.mkdir()
    (garbage / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03junk"))
    noimg = tmp / "labels-only.npz"
    np.savez(noimg, y_train=np.arange(10))
    wrong = tmp / "wrong-shape.npz"
    np.savez(wrong, x_train=np.zeros((100, 32, 32, 3), np.uint8))
    notzip = tmp / "corrupt.npz"
    notzip.write_bytes(b"this is not a zip archive")
    existing = tmp / "existing-run"
    existing.mkdir()
    (existing / "run.json").write_text('{"keep": "me"}')
    trained = tmp / "trained-run"
    trained.mkdir()
    (trained / "run.json").write_text('{"config": {"epochs": 40}, "epochs_done": 40, "status": "completed"}')
    base = ["--max-images", "256", "--quality-samples", "0"]
    return {
        "missing data path": (["--data", str(tmp / "nope")] + base, "does not exist"),
        "corrupt IDX": (["--data", str(garbage)] + base, "truncated"),
        "corrupt npz": (["--data", str(notzip)] + base, "cannot read"),
        "npz without images": (["--data", str(noimg)] + base, "no 'x_train'"),
        "wrong image shape": (["--data", str(wrong)] + base, "expected (N, 28, 28)"),
        "zero epochs": (["--data", str(MNIST), "--epochs", "0"] + base, "--epochs"),
        "negative batch": (["--data", str(MNIST), "--batch-size", "-4"] + base, "--batch-size"),
        "existing run": (["--data", str(MNIST)] + base, "already exists"),
        "resume without run": (["--data", str(MNIST), "--resume"] + base, "no run.json"),
        "resume below done": (["--resume", "--epochs", "15"] + base, "already trained 40 epochs"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing data path",
        "corrupt IDX",
        "corrupt npz",
        "npz without images",
        "wrong image shape",
        "zero epochs",
        "negative batch",
        "existing run",
        "resume without run",
        "resume below done",
    ],
)
def test_bad_input_is_a_clear_one_line_error_and_writes_nothing(tmp_path, case):
    args, needle = _bad_inputs(tmp_path)[case]
    folders = {"existing run": "existing-run", "resume below done": "trained-run"}
    run = tmp_path / folders.get(case, "new-run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} if run.exists() else None
    proc = run_training("--run-dir", str(run), *args, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert needle in lines[0]
    if before is None:
        assert not run.exists(), "nothing may be written on bad input"
    else:
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_no_internet_and_no_data_says_how_to_point_at_local_data(tmp_path, monkeypatch):
    from training import data

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr("keras.datasets.mnist.load_data", offline)
    with pytest.raises(data.DataError, match="--data PATH"):
        data.load_dataset("mnist")


def test_idx_reader_reads_gz_and_plain_and_npz(tmp_path):
    from training.data import load_dataset

    x, y, _ = load_dataset(data=str(MNIST))
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in MNIST.glob("*.gz"):
        (plain / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    x2, y2, _ = load_dataset(data=str(plain), max_images=100)
    np.testing.assert_array_equal(x2, x[:100])
    np.testing.assert_array_equal(y2, y[:100])
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=x[:50].astype(np.float32) / 255.0)
    x3, y3, _ = load_dataset(data=str(npz))
    assert y3 is None
    np.testing.assert_array_equal(x3, x[:50])


def test_an_epochs_batches_come_in_the_permutations_order_with_no_tuning_thread():
    """The epoch's input: the permutation's digits in order, whole batches only, and tf.data's
    autotuning off (its tuning thread made letting go of each epoch's iterator wait 3-4 s)."""
    import tensorflow as tf

    from training.loop import epoch_batches

    perm = np.random.default_rng(0).permutation(100)
    images = tf.constant(np.arange(100, dtype=np.int32) * 3)
    ds = epoch_batches(perm, 32, lambda idx: tf.gather(images, idx))
    assert ds.options().autotune.enabled is False
    got = [b.numpy() for b in ds]
    assert [len(b) for b in got] == [32, 32, 32]  # the last 4 digits wait for the next epoch
    np.testing.assert_array_equal(np.concatenate(got), perm[:96] * 3)
