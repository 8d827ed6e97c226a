"""The run folder (training/CONTRACT.md): its names, atomic JSON/JSONL, the lock. ONE module.

Both sides import this and nothing else spells a run folder's paths: ``training/`` writes
through it, ``explorer/`` reads through it. It needs only the standard library and NumPy
(no TensorFlow, no Gradio), so the explorer can import it without importing the loop.

Reading is defensive: whatever is on disk is input like any other. Every reader here either
returns plain JSON values or raises ``RunFolderError`` with a one-line reason (missing,
too large, not UTF-8, not JSON, nested too deeply); callers validate the values' types.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- names
RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
PROGRESS = "progress.json"
LOCK = "run.lock"
EPOCHS = "epochs"
CHECKPOINT = "checkpoint"
CHECKPOINT_STATE = "state.json"  # inside checkpoint/: epoch, global_step, elapsed_s, summaries
CHECKPOINT_ARRAYS = "state.npz"  # inside checkpoint/: weights, optimizer slots, RNG state
TENSORBOARD = "tensorboard"
SUMMARY = "summary.json"
SAMPLES = "samples.png"
GENERATOR = "generator.keras"
DISCRIMINATOR = "discriminator.keras"
NEIGHBOURS = "neighbours.npz"  # the real training digits' nearest-neighbour index (training/nnindex.py)
EPOCH_FILES = (GENERATOR, DISCRIMINATOR, SAMPLES, SUMMARY)

MAX_EPOCH = 999_999
_EPOCH_RE = re.compile(r"^epoch-(\d{4,6})$")

MAX_JSON_BYTES = 4 * 1024 * 1024  # run.json, summary.json, progress.json: a few KB when sane
MAX_LINE_BYTES = 256 * 1024  # one metrics.jsonl line
MAX_DEPTH = 32  # deeper JSON than this is not something training wrote


class RunFolderError(RuntimeError):
    """The run folder (or a file in it) cannot be used as asked; the message says why and what to do."""


def epoch_dirname(epoch: int) -> str:
    """epoch 3 -> 'epoch-0003' (the one place this name is spelled)."""
    epoch = int(epoch)
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch {epoch} is outside 0..{MAX_EPOCH}")
    return f"epoch-{epoch:04d}"


def parse_epoch_dirname(name: str) -> int | None:
    """'epoch-0003' -> 3; anything else (hidden temporaries included) -> None."""
    m = _EPOCH_RE.match(name)
    return int(m.group(1)) if m else None


def epoch_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(run_dir) / EPOCHS / epoch_dirname(epoch)


def epoch_paths(run_dir: str | os.PathLike) -> dict[int, Path]:
    """{epoch: folder} of every epochs/epoch-NNNN folder on disk (sorted by epoch)."""
    out: dict[int, Path] = {}
    try:
        entries = list((Path(run_dir) / EPOCHS).iterdir())
    except OSError:
        return out
    for p in entries:
        e = parse_epoch_dirname(p.name)
        if e is not None and p.is_dir():
            out[e] = p
    return dict(sorted(out.items()))


def list_epochs(run_dir: str | os.PathLike) -> list[int]:
    return list(epoch_paths(run_dir))


# ----------------------------------------------------------------------------- writing
def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write to a hidden temporary beside ``path``, fsync, rename over it: all or nothing."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def clean_json(obj):
    """JSON cannot hold NaN/inf: write them as null; NumPy scalars as Python numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.generic):
        return clean_json(obj.item())
    return obj


def dumps(obj) -> str:
    return json.dumps(clean_json(obj), allow_nan=False)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, (json.dumps(clean_json(obj), indent=2, allow_nan=False) + "\n").encode())


# ----------------------------------------------------------------------------- reading
_JSON_STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def _depth_ok(text: str, limit: int = MAX_DEPTH) -> bool:
    """Nesting depth of JSON text without parsing it (brackets inside strings are skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return True
    depth = 0
    for ch in re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        if depth > limit:
            return False
    return True


def parse_json(data: bytes | str, what: str = "JSON"):
    """Bytes or text -> JSON values, or RunFolderError with the reason (never RecursionError)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RunFolderError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    if not _depth_ok(data):
        raise RunFolderError(f"{what} is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RunFolderError(f"{what} is not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def read_json(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES):
    """One JSON file -> values. Missing, unreadable, oversized or malformed: RunFolderError."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise RunFolderError(f"{path.name} is missing") from None
    except OSError as exc:
        raise RunFolderError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise RunFolderError(f"{path.name} is larger than {max_bytes // 1024} KB")
    return parse_json(data, path.name)


def read_json_dict(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES) -> dict:
    obj = read_json(path, max_bytes)
    if not isinstance(obj, dict):
        raise RunFolderError(f"{Path(path).name} holds a {type(obj).__name__}, not a JSON object")
    return obj


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every whole, valid object line of a JSON-lines file; [] when the file is missing.

    A torn last line (a killed writer), a line that is not UTF-8, not JSON, not an object,
    too long or too deep is skipped: one bad line never hides the good ones. Other read
    errors (permissions, I/O) raise RunFolderError.
    """
    rows: list[dict] = []
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if len(raw) > MAX_LINE_BYTES:
                    continue
                try:
                    row = parse_json(raw, "line")
                except RunFolderError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunFolderError(f"{Path(path).name} cannot be read ({exc.strerror or exc})") from None
    return rows


def as_epoch(value) -> int | None:
    """A row's 'epoch' field as a whole epoch number, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    e = int(value)
    return e if 0 <= e <= MAX_EPOCH else None


class MetricsLog:
    """metrics.jsonl: appended a line at a time, flushed; an epoch re-trained on resume is replaced whole."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._mark = 0  # bytes before this offset were written by an earlier process
        self._stale: set[int] = set()  # epochs those earlier lines speak of

    def append(self, row: dict) -> None:
        line = dumps(row) + "\n"
        needs_nl = False  # a torn line from a killed writer must not glue onto ours
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                needs_nl = fh.read(1) != b"\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(("\n" if needs_nl else "") + line)
            fh.flush()

    def mark(self) -> None:
        """Lines from here on are this writer's; those before, an earlier writer's."""
        self._mark = self.path.stat().st_size if self.path.exists() else 0
        self._stale = {e for e in map(_line_epoch, self._old_lines()) if e is not None}

    def _old_lines(self) -> list[bytes]:
        return self.path.read_bytes()[: self._mark].splitlines(keepends=True) if self._mark else []

    def append_epoch(self, row: dict) -> None:
        """Append an epoch's summary line and replace an EARLIER writer's lines of that epoch.

        A resumed run re-trains epochs an earlier (killed) writer may have logged in part. Those
        stale lines are dropped only here, in one atomic rewrite that also holds the new step
        lines and the new summary of the same epoch, so lines are only ever replaced, never
        lost: nothing is dropped for an epoch that is not being written right now, and a line
        whose epoch cannot be read is kept. Stale lines of later epochs stay (after the new
        ones) until their own epoch is written.
        """
        epoch = as_epoch(row.get("epoch"))
        if epoch not in self._stale:
            self.append(row)
        else:
            old = [
                (line if line.endswith(b"\n") else line + b"\n", _line_epoch(line))
                for line in self._old_lines()
            ]
            with open(self.path, "rb") as fh:
                fh.seek(self._mark)
                mine = b"".join(line for line in fh if line.strip())
            before = b"".join(line for line, e in old if e is None or e < epoch)
            later = b"".join(line for line, e in old if e is not None and e > epoch)
            write_bytes_atomic(self.path, before + mine + (dumps(row) + "\n").encode() + later)
            self._stale.discard(epoch)
        self._mark = self.path.stat().st_size


def _line_epoch(line: bytes) -> int | None:
    try:
        row = parse_json(line, "line")
    except RunFolderError:
        return None
    return as_epoch(row.get("epoch")) if isinstance(row, dict) else None


def clean_temporaries(run_dir: str | os.PathLike) -> None:
    """Remove leftovers of a killed writer.

    Deletes only hidden names containing '.tmp-' or '.old-': a temporary is never the only
    copy of anything (it is renamed into place when whole). An '.old-' copy is deleted only when
    its replacement is in place; a writer killed between its two renames left none, so the
    '.old-' copy is renamed back instead.
    """
    run_dir = Path(run_dir)
    for parent in (p for p in (run_dir, run_dir / EPOCHS) if p.is_dir()):
        hidden = (p for p in parent.iterdir() if p.name.startswith("."))
        leftovers = [p for p in hidden if ".tmp-" in p.name or ".old-" in p.name]
        leftovers.sort(key=lambda p: ".old-" not in p.name)  # .old- first: it may be put back
        for p in leftovers:
            final = parent / p.name[1:].split(".old-")[0]
            if ".old-" in p.name and not final.exists():
                os.replace(p, final)
            else:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the lock
class RunLock:
    """An exclusive flock on run.lock: a second trainer refuses; a dead one holds nothing."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                try:
                    pid = self.path.read_text().strip() or "?"
                except OSError:
                    pid = "?"
                raise RunFolderError(
                    f"run folder {self.path.parent} is being trained by another process "
                    f"(pid {pid}); wait for it to finish or stop it first"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            # the file stays (unlinking a lock file races with the next taker); the lock goes
            try:
                os.ftruncate(self.fd, 0)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None


def is_locked(run_dir: str | os.PathLike) -> bool:
    """True while some process holds the run's lock (a trainer is alive)."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def lock_holder(run_dir: str | os.PathLike) -> int | None:
    """pid of the process training this run folder, or None when nobody holds its lock.

    The pid in run.lock is trusted only when the lock is held AND /proc shows it as a ``training``
    process of this --run-dir, or holding this run.lock open (a trainer forked warm,
    training/warm.py, has a retitled command line, one string). A recycled pid is neither."""
    run_dir = Path(run_dir).resolve()
    if not is_locked(run_dir):
        return None
    try:
        pid = int((run_dir / LOCK).read_text().strip())
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError):
        return None
    if "training" in args and "--run-dir" in args[:-1]:
        if (cwd / args[args.index("--run-dir") + 1]).resolve() == run_dir:
            return pid
    return pid if _holds_open(pid, run_dir / LOCK) else None


def _holds_open(pid: int, path: Path) -> bool:
    """Does process `pid` have `path` open (one of its /proc/PID/fd links)?"""
    for fd in Path(f"/proc/{pid}/fd").glob("*"):  # no such process: none
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            if os.readlink(fd) == str(path):
                return True
    return False


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
