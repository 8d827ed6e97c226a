"""Per-epoch quality of a generator, measured by the project's own evaluator of its data
(models/evaluator.py: MNIST digits, or Fashion-MNIST garments; ``evaluator_for`` picks it).

- FCD: Frechet distance between the evaluator's penultimate features of generated images and
  of the real digits (MNIST's analogue of FID, as in TF-GAN's MNIST example). Lower is better.
- classifier score: exp(mean KL(p(y|x) || p(y))), the MNIST Inception Score; at most 10.
- confident share: fraction of samples whose top class has p >= 0.9 (reads as one digit).
- digit histogram / mode coverage: predicted-digit shares; digits holding >= 2% of samples.

The real reference statistics (mean, covariance of features of the 10,000 shared real digits)
ship with the weights, so scores from any machine compare.
"""

from __future__ import annotations

import numpy as np

CONFIDENT_P = 0.9
COVERED_SHARE = 0.02
# "Digits a person reads without doubt". The evaluator's report (models/evaluator/report.json)
# places real digits at FCD ~1-2, real digits blurred by a 0.7 px Gaussian at ~22 and by 1 px at
# ~67 (soft strokes, still legible), sd-0.2 pixel noise at ~63. Looking at sample grids of our
# runs, below FCD 50 nearly every digit names itself (and the evaluator calls most of them with
# p >= 0.9); above ~70 a good share are blobs. 50 sits between those, on the strict side of
# the 1 px blur.
READABLE_FCD = 50.0


# sha256[:16] of the first image of Fashion-MNIST's train and test files: its images, wherever they
# are read from (Debian's folder, a copy, Keras' download, an .npz), are scored by its evaluator
FASHION_FIRST_IMAGES = ("5bd44e331a6d6998", "ffc7351ed0f8bae5")


def evaluator_for(images_u8) -> str:
    """The evaluator that scores 28x28 grey training images: "fashion_mnist" for Fashion-MNIST
    (images that start as its train or test file does), else "mnist"."""
    import hashlib

    first = np.ascontiguousarray(np.asarray(images_u8[:1], np.uint8)).tobytes()
    return "fashion_mnist" if hashlib.sha256(first).hexdigest()[:16] in FASHION_FIRST_IMAGES else "mnist"


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), via a symmetric eigen-decomposition."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    # Tr((S1 S2)^1/2) = Tr((A S2 A)^1/2) with A = S1^1/2, and A S2 A is symmetric PSD
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(ev, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def to_unit_range(images, pixel_range) -> np.ndarray:
    lo, hi = pixel_range
    return np.clip((np.asarray(images, np.float32) - lo) / (hi - lo), 0.0, 1.0)


class QualityScorer:
    """The evaluator plus the real reference statistics, loaded once per process."""

    _instances: dict[str, QualityScorer] = {}

    def __init__(self, name: str = "mnist"):
        import tensorflow as tf

        from models.evaluator import evaluator_files, load_evaluator

        self.name = name
        _, both = load_evaluator(name)
        with np.load(evaluator_files(name).real_stats) as z:
            self.mu, self.sigma = z["mu"], z["sigma"]
            self.fcd_floor = float(z["fcd_floor"])
        self._embed = tf.function(
            lambda x: both(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            autograph=False,  # a plain model call: nothing to convert, faster to trace
        )

    @classmethod
    def load(cls, name: str = "mnist") -> QualityScorer:
        """The scorer of evaluator ``name`` ("mnist" or "fashion_mnist"), loaded once per process."""
        if name not in cls._instances:
            cls._instances[name] = cls(name)
        return cls._instances[name]

    def embed(self, images01: np.ndarray, batch: int = 1000):
        """(N,28,28,1) in [0,1] -> (features (N,128), probabilities (N,10))."""
        feats, probs = [], []
        x = np.asarray(images01, np.float32).reshape(-1, 28, 28, 1)
        for i in range(0, len(x), batch):
            f, logits = self._embed(x[i : i + batch])
            feats.append(f.numpy())
            probs.append(_softmax(logits.numpy()))
        return np.concatenate(feats), np.concatenate(probs)

    def score(self, images01: np.ndarray, labels=None) -> dict:
        """The quality figures; with the labels a conditional generator was asked for, also
        ``conditional_accuracy``: the share of samples the classifier reads as that digit."""
        feats, probs = self.embed(images01)
        mu, sigma = feature_stats(feats)
        p_y = probs.mean(0)
        kl = np.sum(probs * (np.log(probs + 1e-12) - np.log(p_y + 1e-12)), axis=1)
        hist = np.bincount(probs.argmax(1), minlength=10) / len(probs)
        asked = {} if labels is None else {"conditional_accuracy": float((probs.argmax(1) == labels).mean())}
        return {
            **asked,
            "fcd": frechet_distance(mu, sigma, self.mu, self.sigma),
            "classifier_score": float(np.exp(kl.mean())),
            "confident_share": float((probs.max(1) >= CONFIDENT_P).mean()),
            "digit_histogram": [float(h) for h in hist],
            "mode_coverage": int((hist >= COVERED_SHARE).sum()),
            "n_samples": int(len(probs)),
            "fcd_floor": self.fcd_floor,
            "evaluator": self.name,
        }


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def score_generator(
    generator,
    latent_dim: int,
    pixel_range,
    n: int = 2000,
    seed: int = 1234,
    batch: int = 500,
    index=None,
    num_classes: int = 0,
    evaluator: str = "mnist",
) -> dict:
    """Score a generator on n samples from a FIXED latent batch (same z every call); with the run's
    neighbour index (training/nnindex.py), also the memorisation figure of the same samples.

    A conditional generator (``num_classes`` > 0) is asked for every class in turn (sample i is
    digit i % num_classes), and the figures gain ``conditional_accuracy``."""
    z = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
    y = (np.arange(n) % num_classes).astype(np.int32) if num_classes else None

    def draw(i):
        inputs = z[i : i + batch] if y is None else [z[i : i + batch], y[i : i + batch]]
        return np.asarray(generator(inputs, training=False), np.float32)

    imgs01 = to_unit_range(np.concatenate([draw(i) for i in range(0, n, batch)]), pixel_range)
    out = QualityScorer.load(evaluator).score(imgs01, labels=y)
    if index is not None:
        out.update(index.memorisation(imgs01))
    return out


def open_index(run_dir, images_u8, labels=None, with_features: bool = True, evaluator: str = "mnist"):
    """The run's neighbour index: its neighbours.npz when whole and made from this data, else
    built from the training digits and written (atomically) into the run folder.

    Overwriting an existing neighbours.npz loses nothing: every byte of it is derived from the
    training data, which is in memory here, so the new file holds what the old one should have.
    A write that fails (disk full, read-only) is said on stderr; training goes on without it.
    """
    import sys

    from models.evaluator import evaluator_files
    from training import nnindex
    from training.runfolder import RunFolderError

    feats = None
    if with_features:
        feats = lambda x: QualityScorer.load(evaluator).embed(x)[0]  # noqa: E731
    ev = nnindex.weights_id(evaluator_files(evaluator).weights) if with_features else ""
    try:
        index = nnindex.read(run_dir)
        same = index.n_total == len(images_u8) and np.array_equal(
            index.images_u8, np.asarray(images_u8)[index.ids]
        )
        if same and (not with_features or (index.features is not None and index.evaluator == ev)):
            return index
    except (RunFolderError, IndexError):
        pass
    index = nnindex.build(images_u8, labels, feats, ev)
    try:
        nnindex.write(run_dir, index)
    except OSError as exc:
        print(f"note: {nnindex.path(run_dir).name} not written ({exc})", file=sys.stderr)
    return index
