"""Trainers forked from a process that has already imported TensorFlow: a warm start.

Every `python -m training` process spends 4-6 CPU-seconds (5-10 s on 2 cores) importing TensorFlow
and Keras before its first step. A `Warm` server is a process that has imported them, exactly as
`python -m training` does, and nothing more: no TensorFlow op has run in it, so TensorFlow has made
no thread pool, no device and no session state that a fork could leave half-copied. For each
request it forks; the child takes the request's working folder, environment, argument list and
output files, starts its own session (it outlives the server and whoever asked, as a trainer
started with `start_new_session`), and runs `training.__main__.main(argv)`, the function
`python -m training` runs. Only the imports happened before the fork.

The app starts one when its Train tab is first opened (`explorer.trainer.Trainer.warm_up`), and
the test suite one per pytest worker (`tests/warm.py`). A `WarmProcess` answers what callers use
of `subprocess.Popen` (pid, poll, wait, send_signal, terminate, kill, returncode).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# read by TensorFlow or by models.cpu while TensorFlow is imported: a request whose values differ
# cannot be served by the server's import
IMPORT_ENV = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "CUDA_VISIBLE_DEVICES")


# ---------------------------------------------------------------- the server (its own process)


def _name_process(argv: list[str]) -> None:
    """Show the trainer in ps / top as the command it runs: a fork keeps its server's command line
    (`python -c from training.warm import serve; serve()`), which says nothing of the run."""
    try:
        import setproctitle
    except ImportError:  # an install without it: the server's line stays, nothing else changes
        return
    import shlex

    setproctitle.setproctitle(shlex.join([sys.executable, "-m", "training", *argv]))


def _child(req: dict) -> None:
    """In the forked child: become `python -m training ARGS` and never return."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own session, as `start_new_session=True` gives
        _name_process(req["argv"])  # before the environment changes: setproctitle needs it as it was
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(f, fd)
            os.close(f)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if os.environ.get("PYTHONUNBUFFERED"):  # as the interpreter would have started
            sys.stdout.reconfigure(write_through=True)
        sys.argv = [str(ROOT / "training" / "__main__.py"), *req["argv"]]
        from training.__main__ import main

        code = main(req["argv"])
    except SystemExit as exc:  # argparse's errors and --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:  # a second Ctrl-C: die of the signal, as the interpreter does
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001  (as the interpreter: a traceback and exit status 1)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def serve() -> None:
    """The server's main loop: a JSON request per line on stdin, JSON answers on stdout."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing printed, even by an import, reaches the protocol
    sys.modules.setdefault("pandas", None)  # as training/__main__.py does when run as a script
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import keras  # noqa: F401

    import training.__main__  # noqa: F401
    import training.loop  # noqa: F401
    import training.publish  # noqa: F401

    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ)
    sel.register(r, selectors.EVENT_READ)
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    pending = b""  # requests read but not yet whole (os.read: no buffer hides a second line)
    while True:
        for key, _ in sel.select():
            if key.fileobj == r:
                os.read(r, 4096)
                continue
            data = os.read(0, 1 << 16)
            if not data:  # the client is gone: its trainers finish on their own
                return
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                req = json.loads(line)
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    for fd in (out.fileno(), r, w):  # the server's pipes are not the trainer's
                        os.close(fd)
                    _child(req)
                out.write(json.dumps({"id": req["id"], "pid": pid}) + "\n")
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            out.write(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}) + "\n")


# ---------------------------------------------------------------- the client (the app, a test)


class WarmProcess:
    """What callers use of `subprocess.Popen`, for a trainer forked by a `Warm` server."""

    def __init__(self, server: Warm, pid: int, args: list, out: Path | None, err: Path | None, text: bool):
        """`out` / `err`: the files .stdout / .stderr read (the caller's PIPE), or None (as Popen
        gives for output sent to a file: nothing held open for a run's log in a long-lived app)."""
        self.server, self.pid, self.args = server, pid, args
        self.returncode: int | None = None
        self._done = threading.Event()
        mode = "r" if text else "rb"
        self.stdout = open(out, mode) if out else None  # noqa: SIM115  (closed with the object)
        self.stderr = open(err, mode) if err else None  # noqa: SIM115

    def _ended(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self):
        if self.returncode is None and self.server.dead:
            # the server that would report its exit is gone: a trainer that no longer exists has
            # ended, with a status nobody can read any more (the run folder still says how it ended)
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self._ended(-1)
            except PermissionError:
                pass
        return self.returncode

    def wait(self, timeout=None):
        """As Popen.wait; once the server is gone, by probing the pid every 0.5 s."""
        end = None if timeout is None else time.monotonic() + float(timeout)
        while self.poll() is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._done.wait(0.5 if left is None else min(left, 0.5))
        return self.returncode

    def communicate(self, timeout=None):
        self.wait(timeout)
        return tuple(f.read() if f else None for f in (self.stdout, self.stderr))

    def send_signal(self, sig):
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for f in (self.stdout, self.stderr):
            if f:
                f.close()


class Warm:
    """A warm server, started (and ready: TensorFlow imported) when this returns; `env`: its
    environment (default this process's). Raises RuntimeError when it cannot start."""

    def __init__(self, env: dict | None = None):
        env = dict(os.environ if env is None else env)
        self.env = {k: env.get(k) for k in IMPORT_ENV}
        self.tmp: Path | None = None
        self.dead = False
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from training.warm import serve; serve()"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lock = threading.Lock()
        self.waiting: dict[int, list] = {}
        self.procs: dict[int, WarmProcess] = {}
        self.early: dict[int, int] = {}  # exits read before their pid was handed out
        self.n = 0
        try:
            first = json.loads(self.proc.stdout.readline() or "{}")
        except ValueError:
            first = {}
        if "ready" not in first:
            self.dead = True
            self.proc.kill()
            raise RuntimeError("the warm trainer server did not start")
        threading.Thread(target=self._read, daemon=True, name="warm-trainers").start()

    def _read(self):
        try:
            for line in self.proc.stdout:
                msg = json.loads(line)
                with self.lock:
                    if "pid" in msg:
                        slot = self.waiting.pop(msg["id"])
                        slot.append(msg["pid"])
                        slot[0].set()
                    elif "exit" in msg:
                        p = self.procs.pop(msg["exit"], None)
                        if p is None:
                            self.early[msg["exit"]] = msg["code"]
                        else:
                            p._ended(msg["code"])
        finally:
            self.dead = True  # its trainers, if any, keep running; WarmProcess.poll probes them

    def serves(self, env) -> bool:
        """Can a trainer with environment `env` (None: this process's) be forked from here?"""
        if self.dead or self.proc.poll() is not None:
            return False
        env = os.environ if env is None else env
        return all(env.get(k) == v for k, v in self.env.items())

    def close(self) -> None:
        """Stop the server (its trainers keep running: they are sessions of their own)."""
        self.dead = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.tmp is not None:
            # only the output files popen made for callers that gave none (mkdtemp: this server's
            # own folder); a trainer still writing keeps its open file, a caller its open handle
            shutil.rmtree(self.tmp, ignore_errors=True)

    def popen(self, cmd, cwd=None, env=None, text=False, stdout=None, stderr=None) -> WarmProcess:
        """Fork `cmd` (`[python, "-m", "training", *argv]`); stdout/stderr: a file to append to,
        "stdout" (stderr only), or None for a file of the server's that .stdout / .stderr read.
        Raises OSError when the server is gone."""
        with self.lock:
            self.n += 1
            rid = self.n
            done = threading.Event()
            slot = self.waiting[rid] = [done]
        if not stdout or not stderr:
            self.tmp = self.tmp or Path(tempfile.mkdtemp(prefix="warm-trainers-"))
        out = Path(stdout) if stdout else self.tmp / f"{rid}.out"
        err = out if stderr == "stdout" else Path(stderr) if stderr else self.tmp / f"{rid}.err"
        for f in (out, err):
            f.touch()
        req = {
            "id": rid,
            "argv": [str(c) for c in cmd[3:]],
            "cwd": str(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
            "stdout": str(out),
            "stderr": str(err),
        }
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            self.dead = True
            raise OSError("the warm trainer server is gone") from exc
        if not done.wait(60):
            raise OSError("the warm trainer server did not fork a trainer within 60 s")
        with self.lock:
            pid = slot[-1]
            p = WarmProcess(self, pid, cmd, None if stdout else out, None if stderr else err, text)
            if pid in self.early:  # it ended before its pid came back
                p._ended(self.early.pop(pid))
            else:
                self.procs[pid] = p
        return p
