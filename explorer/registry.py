"""The run registry: what run folders and epoch snapshots are on disk (training/CONTRACT.md).

Names from the UI or the API are looked up among the runs listed here, never joined onto a
path, so no name ('..', '/etc', an absolute path) can reach outside the runs folders.
A broken snapshot is listed with the reason, not hidden.

Files are read through training/runfolder.py and validated once, here, by explorer/facts.py:
a corrupt run.json marks only its run broken, a corrupt summary.json only its epoch; what the
rest of the explorer sees (``RunInfo.facts``/``.info``, ``EpochInfo.facts``/``.summary``,
``metrics()``) is typed, finite and plain.
"""

from __future__ import annotations

import os
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from explorer.facts import EpochSummary, FactsError, RunFacts, epoch_summary, metrics_row, plain, run_facts
from training.runfolder import (
    DISCRIMINATOR,
    EPOCH_FILES,
    GENERATOR,
    METRICS,
    PROGRESS,
    RUN_JSON,
    SUMMARY,
    RunFolderError,
    epoch_paths,
    parse_json,
    read_json,
    read_json_dict,
    read_jsonl,
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ExplorerError(ValueError):
    """A request the explorer cannot serve; the message says what was wrong and what to do."""


@dataclass
class EpochInfo:
    epoch: int
    path: Path
    broken: str | None = None  # the reason, or None when the snapshot looks whole
    facts: EpochSummary | None = None  # summary.json, validated

    @property
    def summary(self) -> dict | None:
        """summary.json as CLEANED plain values (typed fields only); prefer ``facts``."""
        return None if self.facts is None else self.facts.as_dict()

    @property
    def fcd(self) -> float | None:
        return self.facts.quality.fcd if self.facts and self.facts.quality else None

    @property
    def label(self) -> str:
        if self.broken:
            return f"epoch {self.epoch} (broken: {self.broken})"
        return f"epoch {self.epoch}" + (f"  FCD {self.fcd:.1f}" if self.fcd is not None else "")


@dataclass
class RunInfo:
    name: str
    path: Path
    facts: RunFacts | None = None  # run.json, validated; None when it is broken
    broken: str | None = None
    epochs: list[EpochInfo] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # run.json as CLEANED plain values, for display

    @property
    def status(self) -> str:
        return "broken" if self.broken else (self.facts.status if self.facts else "unknown")

    def _facts(self) -> RunFacts:
        if self.facts is None:
            raise ExplorerError(f"run {self.name!r} is broken: {self.broken or 'run.json unreadable'}")
        return self.facts

    @property
    def latent_dim(self) -> int:
        return self._facts().latent_dim

    @property
    def pixel_range(self) -> tuple[float, float]:
        return self._facts().pixel_range

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the run's images (run.json; 28x28x1 when absent)."""
        return self._facts().image_shape

    @property
    def d_outputs_logits(self) -> bool:
        return self._facts().d_outputs_logits

    @property
    def num_classes(self) -> int:
        """0 for an unconditional run; else how many class labels its G and D take."""
        return self._facts().num_classes

    def good_epochs(self) -> list[EpochInfo]:
        return [e for e in self.epochs if not e.broken]

    def epoch(self, epoch: int) -> EpochInfo:
        for e in self.epochs:
            if e.epoch == epoch:
                return e
        have = ", ".join(str(e.epoch) for e in self.epochs) or "none"
        raise ExplorerError(f"run {self.name!r} has no epoch {epoch} (epochs on disk: {have})")


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
            config = parse_json(zf.read("config.json"), f"{name}'s config.json")
    except RunFolderError as exc:
        return str(exc), None
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
            return (
                f"{name} holds a Lambda layer (custom Python code); safe mode refuses it: "
                "only load snapshots you trust, outside this app"
            ), None
        module, reg = node.get("module"), node.get("registered_name")
        if cls and isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            return (
                f"{name} uses {cls!s:.40} from module {module!s:.60} (custom code); "
                "this app only loads Keras' own layers"
            ), None
        if cls and isinstance(reg, str) and ">" in reg:
            return (
                f"{name} uses a custom layer {reg!s:.60} (custom code); this app only loads Keras' own layers"
            ), None
        if shape is None and cls == "InputLayer":
            cfg = node.get("config") or {}
            bs = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if isinstance(bs, list):
                shape = bs
    return None, shape


def _check_epoch(path: Path, inspect=inspect_keras) -> tuple[str | None, EpochSummary | None]:
    """(reason the snapshot cannot be used or None, its validated summary or None)."""
    missing = [f for f in EPOCH_FILES if not (path / f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}", None
    empty = [f for f in EPOCH_FILES if (path / f).stat().st_size == 0]
    if empty:
        return f"empty {', '.join(empty)}", None
    try:
        summary = epoch_summary(read_json(path / SUMMARY))
    except (RunFolderError, FactsError) as exc:
        return f"summary.json unreadable: {exc}", None
    for f in (GENERATOR, DISCRIMINATOR):
        reason, _ = inspect(path / f)
        if reason:
            return reason, summary
    return None, summary


class RunRegistry:
    """Lists runs under one or more folders; re-reads the disk on every call (cheap)."""

    def __init__(self, roots: list[str | Path]):
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self._inspected: dict[tuple, tuple] = {}  # (path, size, mtime) -> inspect_keras result
        self._failed: dict[Path, tuple[tuple, str]] = {}  # epoch dir -> (file stamp, reason)
        self._lock = threading.Lock()

    @staticmethod
    def stamp(path: Path) -> tuple:
        """A file's version: changes when it is rewritten, replaced or removed (one os.stat)."""
        try:
            st = os.stat(path)
            return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        except OSError:
            return (str(path), None, None, None, None)

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
        return self.snapshot_stamp(path)

    @classmethod
    def snapshot_stamp(cls, path: Path) -> tuple:
        """The version of an epoch's generator and discriminator files (two os.stat calls)."""
        return tuple(cls.stamp(Path(path) / f) for f in (GENERATOR, DISCRIMINATOR))

    def mark_broken(self, epoch_path: Path, reason: str) -> None:
        """A snapshot that failed to load: shown as broken until its files change."""
        with self._lock:
            self._failed[Path(epoch_path)] = (self._epoch_stamp(Path(epoch_path)), reason)

    def _run_dirs(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            try:
                entries = sorted(root.iterdir())
            except OSError:
                continue
            for p in entries:
                try:
                    if p.is_dir() and not p.name.startswith(".") and _NAME_RE.match(p.name):
                        if (p / RUN_JSON).exists() or (p / "epochs").is_dir():
                            found.setdefault(p.name, p)
                except OSError:
                    continue  # a folder this process may not look into is not a run it can show
        return found

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
        """One run as listed; whatever is wrong on disk marks only this run or one epoch broken."""
        run = RunInfo(name=name, path=path)
        try:
            raw = read_json(path / RUN_JSON)
            run.info = plain_info(raw)
            run.facts = run_facts(raw)
            run.info = run.facts.info
        except RunFolderError as exc:
            run.broken = f"run.json unreadable: {exc}"
        except FactsError as exc:
            run.broken = str(exc)
        for e, p in epoch_paths(path).items():
            try:
                run.epochs.append(self._load_epoch(e, p, run))
            except OSError as exc:  # a folder removed while listed, no permission: this epoch only
                run.epochs.append(EpochInfo(e, p, f"unreadable ({exc.strerror or exc.__class__.__name__})"))
        return run

    def _load_epoch(self, e: int, p: Path, run: RunInfo) -> EpochInfo:
        broken, summary = _check_epoch(p, self.inspect)
        if not broken and not run.broken:
            broken = self._latent_mismatch(p, run)
        if not broken:
            with self._lock:
                failed = self._failed.get(p)
            if failed and failed[0] == self._epoch_stamp(p):
                broken = failed[1]
        return EpochInfo(e, p, broken or run.broken, summary)

    def _latent_mismatch(self, p: Path, run: RunInfo) -> str | None:
        _, shape = self.inspect(p / GENERATOR)
        want = run.latent_dim
        if shape and shape[-1] is not None and shape[-1] != want:
            return (
                f"its generator takes {str(shape[-1])[:20]} latent values but run.json says latent_dim={want}"
            )
        return None

    def metrics(self, name: str) -> list[dict]:
        """metrics.jsonl as clean rows (see facts.metrics_row); [] when it cannot be read."""
        try:
            raw = read_jsonl(self.get(name).path / METRICS)
        except RunFolderError:
            return []
        return [r for r in map(metrics_row, raw) if r is not None]

    def progress(self, name: str) -> dict | None:
        try:
            return plain_info(read_json_dict(self.get(name).path / PROGRESS))
        except RunFolderError:
            return None


def plain_info(raw) -> dict:
    """A broken run.json's values, cleaned, for display (empty when it is not an object)."""
    return plain(raw) if isinstance(raw, dict) else {}
