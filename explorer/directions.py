"""Directions you can name: "toward digit k", "more real", and where D looks (saliency).

- **Toward digit k**: a linear probe on the latent space of one snapshot. PROBE_N latent points
  (seeded) are drawn, G draws them, the project's quality evaluator reads each image (its 10
  probabilities), and the direction for digit k is the evaluator-weighted mean of z for k minus
  the mean of all z, normalised to unit length. Because z ~ N(0, I), the within-class covariance
  is close to the identity, so this mean difference is the linear discriminant (LDA) direction
  itself; a multinomial logistic regression gave the same test results on the demo at 40x the
  fitting time. Fitted once per snapshot and memoised on it (Snapshot.extra), like the PCA
  directions.
- **More real**: a few steps of normalised gradient ascent on D's logit of G(z), the whole loop one
  tf.function traced once per snapshot (fixed input signature: no retracing per request).
- **Saliency**: the gradient of D's logit with respect to the image's pixels (0-1 scale); positive
  where more ink would look more real to D, negative where it would look more fake. One traced
  tf.function per snapshot, alone (an image) or together with G (a latent point: image, P(real)
  and saliency in one graph call, what the sliders draw).
- A conditional run's G and D also take the digit: More real and the sliders' saliency draw and
  judge the point as the digit picked; an image alone is judged as the digit D finds most plausible.
"""

from __future__ import annotations

import numpy as np

from explorer import conditional, latent
from explorer.engine import Snapshot
from explorer.registry import ExplorerError
from models.clusters import cluster_of, style_mask

PROBE_N, PROBE_SEED = 1000, 0  # generated samples the probe is fitted on
MAX_STRENGTH = 8.0  # |z| of the prior is about sqrt(64) = 8: a longer step leaves the prior behind
REAL_STEPS, REAL_STEP = 5, 0.3  # "More real": 5 steps of 0.3 in z (unit-length gradient steps)
MAX_REAL_STEPS = 100


# ---------------------------------------------------------------------------------- checks
def check_digit(k) -> int:
    try:
        v = float(k)
        ok = np.isfinite(v) and v == int(v) and 0 <= v <= 9
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"the digit must be a whole number from 0 to 9 (got {str(k)[:40]})")
    return int(v)


def check_number(value, what: str, lo: float, hi: float) -> float:
    try:
        v = float(value)
        ok = bool(np.isfinite(v)) and lo <= v <= hi
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"{what} must be a number from {lo:g} to {hi:g} (got {str(value)[:40]})")
    return v


def check_image(img01) -> np.ndarray:
    try:
        x = np.asarray(img01, np.float32)
    except (TypeError, ValueError):
        raise ExplorerError("the image must be 28x28 numbers from 0 to 1") from None
    if x.size != 28 * 28:
        raise ExplorerError(f"the image must be 28x28 pixels (got {x.size} values)")
    if not np.all(np.isfinite(x)):
        raise ExplorerError("the image holds NaN or infinity; pixels must be numbers from 0 to 1")
    return np.clip(x.reshape(28, 28), 0.0, 1.0)


# ---------------------------------------------------------------------------------- the probe
def fit_probe(z: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Latent points (N, d) and the evaluator's probabilities of their images (N, 10) -> ten unit
    directions (10, d): for each digit, the probability-weighted mean of z minus the mean of z."""
    z = np.asarray(z, np.float64)
    p = np.asarray(probs, np.float64)
    if z.ndim != 2 or p.shape != (len(z), 10) or not (np.isfinite(z).all() and np.isfinite(p).all()):
        raise ExplorerError("the probe needs finite latent points (N, d) and probabilities (N, 10)")
    weights = p / np.maximum(p.sum(0, keepdims=True), 1e-12)
    dirs = weights.T @ z - z.mean(0)
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    return (dirs / np.maximum(norms, 1e-12)).astype(np.float32)


def evaluate(images01) -> np.ndarray:
    """The quality evaluator's ten probabilities of each image (N,28,28) in [0,1] -> (N, 10)."""
    from training.quality import QualityScorer  # the evaluator, loaded once per process

    return QualityScorer.load().embed(np.asarray(images01, np.float32).reshape(-1, 28, 28, 1))[1]


def digit_directions(snap: Snapshot) -> np.ndarray:
    """The snapshot's ten "toward digit k" directions (10, d), fitted on first use, then memoised."""
    return _probe(snap)[0]


def _probe(snap: Snapshot):
    """(the ten directions (10, d), each cluster's mean evaluator probabilities (K, 10) or None).
    For a self-conditioned G the directions leave z[0] alone (style_mask): its digit is chosen by
    its cluster, and the probe also says which digit each cluster draws."""

    def make():
        z = np.random.default_rng(PROBE_SEED).standard_normal((PROBE_N, snap.latent_dim)).astype(np.float32)
        imgs = np.concatenate([snap.generate(z[i : i + 250])[0] for i in range(0, PROBE_N, 250)])
        probs, geom = evaluate(imgs), snap.clusters()
        dirs = fit_probe(z * style_mask(geom, snap.latent_dim), probs)
        if geom is None:
            return dirs, None
        of = cluster_of(geom, z[:, 0])
        per = np.stack(
            [probs[of == c].mean(0) if (of == c).any() else np.zeros(10) for c in range(len(geom[0]))]
        )
        return dirs, per

    return snap.extra(("digit-probe", PROBE_N), make)


def toward_digit(snap: Snapshot, z, k, strength) -> np.ndarray:
    """z moved `strength` units along the direction toward digit k (clipped to the latent bounds).
    A self-conditioned G (positive strength) also moves z[0] into the nearest cluster that draws k
    about as surely as the surest one (mean probability within 10 % of the best cluster's)."""
    z = latent.check_vector(z, snap.latent_dim)
    k = check_digit(k)
    s = check_number(strength, "the strength", -MAX_STRENGTH, MAX_STRENGTH)
    dirs, per = _probe(snap)
    out = z + np.float32(s) * dirs[k]
    if per is not None and s > 0:
        mids = snap.clusters()[0]
        sure = np.flatnonzero(per[:, k] >= 0.9 * per[:, k].max())
        out[0] = mids[sure[np.argmin(np.abs(mids[sure] - z[0]))]]
    return np.clip(out, -latent.MAX_ABS, latent.MAX_ABS).astype(np.float32)


# ---------------------------------------------------------------------------------- D's gradients
def _logit_fn(snap: Snapshot, logits: bool):
    """((N,28,28) images in [0,1], labels (N,)) -> D's logit (N,), whatever the run's D outputs; a
    conditional D judges each image as its label, an unconditional one ignores the labels."""
    import tensorflow as tf

    lo, hi = snap.pixel_range
    d = snap.discriminator

    def logit(img01, y):
        x = img01[..., None] * (hi - lo) + lo
        out = tf.reshape(tf.cast(d([x, y] if snap.num_classes else x, training=False), tf.float32), [-1])
        if logits:
            return out
        p = tf.clip_by_value(out, 1e-6, 1 - 1e-6)  # a D that outputs P(real): its log-odds
        return tf.math.log(p) - tf.math.log1p(-p)

    return logit


def _gen01(snap: Snapshot):
    import tensorflow as tf

    lo, hi = snap.pixel_range
    g, classes = snap.generator, snap.num_classes
    return lambda z, y: (
        (tf.cast(g([z, y] if classes else z, training=False), tf.float32)[..., 0] - lo) / (hi - lo)
    )


def _make_fns(snap: Snapshot, logits: bool) -> dict:
    """The snapshot's three traced graphs (fixed input signatures: traced once, never per request)."""
    import tensorflow as tf

    logit, gen01, dim = _logit_fn(snap, logits), _gen01(snap), snap.latent_dim
    mask = tf.constant(style_mask(snap.clusters(), dim))

    def grad_of(img01, y):
        with tf.GradientTape() as tape:
            tape.watch(img01)
            s = logit(img01, y)
            total = tf.reduce_sum(s)  # each image's own gradient: the rows are independent
        return s, tape.gradient(total, img01)

    labels = tf.TensorSpec([None], tf.int32)  # a conditional run's digits (ignored otherwise)

    # autograph=False: no tensor-dependent Python control flow in these two (faster to trace);
    # more_real's tf.range loop needs autograph
    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.float32), labels], autograph=False)
    def saliency(img01, y):
        return grad_of(img01, y)

    @tf.function(input_signature=[tf.TensorSpec([None, dim], tf.float32), labels], autograph=False)
    def look(z, y):
        img = tf.clip_by_value(gen01(z, y), 0.0, 1.0)
        s, grad = grad_of(img, y)
        return img, tf.sigmoid(s), grad

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, dim], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
            labels,
        ]
    )
    def more_real(z0, steps, step, y):
        z = z0
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(z)
                s = tf.reduce_sum(logit(gen01(z, y), y))
            g = tape.gradient(s, z) * mask  # a clustered G's z[0] keeps its cluster (style_mask)
            g = g / (tf.norm(g, axis=1, keepdims=True) + 1e-12)  # a unit step whatever D's scale
            z = tf.clip_by_value(z + step * g, -latent.MAX_ABS, latent.MAX_ABS)
        return z, logit(gen01(z0, y), y), logit(gen01(z, y), y)

    return {"saliency": saliency, "look": look, "more_real": more_real}


def fns(engine, snap: Snapshot) -> dict:
    """The snapshot's traced graphs, built on first use and memoised on it."""
    logits = engine.registry.get(snap.run).d_outputs_logits
    return snap.extra(("d-grads", logits), lambda: _make_fns(snap, logits))


def _label(snap: Snapshot, label, img01=None) -> np.ndarray:
    """The digit (1,) a conditional D judges by: the one given (checked), else, for an image, the
    digit D finds most plausible (as Snapshot.score does); [0] for an unconditional run."""
    if snap.num_classes and img01 is not None and (label is None or label == ""):
        every = snap.score(np.repeat(img01[None], snap.num_classes, axis=0), np.arange(snap.num_classes))
        return np.array([int(np.argmax(every))], np.int32)
    y = conditional.check_label(snap.run, snap.num_classes, label)
    return np.array([y or 0], np.int32)


def saliency(engine, snap: Snapshot, img01, label=None) -> tuple[np.ndarray, float]:
    """One image (28,28) in [0,1] -> (the gradient of D's logit with respect to its pixels (28, 28),
    D's logit). A conditional D judges it as ``label`` (None: the digit it finds most plausible)."""
    x = check_image(img01)
    logit, grad = fns(engine, snap)["saliency"](x[None], _label(snap, label, x))
    return grad.numpy()[0], float(logit.numpy()[0])


def look(engine, snap: Snapshot, z, label=None) -> tuple[np.ndarray, float, np.ndarray]:
    """One latent point -> (image (28,28), P(real) by the snapshot's D, saliency (28,28)): one graph
    call. A conditional run draws it, and D judges it, as ``label`` (None: 0)."""
    z = latent.check_vector(z, snap.latent_dim)
    img, p, grad = fns(engine, snap)["look"](z[None], _label(snap, label))
    return img.numpy()[0], float(p.numpy()[0]), grad.numpy()[0]


def more_real(engine, snap: Snapshot, z, steps=REAL_STEPS, step=REAL_STEP, label=None) -> dict:
    """z moved up D's logit of G(z): `steps` unit-gradient steps of length `step` -> z and the logits.
    A conditional run's point is drawn and judged as ``label`` (None: 0) all the way."""
    z = latent.check_vector(z, snap.latent_dim)
    y = _label(snap, label)
    n = int(check_number(steps, "the number of steps", 1, MAX_REAL_STEPS))
    if n != float(steps):
        raise ExplorerError(f"the number of steps must be a whole number (got {str(steps)[:40]})")
    size = check_number(step, "the step size", 0.0, 2.0)
    out, before, after = fns(engine, snap)["more_real"](z[None], np.int32(n), np.float32(size), y)
    return {
        "z": out.numpy()[0],
        "logit_before": float(before.numpy()[0]),
        "logit_after": float(after.numpy()[0]),
    }
