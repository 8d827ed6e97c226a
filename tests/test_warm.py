"""The suite's warm trainers (tests/warm.py) behave as `python -m training` processes do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests import warm
from tests.conftest import MNIST, ROOT

CLI = [sys.executable, "-m", "training"]


def test_help_and_a_usage_error_exit_as_the_cli_does():
    ok = warm.run([*CLI, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("usage: python -m training")
    bad = warm.run([*CLI, "--epochs", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "the following arguments are required: --run-dir" in bad.stderr


def test_a_killed_trainer_reports_the_signal_and_an_error_the_message(tmp_path):
    args = ["--run-dir", str(tmp_path / "run"), "--data", str(MNIST), "--max-images", "64", "--epochs", "500"]
    proc = warm.popen([*CLI, *args, "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert isinstance(proc, warm.WarmProcess) and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    gone = warm.run(
        [*CLI, "--run-dir", str(tmp_path / "other"), "--data", str(tmp_path / "nowhere"), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gone.returncode == 2 and gone.stderr.startswith("error: ") and "nowhere" in gone.stderr


def test_a_different_tensorflow_setting_gets_a_real_process():
    env = dict(
        os.environ, TF_ENABLE_ONEDNN_OPTS="0" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1" else "1"
    )
    proc = warm.popen([*CLI, "--help"], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    assert isinstance(proc, subprocess.Popen)
    assert proc.communicate(timeout=120)[0].startswith(b"usage: python -m training")
