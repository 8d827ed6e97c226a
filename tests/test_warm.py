"""The suite's warm trainers (tests/warm.py) behave as `python -m training` processes do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import warm
from tests.conftest import MNIST, ROOT

CLI = [sys.executable, "-m", "training"]


def test_help_and_a_usage_error_exit_as_the_cli_does():
    ok = warm.run([*CLI, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("usage: python -m training")
    bad = warm.run([*CLI, "--epochs", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "the following arguments are required: --run-dir" in bad.stderr


def test_requests_from_several_threads_at_once_are_all_served():
    from concurrent.futures import ThreadPoolExecutor

    def helped(_):
        return warm.run([*CLI, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(helped, range(6)))
    assert [p.returncode for p in done] == [0] * 6
    assert all(p.stdout.startswith("usage: python -m training") for p in done)


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


def test_a_warm_trainer_holds_its_run_as_a_cold_one_does(tmp_path):
    """The app and the CLI know a run is training by its lock (training/runfolder.lock_holder); a
    forked trainer has its server's command line, and is still known by the lock it holds open."""
    from training.runfolder import lock_holder

    run = tmp_path / "run"
    args = ["--run-dir", str(run), "--data", str(MNIST), "--max-images", "64", "--epochs", "500", "--quiet"]
    proc = warm.popen([*CLI, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while lock_holder(run) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_holder(run) == proc.pid
        # ps and top show it as the command it runs, not as its server
        shown = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "-m training --run-dir " + str(run) in shown and "serve()" not in shown
    finally:
        proc.kill()
        proc.wait(60)
    assert lock_holder(run) is None


def test_the_app_starts_a_run_warm_once_the_train_tab_has_warmed_up_and_stops_it(tmp_path):
    """explorer/trainer.py: warm_up() (the Train tab's first opening) readies a server; a run
    started then is forked from it, writes its log, is seen training, and stops on Stop with
    whole epochs, as a cold one does."""
    from explorer.trainer import Trainer
    from training.warm import WarmProcess

    runs = tmp_path / "runs"
    runs.mkdir()
    trainer = Trainer(runs)
    trainer.warm_up()
    trainer.warm_up()  # once only
    try:
        deadline = time.monotonic() + 180
        while trainer.warm is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert trainer.warm is not None
        args = ["--data", str(MNIST), "--max-images", "64", "--batch-size", "32", "--epochs", "500"]
        p = trainer.start("warm-run", [*args, "--quality-samples", "0", "--no-tensorboard"])
        assert isinstance(p, WarmProcess)
        epoch_1 = runs / "warm-run" / "epochs" / "epoch-0001"
        while not epoch_1.is_dir() and p.poll() is None and time.monotonic() < deadline + 120:
            time.sleep(0.1)
        assert epoch_1.is_dir() and trainer.is_training("warm-run")
        assert trainer.stop("warm-run")
        assert p.wait(120) == 0
        assert trainer.state("warm-run")[0] == "exited 0"
        info = json.loads((runs / "warm-run" / "run.json").read_text())
        assert info["status"] == "stopped" and info["epochs_done"] >= 1
        assert "--resume" in trainer.log_path("warm-run").read_text()
    finally:
        for p in list(trainer.procs.values()):
            p.kill()
        trainer.close()
