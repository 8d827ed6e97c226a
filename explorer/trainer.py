"""Training runs started from the explorer: separate processes, watched through the run folder.

No Gradio here (the UI calls it); the explorer never imports the training loop, it starts
`python -m training` as a child process. Whether someone else trains a run is read from the
run folder's lock (training.runfolder.lock_holder), the one place that knows how.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from explorer.registry import ExplorerError
from training.runfolder import lock_holder

ROOT = Path(__file__).resolve().parents[1]
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOISE = ("I0000", "W0000", "E0000", "WARNING: All log")  # TensorFlow/absl start-up lines


def check_run_name(name) -> str:
    """A run name typed in the Train tab: one plain folder name inside the runs folder."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not _RUN_NAME.match(name):
        raise ExplorerError(
            "run name: letters, digits, '.', '_' or '-' (not starting with '.'), up to 64 characters"
        )
    return name


def last_log_line(text: str) -> str:
    """The last meaningful line of a training log (progress bars' \\r and TF noise dropped)."""
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    return lines[-1] if lines else ""


class Trainer:
    """Training runs started from the UI: separate processes, watched through the run folder."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping: set[str] = set()
        self.lock = threading.Lock()

    def log_path(self, name: str) -> Path:
        """Where the run's log goes (runs/.logs/NAME.log); only start() creates the folder."""
        return self.runs_dir / ".logs" / f"{check_run_name(name)}.log"

    def start(self, name: str, args: list[str], wait_stopping: float = 60.0) -> subprocess.Popen:
        name = check_run_name(name)
        with self.lock:
            p = self.procs.get(name)
        if p is not None and p.poll() is None and name in self.stopping:
            try:  # Resume right after Stop: let the old process finish its last whole epoch
                p.wait(timeout=wait_stopping)
            except subprocess.TimeoutExpired:
                raise ExplorerError(
                    f"run {name!r} is still stopping (pid {p.pid}); try again in a moment"
                ) from None
        if self.lock_holder(name) is not None and (p is None or p.poll() is not None):
            raise ExplorerError(f"run {name!r} is being trained by another process; stop it first")
        with self.lock:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                raise ExplorerError(f"run {name!r} is already training (pid {p.pid})")
            self.stopping.discard(name)
            log_path = self.log_path(name)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "training", "--run-dir", str(self.runs_dir / name), *args]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
            with open(log_path, "ab") as log:
                p = subprocess.Popen(
                    cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            self.procs[name] = p
            return p

    def lock_holder(self, name: str) -> int | None:
        """pid of a trainer of this run that this app did not start (e.g. before a restart)."""
        return lock_holder(self.runs_dir / check_run_name(name))

    def is_training(self, name: str) -> bool:
        """Is a trainer of this run alive right now (started here or elsewhere)?"""
        with self.lock:
            p = self.procs.get(name)
        return (p is not None and p.poll() is None) or self.lock_holder(name) is not None

    def stop(self, name: str) -> bool:
        with self.lock:
            p = self.procs.get(name)
        if p is not None and p.poll() is None:
            self.stopping.add(name)
            p.send_signal(signal.SIGTERM)
            return True
        pid = self.lock_holder(name)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def running(self) -> list[str]:
        with self.lock:
            return [n for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for name in self.running():
            self.stop(name)

    def state(self, name: str) -> tuple[str, str]:
        """(running | exited N | none, last meaningful log line). Reads only; creates nothing."""
        with self.lock:
            p = self.procs.get(name)
        try:
            last = last_log_line(self.log_path(name).read_text(errors="replace"))
        except OSError:
            last = ""
        if p is None:
            pid = self.lock_holder(name)
            return ("none" if pid is None else f"running (pid {pid}, started outside this app)"), last
        rc = p.poll()
        return ("running" if rc is None else f"exited {rc}"), last


def _whole(v):
    return int(v) if v not in (None, "", 0) else None


def resume_args(run_dir: Path, epochs) -> list[str]:
    """Command-line arguments to continue a run (epochs: the new total, or empty)."""
    if not (Path(run_dir) / "run.json").is_file():
        raise ExplorerError(f"there is no run {Path(run_dir).name!r} in the runs folder to resume")
    try:
        epochs = int(epochs) if epochs not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        raise ExplorerError("epochs must be a whole number") from None
    if epochs is not None and not 1 <= epochs <= 100_000:
        raise ExplorerError("epochs must be from 1 to 100000")
    return ["--resume"] + (["--epochs", str(epochs)] if epochs else [])


def new_run_args(
    run_dir: Path, preset, epochs, batch, max_images, data, precision, presets, precisions
) -> list[str]:
    """Command-line arguments for a new run, each value checked with a clear message."""
    name = Path(run_dir).name
    if Path(run_dir).exists():
        raise ExplorerError(f"run {name!r} already exists: press Resume to continue it, or pick a new name")
    if preset not in presets:
        raise ExplorerError(f"unknown preset {str(preset)[:40]!r}: choose {', '.join(presets)}")
    try:
        epochs, batch, max_images = int(epochs), int(batch), _whole(max_images)
    except (TypeError, ValueError, OverflowError):
        raise ExplorerError("epochs, batch size and max images must be whole numbers") from None
    if not 1 <= epochs <= 100_000 or not 1 <= batch <= 65_536 or (max_images is not None and max_images < 1):
        raise ExplorerError("epochs (1-100000), batch size (1-65536) and max images must be at least 1")
    precision = precision or "float32"
    if precision not in precisions:
        raise ExplorerError(f"unknown precision {str(precision)[:40]!r}: choose {', '.join(precisions)}")
    args = ["--preset", preset, "--epochs", str(epochs), "--batch-size", str(batch), "--precision", precision]
    if max_images:
        args += ["--max-images", str(max_images)]
    if (data or "").strip():
        args += ["--data", data.strip()]
    return args
