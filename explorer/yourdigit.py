"""Your own digit: turned into a 28x28 digit the way MNIST was made, judged by every epoch's D and by
the quality evaluator, and projected into the latent space of a snapshot (plain Python, no Gradio).
Any other run (an image folder's, e.g. 32x32 colour) takes your image: an upload is made the run's
size as the folder's images were (`picture`); D judges it and projection works the same, with no
evaluator reading (it knows only 28x28 grey digits).

Preprocessing (as NIST -> MNIST): the background is whatever most border pixels are (so dark-on-light
and light-on-dark both work; transparent pixels count as white paper), the ink is scaled so its
strongest pixel is 1, its bounding box is fitted into 20x20 keeping the aspect (Lanczos), and the
result is pasted into 28x28 with its centre of mass at pixel (14, 14), as in MNIST. Images are in
[0,1], 1 = ink; the engine maps [0,1] to the run's pixel range (RunInfo.pixel_range) before G and D see them.

Projection: Adam on K latent starts in ONE batch, minimising pixel MSE + LAMBDA * the evaluator's
feature distance (relative to the digit's own feature norm) + PRIOR * (|z|^2/d - 1)^2, a term that
keeps z on the Gaussian shell where G was trained. The loop is one tf.function with a fixed input
signature, traced once per snapshot (memoised on the Snapshot), so a request never retraces.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

import numpy as np

from explorer import conditional
from explorer.engine import Snapshot, SnapshotError
from explorer.facts import cell_shape
from explorer.registry import ExplorerError
from models import clusters

BOX, SIZE = 20, 28  # MNIST: ink fitted into 20x20, centred in 28x28
INK_MIN = 0.15  # a pixel is ink when it is this far from the background (JPEG noise stays out)
MAX_SIDE = 1024  # larger uploads are shrunk first (a 4000x4000 photo costs no more than this)
# 100 Adam steps at 0.1 reach the distance 150 steps at 0.05 reached, in two thirds of the time
# (20 real digits into the demo's epoch 15: mean RMS distance 0.0632 against 0.0635)
STEPS, STARTS, LR = 100, 8, 0.1
LAMBDA, PRIOR = 0.05, 0.05


# ---------------------------------------------------------------------------------- preprocessing
def _decode(text: str) -> bytes:
    """A data URI or plain base64 -> bytes. A string is never read as a path (the API must not
    open files on the server)."""
    raw = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ExplorerError(
            "send the image as a data URI (data:image/png;base64,...) or base64 PNG/JPEG bytes"
        ) from None


def _open(image):
    """Anything a caller may hand over -> a PIL image (or a numpy array), or an ExplorerError."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, dict):  # Gradio's Sketchpad / ImageEditor value
        image = image.get("composite") if image.get("composite") is not None else image.get("background")
    if isinstance(image, str):
        image = _decode(image)
    if isinstance(image, (bytes, Path)):
        try:
            with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
                im.load()
                return im.copy()
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            raise ExplorerError("that is not an image this app can read; send a PNG or JPEG") from None
    if image is None:
        raise ExplorerError("no image: draw a digit on the pad or upload a PNG/JPEG")
    return image


def _on_white(image):
    """A PIL image shrunk to MAX_SIDE at most, transparent pixels composited on white paper."""
    from PIL import Image

    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.BILINEAR)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image


def _gray_ink(image) -> np.ndarray:
    """-> (H, W) float in [0,1], white paper = 1 (transparent pixels composited on white)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        arr = np.asarray(_on_white(image).convert("L"), np.float32) / 255.0
    else:
        try:
            arr = np.asarray(image, np.float32)
        except (TypeError, ValueError):
            raise ExplorerError(f"not an image: got {type(image).__name__}; send a PNG or JPEG") from None
        if arr.ndim == 3 and arr.shape[-1] in (3, 4):
            rgb = arr[..., :3] @ np.float32([0.299, 0.587, 0.114])
            if arr.shape[-1] == 4:  # composite on white
                a = arr[..., 3] / (255.0 if arr.max() > 1.0 else 1.0)
                scale = 255.0 if arr.max() > 1.0 else 1.0
                rgb = rgb * a + scale * (1 - a)
            arr = rgb
        elif arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2 or not np.isfinite(arr).all():
            raise ExplorerError(f"not an image: an array of shape {arr.shape}; send a PNG or JPEG")
        if arr.size and arr.max() > 1.0:
            arr = arr / 255.0
    if min(arr.shape) < 8:
        raise ExplorerError(f"the image is {arr.shape[1]}x{arr.shape[0]} pixels; draw or upload at least 8x8")
    return np.clip(arr, 0.0, 1.0)


def preprocess(image) -> np.ndarray:
    """A drawing or upload of any size -> a (28, 28) float32 digit in [0,1] (1 = ink), as MNIST."""
    from PIL import Image

    gray = _gray_ink(_open(image))
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if np.mean(border > 0.5) >= 0.5 else gray  # background = the border's majority
    ink = ink - np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]]))
    peak = float(ink.max())
    if peak < INK_MIN:
        raise ExplorerError("the drawing is empty (no ink found); draw a digit or upload one")
    ink = np.clip(ink / peak, 0.0, 1.0)
    ink[ink < INK_MIN] = 0.0
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), Image.LANCZOS))
    small = np.clip(small, 0.0, 1.0)
    total = small.sum()
    if total <= 0:
        raise ExplorerError("the drawing is empty (no ink found); draw a digit or upload one")
    cy = (small.sum(1) * np.arange(nh)).sum() / total
    cx = (small.sum(0) * np.arange(nw)).sum() / total
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - nh))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - nw))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out


# ---------------------------------------------------------------------------------- the evaluator
def read(img01: np.ndarray) -> tuple[int, float, list[float]]:
    """The quality evaluator's reading of one digit: (label, confidence, the 10 probabilities).
    The evaluator is loaded once per process (training.quality holds it; it imports no loop)."""
    from training.quality import QualityScorer

    _, probs = QualityScorer.load().embed(np.asarray(img01, np.float32).reshape(1, 28, 28, 1))
    p = probs[0]
    return int(p.argmax()), float(p.max()), [float(v) for v in p]


DIGITS = (28, 28, 1)
NO_EVALUATOR = "no evaluator for this run's images (it reads only 28x28 grey digits); D's view is above"


def run_shape(engine, run) -> tuple:
    """The run's image_shape; a digit's (28, 28, 1) while no known run is picked (the pad still works)."""
    try:
        return tuple(engine.registry.get(run).image_shape) if run and isinstance(run, str) else DIGITS
    except ExplorerError:
        return DIGITS


def picture(image, shape) -> np.ndarray:
    """An upload of any size -> the run's (H, W) grey or (H, W, 3) colour image in [0,1], as the
    training folder's images were made: transparency on white, the centre square, Lanczos resize."""
    from PIL import Image, ImageOps

    im = _open(image)
    if not isinstance(im, Image.Image):
        try:
            arr = np.asarray(im)
            arr = arr * 255.0 if arr.dtype.kind == "f" and arr.size and arr.max() <= 1.0 else arr
            im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8).squeeze())
        except (TypeError, ValueError):
            raise ExplorerError(f"not an image: got {type(im).__name__}; send a PNG or JPEG") from None
    if min(im.size) < 8:
        raise ExplorerError(f"the image is {im.size[0]}x{im.size[1]} pixels; upload at least 8x8")
    h, w, c = shape
    im = _on_white(im).convert("RGB" if c == 3 else "L")
    im = ImageOps.fit(im, (w, h), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(im, np.float32) / 255.0


def prepare(image, shape=DIGITS) -> np.ndarray:
    """A drawing or upload -> the run's image: a 28x28x1 run's as MNIST (preprocess), else picture."""
    return preprocess(image) if tuple(shape) == DIGITS else picture(image, tuple(shape))


def _loadable(engine, run: str, skipped: list) -> list[Snapshot]:
    snaps = []
    for e in engine.registry.get(run).epochs:
        if e.broken:
            skipped.append((e.epoch, e.broken))
            continue
        try:
            snaps.append(engine.snapshot(run, e.epoch))
        except SnapshotError as exc:
            skipped.append((e.epoch, str(exc).split(": ", 1)[-1]))
    if not snaps:
        raise ExplorerError(f"run {run!r} has no loadable epoch yet")
    return snaps


def fits(img01, shape) -> np.ndarray:
    """The image as the run's cell (H, W) / (H, W, 3), or one line: it was made for another run."""
    x, cell = np.asarray(img01, np.float32), cell_shape(shape)
    if x.size != int(np.prod(cell)):
        raise ExplorerError(
            f"the image is {'x'.join(map(str, x.shape))} but this run makes {'x'.join(map(str, shape))} "
            "images: draw or upload it again with this run picked"
        )
    return x.reshape(cell)


def judge(engine, run: str, epoch: int, img01: np.ndarray) -> dict:
    """P(real) by the chosen epoch's D, P(real) by every loadable epoch's D, and the evaluator's
    label for a digit run (label None and a note for any other image shape)."""
    shape = run_shape(engine, run)
    x = fits(img01, shape)[None]
    p_now = float(engine.scores(run, epoch, x)[0])
    skipped: list = []
    curve = [
        {"epoch": s.epoch, "p_real": float(engine.scores(run, s.epoch, x)[0])}
        for s in _loadable(engine, run, skipped)
    ]
    label, conf, probs = read(x) if shape == DIGITS else (None, None, None)
    return {
        "run": run,
        "epoch": int(epoch),
        "p_real": p_now,
        "by_epoch": curve,
        "skipped": [{"epoch": e, "reason": r} for e, r in skipped],
        "label": label,
        "confidence": conf,
        "probabilities": probs,
        "evaluator_note": None if shape == DIGITS else NO_EVALUATOR,
    }


# ---------------------------------------------------------------------------------- projection
def _make_projector(snap: Snapshot):
    """One traced Adam loop for this snapshot: (image, z0 (K, d), steps) -> (z, images, pixel MSE, loss).
    A digit run's loss also holds the evaluator's feature distance; any other run's is pixels + shell."""
    import tensorflow as tf

    g, d, cell = snap.generator, snap.latent_dim, tuple(snap.cell_shape)
    lo, hi = snap.pixel_range
    takes_label = bool(snap.num_classes)  # a conditional run's G: (z, digit)
    digits = tuple(snap.image_shape) == DIGITS
    if digits:
        from models.evaluator import load_evaluator

        _, both = load_evaluator()
    axes = list(range(1, len(cell) + 1))
    mask = tf.constant(clusters.style_mask(snap.clusters(), d))

    def features(img):  # (N, 28, 28) -> the evaluator's features; nothing to compare for other images
        return both(img[..., None], training=False)[0] if digits else tf.zeros([tf.shape(img)[0], 1])

    def draw(z, label):  # a conditional G draws every start as the same digit
        return g([z, tf.fill([tf.shape(z)[0]], label)] if takes_label else z, training=False)

    def losses(z, label, target, f_target, f_norm):
        img = (tf.cast(draw(z, label), tf.float32) - lo) / (hi - lo)
        img = img[..., 0] if len(cell) == 2 else img
        pix = tf.reduce_mean(tf.square(img - target), axis=axes)
        feat = tf.reduce_sum(tf.square(features(img) - f_target), axis=1) / f_norm
        shell = tf.square(tf.reduce_sum(tf.square(z), axis=1) / d - 1.0)
        return img, pix, pix + LAMBDA * feat + PRIOR * shell

    @tf.function(
        input_signature=[
            tf.TensorSpec(cell, tf.float32),
            tf.TensorSpec([None, d], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def project(target, z0, steps, label):
        f_target = features(target[None])
        f_norm = tf.reduce_sum(tf.square(f_target)) + 1e-3
        z, m, v = z0, tf.zeros_like(z0), tf.zeros_like(z0)
        b1, b2 = 0.9, 0.999
        for t in tf.range(1, steps + 1):
            with tf.GradientTape() as tape:
                tape.watch(z)
                _, _, loss = losses(z, label, target, f_target, f_norm)
                total = tf.reduce_sum(loss)  # the starts are independent: the sum's gradient is each one's
            grad = tape.gradient(total, z) * mask  # a clustered G's z[0] stays in its start's cluster
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * tf.square(grad)
            tf_t = tf.cast(t, tf.float32)
            z = z - LR * (m / (1 - b1**tf_t)) / (tf.sqrt(v / (1 - b2**tf_t)) + 1e-8)
        img, pix, loss = losses(z, label, target, f_target, f_norm)
        return z, tf.clip_by_value(img, 0.0, 1.0), pix, loss

    return project


def _steps(steps) -> int:
    try:
        s = int(steps)
        ok = s == float(steps) and 1 <= s <= 2000
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"steps must be a whole number from 1 to 2000 (got {str(steps)[:40]})")
    return s


def _seed(seed) -> int:
    try:
        s = int(seed)
        ok = s == float(seed) and 0 <= s < 2**32
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"seed must be a whole number from 0 to 4294967295 (got {str(seed)[:40]})")
    return s


def project_snapshot(
    snap: Snapshot, img01, seed: int = 0, steps: int = STEPS, starts: int = STARTS, digit=None
) -> dict:
    """The latent point of one snapshot whose image is closest to the digit (best of `starts`).
    A conditional run's G draws it as ``digit`` (default: the digit the evaluator reads in it):
    the search is for the style, the z that draws this digit the way it was written."""
    steps, seed = _steps(steps), _seed(seed)
    target = fits(img01, snap.image_shape)
    label = as_digit(snap, target, digit)
    z0 = np.random.default_rng(seed).standard_normal((starts, snap.latent_dim)).astype(np.float32)
    lo, hi = snap.pixel_range  # a self-conditioned G: the starts go to the clusters nearest the digit
    z0 = clusters.starts_near(snap.clusters(), lo + np.asarray(target) * (hi - lo), z0)
    fn = snap.extra(("project",), lambda: _make_projector(snap))
    z, imgs, pix, loss = (t.numpy() for t in fn(target, z0, np.int32(steps), np.int32(label or 0)))
    best = int(np.argmin(loss))
    _, p = snap.generate(z[best : best + 1], None if label is None else [label])
    return {
        "epoch": snap.epoch,
        "z": [float(v) for v in z[best]],
        "image": imgs[best],
        "distance": float(np.sqrt(pix[best])),  # RMS pixel difference, [0,1] units
        "p_real": float(p[0]),
        "drawn_as": label,  # the digit a conditional G draws it as (None for any other run)
    }


def as_digit(snap: Snapshot, target, digit=None) -> int | None:
    """The digit a conditional snapshot projects as: the one given (checked), else the evaluator's
    reading of the image; None for an unconditional run."""
    if not snap.num_classes:
        return conditional.check_label(snap.run, 0, digit)  # None; a digit named: a clear error
    if digit is None or digit == "":
        return read(target)[0] if tuple(snap.image_shape) == DIGITS else 0
    return conditional.check_label(snap.run, snap.num_classes, digit)


def project(engine, run: str, epoch: int, img01, seed: int = 0, steps: int = STEPS, digit=None) -> dict:
    return project_snapshot(engine.snapshot(run, epoch), img01, seed, steps, digit=digit)


def project_epochs(engine, run: str, img01, seed: int = 0, steps: int = STEPS, digit=None) -> dict:
    """Project into every loadable epoch of the run; the best (smallest distance) marked. A
    conditional run is searched as one digit in every epoch (read once, as project_snapshot)."""
    skipped: list = []
    snaps = _loadable(engine, run, skipped)
    digit = as_digit(snaps[0], fits(img01, snaps[0].image_shape), digit)
    rows = [project_snapshot(s, img01, seed, steps, digit=digit) for s in snaps]
    best = min(rows, key=lambda r: r["distance"])["epoch"]
    return {
        "rows": rows,
        "best_epoch": best,
        "skipped": [{"epoch": e, "reason": r} for e, r in skipped],
        "drawn_as": digit,  # a conditional run's digit, in every epoch (None for any other run)
    }


def random_distance(snap: Snapshot, img01, n: int = 8, seed: int = 0) -> float:
    """The mean RMS pixel distance from the image to n random samples of the snapshot (a baseline)."""
    z = np.random.default_rng(seed).standard_normal((n, snap.latent_dim)).astype(np.float32)
    imgs, _ = snap.generate(z)
    diff = imgs - np.asarray(img01, np.float32).reshape(1, *snap.cell_shape)
    return float(np.sqrt((diff**2).reshape(n, -1).mean(1)).mean())
