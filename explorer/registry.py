"""The run registry: what run folders and epoch snapshots are on disk (training/CONTRACT.md).

Names from the UI or the API are looked up among the runs listed here, never joined onto a
path, so no name ('..', '/etc', an absolute path) can reach outside the runs folders.
A broken snapshot is listed with the reason, not hidden.
"""
from __future__ import annotations

import json
import re
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


def _check_epoch(path: Path) -> tuple[str | None, dict | None]:
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
                broken, summary = _check_epoch(p)
                run.epochs.append(EpochInfo(int(m.group(1)), p, broken or run.broken, summary))
        run.epochs.sort(key=lambda e: e.epoch)
        return run

    def metrics(self, name: str) -> list[dict]:
        return read_jsonl(self.get(name).path / "metrics.jsonl")

    def progress(self, name: str) -> dict | None:
        try:
            return _read_json(self.get(name).path / "progress.json")
        except (OSError, ValueError):
            return None
