"""Kill soak: SIGKILL a training run at random moments, check every epoch folder, resume.

    .venv/bin/python benchmarks/kill_soak.py [--kills 20] [--seed 0]

Each round starts `python -m training` (resume after the first), waits a random time (some
rounds aim at the moment a snapshot is being written), then SIGKILLs it. After every kill:
each `epochs/epoch-NNNN` present must hold the four files and load in Keras' safe mode. At the
end the run is resumed to completion and its final generator is compared with an uninterrupted
run with the same seed. Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared" / "data" / "mnist"
FILES = {"generator.keras", "discriminator.keras", "samples.png", "summary.json"}
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def base_args(run: Path, epochs: int) -> list[str]:
    return [
        "--run-dir",
        str(run),
        "--data",
        str(MNIST),
        "--max-images",
        "1600",
        "--batch-size",
        "32",
        "--epochs",
        str(epochs),
        "--steps-per-call",
        "1",
        "--quality-samples",
        "200",
        "--no-tensorboard",
        "--quiet",
        "--seed",
        "7",
    ]


def check_epochs(run: Path) -> tuple[int, list[str]]:
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import keras

    problems = []
    epochs = sorted(p for p in (run / "epochs").glob("epoch-*")) if (run / "epochs").exists() else []
    for e in epochs:
        names = {p.name for p in e.iterdir()}
        if names != FILES:
            problems.append(f"{e.name}: files {sorted(names)}")
            continue
        try:
            json.loads((e / "summary.json").read_text())
            keras.saving.load_model(e / "generator.keras", safe_mode=True, compile=False)
            keras.saving.load_model(e / "discriminator.keras", safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - any failure is a finding
            problems.append(f"{e.name}: {exc}")
    return len(epochs), problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    rnd = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-soak-"))
    run, ref = work / "killed", work / "reference"
    import numpy as np

    kills = during_write = 0
    problems: list[str] = []
    started = time.time()
    while kills < args.kills:
        resume = ["--resume"] if (run / "run.json").exists() else []
        if resume and json.loads((run / "run.json").read_text()).get("status") == "completed":
            # finished before all kills were spent: extend the run so there is more to kill
            args.epochs += 2
        cmd = [sys.executable, "-m", "training", *base_args(run, args.epochs), *resume]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        aim_write = rnd.random() < 0.4
        if aim_write:  # wait for the end of an epoch's steps: the snapshot write follows
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None:
                try:
                    p = json.loads((run / "progress.json").read_text())
                    if p.get("step_in_epoch") == p.get("steps_per_epoch") and p.get("pid") == proc.pid:
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.6))
        else:
            time.sleep(rnd.uniform(2.0, 9.0))
        killed = proc.poll() is None
        if killed:
            proc.kill()
            kills += 1
            during_write += aim_write
        proc.wait()
        n, bad = check_epochs(run)
        problems += [f"kill {kills}: {b}" for b in bad]
        what = (
            f"kill {kills:2d} ({'at a snapshot write' if aim_write else 'at a random time'})"
            if killed
            else "  (the run finished before the kill; extending it)"
        )
        print(f"{what}: {n} whole epoch(s), {len(bad)} problem(s)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "training", *base_args(run, args.epochs), "--resume"],
        cwd=ROOT,
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [sys.executable, "-m", "training", *base_args(ref, args.epochs)],
        cwd=ROOT,
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    n, bad = check_epochs(run)
    problems += bad
    import keras

    last = f"epochs/epoch-{args.epochs:04d}/generator.keras"
    g1 = keras.saving.load_model(run / last, safe_mode=True, compile=False)
    g2 = keras.saving.load_model(ref / last, safe_mode=True, compile=False)
    max_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(g1.get_weights(), g2.get_weights()))
    status = json.loads((run / "run.json").read_text())["status"]
    for p in problems:
        print("PROBLEM:", p)
    shutil.rmtree(work, ignore_errors=True)
    ok = not problems and status == "completed" and max_diff < 1e-3
    print(
        f"kills={kills} kills_near_snapshot_write={during_write} problems={len(problems)} "
        f"final_epochs={n} final_status={status} max_weight_diff_vs_uninterrupted={max_diff:.2e} "
        f"seconds={time.time() - started:.0f} ok={ok}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
