"""The quality evaluators: small classifiers trained by this project (training/evaluator_train.py),
one per data set it knows: MNIST digits (``mnist``) and Fashion-MNIST garments (``fashion_mnist``).

Each one's penultimate layer ("features", 128 units) feeds the Frechet distance (FCD, MNIST's FID);
its softmax feeds the classifier score and the per-class histogram. The weights ship in
models/evaluator/ so every run is scored by the same network, offline; a run is scored by the
evaluator of its data (training/quality.py ``evaluator_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

EVALUATOR_DIR = Path(__file__).resolve().parent / "evaluator"


@dataclass(frozen=True)
class EvaluatorFiles:
    """One evaluator's shipped files and what it judges."""

    name: str  # "mnist" | "fashion_mnist": run.json and summary.json say which one scored
    judges: str  # for messages: "MNIST digits"
    classes: tuple[str, ...]
    weights: Path
    real_stats: Path
    report: Path


FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
EVALUATORS = {
    "mnist": EvaluatorFiles(
        "mnist",
        "MNIST digits",
        tuple(str(d) for d in range(10)),
        EVALUATOR_DIR / "mnist_classifier.weights.h5",
        EVALUATOR_DIR / "real_stats.npz",
        EVALUATOR_DIR / "report.json",
    ),
    "fashion_mnist": EvaluatorFiles(
        "fashion_mnist",
        "Fashion-MNIST garments",
        FASHION_CLASSES,
        EVALUATOR_DIR / "fashion_classifier.weights.h5",
        EVALUATOR_DIR / "fashion_real_stats.npz",
        EVALUATOR_DIR / "fashion_report.json",
    ),
}
DEFAULT = "mnist"
WEIGHTS = EVALUATORS[DEFAULT].weights
REAL_STATS = EVALUATORS[DEFAULT].real_stats


def evaluator_files(name: str = DEFAULT) -> EvaluatorFiles:
    try:
        return EVALUATORS[name]
    except KeyError:
        raise ValueError(f"unknown evaluator {name!r}; known: {', '.join(EVALUATORS)}") from None


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


@lru_cache(maxsize=4)
def load_evaluator(name: str = DEFAULT):
    """(classifier, feature+logit model) with the shipped weights of ``name``; cached per process."""
    import keras

    files = evaluator_files(name)
    if not files.weights.is_file():
        raise FileNotFoundError(
            f"evaluator weights missing at {files.weights}; run: python -m training.evaluator_train "
            f"--evaluator {name}"
        )
    model = build_evaluator()
    model.load_weights(files.weights)
    both = keras.Model(model.input, [model.get_layer("features").output, model.output])
    return model, both


@lru_cache(maxsize=4)
def feature_fn(name: str = DEFAULT):
    """Images in [0,1] (N, 28, 28, 1) float32 -> the evaluator's 128 features (N, 128), as one traced
    graph per process and evaluator (the explorer's nearest-digit search calls it per request: no
    retracing)."""
    import tensorflow as tf

    _, both = load_evaluator(name)
    return tf.function(
        lambda x: both(x, training=False)[0],
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
        autograph=False,  # a plain model call: nothing to convert, faster to trace
    )
