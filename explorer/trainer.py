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
import time
from pathlib import Path

from explorer.registry import ExplorerError
from training.runfolder import lock_holder

ROOT = Path(__file__).resolve().parents[1]
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NOISE = ("I0000", "W0000", "E0000", "WARNING: All log")  # TensorFlow/absl start-up lines
MAX_DATA_CHARS = 4096
# the data sets the Train tab offers when app.py is given no --data-root (those that exist)
DEFAULT_DATA = (ROOT.parent / "shared" / "data" / "mnist", Path("/usr/share/datasets/fashion-mnist"))
OUTSIDE_ROOTS = (
    "Data: not inside the data folders this app allows; pick one of the offered data sets "
    "(app.py --data-root DIR allows another folder)"
)


def default_data_roots(runs_dir: Path) -> list[Path]:
    """The data folders offered by default: the project's shared digits, Debian's Fashion-MNIST
    and a data/ folder next to the runs folder, those that exist."""
    found = [*DEFAULT_DATA, Path(runs_dir).resolve().parent / "data"]
    return [p for p in found if p.is_dir()]


def check_data(data, roots: list[Path]) -> str:
    """The Train form's data field -> a resolved path inside one of `roots` ('' = Keras' MNIST).

    A path outside every root is refused with ONE message whether or not it exists (the form
    must not tell which server paths exist); symlinks are resolved before the check."""
    if data is None:
        return ""
    if not isinstance(data, str):
        raise ExplorerError("Data: must be a folder path as text")
    if len(data) > MAX_DATA_CHARS:
        raise ExplorerError(f"Data: a path of at most {MAX_DATA_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in data):
        raise ExplorerError("Data: the path contains control characters; type a plain path")
    data = data.strip()
    if not data:
        return ""
    try:  # relative paths are read by the trainer, whose working folder is the repository
        path = (ROOT / data).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
        raise ExplorerError(OUTSIDE_ROOTS) from None
    for root in roots:
        root = Path(root).resolve()
        if path == root or root in path.parents:
            return str(path)
    raise ExplorerError(OUTSIDE_ROOTS)


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

    def __init__(self, runs_dir: Path, max_trainings: int = 1, data_roots: list[Path] | None = None):
        self.runs_dir = Path(runs_dir)
        self.max_trainings = max_trainings
        self.data_roots = default_data_roots(runs_dir) if data_roots is None else list(data_roots)
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping: set[str] = set()
        self.lock = threading.Lock()
        self.warm = None  # training.warm.Warm once warm_up() has one ready
        self._warming = threading.Lock()

    def warm_up(self) -> None:
        """Start a warm trainer server in the background (once; the Train tab's first opening):
        a run started after it is ready is forked with TensorFlow already imported, and steps 5-10 s
        sooner on 2 cores. Until then, or if it cannot start or dies, trainers start cold."""
        if self.warm is not None or not self._warming.acquire(blocking=False):
            return

        def start():
            from training.warm import Warm

            try:
                self.warm = Warm(env=self._env())
            except (OSError, RuntimeError, ValueError):
                pass  # trainers start cold, as before

        threading.Thread(target=start, name="warm-trainers-start", daemon=True).start()

    def close(self) -> None:
        """Stop the warm server, if any (trainers it forked keep running, as cold ones do)."""
        warm, self.warm = self.warm, None
        if warm is not None:
            warm.close()

    @staticmethod
    def _env() -> dict:
        return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")

    def _spawn(self, cmd: list[str], log_path: Path):
        """The trainer process: forked warm when a server is ready, else a new interpreter. Both
        run `python -m training`'s main in a session of their own that outlives the app."""
        env, warm = self._env(), self.warm
        if warm is not None and warm.serves(env):
            try:
                return warm.popen(cmd, cwd=ROOT, env=env, stdout=str(log_path), stderr="stdout")
            except OSError:
                pass  # the server is gone: start cold
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def _busy(self, name: str) -> None:
        """Refuse a new trainer beyond --max-trainings (trainers started by this app only)."""
        others = [n for n, p in self.procs.items() if n != name and p.poll() is None]
        if len(others) >= self.max_trainings:
            raise ExplorerError(
                f"busy: {len(others)} training(s) already running ({', '.join(sorted(others))}); "
                "wait or stop one"
            )

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
            raise ExplorerError(
                f"run {name!r} is being trained by a process this app did not start; "
                "wait for it, or stop it where it was started"
            )
        with self.lock:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                raise ExplorerError(f"run {name!r} is already training (pid {p.pid})")
            self._busy(name)
            self.stopping.discard(name)
            log_path = self.log_path(name)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "training", "--run-dir", str(self.runs_dir / name), *args]
            try:
                p = self._spawn(cmd, log_path)
            except (OSError, ValueError) as exc:  # never echo the server's paths back
                kind = exc.__class__.__name__ if not getattr(exc, "errno", None) else os.strerror(exc.errno)
                raise ExplorerError(
                    f"could not start the training process ({kind}); check the form"
                ) from None
            self.procs[name] = p
            # reaps the process the moment it ends (no zombie until the next poll)
            threading.Thread(target=p.wait, name=f"reap-{name}", daemon=True).start()
            return p

    def lock_holder(self, name: str) -> int | None:
        """pid of a trainer of this run that this app did not start (e.g. before a restart)."""
        return lock_holder(self.runs_dir / check_run_name(name))

    def _idle_run(self, name: str) -> Path:
        """The folder of a run of the runs folder that nothing trains (held under self.lock)."""
        name = check_run_name(name)
        folder = self.runs_dir / name
        if not folder.is_dir():
            raise ExplorerError(f"there is no run {name!r} in the runs folder ({self.runs_dir})")
        p = self.procs.get(name)
        if (p is not None and p.poll() is None) or self.lock_holder(name) is not None:
            raise ExplorerError(f"run {name!r} is training: stop it first (and wait until it has stopped)")
        return folder

    def trash(self, name: str) -> Path:
        """Delete a run as a person asked (confirmed in the page): its folder is MOVED, whole, into
        the runs folder's .trash/ under a new time-stamped name, with one rename on the same disk.
        Nothing is destroyed or overwritten (rename refuses an existing target), so a deleted run
        can always be moved back; the app never empties .trash/. Never while the run trains."""
        with self.lock:
            folder = self._idle_run(name)
            trash = self.runs_dir / ".trash"
            trash.mkdir(exist_ok=True)
            target = trash / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"
            os.rename(folder, target)  # a new name: nothing there to replace
            return target

    def rename(self, name: str, new: str) -> Path:
        """Give a run a new name (its folder's name; never while it trains, never onto an existing
        run: the target is checked and os.rename of a folder onto an existing non-empty folder fails)."""
        new = check_run_name(new)
        with self.lock:
            folder = self._idle_run(name)
            target = self.runs_dir / new
            if target.exists():
                raise ExplorerError(f"a run named {new!r} already exists: pick another name")
            os.rename(folder, target)
            return target

    def is_training(self, name: str) -> bool:
        """Is a trainer of this run alive right now (started here or elsewhere)?"""
        with self.lock:
            p = self.procs.get(name)
        return (p is not None and p.poll() is None) or self.lock_holder(name) is not None

    def stop(self, name: str) -> bool:
        """Stop a trainer THIS app started; one started elsewhere (e.g. the CLI) is refused."""
        with self.lock:
            p = self.procs.get(name)
        if p is not None and p.poll() is None:
            self.stopping.add(name)
            p.send_signal(signal.SIGTERM)
            return True
        if self.lock_holder(name) is not None:
            raise ExplorerError(
                f"run {name!r} is being trained by a process this app did not start; "
                "stop it where it was started"
            )
        return False

    def running(self) -> list[str]:
        with self.lock:
            return [n for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for name in self.running():
            self.stop(name)

    def settled_state(self, name: str) -> tuple[str, str, bool]:
        """(state, last log line, alive) read so that they agree. Reading the state, then asking
        whether the run is alive, races with the process's exit: a poll could show "running"
        and switch the Train tab's timer off, and nothing would refresh the status again (the
        tab then said "stopping" forever, seen in CI). So: when the two disagree that way, read
        the state again. The liveness is read last: a Resume that starts a new process during
        the poll keeps the timer on (its next tick shows the new process)."""
        for _ in range(3):
            state, last = self.state(name)
            alive = self.is_training(name)
            if alive or state != "running":
                return state, last, alive
        return state, last, alive

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


def _whole(v, field: str, low: int, high: int, empty=()) -> int | None:
    """A whole number typed in the Train form, in the form's words when it is not one
    (None for a value in `empty`)."""
    if v in empty and not isinstance(v, bool):
        return None
    try:
        n = int(v)
        if n != float(v):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ExplorerError(f"{field}: a whole number from {low} to {high}") from None
    if not low <= n <= high:
        raise ExplorerError(
            f"{field}: a whole number from {low} to {high} (got {n if abs(n) < 1e12 else 'more'})"
        )
    return n


def resume_args(run_dir: Path, epochs) -> list[str]:
    """Command-line arguments to continue a run (epochs: the new total, or empty)."""
    if not (Path(run_dir) / "run.json").is_file():
        raise ExplorerError(f"there is no run {Path(run_dir).name!r} in the runs folder to resume")
    epochs = _whole(epochs, "Epochs", 1, 100_000, empty=(None, ""))
    return ["--resume"] + (["--epochs", str(epochs)] if epochs else [])


def new_run_args(
    run_dir: Path,
    preset,
    epochs,
    batch,
    max_images,
    data,
    precision,
    presets,
    precisions,
    data_roots=(),
    quality=None,
    image_size=None,
    channels=None,
) -> list[str]:
    """Command-line arguments for a new run, each value checked with a clear message in the
    form's words, before anything starts."""
    name = Path(run_dir).name
    if Path(run_dir).exists():
        raise ExplorerError(f"run {name!r} already exists: press Resume to continue it, or pick a new name")
    if preset not in presets:
        raise ExplorerError(f"Preset: unknown preset {str(preset)[:40]!r}; choose {', '.join(presets)}")
    epochs = _whole(epochs, "Epochs", 1, 100_000)
    batch = _whole(batch, "Batch size", 1, 65_536)
    max_images = _whole(max_images, "Max images", 1, 100_000_000, empty=(None, "", 0))
    precision = precision or "float32"
    if precision not in precisions:
        raise ExplorerError(
            f"Precision: unknown precision {str(precision)[:40]!r}; choose {', '.join(precisions)}"
        )
    data = check_data(data, data_roots)
    quality = _whole(quality, "Quality samples", 0, 100_000, empty=(None, ""))
    from models.cpu import precision_error  # standard library only

    if why := precision_error(precision):
        raise ExplorerError(f"Precision: {why.replace('--precision ', '', 1)}")
    args = ["--preset", preset, "--epochs", str(epochs), "--batch-size", str(batch), "--precision", precision]
    if quality is not None:
        args += ["--quality-samples", str(quality)]
    if max_images:
        args += ["--max-images", str(max_images)]
    if data:
        args += ["--data", data]
    return args + _folder_args(
        data, image_size, channels, presets.get(preset) if hasattr(presets, "get") else None
    )


IMAGE_SIZES, CHANNELS = (28, 32, 64), {1: "grey", 3: "RGB"}


def _folder_args(data: str, image_size, channels, preset=None) -> list[str]:
    """--image-size / --channels for a folder of images ("auto" or empty: the trainer's default),
    refused in the form's words for digits, or for a size or colour the preset has no networks for."""
    size = None if image_size in (None, "", "auto") else _whole(image_size, "Image size", 28, 64)
    if size is not None and size not in IMAGE_SIZES:
        raise ExplorerError(f"Image size: 28, 32 or 64 px (or auto), got {size}")
    ch = None if channels in (None, "", "auto") else _whole(channels, "Channels", 1, 3)
    if ch is not None and ch not in CHANNELS:
        raise ExplorerError(f"Channels: 1 (grey) or 3 (RGB) (or auto), got {ch}")
    if size is None and ch is None:
        return []
    from training.data import is_image_folder

    if not data or not is_image_folder(data):
        raise ExplorerError(
            "Image size and Channels apply to a folder of images; MNIST-style digits (IDX files, "
            ".npz) are 28x28 grey: leave both on auto"
        )
    sizes, colour = getattr(preset, "sizes", None), getattr(preset, "colour", True)
    if size is not None and sizes and size not in sizes:
        have = "/".join(map(str, sizes))
        raise ExplorerError(
            f"Image size: preset {preset.name!r} builds {have} px; choose dcgan for {size} px"
        )
    if ch == 3 and not colour:
        raise ExplorerError(
            f"Channels: preset {preset.name!r} builds grey images only; choose dcgan or scgan"
        )
    return (["--image-size", str(size)] if size else []) + (["--channels", str(ch)] if ch else [])
