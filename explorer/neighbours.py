"""The real training digits nearest to any image: by pixels and by the evaluator's features (no Gradio).

Each run's index (training/nnindex.py) is loaded ONCE and kept in memory (a few runs, LRU):
from the run's ``neighbours.npz`` when training wrote one, else rebuilt from the training data the
run recorded in run.json (the bundled demo and runs trained before the index existed), when that
data is readable on this machine. A query then costs one os.stat (is the file still the one
loaded?) and arithmetic: no reading, no model loading, no retracing (the evaluator's feature graph
is traced once per process, models/evaluator.py).

When neither the file nor the data can be used, every query says so in one line, with the reason
and what to do; nothing else in the explorer depends on it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.registry import ExplorerError, RunInfo, RunRegistry
from training import nnindex
from training.runfolder import NEIGHBOURS, RunFolderError

K_DEFAULT, K_MAX = 5, 32
CACHE_SIZE = 3  # runs' indexes kept (10k digits: about 45 MB each in memory)
MAX_QUERY = 64  # images per request


class NeighboursUnavailable(ExplorerError):
    """This run's nearest real digits cannot be shown; the message says why and what to do."""


@dataclass
class Loaded:
    index: nnindex.NeighbourIndex | None
    source: str  # where the index came from, for the reader
    note: str = ""  # what is missing (features), or why the file was not used
    error: str = ""  # set when the index is unavailable (index is None)
    stamp: tuple = ()
    path: Path | None = None
    evaluator: str = "mnist"  # whose features: the evaluator that scored the run (run.json)


def _stamp(path: Path) -> tuple:
    try:
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        return (None,)


def data_candidates(info: RunInfo) -> list[tuple[str, Path]]:
    """Where the run's training data may be: (as recorded, path) in the order tried.

    A relative path (the demo records '../shared/data/mnist') is tried from the checkout the run
    folder lives in (runs/<name>/../..) and from the working directory."""
    run = info.info if isinstance(info.info, dict) else {}
    ds = run.get("dataset") if isinstance(run.get("dataset"), dict) else {}
    cfg = run.get("config") if isinstance(run.get("config"), dict) else {}
    out: list[tuple[str, Path]] = []
    for rec in (ds.get("source"), cfg.get("data")):
        if not isinstance(rec, str) or not rec or rec.startswith("keras.datasets."):
            continue
        p = Path(rec).expanduser()
        for cand in [p] if p.is_absolute() else [info.path.parent.parent / p, Path.cwd() / p]:
            out.append((rec, cand))
    src = ds.get("source")
    if src in ("keras.datasets.mnist", None) and cfg.get("dataset", "mnist") == "mnist":
        out.append(("keras.datasets.mnist (its offline copy)", Path.home() / ".keras/datasets/mnist.npz"))
    return out


def _max_images(info: RunInfo):
    cfg = info.info.get("config") if isinstance(info.info.get("config"), dict) else {}
    m = cfg.get("max_images")
    return m if isinstance(m, int) and not isinstance(m, bool) and m > 0 else None


def _features(x01: np.ndarray, evaluator: str = "mnist") -> np.ndarray:
    from models.evaluator import feature_fn

    f = feature_fn(evaluator)
    return np.concatenate([f(x01[i : i + 1000]).numpy() for i in range(0, len(x01), 1000)])


def _evaluator_id(evaluator: str = "mnist") -> str:
    from models.evaluator import evaluator_files

    return nnindex.weights_id(evaluator_files(evaluator).weights)


def _evaluator_of(info: RunInfo) -> str:
    """The evaluator run.json names for the run's data ("fashion_mnist"), else MNIST's."""
    from models.evaluator import EVALUATORS

    ds = info.info.get("dataset") if isinstance(info.info, dict) else None
    name = ds.get("evaluator") if isinstance(ds, dict) else None
    return name if isinstance(name, str) and name in EVALUATORS else "mnist"


def _add_features(index: nnindex.NeighbourIndex, evaluator: str = "mnist") -> str:
    """Give the index features by this machine's evaluator when it has none or stale ones."""
    ev = _evaluator_id(evaluator)
    if index.features is not None and index.evaluator == ev:
        return ""
    try:
        index.set_features(_features(index.x.reshape(-1, 28, 28, 1), evaluator))
        index.evaluator = ev
        return ""
    except Exception as exc:  # noqa: BLE001 - no evaluator weights, no TensorFlow: pixels still work
        index.features = None
        return f"no neighbours by features: the evaluator cannot run ({exc.__class__.__name__})"


def _rebuild(info: RunInfo) -> tuple[nnindex.NeighbourIndex, str]:
    """The index training would have written, from the run's recorded data; or the reason not."""
    from training.data import DataError, load_dataset

    tried = []
    for rec, path in data_candidates(info):
        if not path.exists():
            tried.append(rec)
            continue
        try:
            images, labels, _ = load_dataset("mnist", str(path), _max_images(info))
        except DataError as exc:
            raise NeighboursUnavailable(f"its training data cannot be read ({str(exc)[:200]})") from None
        n_saved = (
            info.info.get("dataset", {}).get("n_images")
            if isinstance(info.info.get("dataset"), dict)
            else None
        )
        if isinstance(n_saved, int) and n_saved != len(images):
            raise NeighboursUnavailable(
                f"its training data at {rec} now holds {len(images)} digits, "
                f"not the {n_saved} it was trained on"
            )
        try:
            return nnindex.build(images, labels), f"rebuilt from the run's training data ({rec})"
        except ValueError as exc:  # not 28x28 grey digits
            raise NeighboursUnavailable(f"its training data cannot be used ({str(exc)[:200]})") from None
    where = ", ".join(dict.fromkeys(tried)) or "nothing readable recorded in run.json"
    raise NeighboursUnavailable(f"its training data is not on this machine (looked for: {where[:300]})")


class Neighbours:
    """Nearest real training digits of each run, indexes cached in memory (bounded)."""

    def __init__(self, registry: RunRegistry, cache_size: int = CACHE_SIZE):
        self.registry = registry
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # one build at a time (they are seconds, and rare)

    def _load(self, run: str) -> Loaded:
        info = self.registry.get(run)
        path = nnindex.path(info.path)
        stamp = _stamp(path)
        shape = info.facts.image_shape if info.facts is not None else (28, 28, 1)
        if tuple(shape) != (28, 28, 1):
            msg = (
                f"nearest real digits are unavailable for run {run!r}: they are searched among 28x28 "
                f"grey digits, and this run's images are {'x'.join(map(str, shape))}"
            )
            return Loaded(None, "", error=msg, stamp=stamp, path=path)
        try:
            index, source, note = nnindex.read(info.path), NEIGHBOURS, ""
        except RunFolderError as exc:
            why = str(exc)
            try:
                index, source = _rebuild(info)
            except NeighboursUnavailable as no:
                msg = f"nearest real digits are unavailable for run {run!r}: {why}, and {no}"
                hint = "; train the run again with this version, or put its data back where run.json says"
                return Loaded(None, "", error=msg + hint, stamp=stamp, path=path)
            note = "" if stamp == (None,) else f"{why}; {source}"
        name = _evaluator_of(info)
        extra = _add_features(index, name)
        note = "; ".join(n for n in (note, extra) if n)
        return Loaded(index, source, note, stamp=stamp, path=path, evaluator=name)

    def get(self, run: str) -> Loaded:
        """The run's index (loaded once; reloaded only when its neighbours.npz changed)."""
        with self._lock:
            hit = self._cache.get(run) if isinstance(run, str) else None
        if hit is not None and _stamp(hit.path) == hit.stamp:
            with self._lock:
                self._cache.move_to_end(run)
            return hit
        with self._load_lock:
            with self._lock:
                hit = self._cache.get(run)
            if hit is not None and _stamp(hit.path) == hit.stamp:
                return hit
            loaded = self._load(run)
            with self._lock:
                self._cache[run] = loaded
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return loaded

    def ready(self, run: str) -> bool:
        """Is the run's index cheap to get (in memory, or a neighbours.npz to read)? A rebuild from
        the training data costs seconds (every digit through the evaluator): views ask first."""
        with self._lock:
            if run in self._cache:
                return True
        try:
            return nnindex.path(self.registry.get(run).path).is_file()
        except ExplorerError:
            return True  # the query will say what is wrong, at once

    def index(self, run: str) -> Loaded:
        loaded = self.get(run)
        if loaded.index is None:
            raise NeighboursUnavailable(loaded.error)
        return loaded

    def query(self, run: str, images01, k=K_DEFAULT) -> dict:
        """k nearest real digits of each image (in [0,1], (N, 28, 28)) by pixels and by features."""
        k = _k(k)
        loaded = self.index(run)  # first: a run with no index (a colour run) says so, not "28x28"
        x = np.asarray(images01, np.float32)
        if x.size == 0 or x.size % (28 * 28) or x.size // (28 * 28) > MAX_QUERY:
            raise ExplorerError(f"send 1 to {MAX_QUERY} images of 28x28 pixels (got shape {x.shape})")
        x = x.reshape(-1, 28, 28)
        if not np.isfinite(x).all():
            raise ExplorerError("the image holds values that are not finite numbers")
        x = np.clip(x, 0.0, 1.0)
        ix = loaded.index
        pi, pd = ix.pixel_knn(x, k)
        fi = fd = None
        if ix.features is not None:
            fi, fd = ix.feature_knn(_features(x[..., None], loaded.evaluator), k)
        shown = {int(p) for p in pi.ravel()} | (set() if fi is None else {int(p) for p in fi.ravel()})
        rows = []
        for q in range(len(x)):
            rows.append(
                {
                    "pixels": _hits(ix, pi[q], pd[q]),
                    "features": None if fi is None else _hits(ix, fi[q], fd[q]),
                }
            )
        return {
            "run": run,
            "k": k,
            "n_index": len(ix),
            "n_training": ix.n_total,
            "source": loaded.source,
            "note": loaded.note or ("" if ix.features is not None else "no neighbours by features"),
            "results": rows,
            "images": {p: ix.images_u8[p] for p in shown},  # uint8 (28, 28) of every hit, by position
        }


def _hits(ix: nnindex.NeighbourIndex, pos, dist) -> list[dict]:
    return [
        {
            "position": int(p),
            "training_index": int(ix.ids[p]),
            "label": None if ix.labels is None else int(ix.labels[p]),
            "distance": float(d),
        }
        for p, d in zip(pos, dist)
    ]


def _k(k) -> int:
    try:
        v = int(k)
        ok = v == float(k) and 1 <= v <= K_MAX
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ExplorerError(f"k must be a whole number from 1 to {K_MAX} (got {str(k)[:40]})")
    return v
