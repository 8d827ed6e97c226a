"""How close the default training step runs to what this CPU can do: its arithmetic per image
against the CPU's measured matrix-multiply rate, in one process.

    .venv/bin/python benchmarks/roofline.py [--preset dcgan] [--steps 60] [--rounds 5]

- **Work per image** of one training step, counted from the preset's layers (multiply-adds of
  every Dense, Conv2D and Conv2DTranspose; BatchNorm, activations, Adam and the EMA are not
  counted, so the figure is a lower bound). The step (training/step.py) runs G forward once, D
  forward on real+fake (2 images per image), D's backward for its weights (about twice its
  forward), D forward again on the fakes, D's backward to its input for G, and G's backward
  (twice its forward): 3 G + 8 D forwards' worth of multiply-adds per image, 2 FLOP each.
- **The CPU's rate**: a 2048x2048 float32 matrix multiply (the best case for these cores,
  through the same TensorFlow and kernel choice), p50 of ``--reps``.
- **The step's rate**: ``--rounds`` timings of ``--steps`` steps (batch 64, float32, as
  training runs it), p50.

It prints the per-layer counts, then ``step_gflops`` (achieved), ``matmul_gflops``, their
ratio, and ``ceiling_img_s``: the images/s the step would reach if every FLOP ran at the
matrix-multiply rate. A goal above that ceiling cannot be met by faster kernels alone: only by
less arithmetic per image (a smaller network, a larger stride), which changes the model.
Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared" / "data" / "mnist"

from benchmarks._cpu import cpu_profile, isa_name, print_cpu  # noqa: E402  (before TensorFlow)

G_FORWARDS, D_FORWARDS = 3, 8  # per image of one step (module docstring)


def layer_macs(model) -> list[tuple[str, int]]:
    """(layer, multiply-adds per image) of each Dense / Conv2D / Conv2DTranspose of ``model``."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            macs = int(layer.kernel.shape[0]) * layer.units
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # every input pixel x the kernel
            _, h, w, c = layer.input.shape
            kh, kw = layer.kernel_size
            macs = h * w * c * kh * kw * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):  # every output pixel x the kernel
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            macs = h * w * c * kh * kw * int(layer.input.shape[-1]) // getattr(layer, "groups", 1)
        else:
            continue
        out.append((f"{model.name}.{layer.name}", int(macs)))
    return out


def matmul_gflops(reps: int, n: int = 2048) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    f().numpy()  # trace, warm up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f().numpy()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="dcgan")
    ap.add_argument("--steps", type=int, default=60, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=15, help="timed matrix multiplies")
    ap.add_argument("--data", default=str(MNIST))
    args = ap.parse_args()
    print_cpu()
    from models import get_preset
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    from benchmarks.train_speed import Ours
    from training.data import load_dataset

    p = get_preset(args.preset)
    g, d = p.build_generator(p.latent_dim), p.build_discriminator()
    gl, dl = layer_macs(g), layer_macs(d)
    for name, macs in gl + dl:
        print(f"  {name:<40} {macs / 1e6:8.3f} M multiply-adds per image")
    g_mac, d_mac = sum(m for _, m in gl), sum(m for _, m in dl)
    flop_img = 2 * (G_FORWARDS * g_mac + D_FORWARDS * d_mac)
    print(f"G forward {g_mac / 1e6:.2f} M, D forward {d_mac / 1e6:.2f} M multiply-adds per image")
    print(
        f"one step: {G_FORWARDS} G + {D_FORWARDS} D forwards per image = {flop_img / 1e6:.0f} MFLOP per image"
    )

    images_u8, _, _ = load_dataset("mnist", args.data, 2048)
    ours = Ours(images_u8, args.preset, "float32", 10)
    ours.warm_up()
    rates = []
    for r in range(args.rounds):
        t = time.perf_counter()
        n = ours.run(args.steps)
        rates.append(n / (time.perf_counter() - t))
        print(f"round {r + 1}: {rates[-1]:.0f} img/s", flush=True)
    step = statistics.median(rates)
    mm = matmul_gflops(args.reps)
    achieved = step * flop_img / 1e9
    ceiling = mm * 1e9 / flop_img
    print(
        f"step {step:.0f} img/s = {achieved:.1f} GFLOP/s; 2048x2048 matmul {mm:.1f} GFLOP/s; "
        f"the step runs at {achieved / mm:.0%} of it; at the matmul rate it would reach {ceiling:.0f} img/s"
    )
    print(
        f"isa={isa_name(cpu_profile()).replace(' ', '')} preset={args.preset} "
        f"mflop_per_img={flop_img / 1e6:.0f} step_img_s={step:.0f} "
        f"step_gflops={achieved:.1f} matmul_gflops={mm:.1f} step_over_matmul={achieved / mm:.2f} "
        f"ceiling_img_s={ceiling:.0f}"
    )


if __name__ == "__main__":
    main()
