"""Models in memory: each snapshot loaded once (safe mode), cached (bounded), traced once.

``Snapshot.generate(z)`` runs G and D in ONE tf.function with a fixed input signature, traced and
warmed at load, so a slider move costs one graph call: no loading, no disk, no retracing.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from explorer import latent
from explorer.registry import ExplorerError, RunInfo, RunRegistry

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
    _extras: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def generate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z (N, dim) -> (images in [0,1] (N,28,28), P(real) from this epoch's D (N,))."""
        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        img, p = self._gen_score(z)
        return img.numpy(), p.numpy()

    def score(self, images01: np.ndarray) -> np.ndarray:
        """P(real) of images in [0,1] (N,28,28) by this snapshot's discriminator."""
        x = np.asarray(images01, np.float32).reshape(-1, 28, 28)
        return self._score(x).numpy()

    def extra(self, key, make):
        """Per-snapshot memo for derived data (PCA directions, dimension ranking)."""
        with self.lock:
            if key not in self._extras:
                self._extras[key] = make()
            return self._extras[key]


def _load_snapshot(run: RunInfo, epoch: int) -> Snapshot:
    import keras
    import tensorflow as tf

    info = run.epoch(epoch)
    if info.broken:
        raise SnapshotError(f"run {run.name!r} epoch {epoch} is broken: {info.broken}")
    try:
        g = keras.saving.load_model(info.path / "generator.keras", safe_mode=True, compile=False)
        d = keras.saving.load_model(info.path / "discriminator.keras", safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a broken snapshot
        msg = str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            msg = ("it holds custom code (e.g. a Lambda layer) that safe mode refuses to run; "
                   "only load snapshots you trust outside this app")
        raise SnapshotError(f"run {run.name!r} epoch {epoch} cannot be loaded: {msg}") from None
    dim = run.latent_dim
    g_in, g_out = tuple(g.input_shape), tuple(g.output_shape)
    if g_in[-1] != dim:
        raise SnapshotError(
            f"run {run.name!r} epoch {epoch}: the generator takes {g_in[-1]} latent values but "
            f"run.json says latent_dim={dim}; the snapshot does not belong to this run")
    if g_out[1:] != (28, 28, 1) or tuple(d.input_shape)[1:] != (28, 28, 1) or d.output_shape[-1] != 1:
        raise SnapshotError(
            f"run {run.name!r} epoch {epoch}: expected 28x28x1 images and one D logit, got "
            f"G {g_out} and D {d.input_shape} -> {d.output_shape}")
    lo, hi = run.pixel_range
    logits = bool(run.info.get("d_outputs_logits", True))

    def to_prob(out):
        out = tf.cast(tf.reshape(out, [-1]), tf.float32)
        return tf.sigmoid(out) if logits else out

    @tf.function(input_signature=[tf.TensorSpec([None, dim], tf.float32)])
    def gen_score(z):
        x = g(z, training=False)
        p = to_prob(d(x, training=False))
        img = (tf.cast(x, tf.float32)[..., 0] - lo) / (hi - lo)
        return tf.clip_by_value(img, 0.0, 1.0), p

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.float32)])
    def score(img01):
        x = img01[..., None] * (hi - lo) + lo
        return to_prob(d(x, training=False))

    snap = Snapshot(run.name, epoch, dim, (lo, hi), g, d, gen_score, score)
    for n in (1, 8):  # trace once and warm up (shape [None, dim] covers every batch size)
        snap.generate(np.zeros((n, dim), np.float32))
    snap.score(np.zeros((1, 28, 28), np.float32))
    return snap


class Engine:
    """Generate, score, compare; models cached per (run, epoch), LRU-bounded."""

    def __init__(self, registry: RunRegistry, cache_size: int = CACHE_SIZE):
        self.registry = registry
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def snapshot(self, run: str, epoch: int | str) -> Snapshot:
        try:
            epoch = int(epoch)
        except (TypeError, ValueError):
            raise ExplorerError(f"epoch must be a number, got {str(epoch)[:40]!r}") from None
        key = (run, epoch)
        with self._lock:
            snap = self._cache.get(key)
            if snap is not None:
                self._cache.move_to_end(key)
                return snap
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one loader per snapshot; others wait for it
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            snap = _load_snapshot(self.registry.get(run), epoch)
            with self._lock:
                self._cache[key] = snap
                self._loading.pop(key, None)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return snap

    def cached(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._cache)

    # ------------------------------------------------------------------ views' logic
    def generate(self, run: str, epoch: int, z) -> tuple[np.ndarray, float]:
        snap = self.snapshot(run, epoch)
        z = latent.check_vector(z, snap.latent_dim)
        img, p = snap.generate(z[None, :])
        return img[0], float(p[0])

    def interpolate(self, run: str, epoch: int, a, b, steps: int, kind: str = "spherical"):
        snap = self.snapshot(run, epoch)
        a = latent.check_vector(a, snap.latent_dim)
        b = latent.check_vector(b, snap.latent_dim)
        zs = latent.path(a, b, steps, kind)
        imgs, p = snap.generate(zs)
        return imgs, p, zs

    def compare(self, run: str, n_points: int = 8, seed: int = 0, final_d: bool = False,
                epochs: list[int] | None = None):
        """The same latent points through every (good) epoch of a run.

        Returns (epochs, images (E, n, 28, 28), scores (E, n)); scores by each epoch's own D,
        or by the final epoch's D when ``final_d``.
        """
        info = self.registry.get(run)
        good = [e.epoch for e in info.good_epochs()]
        if epochs is not None:
            good = [e for e in good if e in set(epochs)]
        if not good:
            raise ExplorerError(f"run {run!r} has no loadable epoch yet")
        if not 1 <= int(n_points) <= 32:
            raise ExplorerError("points must be between 1 and 32")
        z = np.random.default_rng(int(seed)).standard_normal(
            (int(n_points), info.latent_dim)).astype(np.float32)
        snaps = [self.snapshot(run, e) for e in good]
        imgs, scores = [], []
        for s in snaps:
            i, p = s.generate(z)
            imgs.append(i)
            scores.append(p)
        imgs = np.stack(imgs)
        if final_d:
            last = snaps[-1]
            scores = [last.score(i) for i in imgs]
        return good, imgs, np.stack(scores)

    def directions(self, run: str, epoch: int, k: int = 6, n: int = 1000):
        """GANSpace directions of a snapshot (cached): PCA of G's first hidden features."""
        import keras

        snap = self.snapshot(run, epoch)

        def make():
            g = snap.generator
            # the first layer with a spatial (4-D) output: G's coarse 'what digit' features
            feat_layer = next((l for l in g.layers if len(getattr(l, "output", None).shape) == 4),
                              g.layers[-1])
            fmodel = keras.Model(g.input, feat_layer.output)
            z = np.random.default_rng(0).standard_normal((n, snap.latent_dim)).astype(np.float32)
            f = np.asarray(fmodel(z, training=False), np.float32).reshape(n, -1)  # one eager call
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
                effect += np.abs(imgs - img0).mean(axis=(1, 2))
            return [int(i) for i in np.argsort(-effect)]

        return snap.extra("dims", make)[:k]
