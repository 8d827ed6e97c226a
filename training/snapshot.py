"""Writing the run folder (see training/CONTRACT.md): atomically, so readers never see halves.

Every file goes to a temporary name in the same folder and is renamed into place; an epoch
folder is built as ``epochs/.epoch-NNNN.tmp-PID`` and renamed whole.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image


class RunFolderError(RuntimeError):
    """The run folder cannot be used as asked; the message says what to do."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
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
    _fsync_dir(path.parent)


def _clean(obj):
    """JSON cannot hold NaN/inf: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def dumps(obj) -> str:
    return json.dumps(_clean(obj), allow_nan=False)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, (json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n").encode())


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All whole lines of a JSON-lines file; a torn last line (killed writer) is skipped."""
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows


class MetricsLog:
    """metrics.jsonl: appended a line at a time, flushed; rewritten atomically on resume."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, row: dict) -> None:
        line = dumps(row) + "\n"
        # a torn line from a killed writer must not glue onto ours
        needs_nl = False
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                needs_nl = fh.read(1) != b"\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(("\n" if needs_nl else "") + line)
            fh.flush()

    def truncate_after(self, epoch: int) -> None:
        rows = [r for r in read_jsonl(self.path) if int(r.get("epoch", 0)) <= epoch]
        write_bytes_atomic(self.path, "".join(dumps(r) + "\n" for r in rows).encode())


def image_grid(images01: np.ndarray, cols: int = 8, pad: int = 2) -> Image.Image:
    """(N,28,28[,1]) floats in [0,1] -> one grayscale PIL grid."""
    imgs = np.asarray(images01, dtype=np.float32)
    if imgs.ndim == 4:
        imgs = imgs[..., 0]
    n, h, w = imgs.shape
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.uint8)
    u8 = (np.clip(imgs, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = u8[i]
    return Image.fromarray(grid, mode="L")


def epoch_dirname(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def write_epoch_folder(run_dir: Path, epoch: int, generator, discriminator,
                       samples01: np.ndarray, summary: dict) -> Path:
    """Write epochs/epoch-NNNN whole, or not at all."""
    epochs_dir = Path(run_dir) / "epochs"
    epochs_dir.mkdir(parents=True, exist_ok=True)
    final = epochs_dir / epoch_dirname(epoch)
    tmp = epochs_dir / f".{epoch_dirname(epoch)}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        generator.save(tmp / "generator.keras")
        discriminator.save(tmp / "discriminator.keras")
        image_grid(samples01).save(tmp / "samples.png")
        write_json_atomic(tmp / "summary.json", summary)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # re-written after a resume: swap, never leave a half folder
            old = epochs_dir / f".{epoch_dirname(epoch)}.old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(epochs_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def list_epochs(run_dir: Path) -> list[int]:
    out = []
    for p in (Path(run_dir) / "epochs").glob("epoch-*"):
        try:
            out.append(int(p.name.split("-", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


def clean_temporaries(run_dir: Path) -> None:
    """Remove leftovers of a killed writer (hidden .tmp-/.old- names)."""
    run_dir = Path(run_dir)
    for parent in (run_dir, run_dir / "epochs"):
        if not parent.is_dir():
            continue
        for p in parent.iterdir():
            if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


class RunLock:
    """An exclusive flock on run.lock: a second trainer refuses; a dead one holds nothing."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "run.lock"
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


def is_locked(run_dir: Path) -> bool:
    """True while some process holds the run's lock (used by readers to show 'training')."""
    path = Path(run_dir) / "run.lock"
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


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
