"""The nearest-neighbour index of a run's real training digits (training/CONTRACT.md: neighbours.npz).

Shared like training/runfolder.py: training writes the index and scores memorisation with it, the
explorer reads it (or rebuilds the same index from the run's recorded data) to show the real digits
nearest to any image. It imports only NumPy and training.runfolder (no TensorFlow, no loop).

Distances: **pixel** distance is the RMS difference on the 0-1 scale (the L2 distance / 28), the
scale the Your digit view reports (two different real digits are about 0.3 apart); **feature**
distance is the Euclidean distance between the quality evaluator's 128 penultimate features.

The pixel search is exact and fast: every digit is also projected on the 64 main directions of the
index (an orthonormal basis, so the projected distance is a LOWER BOUND of the true one); the true
distance is computed only for the few digits whose bound can still beat the k-th best found.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from training import runfolder as rf

VERSION = 1
MAX_INDEX = 10_000  # digits kept (a training set larger than this is subsampled, seeded)
N_REFERENCE = 2_000  # real digits whose nearest OTHER real digit sets the memorisation threshold
MEMORISED_PERCENTILE = 5.0  # a sample is memorised below the 5th percentile of those distances
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # 10,000 digits unpack to about 10 MB
PIXELS = 28 * 28
BASIS_DIM = 128
_CHUNK = 256  # query rows per block: (256, 10k) float32 bounds = 10 MB


def _dot(q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """q @ rows.T. A few queries (the UI's, up to 16) go through einsum's own loop: on a busy machine
    BLAS's threads cost 20 ms where the single loop takes under 1 ms; batches go through BLAS."""
    return np.einsum("qj,ij->qi", q, rows) if len(q) <= 16 else q @ rows.T


def subset_ids(n_total: int, max_n: int = MAX_INDEX) -> np.ndarray:
    """Which training digits the index keeps: all, or max_n of them (seeded, sorted): the same
    choice for the same data every time, so the explorer rebuilds exactly what training wrote."""
    if n_total <= max_n:
        return np.arange(n_total, dtype=np.int64)
    return np.sort(np.random.default_rng(20261126).choice(n_total, max_n, replace=False))


def weights_id(path: str | os.PathLike) -> str:
    """A short fingerprint of the evaluator's weights: features from other weights are stale."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


class NeighbourIndex:
    """The index in memory: float32 pixels (N, 784) in [0,1], their projections, features."""

    def __init__(
        self, images_u8, ids=None, labels=None, features=None, evaluator="", ref_nn=None, n_total=None
    ):
        self.images_u8 = np.ascontiguousarray(np.asarray(images_u8, np.uint8).reshape(-1, 28, 28))
        n = len(self.images_u8)
        if n < 2:
            raise ValueError("a neighbour index needs at least 2 digits")
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        self.labels = None if labels is None else np.asarray(labels, np.int16)
        self.evaluator = evaluator
        self.n_total = int(n if n_total is None else n_total)
        self.x = self.images_u8.reshape(n, PIXELS).astype(np.float32) / np.float32(255.0)
        self._basis()
        self.features = None
        if features is not None:
            self.set_features(features)
        self._ref_nn = None if ref_nn is None else np.asarray(ref_nn, np.float32)

    @property
    def ref_nn(self) -> np.ndarray:
        """Each reference real digit's distance to its nearest other real digit (computed once)."""
        if self._ref_nn is None:
            self._ref_nn = self.real_nn()
        return self._ref_nn

    def __len__(self) -> int:
        return len(self.x)

    def _basis(self) -> None:
        """The index's main directions by subspace iteration (no eigh: it is slow on busy BLAS)."""
        self.mean = self.x.mean(0)
        c = self.x[:: max(1, len(self.x) // 2000)] - self.mean
        cov = c.T @ c
        dim = min(BASIS_DIM, len(c), PIXELS)
        q = np.random.default_rng(0).standard_normal((PIXELS, dim)).astype(np.float32)
        for _ in range(4):
            q, _ = np.linalg.qr(cov @ q)
        self.basis = np.ascontiguousarray(q.T.astype(np.float32))  # (dim, 784), orthonormal rows
        self.proj = (self.x - self.mean) @ self.basis.T
        self.proj_sq = np.einsum("ij,ij->i", self.proj, self.proj)

    def set_features(self, features) -> None:
        f = np.asarray(features, np.float32)
        if f.ndim != 2 or len(f) != len(self) or not np.isfinite(f).all():
            raise ValueError(f"features of shape {f.shape} do not fit an index of {len(self)} digits")
        self.features = f
        self.feat_sq = np.einsum("ij,ij->i", f, f)

    # ------------------------------------------------------------------ search
    def pixel_knn(self, images01, k: int) -> tuple[np.ndarray, np.ndarray]:
        """images in [0,1] (Q, 28, 28) -> (positions (Q, k), RMS pixel distances (Q, k)), nearest first."""
        q = np.asarray(images01, np.float32).reshape(-1, PIXELS)
        k = max(1, min(int(k), len(self)))
        out_i = np.empty((len(q), k), np.int64)
        out_d = np.empty((len(q), k), np.float32)
        for s in range(0, len(q), _CHUNK):
            out_i[s : s + _CHUNK], out_d[s : s + _CHUNK] = self._pixel_block(q[s : s + _CHUNK], k)
        return out_i, np.sqrt(out_d / PIXELS)

    def _pixel_block(self, q: np.ndarray, k: int):
        qp = (q - self.mean) @ self.basis.T
        q_sq = np.einsum("ij,ij->i", qp, qp)
        # a few queries (the UI): einsum's own loop; BLAS threads cost more than they save there
        dot = _dot(qp, self.proj)
        bound = dot
        bound *= -2
        bound += self.proj_sq[None]
        bound += q_sq[:, None]
        n_cand = min(len(self), max(2 * k, 16))
        cand = np.argpartition(bound, n_cand - 1, axis=1)[:, :n_cand]
        d2 = self._exact(q, cand)
        kth = np.partition(d2, k - 1, axis=1)[:, k - 1]
        # float rounding of the bound: compare against a slightly larger k-th distance
        limit = kth + 1e-4 * (q_sq + self.proj_sq.max()) + 1e-4
        worst_cand = np.take_along_axis(bound, cand, 1).max(1)
        idx = np.empty((len(q), k), np.int64)
        dist = np.empty((len(q), k), np.float32)
        for r in range(len(q)):
            ci, cd = cand[r], d2[r]
            if worst_cand[r] < limit[r]:  # digits outside the candidates the bound cannot rule out
                bound[r, ci] = np.inf  # (measured already)
                more = np.nonzero(bound[r] < limit[r])[0]
                if len(more):
                    ci = np.concatenate([ci, more])
                    cd = np.concatenate([cd, self._exact(q[r : r + 1], more[None])[0]])
            order = np.lexsort((ci, cd))[:k]  # by distance, ties by position: deterministic
            idx[r], dist[r] = ci[order], cd[order]
        return idx, dist

    def _exact(self, q: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Squared L2 between each query row and its listed index rows, (Q, C), computed directly
        (no expansion): a digit's distance to itself is exactly 0."""
        out = np.empty(cols.shape, np.float32)
        step = max(1, 8192 // max(1, cols.shape[1]))
        for s in range(0, len(q), step):
            diff = self.x[cols[s : s + step]] - q[s : s + step, None, :]
            out[s : s + step] = np.einsum("ijk,ijk->ij", diff, diff)
        return out

    def feature_knn(self, feats, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Evaluator features (Q, 128) -> (positions (Q, k), Euclidean feature distances (Q, k))."""
        if self.features is None:
            raise ValueError("this index has no evaluator features")
        f = np.asarray(feats, np.float32).reshape(-1, self.features.shape[1])
        k = max(1, min(int(k), len(self)))
        d2 = np.einsum("ij,ij->i", f, f)[:, None] + self.feat_sq[None] - 2 * _dot(f, self.features)
        n_cand = min(len(self), k + 16)
        cand = np.argpartition(d2, n_cand - 1, axis=1)[:, :n_cand]
        diff = self.features[cand] - f[:, None, :]
        exact = np.einsum("ijk,ijk->ij", diff, diff)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(cand, order, 1), np.sqrt(np.take_along_axis(exact, order, 1))

    # ------------------------------------------------------------------ memorisation
    def real_nn(self, n: int = N_REFERENCE) -> np.ndarray:
        """RMS distance from each of the first n index digits to its nearest OTHER index digit."""
        n = min(n, len(self))
        idx, dist = self.pixel_knn(self.x[:n], 2)
        own = idx[:, 0] == np.arange(n)  # a duplicate may come first: either way, the other one
        return np.where(own, dist[:, 1], dist[:, 0]).astype(np.float32)

    def threshold(self, percentile: float = MEMORISED_PERCENTILE) -> float:
        return float(np.percentile(self.ref_nn, percentile))

    def memorisation(self, samples01) -> dict:
        """The share of samples closer to a training digit than the threshold (see README: Quality)."""
        _, d = self.pixel_knn(samples01, 1)
        thr = self.threshold()
        return {
            "memorised_share": float(np.mean(d[:, 0] < thr)),
            "memorised_threshold": thr,
            "nn_distance_median": float(np.median(d[:, 0])),
        }

    # ------------------------------------------------------------------ the file
    def to_bytes(self) -> bytes:
        arrays = dict(
            version=np.int64(VERSION),
            images=self.images_u8,
            ids=self.ids,
            ref_nn=self.ref_nn,
            n_total=np.int64(self.n_total),
            evaluator=np.array(self.evaluator),
        )
        if self.labels is not None:
            arrays["labels"] = self.labels
        if self.features is not None:
            arrays["features"] = self.features.astype(np.float16)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()


def build(images_u8, labels=None, features_fn=None, evaluator: str = "", max_n: int = MAX_INDEX):
    """The index of a training set: at most max_n digits (subset_ids), their features if given."""
    if np.ndim(images_u8) != 3 or tuple(np.shape(images_u8)[1:]) != (28, 28):
        raise ValueError(f"the index holds 28x28 grey digits; these images are {np.shape(images_u8)[1:]}")
    images_u8 = np.asarray(images_u8, np.uint8)
    ids = subset_ids(len(images_u8), max_n)
    kept = images_u8[ids]
    lab = None if labels is None or len(labels) != len(images_u8) else np.asarray(labels)[ids]
    index = NeighbourIndex(kept, ids, lab, evaluator=evaluator, n_total=len(images_u8))
    if features_fn is not None:
        index.set_features(features_fn(index.x.reshape(-1, 28, 28, 1)))
    return index


def path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / rf.NEIGHBOURS


def write(run_dir: str | os.PathLike, index: NeighbourIndex) -> None:
    """Atomically (runfolder.write_bytes_atomic): a reader sees the old file or the new, whole."""
    rf.write_bytes_atomic(path(run_dir), index.to_bytes())


def read(run_dir: str | os.PathLike) -> NeighbourIndex:
    """neighbours.npz -> NeighbourIndex, or RunFolderError saying what is wrong with it."""
    p = path(run_dir)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise rf.RunFolderError(f"{rf.NEIGHBOURS} is missing") from None
    except OSError as exc:
        raise rf.RunFolderError(f"{rf.NEIGHBOURS} cannot be read ({exc.strerror or exc})") from None
    if size > MAX_FILE_BYTES:
        raise rf.RunFolderError(f"{rf.NEIGHBOURS} is larger than {MAX_FILE_BYTES >> 20} MB")
    try:
        with zipfile.ZipFile(p) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise rf.RunFolderError(f"{rf.NEIGHBOURS} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
        with np.load(p, allow_pickle=False) as z:
            a = {name: z[name] for name in z.files}
    except rf.RunFolderError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated zip, garbage, pickled objects: all unusable
        raise rf.RunFolderError(
            f"{rf.NEIGHBOURS} is not a readable index ({exc.__class__.__name__})"
        ) from None
    return _from_arrays(a)


def _from_arrays(a: dict) -> NeighbourIndex:
    bad = rf.RunFolderError
    images = a.get("images")
    if images is None or images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise bad(f"{rf.NEIGHBOURS}: 'images' is not uint8 digits of 28x28")
    n = len(images)
    if n < 2:
        raise bad(f"{rf.NEIGHBOURS} holds {n} digit(s); an index needs at least 2")
    for name, want in (("ids", (n,)), ("labels", (n,)), ("features", (n, None)), ("ref_nn", (None,))):
        v = a.get(name)
        if v is None:
            continue
        if v.ndim != len(want) or any(w is not None and s != w for s, w in zip(v.shape, want)):
            raise bad(f"{rf.NEIGHBOURS}: '{name}' has shape {v.shape}, not one row per digit")
        if v.dtype.kind not in "iuf" or (v.dtype.kind == "f" and not np.isfinite(v).all()):
            raise bad(f"{rf.NEIGHBOURS}: '{name}' holds values that are not finite numbers")
    ref = a.get("ref_nn")
    ev = a.get("evaluator")
    try:
        return NeighbourIndex(
            images,
            a.get("ids"),
            a.get("labels"),
            a.get("features"),
            str(ev) if ev is not None and ev.dtype.kind == "U" else "",
            None if ref is None or len(ref) == 0 else ref,
            int(a["n_total"]) if "n_total" in a and a["n_total"].dtype.kind in "iu" else None,
        )
    except ValueError as exc:
        raise bad(f"{rf.NEIGHBOURS}: {exc}") from None
