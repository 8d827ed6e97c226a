"""The quality evaluator: a small MNIST classifier trained by this project (training/evaluator_train.py).

Its penultimate layer ("features", 128 units) feeds the Frechet distance (FCD, MNIST's FID);
its softmax feeds the classifier score and the per-digit histogram. The weights ship in
models/evaluator/ so every run is scored by the same network, offline.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

EVALUATOR_DIR = Path(__file__).resolve().parent / "evaluator"
WEIGHTS = EVALUATOR_DIR / "mnist_classifier.weights.h5"
REAL_STATS = EVALUATOR_DIR / "real_stats.npz"


def build_evaluator():
    """Input (28,28,1) float32 in [0,1]; outputs 10 logits. Always float32."""
    import keras
    from keras import layers

    img = keras.Input((28, 28, 1), name="image", dtype="float32")
    x = layers.Conv2D(32, 3, activation="relu", padding="same", dtype="float32")(img)
    x = layers.Conv2D(32, 3, activation="relu", padding="same", dtype="float32")(x)
    x = layers.MaxPooling2D(dtype="float32")(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same", dtype="float32")(x)
    x = layers.MaxPooling2D(dtype="float32")(x)
    x = layers.Flatten(dtype="float32")(x)
    feats = layers.Dense(128, activation="relu", name="features", dtype="float32")(x)
    x = layers.Dropout(0.3, dtype="float32")(feats)
    logits = layers.Dense(10, name="logits", dtype="float32")(x)
    return keras.Model(img, logits, name="mnist_evaluator")


@lru_cache(maxsize=1)
def load_evaluator():
    """(classifier, feature+logit model) with the shipped weights; cached per process."""
    import keras

    if not WEIGHTS.is_file():
        raise FileNotFoundError(
            f"evaluator weights missing at {WEIGHTS}; run: python -m training.evaluator_train"
        )
    model = build_evaluator()
    model.load_weights(WEIGHTS)
    both = keras.Model(model.input, [model.get_layer("features").output, model.output])
    return model, both


@lru_cache(maxsize=1)
def feature_fn():
    """Images in [0,1] (N, 28, 28, 1) float32 -> the evaluator's 128 features (N, 128), as one traced
    graph per process (the explorer's nearest-digit search calls it per request: no retracing)."""
    import tensorflow as tf

    _, both = load_evaluator()
    return tf.function(
        lambda x: both(x, training=False)[0],
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
    )
