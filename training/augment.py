"""Differentiable augmentation of D's inputs (DiffAugment: Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", arXiv 2006.10738).

The same random transform family is applied to real and fake images wherever D sees them (its
own loss and G's loss), so D cannot memorise the few real images and G is never pushed to draw
augmented ones. Every op is differentiable in the image (G's gradient flows through it), random
per sample, and vectorised (two gathers and one mask; no Python loop per sample), so it runs
inside the tf.function training step for any image shape (28/32/64 px, 1 or 3 channels).

- ``translation``: shift by up to 1/8 of the side in x and y (whole pixels), the uncovered border
  black (the low end of the pixel range: -1 for ``dcgan``, 0 for ``keras-io``), the background
  of MNIST-like digits, so a shifted digit looks like a digit drawn off-centre.
- ``cutout``: a square of half the side (its centre anywhere in the image, clipped at the edges)
  set to black.
- ``cutout_grey``: the same square set to the middle of the pixel range (0 in [-1, 1]): the
  reference implementation's zero mask, which in its [-1, 1] images is mid-grey.

Black or grey for cutout: D sees the same fill on real and fake images either way. A black
square on a digit looks like strokes that are missing, which is also what a poor G draws, so D
cannot tell a cut real digit from a broken fake one inside the square's reach; a grey square
marks what was cut, and everything outside it must still look like a whole digit. The figures
for both are in models/presets.py.

Nothing here imports TensorFlow at module level: ``parse_policy`` is used by the config checks.
"""

from __future__ import annotations

OPS = ("translation", "cutout", "cutout_grey")
NONE = "none"
TRANSLATION_RATIO = 8  # shift by up to side // 8 px (the reference's 1/8)
CUTOUT_RATIO = 2  # a square of side // 2 px (the reference's 1/2)


def parse_policy(policy) -> str:
    """The canonical policy string ("none" or ops joined by commas, in the order given);
    ValueError with a one-line message for anything else."""
    text = str(policy).strip().lower() if policy is not None else ""
    if text in ("", NONE):
        return NONE
    names = [n.strip() for n in text.split(",")]
    bad = [n for n in names if n not in OPS]
    if bad or len(set(names)) != len(names):
        what = f"unknown {bad[0]!r}" if bad else "an op given twice"
        raise ValueError(
            f"--augment must be 'none' or a comma list of {', '.join(OPS)} "
            f"(e.g. translation,cutout), got {policy!r}: {what}"
        )
    return ",".join(names)


def make_augment(policy: str, rng, pixel_range: tuple[float, float]):
    """``augment(x)`` for a policy (x: [batch, h, w, channels] float images), or None for 'none'.

    ``rng``: the training step's tf.random.Generator (runs stay deterministic for a seed);
    ``pixel_range``: the preset's (black, white)."""
    ops = [] if parse_policy(policy) == NONE else parse_policy(policy).split(",")
    if not ops:
        return None
    black, grey = float(pixel_range[0]), (float(pixel_range[0]) + float(pixel_range[1])) / 2
    fns = {
        "translation": lambda x: translate(x, rng, black),
        "cutout": lambda x: cutout(x, rng, black),
        "cutout_grey": lambda x: cutout(x, rng, grey),
    }

    def augment(x):
        for name in ops:
            x = fns[name](x)
        return x

    return augment


def translate(x, rng, fill: float, ratio: int = TRANSLATION_RATIO):
    """Each image shifted by its own (dy, dx), |dy| <= h // ratio, |dx| <= w // ratio; the border
    it uncovers is ``fill``. Out[i, j] = in[i - dy, j - dx]."""
    import tensorflow as tf

    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    ph, pw = h // ratio, w // ratio
    dy = rng.uniform((b, 1), -ph, ph + 1, dtype=tf.int32)
    dx = rng.uniform((b, 1), -pw, pw + 1, dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]], constant_values=fill)
    rows = tf.range(h)[None, :] - dy + ph  # in [0, h + 2 ph): always inside the padded image
    cols = tf.range(w)[None, :] - dx + pw
    x = tf.gather(padded, rows, axis=1, batch_dims=1)  # [b, h, w + 2 pw, c]
    return tf.gather(x, cols, axis=2, batch_dims=1)  # [b, h, w, c]


def cutout(x, rng, fill: float, ratio: int = CUTOUT_RATIO):
    """Each image with its own square of (h // ratio) x (w // ratio) px set to ``fill``; the
    square's centre is anywhere in the image (as in the reference), so it may be clipped."""
    import tensorflow as tf

    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    sh, sw = h // ratio, w // ratio
    top = rng.uniform((b, 1), 0, h + (1 - sh % 2), dtype=tf.int32) - sh // 2
    left = rng.uniform((b, 1), 0, w + (1 - sw % 2), dtype=tf.int32) - sw // 2
    rows, cols = tf.range(h)[None, :], tf.range(w)[None, :]
    in_rows = (rows >= top) & (rows < top + sh)  # [b, h]
    in_cols = (cols >= left) & (cols < left + sw)  # [b, w]
    square = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]  # [b, h, w, 1]
    return tf.where(square, tf.cast(fill, x.dtype), x)
