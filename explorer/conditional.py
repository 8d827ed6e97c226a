"""Conditional runs (training/CONTRACT.md: ``conditional``, ``num_classes``): G takes (z, label)
and D takes (image, label). The label checks and the label-aware pieces the engine uses."""

from __future__ import annotations

import numpy as np

from explorer.facts import cell_shape
from explorer.registry import ExplorerError


def check_label(run: str, classes: int, label) -> int | None:
    """The digit asked of a run: None for an unconditional run (which refuses a label), 0 when a
    conditional run is given none; ExplorerError saying the range when it is not one."""
    empty = label is None or (isinstance(label, str) and not label.strip())
    if not classes:
        if not empty:
            raise ExplorerError(
                f"run {run!r} is not conditional: it draws no chosen digit; leave the label empty"
            )
        return None
    if empty:
        return 0
    try:
        v = float(label) if not isinstance(label, bool) else float("nan")
        ok = np.isfinite(v) and v == int(v) and 0 <= v < classes
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(
            f"label (the digit asked for) must be a whole number from 0 to {classes - 1} "
            f"(got {str(label)[:40]!r})"
        )
    return int(v)


EACH = "each digit"  # Compare's choice: one latent point drawn as every digit, a column per digit


def point_labels(run: str, classes: int, label, z: np.ndarray) -> tuple[np.ndarray, object]:
    """Compare's points and what each is drawn as: (z, None) for an unconditional run, (z, one
    digit) for a digit, and for EACH the first point repeated once per digit with labels 0..9
    (the same style in every column, the digit changing)."""
    if isinstance(label, str) and label.strip().lower() == EACH:
        if not classes:
            raise ExplorerError(f"run {run!r} is not conditional: it draws no chosen digit; pick no digit")
        return np.repeat(z[:1], classes, axis=0), np.arange(classes, dtype=np.int32)
    return z, check_label(run, classes, label)


def label_batch(labels, n: int) -> np.ndarray:
    """Labels for n points: None -> all 0, one label -> repeated, else one per point."""
    y = np.zeros(n, np.int32) if labels is None else np.asarray(labels, np.int32).reshape(-1)
    return np.full(n, y[0], np.int32) if y.size == 1 and n != 1 else y


def first_input(model, run, epoch: int, what: str, error=ExplorerError) -> tuple:
    """A model's first input shape, after checking it takes a label exactly when ``run`` (a
    RunInfo) says so."""
    classes = run.num_classes
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    if len(shapes) != (2 if classes else 1):
        says = f"conditional on {classes} labels" if classes else "not conditional"
        raise error(
            f"run {run.name!r} epoch {epoch}: its {what} takes {len(shapes)} input(s) but run.json "
            f"says the run is {says}; the snapshot does not belong to this run"
        )
    return tuple(shapes[0])


def score_fn(d, lo: float, hi: float, to_prob, classes: int = 0, image_shape=(28, 28, 1)):
    """D's scorer: (images in [0,1] (N, *cell_shape), labels or None) -> P(real) (N,) as NumPy.

    An unconditional D ignores labels. A conditional D judges each image as its label; without
    labels, as the digit it finds most plausible (the highest P(real) over all labels): what an
    image drawn by a person ("Your digit") needs."""
    import tensorflow as tf

    shape, cells = tuple(image_shape), cell_shape(image_shape)

    def to_model(img01):
        return tf.reshape(img01, [-1, *shape]) * (hi - lo) + lo

    image = tf.TensorSpec([None, *cells], tf.float32)
    if not classes:
        plain = tf.function(
            lambda img01: to_prob(d(to_model(img01), training=False)),
            input_signature=[image],
            autograph=False,
        )
        return lambda x, labels=None: plain(np.asarray(x, np.float32).reshape(-1, *cells)).numpy()

    @tf.function(input_signature=[image, tf.TensorSpec([None], tf.int32)], autograph=False)
    def score(img01, y):
        return to_prob(d([to_model(img01), y], training=False))

    def scored(x, labels=None):
        x = np.asarray(x, np.float32).reshape(-1, *cells)
        if labels is not None:
            return score(x, label_batch(labels, len(x))).numpy()
        every = np.repeat(np.arange(classes, dtype=np.int32), len(x))  # each image as each label
        tiled = np.tile(x, (classes,) + (1,) * (x.ndim - 1))
        return score(tiled, every).numpy().reshape(classes, -1).max(0)

    return scored


def _digit_drawer(snap):
    """(z (N, d), label embeddings (N, e)) -> images in [0,1] (N,28,28), and the embedding table.

    The conditional generator with its embedding lookup taken out (the same layers and weights,
    called on new inputs), so a path can blend two digits' embeddings at a fixed z."""
    import keras
    import tensorflow as tf

    g = snap.generator
    try:
        emb = g.get_layer("label_embedding")
        cat = next(k for k, layer in enumerate(g.layers) if isinstance(layer, keras.layers.Concatenate))
    except (ValueError, StopIteration):
        raise ExplorerError(
            "this generator does not take the digit as an embedding beside z (the cdcgan preset's "
            "design), so there is no path between two digits to draw"
        ) from None
    z_in, e_in = keras.Input((snap.latent_dim,)), keras.Input((emb.output_dim,))
    x = g.layers[cat]([z_in, e_in])
    for layer in g.layers[cat + 1 :]:
        x = layer(x)
    body = keras.Model([z_in, e_in], x)
    lo, hi = snap.pixel_range

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, snap.latent_dim], tf.float32),
            tf.TensorSpec([None, emb.output_dim], tf.float32),
        ],
        autograph=False,
    )
    def draw(z, e):
        img = (tf.cast(body([z, e], training=False), tf.float32)[..., 0] - lo) / (hi - lo)
        return tf.clip_by_value(img, 0.0, 1.0)

    return draw, np.asarray(emb.embeddings, np.float32)


def digit_path(engine, run: str, epoch, z, digit_a, digit_b, steps) -> tuple[np.ndarray, np.ndarray]:
    """One latent point (a fixed style) drawn from digit A to digit B: the label embedding moves
    in a straight line, z stays. Returns (images (steps,28,28), P(real) (steps,)), each frame
    judged by D as the digit it finds most plausible (a blend is no single label)."""
    from explorer import latent

    snap = engine.snapshot(run, epoch)
    if not snap.num_classes:
        raise ExplorerError(f"run {run!r} is not conditional: it has no digits to move between")
    a, b = (check_label(run, snap.num_classes, d) for d in (digit_a, digit_b))
    z = latent.check_vector(z, snap.latent_dim)
    t = np.linspace(0.0, 1.0, latent.clamp_steps(steps), dtype=np.float32)[:, None]
    draw, table = snap.extra("digit_path", lambda: _digit_drawer(snap))
    imgs = draw(np.repeat(z[None], len(t), axis=0), (1 - t) * table[a] + t * table[b]).numpy()
    return imgs, snap.score(imgs)
