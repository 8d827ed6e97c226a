"""Faults a user meets: the disk fills up, the run folder turns read-only mid-run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import warm
from tests.test_training import ROOT, _wait_for, assert_whole_epoch, run_training, small_args


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # room for a few whole epochs and a checkpoint of any preset; the disk-full test fills the
    # rest itself, so the size only has to be comfortably larger than one epoch's writes
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256M", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _start(run: Path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = small_args(run, "--steps-per-call", "1", images=640, epochs=3, quality=0)
    return warm.popen(
        [sys.executable, "-m", "training", "--quiet", "--no-tensorboard", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _fill(mnt: Path) -> Path:
    filler = mnt / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass
    return filler


def _after_failure(run: Path, proc):
    out, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 1, err[-2000:]
    msg = [l for l in err.splitlines() if l.startswith("error:")]
    assert msg and "--resume" in msg[0], err[-2000:]
    done = sorted(p.name for p in (run / "epochs").iterdir() if not p.name.startswith("."))
    assert done and done[0] == "epoch-0001"
    for name in done:
        assert_whole_epoch(run / "epochs" / name)
    assert not [p for p in (run / "epochs").iterdir() if p.name.startswith(".")], (
        "no partial snapshot may be left behind"
    )
    return msg[0]


def test_disk_full_is_a_clear_error_and_keeps_whole_epochs(tmpfs):
    run = tmpfs / "run"
    proc = _start(run)
    assert _wait_for(lambda: (run / "epochs/epoch-0001").is_dir(), 120, proc)
    filler = _fill(tmpfs)
    msg = _after_failure(run, proc)
    assert "No space left on device" in msg
    filler.unlink()
    run_training("--run-dir", str(run), "--resume")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 3
    for e in range(1, 4):
        assert_whole_epoch(run / "epochs" / f"epoch-{e:04d}")


def test_read_only_run_folder_is_a_clear_error_and_keeps_whole_epochs(tmpfs, trained_runs):
    run = tmpfs / "run"
    shutil.copytree(trained_runs / "tiny", run)  # a finished 3-epoch run (tests/conftest.py)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        proc = run_training("--run-dir", str(run), "--resume", "--epochs", "4", check=False)
        assert proc.returncode == 1, proc.stderr[-2000:]
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "Read-only file system" in lines[0], proc.stderr
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    run_training("--run-dir", str(run), "--resume", "--epochs", "4")
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 4
    for e in range(1, 5):
        assert_whole_epoch(run / "epochs" / f"epoch-{e:04d}")
