"""The real app (app.py) in a subprocess and Debian's Chromium driven by Playwright, for the
benchmarks and scripts that measure or picture what a person sees."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def wait_answering(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    """Return once `url` answers; exit with a message naming `log` if `proc` dies or never does."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"error: the app exited while starting; see {log}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the app did not answer within {timeout:.0f} s; see {log}") from None
            time.sleep(0.5)


@contextlib.contextmanager
def running_app(runs_dir: Path, log: Path, timeout: float = 300):
    """app.py serving `runs_dir` on a free port of 127.0.0.1 -> its URL; stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--runs-dir", str(runs_dir), "--port", str(port), "--no-browser"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_answering(proc, url, log, timeout)
        yield url
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def chromium():
    if not Path(CHROMIUM).exists():
        raise SystemExit("error: Debian's chromium is not installed (sudo apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            yield b
        finally:
            b.close()
