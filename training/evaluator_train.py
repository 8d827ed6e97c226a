"""Train a quality evaluator and write its shipped files (models/evaluator/).

    python -m training.evaluator_train --data ../shared/data/mnist          # MNIST digits
    python -m training.evaluator_train --evaluator fashion_mnist            # Debian's Fashion-MNIST

MNIST: trains on the first 8,000 labelled digits (small random shifts and rotations) and reports
accuracy on the last 2,000 held out, refusing to write weights under 98%. Fashion-MNIST: trains on
its 60,000-image train split (small shifts) and reports accuracy on its 10,000-image test split,
refusing under 90%. Then computes the real feature statistics (all images), the real-vs-real
floor and the FCD of degraded real images. Deterministic with --seed. Every file is written
atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from training.data import FASHION_DIR, DataError, load_dataset
from training.runfolder import write_bytes_atomic


@dataclass(frozen=True)
class Recipe:
    data: str  # default --data
    n_train: int  # the first n_train images train, the rest are held out
    min_acc: float  # no weights are written under this held-out accuracy
    epochs: int
    rotation: float  # augmentation: RandomRotation factor (0: none)
    decay_from: int  # epoch from which the learning rate decays by 0.7 per epoch


RECIPES = {
    "mnist": Recipe("../shared/data/mnist", 8000, 0.98, 12, 0.04, 4),
    # the IDX folder reads its train file (60,000) first, then the test file (10,000)
    "fashion_mnist": Recipe(str(FASHION_DIR), 60000, 0.90, 5, 0.0, 2),
}
N_TRAIN = RECIPES["mnist"].n_train
MIN_ACC = RECIPES["mnist"].min_acc


def _blur(x01: np.ndarray, sigma: float) -> np.ndarray:
    import tensorflow as tf

    r = int(3 * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    k2 = np.outer(k, k)[:, :, None, None].astype(np.float32)
    return tf.nn.conv2d(x01, k2, 1, "SAME").numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluator_train")
    ap.add_argument("--evaluator", default="mnist", choices=sorted(RECIPES), help="which evaluator to make")
    ap.add_argument("--data", help="its labelled IDX folder or .npz (default: the evaluator's own data)")
    ap.add_argument("--epochs", type=int, help="training epochs (default: 12 for mnist, 5 for fashion_mnist)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    recipe = RECIPES[args.evaluator]
    epochs = args.epochs or recipe.epochs
    try:
        images, labels, source = load_dataset(data=args.data or recipe.data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if labels is None or len(images) < recipe.n_train + 1000:
        print(
            f"error: need at least {recipe.n_train + 1000} labelled images, {source} has "
            f"{len(images)} {'with' if labels is not None else 'without'} labels",
            file=sys.stderr,
        )
        return 2

    import keras

    from models.evaluator import build_evaluator, evaluator_files

    files = evaluator_files(args.evaluator)
    keras.utils.set_random_seed(args.seed)
    x = images.astype(np.float32)[..., None] / 255.0
    y = labels.astype(np.int64)
    n = recipe.n_train
    x_tr, y_tr, x_ho, y_ho = x[:n], y[:n], x[n:], y[n:]
    model = build_evaluator()
    aug = [keras.layers.RandomTranslation(0.1, 0.1, seed=args.seed)]
    if recipe.rotation:
        aug.append(keras.layers.RandomRotation(recipe.rotation, seed=args.seed))
    inp = keras.Input((28, 28, 1))
    trainer = keras.Model(inp, model(keras.Sequential(aug)(inp)))
    trainer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    decay = recipe.decay_from
    trainer.fit(
        x_tr,
        y_tr,
        batch_size=128,
        epochs=epochs,
        verbose=2,
        callbacks=[keras.callbacks.LearningRateScheduler(lambda e, lr: 1e-3 * (0.7 ** max(0, e - decay)))],
    )
    acc = float((model.predict(x_ho, verbose=0).argmax(1) == y_ho).mean())
    print(f"held-out accuracy on {len(y_ho)} images: {acc:.4f}")
    if acc < recipe.min_acc:
        print(
            f"error: held-out accuracy {acc:.4f} is under {recipe.min_acc}; nothing written", file=sys.stderr
        )
        return 1

    files.weights.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=files.weights.parent) as tmp:
        model.save_weights(Path(tmp) / "w.weights.h5")
        write_bytes_atomic(files.weights, (Path(tmp) / "w.weights.h5").read_bytes())
    report = _stats_and_report(
        x,
        args.seed,
        args.evaluator,
        {"source": source, "train": f"first {n}", "held_out": len(y_ho), "held_out_accuracy": acc},
    )
    report.update(
        command="python -m training.evaluator_train " + " ".join(argv or sys.argv[1:]),
        seed=args.seed,
        epochs=epochs,
    )
    write_bytes_atomic(files.report, (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report, indent=2))
    return 0


def _stats_and_report(x: np.ndarray, seed: int, name: str, report: dict) -> dict:
    """Real statistics and FCD floors with the weights just written; the report's figures."""
    from models.evaluator import evaluator_files, load_evaluator
    from training.quality import QualityScorer, feature_stats, frechet_distance

    QualityScorer._instances.pop(name, None)
    load_evaluator.cache_clear()
    _, both = load_evaluator(name)
    feats = np.concatenate([both(x[i : i + 1000], training=False)[0].numpy() for i in range(0, len(x), 1000)])
    mu, sigma = feature_stats(feats)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    half_a, half_b = perm[: len(x) // 2], perm[len(x) // 2 :]
    mu_b, sig_b = feature_stats(feats[half_b])
    floor_2000 = frechet_distance(*feature_stats(feats[half_a[:2000]]), mu_b, sig_b)
    floor_half = frechet_distance(*feature_stats(feats[half_a]), mu_b, sig_b)
    import io

    buf = io.BytesIO()
    np.savez(buf, mu=mu, sigma=sigma, fcd_floor=floor_2000, fcd_floor_halves=floor_half, n_real=len(x))
    write_bytes_atomic(evaluator_files(name).real_stats, buf.getvalue())

    scorer = QualityScorer.load(name)
    sample = x[half_a[:2000]]
    what = "digits" if name == "mnist" else "images"
    table = {f"real {what} (2,000 of half A)": scorer.score(sample)["fcd"]}
    for s in (0.7, 1.0, 1.5, 2.0):
        table[f"blur sigma {s} px"] = scorer.score(_blur(sample, s))["fcd"]
    for s in (0.1, 0.2, 0.4):
        noisy = np.clip(sample + rng.normal(0, s, sample.shape).astype(np.float32), 0, 1)
        table[f"gaussian noise sd {s}"] = scorer.score(noisy)["fcd"]
    table["uniform noise images"] = scorer.score(rng.random(sample.shape, dtype=np.float32))["fcd"]
    report.update(
        fcd_floor_2000_vs_half=floor_2000, fcd_floor_half_vs_half=floor_half, fcd_of_degradations=table
    )
    return report


if __name__ == "__main__":
    sys.exit(main())
