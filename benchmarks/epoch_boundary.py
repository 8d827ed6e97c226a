"""The pause between two epochs: letting go of an epoch's tf.data iterator, autotuned or not.

    .venv/bin/python benchmarks/epoch_boundary.py [--rounds 5] [--preset NAME] [--max-images 10000]

training/loop.py makes one iterator per epoch. With tf.data's autotuning on (the default, and
what `map(num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)` asks for), each iterator runs a tuning
thread that sleeps between rounds, for a period that doubles while the iterator lives; letting go
of the iterator waits until that sleep ends. ``training.loop.epoch_batches`` turns autotuning off.
In one process: the default preset's real step (float32, batch 64, as loop.py builds it), one
whole epoch of the shared digits per iterator, the two pipelines alternating (`autotune`: the
earlier `map(AUTOTUNE).prefetch(AUTOTUNE)`; `plain`: epoch_batches), each epoch timed, then the
release of its iterator (`del`) timed. The pause comes at some boundaries, not all (it lasts
what is left of the sleep), so the mean per epoch and the count of releases over 100 ms (stalls)
say what it costs. Last line: name=value pairs (ms; img/s medians).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MNIST = ROOT.parent / "shared" / "data" / "mnist"

import numpy as np  # noqa: E402

from benchmarks._cpu import cpu_profile, isa_name, print_cpu  # noqa: E402  (before TensorFlow)


def pipelines(tf, images_u8, lo: float, hi: float):
    """name -> (perm -> dataset of one epoch's batches)."""
    from training.loop import epoch_batches

    images = tf.constant(images_u8)

    def batch(idx):
        return (tf.cast(tf.gather(images, idx), tf.float32)[..., None] / 255.0) * (hi - lo) + lo

    def autotuned(perm):  # training/loop.py before epoch_batches
        return (
            tf.data.Dataset.from_tensor_slices(perm)
            .batch(64, drop_remainder=True)
            .map(batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )

    return {"autotune": autotuned, "plain": lambda perm: epoch_batches(perm, 64, batch)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="epochs per pipeline")
    ap.add_argument("--preset", default=None, help="default: the default preset (models.presets)")
    ap.add_argument("--max-images", type=int, default=10000)
    ap.add_argument("--data", default=str(MNIST))
    args = ap.parse_args()
    t_start = time.perf_counter()
    print_cpu()
    from models import DEFAULT_PRESET, get_preset
    from models.tf_runtime import import_tensorflow

    args.preset = args.preset or DEFAULT_PRESET

    tf = import_tensorflow()
    from benchmarks.train_speed import Ours
    from training.data import load_dataset

    images_u8, _, source = load_dataset("mnist", args.data, args.max_images)
    ours = Ours(images_u8, args.preset, "float32", 10)
    ours.warm_up()
    make = pipelines(tf, images_u8, *get_preset(args.preset).pixel_range)
    steps = len(images_u8) // 64
    print(f"{len(images_u8)} digits from {source}; {args.preset} float32, batch 64, {steps} steps an epoch")
    rng = np.random.default_rng(0)
    for name in make:  # trace the step for each pipeline's iterator (not timed)
        ours._steps(iter(make[name](rng.permutation(len(images_u8)))), tf.constant(10)).numpy()
    traced = ours.traces()
    release = {name: [] for name in make}
    speed = {name: [] for name in make}
    for r in range(args.rounds):
        for name in list(make) if r % 2 == 0 else list(make)[::-1]:
            iterator = iter(make[name](rng.permutation(len(images_u8))))
            t = time.perf_counter()
            for _ in range(steps // 10):
                ours._steps(iterator, tf.constant(10)).numpy()
            speed[name].append((steps // 10) * 640 / (time.perf_counter() - t))
            t = time.perf_counter()
            del iterator  # the epoch is over: loop.py lets go of it here (it binds the next one)
            release[name].append((time.perf_counter() - t) * 1000)
            print(
                f"round {r + 1} {name:8s} epoch {speed[name][-1]:5.0f} img/s, "
                f"release {release[name][-1]:7.1f} ms"
            )

    if ours.traces() != traced:
        print(f"warning: the step was traced again while timed ({traced} -> {ours.traces()} traces)")

    def p(name, q):
        return float(np.percentile(release[name], q))

    print(
        " ".join(
            f"release_mean_ms_{n}={np.mean(release[n]):.1f} release_p50_ms_{n}={p(n, 50):.1f} "
            f"release_max_ms_{n}={max(release[n]):.1f} stalls_{n}={sum(x > 100 for x in release[n])} "
            f"img_s_{n}={np.median(speed[n]):.0f}"
            for n in make
        )
        + f" rounds={args.rounds} steps={steps} cpu_isa={isa_name(cpu_profile()).replace(' ', '')}"
        f" wall_s={time.perf_counter() - t_start:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
