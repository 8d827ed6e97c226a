"""Fashion-MNIST, the second real data set: Debian's dataset-fashion-mnist (scripts/need_fashion.sh
installs it for scripts/test.sh and CI), read by the data loader, judged by its own evaluator
(models/evaluator/fashion_*), and a run on it scored by that evaluator, said in run.json and
summary.json, and the explorer's nearest real images searched by it. No GAN training beyond one
epoch on 256 images."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import MNIST
from training.data import FASHION_DIR, load_dataset, load_training_data

if not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
    why = (
        f"Debian's dataset-fashion-mnist is not installed ({FASHION_DIR} is missing); "
        "run scripts/need_fashion.sh (apt-get install dataset-fashion-mnist)"
    )
    if os.environ.get("CI"):  # CI installs it (scripts/test.sh): missing there is a failure
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)


@pytest.fixture(scope="module")
def fashion():
    """All 70,000 images and labels as the trainer reads them (train file first, then test)."""
    x, y, source = load_dataset(data=str(FASHION_DIR))
    return x, y, source


@pytest.fixture(scope="module")
def test_split(fashion):
    """The 10,000 held-out test images (the evaluator never trained on them), in [0, 1]."""
    x, y, _ = fashion
    return x[60000:].astype(np.float32)[..., None] / 255.0, y[60000:]


@pytest.fixture(scope="module")
def scorer():
    from training.quality import QualityScorer

    return QualityScorer.load("fashion_mnist")


def test_the_loader_reads_debians_files_train_split_first(fashion):
    x, y, source = fashion
    assert source == str(FASHION_DIR.resolve())
    assert x.shape == (70000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (70000,) and sorted(set(y.tolist())) == list(range(10))
    assert np.bincount(y).tolist() == [7000] * 10  # 6,000 train + 1,000 test per class
    # --dataset fashion_mnist without --data reads the same Debian folder, not the internet
    x2, y2, facts = load_training_data("fashion_mnist", max_images=300)
    assert facts["source"] == str(FASHION_DIR)
    assert np.array_equal(x2, x[:300]) and np.array_equal(y2, y[:300])


def test_fashion_images_pick_the_fashion_evaluator_digits_the_mnist_one(fashion):
    from training.quality import evaluator_for

    x, _, _ = fashion
    digits, _, _ = load_dataset(data=str(MNIST))
    assert evaluator_for(x) == "fashion_mnist"
    assert evaluator_for(x[60000:]) == "fashion_mnist"  # the test file alone (or first)
    assert evaluator_for(digits) == "mnist"
    assert evaluator_for(x[1:]) == "mnist"  # not Fashion-MNIST as shipped: the default


def test_shipped_evaluator_is_small_and_reports_its_held_out_accuracy():
    from models.evaluator import evaluator_files

    files = evaluator_files("fashion_mnist")
    assert files.weights.stat().st_size < 2_000_000
    report = json.loads(files.report.read_text())
    assert report["train"] == "first 60000" and report["held_out"] == 10000
    assert report["held_out_accuracy"] >= 0.90
    assert report["fcd_floor_half_vs_half"] < 2


def test_evaluator_names_real_test_garments(test_split, scorer):
    from models.evaluator import FASHION_CLASSES, load_evaluator

    x, y = test_split
    model, _ = load_evaluator("fashion_mnist")
    pred = model.predict(x[:500], verbose=0).argmax(1)
    assert (pred == y[:500]).mean() >= 0.88
    # a trouser (class 1) and a bag (8): the easiest classes, named without doubt
    for cls in (1, 8):
        _, probs = scorer.embed(x[y == cls][:20])
        assert (probs.argmax(1) == cls).mean() >= 0.95, FASHION_CLASSES[cls]


def test_real_garments_score_low_fcd_and_high_confidence_digits_do_not(test_split, scorer):
    x, _ = test_split
    real = scorer.score(x[:2000])
    assert real["evaluator"] == "fashion_mnist"
    assert real["fcd"] < 3 * real["fcd_floor"] + 1
    # shirts, pullovers and coats look alike at 28x28: the evaluator names about 71 % of real
    # garments with p >= 0.9 (README: Fashion-MNIST), the ceiling a generator is measured against
    assert real["confident_share"] > 0.65 and real["mode_coverage"] == 10
    assert real["classifier_score"] > 7
    digits, _, _ = load_dataset(data=str(MNIST), max_images=2000)
    other = scorer.score(digits.astype(np.float32)[..., None] / 255.0)
    assert other["fcd"] > 20 * real["fcd"] + 50  # digits are not garments to this evaluator
    assert other["confident_share"] < real["confident_share"] - 0.1


def test_a_run_on_fashion_is_scored_by_the_fashion_evaluator(tmp_path):
    """One epoch on 256 images (the CLI's loop, in-process): run.json and summary.json name the
    evaluator, and the neighbour index holds the Fashion evaluator's features."""
    from models.evaluator import evaluator_files
    from training import nnindex
    from training.loop import TrainConfig, train

    result = train(
        TrainConfig(
            run_dir=str(tmp_path / "fashion"),
            dataset="fashion_mnist",
            max_images=256,
            epochs=1,
            batch_size=64,
            quality_samples=200,
            tensorboard=False,
            progress_bar=False,
        )
    )
    assert result.status == "completed"
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["dataset"]["evaluator"] == "fashion_mnist" and info["dataset"]["source"] == str(FASHION_DIR)
    summary = json.loads((result.run_dir / "epochs" / "epoch-0001" / "summary.json").read_text())
    q = summary["quality"]
    assert q["evaluator"] == "fashion_mnist" and q["n_samples"] == 200
    assert np.isfinite(q["fcd"]) and q["fcd"] > q["fcd_floor"]
    index = nnindex.read(result.run_dir)
    assert index.evaluator == nnindex.weights_id(evaluator_files("fashion_mnist").weights)

    # the explorer's nearest real images search that index with the same evaluator's features: a
    # training image finds itself first, by pixels and by features (stored as float16: about 0)
    from explorer.neighbours import Neighbours
    from explorer.registry import RunRegistry

    nb = Neighbours(RunRegistry([tmp_path]))
    x, _, _ = load_dataset(data=str(FASHION_DIR), max_images=256)
    out = nb.query("fashion", x[[5]] / 255.0, 3)
    loaded = nb.get("fashion")
    assert loaded.evaluator == "fashion_mnist" and "features" not in out["note"]
    assert np.array_equal(loaded.index.features, index.features)  # kept, not recomputed by MNIST's
    for by in ("pixels", "features"):
        first, second = out["results"][0][by][:2]
        assert first["training_index"] == 5 and first["distance"] < 0.05 * second["distance"]
