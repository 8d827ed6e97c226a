"""The run registry: what run folders and epoch snapshots are on disk (training/CONTRACT.md).

Names from the UI or the API are looked up among the runs listed here, never joined onto a
path, so no name ('..', '/etc', an absolute path) can reach outside the runs folders.
A broken snapshot is listed with the reason, not hidden.
"""
from __future__ import annotations

import json
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

EPOCH_FILES = ("generator.keras", "discriminator.keras", "samples.png", "summary.json")
_EPOCH_RE = re.compile(r"^epoch-(\d{1,6})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ExplorerError(ValueError):
    """A request the explorer cannot serve; the message says what was wrong and what to do."""


@dataclass
class EpochInfo:
    epoch: int
    path: Path
    broken: str | None = None  # the reason, or None when the snapshot looks whole
    summary: dict | None = None

    @property
    def label(self) -> str:
        q = (self.summary or {}).get("quality") or {}
        if self.broken:
            return f"epoch {self.epoch} (broken: {self.broken})"
        return f"epoch {self.epoch}" + (f"  FCD {q['fcd']:.1f}" if q.get("fcd") is not None else "")


@dataclass
class RunInfo:
    name: str
    path: Path
    info: dict = field(default_factory=dict)
    broken: str | None = None
    epochs: list[EpochInfo] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.broken and "broken" or str(self.info.get("status", "unknown"))

    @property
    def latent_dim(self) -> int:
        return int(self.info["latent_dim"])

    @property
    def pixel_range(self) -> tuple[float, float]:
        lo, hi = self.info.get("pixel_range", [0.0, 1.0])
        return float(lo), float(hi)

    def good_epochs(self) -> list[EpochInfo]:
        return [e for e in self.epochs if not e.broken]

    def epoch(self, epoch: int) -> EpochInfo:
        for e in self.epochs:
            if e.epoch == epoch:
                return e
        have = ", ".join(str(e.epoch) for e in self.epochs) or "none"
        raise ExplorerError(f"run {self.name!r} has no epoch {epoch} (epochs on disk: {have})")


def _read_json(path: Path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a killed writer
                if isinstance(row, dict):
                    rows.append(row)
    except OSError:
        pass
    return rows


_UNSAFE_CLASSES = {"Lambda", "TFOpLambda", "__lambda__", "SlicingOpLambda"}
_MAX_CONFIG = 8 * 1024 * 1024


def _walk(obj):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def inspect_keras(path: Path) -> tuple[str | None, list | None]:
    """Cheap look inside a .keras file (a zip) WITHOUT loading it.

    Returns (reason it cannot be used or None, the model's input batch shape or None).
    Refuses truncated/garbage files and configs that would run custom code (Lambda layers,
    classes from modules outside Keras, registered custom objects); the engine then loads the
    rest with Keras' safe mode on top.
    """
    name = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names or not any(n.endswith(".weights.h5") for n in names):
                return f"{name} is not a Keras model file (no config.json / weights inside)", None
            if zf.getinfo("config.json").file_size > _MAX_CONFIG:
                return f"{name} has an oversized config", None
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, EOFError):
        return f"{name} is truncated or not a .keras file", None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        return f"{name} unreadable ({exc.__class__.__name__})", None
    if not isinstance(config, dict):
        return f"{name} has a config that is not a JSON object", None
    shape = None
    for node in _walk(config):
        cls = node.get("class_name")
        if cls in _UNSAFE_CLASSES:
            return (f"{name} holds a Lambda layer (custom Python code); safe mode refuses it: "
                    "only load snapshots you trust, outside this app"), None
        module, reg = node.get("module"), node.get("registered_name")
        if cls and isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            return (f"{name} uses {cls!s:.40} from module {module!s:.60} (custom code); "
                    "this app only loads Keras' own layers"), None
        if cls and isinstance(reg, str) and ">" in reg:
            return (f"{name} uses a custom layer {reg!s:.60} (custom code); "
                    "this app only loads Keras' own layers"), None
        if shape is None and cls == "InputLayer":
            cfg = node.get("config") or {}
            bs = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if isinstance(bs, list):
                shape = bs
    return None, shape


def _check_epoch(path: Path, inspect=inspect_keras) -> tuple[str | None, dict | None]:
    missing = [f for f in EPOCH_FILES if not (path / f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}", None
    empty = [f for f in EPOCH_FILES if (path / f).stat().st_size == 0]
    if empty:
        return f"empty {', '.join(empty)}", None
    try:
        summary = _read_json(path / "summary.json")
        if not isinstance(summary, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        return f"summary.json unreadable ({exc.__class__.__name__})", None
    for f in ("generator.keras", "discriminator.keras"):
        reason, _ = inspect(path / f)
        if reason:
            return reason, summary
    return None, summary


def _check_run_json(info) -> str | None:
    if not isinstance(info, dict):
        return "run.json is not a JSON object"
    try:
        dim = int(info["latent_dim"])
        lo, hi = (float(v) for v in info.get("pixel_range", [0, 1]))
    except (KeyError, TypeError, ValueError):
        return "run.json lacks latent_dim/pixel_range"
    if not 1 <= dim <= 4096 or not lo < hi:
        return "run.json has an impossible latent_dim or pixel_range"
    return None


class RunRegistry:
    """Lists runs under one or more folders; re-reads the disk on every call (cheap)."""

    def __init__(self, roots: list[str | Path]):
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self._inspected: dict[tuple, tuple] = {}  # (path, size, mtime) -> inspect_keras result
        self._failed: dict[Path, tuple[tuple, str]] = {}  # epoch dir -> (file stamp, reason)
        self._lock = threading.Lock()

    @staticmethod
    def stamp(path: Path) -> tuple:
        try:
            st = path.stat()
            return (str(path), st.st_size, st.st_mtime_ns)
        except OSError:
            return (str(path), None, None)

    def inspect(self, path: Path) -> tuple[str | None, list | None]:
        """inspect_keras, memoised per file version (the registry re-lists every few seconds)."""
        key = self.stamp(path)
        with self._lock:
            hit = self._inspected.get(key)
        if hit is None:
            hit = inspect_keras(path)
            with self._lock:
                if len(self._inspected) > 4096:
                    self._inspected.clear()
                self._inspected[key] = hit
        return hit

    def _epoch_stamp(self, path: Path) -> tuple:
        return tuple(self.stamp(path / f) for f in ("generator.keras", "discriminator.keras"))

    def mark_broken(self, epoch_path: Path, reason: str) -> None:
        """A snapshot that failed to load: shown as broken until its files change."""
        with self._lock:
            self._failed[Path(epoch_path)] = (self._epoch_stamp(Path(epoch_path)), reason)

    def _run_dirs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            for p in sorted(root.iterdir()):
                if p.is_dir() and not p.name.startswith(".") and _NAME_RE.match(p.name):
                    if (p / "run.json").exists() or (p / "epochs").is_dir():
                        found.setdefault(p.name, p)
        return found

    def run_names(self) -> list[str]:
        return list(self._run_dirs())

    def list_runs(self) -> list[RunInfo]:
        return [self._load(name, path) for name, path in self._run_dirs().items()]

    def get(self, name: str) -> RunInfo:
        if not isinstance(name, str) or not name:
            raise ExplorerError("no run chosen: pick a run from the list")
        dirs = self._run_dirs()
        if not _NAME_RE.match(name) or name not in dirs:
            known = ", ".join(dirs) or "none yet (train one in the Train tab)"
            raise ExplorerError(f"unknown run {name[:80]!r}; runs available: {known}")
        return self._load(name, dirs[name])

    def _load(self, name: str, path: Path) -> RunInfo:
        run = RunInfo(name=name, path=path)
        try:
            run.info = _read_json(path / "run.json")
            run.broken = _check_run_json(run.info)
        except FileNotFoundError:
            run.broken = "run.json missing"
        except (OSError, ValueError) as exc:
            run.broken = f"run.json unreadable ({exc.__class__.__name__})"
        if run.broken:
            run.info = run.info if isinstance(run.info, dict) else {}
        epochs_dir = path / "epochs"
        if epochs_dir.is_dir():
            for p in epochs_dir.iterdir():
                m = _EPOCH_RE.match(p.name)
                if not m or not p.is_dir():
                    continue  # .tmp- folders of a writer, stray files
                broken, summary = _check_epoch(p, self.inspect)
                if not broken and not run.broken:
                    broken = self._latent_mismatch(p, run)
                if not broken:
                    with self._lock:
                        failed = self._failed.get(p)
                    if failed and failed[0] == self._epoch_stamp(p):
                        broken = failed[1]
                run.epochs.append(EpochInfo(int(m.group(1)), p, broken or run.broken, summary))
        run.epochs.sort(key=lambda e: e.epoch)
        return run

    def _latent_mismatch(self, p: Path, run: RunInfo) -> str | None:
        _, shape = self.inspect(p / "generator.keras")
        if shape and shape[-1] is not None and int(shape[-1]) != run.latent_dim:
            return (f"its generator takes {shape[-1]} latent values but run.json says "
                    f"latent_dim={run.latent_dim}")
        return None

    def metrics(self, name: str) -> list[dict]:
        return read_jsonl(self.get(name).path / "metrics.jsonl")

    def progress(self, name: str) -> dict | None:
        try:
            return _read_json(self.get(name).path / "progress.json")
        except (OSError, ValueError):
            return None
