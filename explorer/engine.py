"""Models in memory: each snapshot loaded once (safe mode), cached (bounded), traced once.

``Snapshot.generate(z)`` runs G and D in ONE tf.function with a fixed input signature, traced and
warmed at load, so a slider move costs one graph call: no loading, no disk, no retracing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from explorer import conditional, latent
from explorer.facts import cell_shape
from explorer.registry import ExplorerError, RunInfo, RunRegistry
from models.clusters import geometry

CACHE_SIZE = 12


class SnapshotError(ExplorerError):
    """A snapshot on disk cannot be used (broken, unsafe, wrong shape)."""


@dataclass
class Snapshot:
    run: str
    epoch: int
    latent_dim: int
    pixel_range: tuple[float, float]
    generator: object
    discriminator: object
    _gen_score: object = None
    _score: object = None
    _make_score: object = None  # builds _score on first use
    _extras: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)  # extras may read other extras
    stamp: tuple = ()  # the G and D files' version when loaded (RunRegistry.snapshot_stamp)
    path: object = None  # the epoch folder
    num_classes: int = 0  # > 0: a conditional run; G and D also take a label
    image_shape: tuple = (28, 28, 1)

    @property
    def cell_shape(self) -> tuple:  # one image's array: (H, W) grey, (H, W, 3) colour
        return cell_shape(self.image_shape)

    def generate(self, z: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """z (N, dim) -> (images in [0,1] (N, *cell_shape), P(real) from this epoch's D (N,)).

        A conditional snapshot draws each point as its label (N,) (all digit 0 when None)."""
        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        if self.num_classes:
            img, p = self._gen_score(z, conditional.label_batch(labels, len(z)))
        else:
            img, p = self._gen_score(z)
        return img.numpy(), p.numpy()

    def score(self, images01: np.ndarray, labels=None) -> np.ndarray:
        """P(real) of images in [0,1] (N, *cell_shape) by this snapshot's discriminator.

        A conditional D judges each image as its label; without labels, as the digit it finds
        most plausible (the highest P(real) over all labels). Its graph is traced on first
        use, not at load: Compare loads every epoch and never needs it for most of them."""
        x = np.asarray(images01, np.float32).reshape(-1, *self.cell_shape)
        if self._score is None:
            with self.lock:
                if self._score is None:
                    self._score = self._make_score()
        return self._score(x, labels)

    def clusters(self):  # a self-conditioned snapshot's cluster geometry (models/clusters.py), or None
        return self.extra(("clusters",), lambda: geometry(self.generator, self.discriminator))

    def extra(self, key, make):
        """Per-snapshot memo for derived data (PCA directions, dimension ranking)."""
        with self.lock:
            if key not in self._extras:
                self._extras[key] = make()
            return self._extras[key]


def _load_model(run: RunInfo, epoch: int, path):
    """keras.saving.load_model in safe mode; any failure -> a SnapshotError saying why."""
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a broken snapshot
        text = str(exc)
        msg = text.splitlines()[0][:300] if text else exc.__class__.__name__
        if "safe_mode" in text or "Lambda" in text:
            msg = (
                "it holds custom code (e.g. a Lambda layer) that safe mode refuses to run; "
                "only load snapshots you trust outside this app"
            )
        elif "Could not locate" in text or "could not be deserialized" in text:
            msg = "it uses layers this app does not know (custom code); only Keras' own layers are loaded"
        raise SnapshotError(f"run {run.name!r} epoch {epoch}: {path.name} cannot be loaded: {msg}") from None


def _prob_fn(logits: bool):
    import tensorflow as tf

    def to_prob(out):
        out = tf.cast(tf.reshape(out, [-1]), tf.float32)
        return tf.sigmoid(out) if logits else out

    return to_prob


def _check_d(run: RunInfo, epoch: int, d) -> None:
    shape = tuple(run.image_shape)
    d_in = conditional.first_input(d, run, epoch, "discriminator", SnapshotError)
    if d_in[1:] != shape or d.output_shape[-1] != 1:
        raise SnapshotError(
            f"run {run.name!r} epoch {epoch}: expected a discriminator taking "
            f"{'x'.join(map(str, shape))} images (run.json's image_shape) and "
            f"giving one logit, got {d.input_shape} -> {d.output_shape}"
        )


def _load_scorer(run: RunInfo, epoch: int):
    """Only a snapshot's D: images in [0,1] (N, *cell_shape) -> P(real) (N,); (fn, folder, stamp)."""
    info = run.epoch(epoch)
    if info.broken:
        raise SnapshotError(f"run {run.name!r} epoch {epoch} is broken: {info.broken}")
    stamp = RunRegistry.snapshot_stamp(info.path)
    d = _load_model(run, epoch, info.path / "discriminator.keras")
    _check_d(run, epoch, d)
    lo, hi = run.pixel_range
    score = conditional.score_fn(
        d, lo, hi, _prob_fn(run.d_outputs_logits), run.num_classes, tuple(run.image_shape)
    )
    return score, info.path, stamp


def _load_snapshot(run: RunInfo, epoch: int) -> Snapshot:
    import tensorflow as tf

    info = run.epoch(epoch)
    if info.broken:
        raise SnapshotError(f"run {run.name!r} epoch {epoch} is broken: {info.broken}")
    stamp = RunRegistry.snapshot_stamp(info.path)  # before loading: a change during it reloads next time
    g = _load_model(run, epoch, info.path / "generator.keras")
    d = _load_model(run, epoch, info.path / "discriminator.keras")
    dim = run.latent_dim
    g_in, g_out = conditional.first_input(g, run, epoch, "generator", SnapshotError), tuple(g.output_shape)
    if g_in[-1] != dim:
        raise SnapshotError(
            f"run {run.name!r} epoch {epoch}: the generator takes {g_in[-1]} latent values but "
            f"run.json says latent_dim={dim}; the snapshot does not belong to this run"
        )
    shape = tuple(run.image_shape)
    if g_out[1:] != shape:
        raise SnapshotError(
            f"run {run.name!r} epoch {epoch}: expected a generator making "
            f"{'x'.join(map(str, shape))} images (run.json's image_shape), got {g_out}"
        )
    _check_d(run, epoch, d)
    from models.fast_ops import accelerate

    accelerate(g)  # the training step's faster kernels for the same layers (keras-io's last conv)
    lo, hi = run.pixel_range
    to_prob, classes = _prob_fn(run.d_outputs_logits), run.num_classes

    def gen_score(z, *y):  # *y: the labels of a conditional run, else nothing
        x = g([z, *y] if y else z, training=False)
        p = to_prob(d([x, *y] if y else x, training=False))
        img = (tf.cast(x, tf.float32) - lo) / (hi - lo)
        img = img[..., 0] if shape[-1] == 1 else img
        return tf.clip_by_value(img, 0.0, 1.0), p

    spec = [tf.TensorSpec([None, dim], tf.float32)] + ([tf.TensorSpec([None], tf.int32)] if classes else [])
    gen_score = tf.function(gen_score, input_signature=spec, autograph=False)  # no tensor control flow

    snap = Snapshot(
        run.name,
        epoch,
        dim,
        (lo, hi),
        g,
        d,
        gen_score,
        _make_score=lambda: conditional.score_fn(d, lo, hi, to_prob, classes, shape),
        stamp=stamp,
        path=info.path,
        num_classes=classes,
        image_shape=shape,
    )
    for n in (1, 8):  # trace once and warm up (shape [None, dim] covers every batch size)
        snap.generate(np.zeros((n, dim), np.float32))
    return snap


class Engine:
    """Generate, score, compare; models cached per (run, epoch), LRU-bounded."""

    def __init__(self, registry: RunRegistry, cache_size: int = CACHE_SIZE):
        self.registry = registry
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._scorers: OrderedDict[tuple[str, int], object] = OrderedDict()  # D only, small

    @staticmethod
    def epoch_number(epoch) -> int:
        try:
            e = int(epoch)
            if e != float(epoch) or not 0 <= e <= 999_999:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ExplorerError(f"epoch must be a number from 1 to 999999, got {str(epoch)[:40]!r}") from None
        return e

    def _current(self, cache: OrderedDict, key: tuple, path, stamp: tuple) -> bool:
        """Is a cached model still what is on disk? Two os.stat calls (microseconds), no loading.
        A snapshot whose files changed is evicted (the caller loads it afresh); one whose files
        are gone is evicted and refused: memory never answers for what the disk no longer holds."""
        if path is None:  # not loaded from a run folder (nothing on disk to compare with)
            return True
        now = RunRegistry.snapshot_stamp(path)
        if now == stamp:
            return True
        with self._lock:
            cache.pop(key, None)
        if any(s[1] is None for s in now):
            raise SnapshotError(
                f"run {key[0]!r} epoch {key[1]} is no longer on disk (its files were deleted "
                "or moved after it was loaded); pick an epoch from the list"
            )
        return False

    def snapshot(self, run: str, epoch: int | str) -> Snapshot:
        epoch = self.epoch_number(epoch)
        key = (run, epoch)
        with self._lock:
            snap = self._cache.get(key)
        if snap is not None and self._current(self._cache, key, snap.path, snap.stamp):
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
            return snap
        with self._lock:
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one loader per snapshot; others wait for it
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            info = self.registry.get(run)
            try:
                snap = _load_snapshot(info, epoch)
            except SnapshotError as exc:
                if any(e.epoch == epoch and not e.broken for e in info.epochs):
                    self.registry.mark_broken(info.epoch(epoch).path, str(exc).split(": ", 1)[-1])
                raise
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._cache[key] = snap
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return snap

    def scores(self, run: str, epoch: int | str, images01, labels=None) -> np.ndarray:
        """P(real) of images in [0,1] by one epoch's D. Uses the loaded snapshot when cached;
        otherwise loads only that D into a small separate cache (the Train tab scores every new
        epoch of a run in progress without evicting the snapshots being explored)."""
        epoch = self.epoch_number(epoch)
        key = (run, epoch)
        with self._lock:
            snap = self._cache.get(key)
            hit = self._scorers.get(key)
        if snap is not None and self._current(self._cache, key, snap.path, snap.stamp):
            return snap.score(images01, labels)
        if hit is None or not self._current(self._scorers, key, hit[1], hit[2]):
            hit = _load_scorer(self.registry.get(run), epoch)
            with self._lock:
                self._scorers[key] = hit
                while len(self._scorers) > 3:
                    self._scorers.popitem(last=False)
        return hit[0](images01, labels)

    def cached(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._cache)

    # ------------------------------------------------------------------ views' logic
    def generate(self, run: str, epoch: int, z, label=None) -> tuple[np.ndarray, float]:
        """One point's image and P(real); ``label``: the digit, for a conditional run."""
        snap = self.snapshot(run, epoch)
        y = conditional.check_label(run, snap.num_classes, label)  # in memory: no disk read
        z = latent.check_vector(z, snap.latent_dim)
        img, p = snap.generate(z[None, :], y)
        return img[0], float(p[0])

    def interpolate(self, run: str, epoch: int, a, b, steps: int, kind: str = "spherical", label=None):
        snap = self.snapshot(run, epoch)
        y = conditional.check_label(run, snap.num_classes, label)
        a = latent.check_vector(a, snap.latent_dim)
        b = latent.check_vector(b, snap.latent_dim)
        zs = latent.path(a, b, steps, kind)
        imgs, p = snap.generate(zs, y)
        return imgs, p, zs

    def compare_points(self, run: str, n_points, seed) -> np.ndarray:
        return latent.compare_points(n_points, seed, self.registry.get(run).latent_dim)

    def compare(
        self,
        run: str,
        n_points: int = 8,
        seed: int = 0,
        final_d: bool = False,
        epochs: list[int] | None = None,
        skipped: list | None = None,
        label=None,
    ):
        """The same latent points through every (good) epoch on disk of a run.

        Returns (epochs, images (E, n, *cell_shape), scores (E, n)); scores by each epoch's own D,
        or by the final (last loadable) epoch's D when ``final_d``. Epochs that are broken or
        fail to load are left out and, when ``skipped`` is a list, reported there as
        (epoch, reason): one bad snapshot does not take the whole view down. A conditional
        run draws every point as ``label`` (None: 0; conditional.EACH: a column per digit)
        """
        n_points, seed = latent.whole(n_points, "points", 1, 32), latent.whole(seed, "seed", 0, 2**32 - 1)
        info = self.registry.get(run)
        zs = self.compare_points(run, n_points, seed)
        z, y = conditional.point_labels(run, info.num_classes, label, zs)
        good = [e.epoch for e in info.good_epochs()]
        if skipped is not None:
            skipped.extend((e.epoch, e.broken) for e in info.epochs if e.broken)
        if epochs is not None:
            good = [e for e in good if e in set(epochs)]
        snaps = []
        for e in good:
            try:
                snaps.append(self.snapshot(run, e))
            except SnapshotError as exc:
                if skipped is None:
                    raise
                skipped.append((e, str(exc).split(": ", 1)[-1]))
        good = [s.epoch for s in snaps]
        if not good:
            if info.broken:
                raise SnapshotError(f"run {run!r} is broken: {info.broken}")
            raise ExplorerError(f"run {run!r} has no loadable epoch yet")
        imgs, scores = [], []
        for s in snaps:
            i, p = s.generate(z, y)
            imgs.append(i)
            scores.append(p)
        imgs = np.stack(imgs)
        if final_d:
            last = snaps[-1]
            scores = [last.score(i, y) for i in imgs]
        return good, imgs, np.stack(scores)

    def directions(self, run: str, epoch: int, k: int = 6, n: int = 1000):
        """GANSpace directions of a snapshot (cached): PCA of G's first hidden features."""
        import keras

        snap = self.snapshot(run, epoch)

        def make():
            g = snap.generator
            # the first layer with a spatial (4-D) output: G's coarse 'what digit' features
            feat_layer = next(
                (l for l in g.layers if len(getattr(l, "output", None).shape) == 4), g.layers[-1]
            )
            fmodel = keras.Model(g.input, feat_layer.output)
            z = np.random.default_rng(0).standard_normal((n, snap.latent_dim)).astype(np.float32)
            inputs = [z, np.zeros(n, np.int32)] if snap.num_classes else z  # conditional: as digit 0
            f = np.asarray(fmodel(inputs, training=False), np.float32).reshape(n, -1)  # one eager call
            return latent.pca_directions(f, z, k)

        return snap.extra(("pca", k), make)

    def top_dims(self, run: str, epoch: int, k: int = 8) -> list[int]:
        """Latent dimensions ranked by how much the image moves per unit step (cached)."""
        snap = self.snapshot(run, epoch)

        def make():
            dim = snap.latent_dim
            rng = np.random.default_rng(1)
            base = rng.standard_normal((4, dim)).astype(np.float32)
            effect = np.zeros(dim)
            eye = np.eye(dim, dtype=np.float32)
            for b in base:
                img0, _ = snap.generate(b[None])
                imgs, _ = snap.generate(b[None] + 0.5 * eye)
                effect += np.abs(imgs - img0).reshape(dim, -1).mean(axis=1)
            return [int(i) for i in np.argsort(-effect)]

        return snap.extra("dims", make)[:k]
