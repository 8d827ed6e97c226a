"""Training speed by image size and channels: the default ``dcgan`` preset's step for each image
shape an image folder can train at (``--image-size 28|32|64``, ``--channels 1|3``).

    .venv/bin/python benchmarks/size_speed.py [--steps 20] [--rounds 3] [--shapes 28x1,32x1,32x3,64x3]

In one process: the step of ``training.step.make_train_step`` for each shape (float32, EMA on,
batch 64, as training runs it; 28 and 32 px build the lean networks, 64 px the DCGAN paper's),
fed images already on the device (the speed of the step, not of decoding files). Each shape is
traced and warmed up first, then timed for ``--steps`` steps per round, the order rotating
every round so machine noise hits all alike; images/s is the median over rounds. The first
line names the CPU (benchmarks/_cpu.py). Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._cpu import cpu_profile, isa_name, print_cpu, round_robin  # noqa: E402  (before TF)

BATCH = 64


def build_step(shape: tuple[int, int, int], spc: int):
    """(call n steps, G's parameter count) for the dcgan preset at ``shape``."""
    import keras
    import tensorflow as tf

    from models import get_preset
    from training.step import make_strategy, make_train_step

    p = get_preset("dcgan").for_shape(shape)
    keras.utils.set_random_seed(0)
    g, d = p.build_generator(p.latent_dim), p.build_discriminator()
    ema = p.build_generator(p.latent_dim)
    ema.set_weights(g.get_weights())
    g_opt = keras.optimizers.Adam(p.lr_g, beta_1=p.beta_1)
    d_opt = keras.optimizers.Adam(p.lr_d, beta_1=p.beta_1)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    steps = make_train_step(
        make_strategy(1), g, d, g_opt, d_opt, tf.random.Generator.from_seed(0), p.latent_dim, BATCH,
        ema_generator=ema, ema_decay=p.ema, augment=p.augment, pixel_range=p.pixel_range,
    )  # fmt: skip
    images = tf.random.stateless_uniform((512, *shape), (0, 0), -1.0, 1.0)
    it = iter(tf.data.Dataset.from_tensor_slices(images).repeat().batch(BATCH, drop_remainder=True))

    def run(n: int) -> int:
        done = 0
        while done < n:
            k = min(spc, n - done)
            steps(it, tf.constant(k, tf.int32)).numpy()
            done += k
        return done * BATCH

    return run, g.count_params()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="timed steps per shape per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--spc", type=int, default=10, help="steps per call")
    ap.add_argument("--shapes", default="28x1,32x1,32x3,64x3", help="SIZExCHANNELS, comma-separated")
    args = ap.parse_args()
    print_cpu()
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    runs = {}
    for name in names:
        side, ch = (int(v) for v in name.split("x"))
        t = time.perf_counter()
        run, params = build_step((side, side, ch), args.spc)
        run(args.spc)  # trace + warm up
        runs[name] = run
        print(
            f"{name}: G {params / 1e6:.2f} M parameters, built and traced in {time.perf_counter() - t:.0f} s"
        )
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r, name in round_robin(names, args.rounds):
        t = time.perf_counter()
        n = runs[name](args.steps)
        rates[name].append(n / (time.perf_counter() - t))
        print(f"round {r + 1} {name:>5}: {rates[name][-1]:7.0f} img/s", flush=True)
    p50 = {n: statistics.median(v) for n, v in rates.items()}
    for name in names:
        print(f"{name:>5}: p50 {p50[name]:7.0f} img/s  ({p50[name] / p50[names[0]]:.2f}x {names[0]})")
    pairs = " ".join(f"img_s_{n}={p50[n]:.0f}" for n in names)
    print(f"isa={isa_name(cpu_profile()).replace(' ', '')} batch={BATCH} rounds={args.rounds} {pairs}")


if __name__ == "__main__":
    main()
