"""Train the quality evaluator and write its shipped files (models/evaluator/).

    python -m training.evaluator_train --data ../shared/data/mnist

Trains on the first 8,000 labelled digits (small random shifts and rotations), reports accuracy
on the last 2,000 held out, refuses to write weights under 98%, then computes the real feature
statistics (all digits), the real-vs-real floor and the FCD of degraded real digits (to choose
READABLE_FCD). Deterministic with --seed. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from training.data import DataError, load_dataset
from training.runfolder import write_bytes_atomic

N_TRAIN = 8000
MIN_ACC = 0.98


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
    ap.add_argument("--data", default="../shared/data/mnist", help="labelled MNIST IDX folder or .npz")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        images, labels, source = load_dataset(data=args.data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if labels is None or len(images) < N_TRAIN + 1000:
        print(
            f"error: need at least {N_TRAIN + 1000} labelled digits, {source} has "
            f"{len(images)} {'with' if labels is not None else 'without'} labels",
            file=sys.stderr,
        )
        return 2

    import keras

    from models.evaluator import EVALUATOR_DIR, WEIGHTS, build_evaluator

    keras.utils.set_random_seed(args.seed)
    x = images.astype(np.float32)[..., None] / 255.0
    y = labels.astype(np.int64)
    x_tr, y_tr, x_ho, y_ho = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    model = build_evaluator()
    aug = keras.Sequential(
        [
            keras.layers.RandomTranslation(0.1, 0.1, seed=args.seed),
            keras.layers.RandomRotation(0.04, seed=args.seed),
        ]
    )
    inp = keras.Input((28, 28, 1))
    trainer = keras.Model(inp, model(aug(inp)))
    trainer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    trainer.fit(
        x_tr,
        y_tr,
        batch_size=128,
        epochs=args.epochs,
        verbose=2,
        callbacks=[keras.callbacks.LearningRateScheduler(lambda e, lr: 1e-3 * (0.7 ** max(0, e - 4)))],
    )
    acc = float((model.predict(x_ho, verbose=0).argmax(1) == y_ho).mean())
    print(f"held-out accuracy on {len(y_ho)} digits: {acc:.4f}")
    if acc < MIN_ACC:
        print(f"error: held-out accuracy {acc:.4f} is under {MIN_ACC}; nothing written", file=sys.stderr)
        return 1

    EVALUATOR_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=EVALUATOR_DIR) as tmp:
        model.save_weights(Path(tmp) / "w.weights.h5")
        write_bytes_atomic(WEIGHTS, (Path(tmp) / "w.weights.h5").read_bytes())
    report = _stats_and_report(
        x,
        args.seed,
        {"source": source, "train": f"first {N_TRAIN}", "held_out": len(y_ho), "held_out_accuracy": acc},
    )
    report.update(
        command="python -m training.evaluator_train " + " ".join(argv or sys.argv[1:]),
        seed=args.seed,
        epochs=args.epochs,
    )
    write_bytes_atomic(EVALUATOR_DIR / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report, indent=2))
    return 0


def _stats_and_report(x: np.ndarray, seed: int, report: dict) -> dict:
    """Real statistics and FCD floors with the weights just written; the report's figures."""
    from models.evaluator import REAL_STATS
    from training.quality import QualityScorer, feature_stats, frechet_distance

    QualityScorer._instance = None
    from models.evaluator import load_evaluator

    load_evaluator.cache_clear()
    _, both = load_evaluator()
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
    write_bytes_atomic(REAL_STATS, buf.getvalue())

    scorer = QualityScorer.load()
    sample = x[half_a[:2000]]
    table = {"real digits (2,000 of half A)": scorer.score(sample)["fcd"]}
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
