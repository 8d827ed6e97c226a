"""Training past one process: two `python -m training` workers on 127.0.0.1 under a two-worker
TF_CONFIG (MultiWorkerMirroredStrategy) train one epoch on real digits together."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import warm
from tests.conftest import MNIST, ROOT
from training.cluster import WEIGHTS_DUMP, read_tf_config
from training.config import ConfigError

BASE = ("--data", str(MNIST), "--max-images", "256", "--batch-size", "32", "--quality-samples", "0")
BASE += ("--quiet", "--no-tensorboard")
ARGS = (*BASE, "--epochs", "1")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_workers_train_together_only_the_chief_writes_and_both_end_with_the_same_model(tmp_path):
    import keras

    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs, logs = [], []
    try:
        for i in range(2):
            env = dict(
                os.environ,
                TF_CPP_MIN_LOG_LEVEL="3",
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                **{WEIGHTS_DUMP: str(tmp_path / f"weights-{i}.npz")},
            )
            logs.append(open(tmp_path / f"worker-{i}.log", "w+"))  # noqa: SIM115 (closed below)
            cmd = [sys.executable, "-m", "training", "--run-dir", str(tmp_path / f"run-{i}"), *ARGS]
            procs.append(warm.popen(cmd, cwd=ROOT, env=env, stdout=logs[i], stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    output = [(tmp_path / f"worker-{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], output

    # worker 0 (no "chief" job: the chief) wrote the run folder; worker 1 wrote nothing at all
    run = tmp_path / "run-0"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 1
    assert not (tmp_path / "run-1").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run-0", "weights-0.npz", "weights-1.npz", "worker-0.log", "worker-1.log"]
    )
    assert "completed: 1 epoch(s) (not the chief: the chief wrote the run folder)" in output[1]
    assert f"completed: 1 epoch(s) in {run}" in output[0]

    # the snapshot loads in safe mode, with stock (unsynchronised) BatchNorm layers as always
    epoch = run / "epochs" / "epoch-0001"
    g = keras.saving.load_model(epoch / "generator.keras", safe_mode=True, compile=False)
    d = keras.saving.load_model(epoch / "discriminator.keras", safe_mode=True, compile=False)
    bns = [layer for layer in g.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.get_config()["synchronized"] for layer in bns)

    # both workers ended with the same G and D, BatchNorm statistics included, and the snapshot
    # holds exactly that (the chief's copy)
    w = [np.load(tmp_path / f"weights-{i}.npz") for i in range(2)]
    names = list(w[0]["g_names"])
    stats = [i for i, n in enumerate(names) if "moving_" in n]
    assert len(stats) >= 4, names
    for prefix, model in (("g", g), ("d", d)):
        assert len(model.variables) == len(w[0][f"{prefix}_names"])
        for i, v in enumerate(model.variables):
            key = f"{prefix}_{i:03d}"
            assert np.array_equal(w[0][key], w[1][key]), (key, w[0][f"{prefix}_names"][i])
            assert np.array_equal(v.numpy(), w[0][key]), (key, v.path)
    # the statistics moved from their initial values during the epoch (a real check)
    assert not np.allclose(w[0][f"g_{stats[0]:03d}"], 0.0)


BAD_TF_CONFIGS = {
    "{bad": "is not valid JSON",
    "[]": "is not a JSON object",
    '{"task": {"type": "worker", "index": 0}}': 'has no "cluster" object',
    '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}': 'has a "ps" job',
    '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}': 'not a "host:port"',
    '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}': "lists a:1 twice",
    '{"cluster": {"worker": ["a:1", "b:2"]}}': 'has no "task" object',
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}': "task type 'chief'",
    '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}': "not one of 0..1",
}


@pytest.mark.parametrize("text", BAD_TF_CONFIGS)
def test_a_bad_tf_config_is_named_in_one_line(text):
    with pytest.raises(ConfigError) as err:
        read_tf_config({"TF_CONFIG": text})
    message = str(err.value)
    assert BAD_TF_CONFIGS[text] in message and "\n" not in message and "set it like" in message


def test_the_trainer_refuses_a_bad_tf_config_before_starting_tensorflow(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "--run-dir", str(run), *ARGS],
        cwd=ROOT,
        env=dict(os.environ, TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"index": 0}}'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: TF_CONFIG task type None is not a job of its cluster (worker); set it like "
        + '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        + " (or unset it to train in one process)"
    ]
    assert not run.exists()


def test_a_worker_under_tf_config_still_stops_on_sigterm(tmp_path):
    """TensorFlow's coordination service takes SIGTERM over when the strategy starts; the
    trainer takes it back, so a worker stops cleanly (whole epochs kept) instead of ignoring it."""
    run = tmp_path / "run"
    port = _free_ports(1)[0]
    conf = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    cmd = [sys.executable, "-m", "training", "--run-dir", str(run), *BASE, "--epochs", "200"]
    proc = warm.popen(
        [*cmd, "--steps-per-call", "1"],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(conf)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # (200 epochs: far longer than the test waits)
        # run.json is written after the strategy started (and the handler was taken back)
        deadline = time.monotonic() + 180
        while not (run / "run.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker went on training for 90 s after SIGTERM (it ignored it)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopping after the current steps (SIGTERM)" in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and info["epochs_done"] < 200
    assert out.strip().startswith("stopped: ")
