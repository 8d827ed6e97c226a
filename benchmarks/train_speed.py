"""Training speed: the project's step against the keras.io guide's, same networks, same batch.

    .venv/bin/python benchmarks/train_speed.py [--steps 60] [--rounds 5] [--budget 330]

On the 10,000 shared real digits, batch 64:
- ref: the keras.io guide's GAN loop (benchmarks/_reference.py): `keras-io` networks, float32,
  a plain Python loop calling its @tf.function step once per tf.data batch, in this process,
  so with the project's kernel choice (models/cpu.py);
- ref onednn-off / tf-default: the same loop in a process of its own with TensorFlow's own kernel
  choice, only where that differs from the project's (an AVX2 CPU without AVX-512: TensorFlow
  leaves oneDNN off for convolutions; under ONEDNN_MAX_CPU_ISA, TF_ENABLE_ONEDNN_OPTS=0 as issue
  15 approaches that CPU): the guide as a user runs it (benchmarks/_cpu.py tensorflow_choice_env);
- ours: training.loop.make_train_step on the same `keras-io` preset, digits held on the device
  (tf.constant + tf.data gather + prefetch, as loop.py feeds them), for each precision
  (float32, mixed_bfloat16; models built under the policy they run in) and steps per call;
  bfloat16 only where the CPU has it natively (models/cpu.py fast_precisions; --precisions to force);
- dcgan: the same step on the `dcgan` preset (the default until `scgan`) as it trains (EMA on),
  float32 and mixed_bfloat16, for the README.
Every configuration is traced and warmed up first (not timed), then timed for --steps steps in
each of --rounds rounds; the order rotates every round so machine noise hits all alike.
--budget bounds the whole run: after warm-up, one timed call per configuration measures its
step time, and the steps per round (and the rounds) are cut to what fits in the time left,
so the run ends in bounded time on a slow CPU too (at least 1 round of at least 10 steps).
The first line names the CPU and the kernel choice (benchmarks/_cpu.py).
images/s = real images consumed / wall time; each figure is the median over rounds, and
ratio = median over rounds of (best `keras-io` configuration of ours / the guide as a user runs it:
ref onednn-off / tf-default where it exists, else ref) in that round; ratio_same_kernels the same
against ref, the guide given this project's kernel choice (the two agree on AVX-512 CPUs).
Goal (issue 15): ratio >= 2.5 on every kind of CPU. Default run: at most about 5.5 minutes (--budget 330 s).
Last line: name=value pairs.
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

from benchmarks._cpu import cpu_profile, isa_name, print_cpu, tensorflow_choice_env  # noqa: E402
from benchmarks._reference import BATCH_SIZE, PRESET, Reference, ReferenceProcess  # noqa: E402

SHORT = {"float32": "f32", "mixed_bfloat16": "bf16", "onednn_bfloat16": "onednn-bf16"}


class Ours:
    """One preset + precision + steps_per_call through training.loop.make_train_step."""

    def __init__(
        self,
        images_u8,
        preset_name: str,
        precision: str,
        steps_per_call: int,
        batch_size: int = BATCH_SIZE,
        seed: int = 0,
    ):
        import keras
        import tensorflow as tf

        from models import get_preset
        from training.loop import keras_policy, make_strategy, make_train_step

        p = get_preset(preset_name)
        self.name = f"{preset_name} {SHORT[precision]} spc{steps_per_call}"
        self.steps_per_call, self.batch_size = steps_per_call, batch_size
        strategy = make_strategy(1)
        keras.mixed_precision.set_global_policy(keras_policy(precision))  # layers keep theirs
        try:
            keras.utils.set_random_seed(seed)
            g, d = p.build_generator(p.latent_dim), p.build_discriminator()
            ema_g = None
            if p.ema > 0:
                ema_g = p.build_generator(p.latent_dim)
                ema_g.set_weights(g.get_weights())
        finally:
            keras.mixed_precision.set_global_policy("float32")
        g_opt = keras.optimizers.Adam(p.lr_g, beta_1=p.beta_1)
        d_opt = keras.optimizers.Adam(p.lr_d, beta_1=p.beta_1)
        g_opt.build(g.trainable_variables)
        d_opt.build(d.trainable_variables)
        rng = tf.random.Generator.from_seed(seed)
        self._steps = make_train_step(
            strategy,
            g,
            d,
            g_opt,
            d_opt,
            rng,
            p.latent_dim,
            batch_size,
            ema_generator=ema_g,
            ema_decay=p.ema,
            graph_bf16=precision == "onednn_bfloat16",
            augment=p.augment,
            pixel_range=p.pixel_range,
        )
        # as loop.py feeds it: uint8 digits on the device, batches gathered by index and prefetched
        images = tf.constant(images_u8)
        lo, hi = p.pixel_range
        ds = (
            tf.data.Dataset.range(len(images_u8))
            .shuffle(len(images_u8), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size, drop_remainder=True)
            .map(
                lambda idx: (tf.cast(tf.gather(images, idx), tf.float32)[..., None] / 255.0) * (hi - lo) + lo,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .prefetch(tf.data.AUTOTUNE)
        )
        self._iterator = iter(strategy.experimental_distribute_dataset(ds))

    def warm_up(self) -> None:
        self.run(self.steps_per_call)

    def traces(self) -> int:
        return self._steps.experimental_get_tracing_count()

    def run(self, n_steps: int) -> int:
        import tensorflow as tf

        done = 0
        while done < n_steps:
            k = min(self.steps_per_call, n_steps - done)
            self._steps(self._iterator, tf.constant(k, tf.int32)).numpy()  # loop.py syncs per call
            done += k
        return done * self.batch_size


def fit_budget(contenders, args, t_start: float) -> tuple[int, int]:
    """Steps per configuration per round and rounds that fit in what is left of --budget."""
    per_step = 0.0
    for c in contenders:  # one timed call each (also the last of the warm-up)
        n = getattr(c, "steps_per_call", 10)
        t = time.perf_counter()
        c.run(n)
        per_step += (time.perf_counter() - t) / n
    left = t_start + args.budget - time.perf_counter()
    rounds = max(1, min(args.rounds, int(left / (per_step * 10))))
    steps = max(10, min(args.steps, int(left / rounds / per_step)))
    print(
        f"budget: {left:.0f} s left after warm-up; one step of every configuration "
        f"{per_step * 1000:.0f} ms -> {rounds} rounds x {steps} steps",
        flush=True,
    )
    return steps, rounds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60, help="timed steps per configuration per round")
    # 5 rounds: a round the machine slows (once the reference fell to 125 from ~395 img/s) moves
    # the median of the rounds' ratios less
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps-per-call", default="10,50", help="comma-separated values to try")
    ap.add_argument(
        "--precisions",
        default="",
        help="comma-separated; default: float32 + bfloat16 where the CPU has it natively",
    )
    ap.add_argument("--budget", type=float, default=330, help="seconds for the whole run")
    ap.add_argument("--max-images", type=int, default=10000)
    ap.add_argument("--data", default=str(MNIST))
    args = ap.parse_args()
    t_start = time.perf_counter()
    print_cpu()
    from models.cpu import fast_precisions
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()

    from training.data import load_dataset

    tf.get_logger().setLevel("ERROR")  # one trace per contender, each its own tf.function

    images_u8, _, source = load_dataset("mnist", args.data, args.max_images)
    precisions = args.precisions.split(",") if args.precisions else fast_precisions()
    spcs = [int(s) for s in args.steps_per_call.split(",")]
    t_build = time.perf_counter()
    tf_choice = tensorflow_choice_env()
    if tf_choice is not None:  # started first: it builds while this process does
        contenders = [ReferenceProcess(args.data, args.max_images, *tf_choice), Reference(images_u8)]
    else:
        contenders = [Reference(images_u8)]
    try:
        return measure(args, contenders, images_u8, precisions, spcs, source, t_start, t_build)
    finally:
        for c in contenders:
            getattr(c, "close", lambda: None)()


def measure(args, contenders, images_u8, precisions, spcs, source, t_start, t_build) -> int:
    """Build ours, warm everything up, time the rounds, print the table and the last line."""
    import tensorflow as tf

    ours = [Ours(images_u8, PRESET, prec, spc) for prec in precisions for spc in spcs]
    dcgan = [Ours(images_u8, "dcgan", prec, spcs[0]) for prec in precisions]
    contenders += ours + dcgan
    for c in contenders:
        c.warm_up()
    traced = {c.name: c.traces() for c in contenders}
    for c in contenders:
        if isinstance(c, ReferenceProcess):
            print(
                f"{c.name}: TF_ENABLE_ONEDNN_OPTS={c.facts['env']}, oneDNN active there: "
                f"{c.facts['onednn_active']}"
            )
    print(
        f"{len(images_u8)} digits from {source}; batch {BATCH_SIZE}; {os.cpu_count()} CPUs; "
        f"TF {tf.__version__}; build + trace + warm-up {time.perf_counter() - t_build:.0f} s"
    )

    steps, rounds = fit_budget(contenders, args, t_start)
    rates = {c.name: [] for c in contenders}
    for r in range(rounds):
        k = r % len(contenders)
        t_round = time.perf_counter()
        for c in contenders[k:] + contenders[:k]:
            t = time.perf_counter()
            n = c.run(steps)
            rates[c.name].append(n / (time.perf_counter() - t))
        print(
            f"round {r + 1}/{rounds}: "
            + "  ".join(f"{name.split(' (')[0]} {v[-1]:.0f}" for name, v in rates.items()),
            flush=True,
        )
        if time.perf_counter() + (time.perf_counter() - t_round) > t_start + args.budget:
            break  # the next round would not fit
    retraced = [c.name for c in contenders if c.traces() != traced[c.name]]
    if retraced:
        print(f"warning: traced again while timed (figures include tracing): {retraced}")
    report(contenders, ours, dcgan, rates, steps, t_start)
    return 0


def report(contenders, ours, dcgan, rates, steps, t_start) -> None:
    """The table (x the guide as a user runs it), the verdict and the last line."""
    med = {name: float(np.median(v)) for name, v in rates.items()}
    user_ref = contenders[0].name  # the guide as a user runs it: its own process where that differs
    same_ref = next(c.name for c in contenders if isinstance(c, Reference))
    best = max((c.name for c in ours), key=med.get)
    best_f32 = max((c.name for c in ours if " f32 " in c.name), key=med.get, default=None)

    def ratio_to(ref_name):
        return float(np.median(np.asarray(rates[best]) / np.asarray(rates[ref_name])))

    ratio, ratio_same = ratio_to(user_ref), ratio_to(same_ref)
    width = max(34, *(len(n) for n in med))
    print(f"\n{'configuration':{width}s} {'img/s (median)':>15s} {'x ref':>7s}  per round")
    for name, v in med.items():
        print(
            f"{name:{width}s} {v:15.0f} {v / med[user_ref]:7.2f}  "
            + " ".join(f"{x:.0f}" for x in rates[name])
        )
    print(
        f"best of ours on {PRESET}: {best}; ratio {ratio:.2f} against {user_ref} (goal >= 2.5: "
        f"{'OK' if ratio >= 2.5 else 'SHORT'})"
        + (f"; {ratio_same:.2f} against {same_ref}" if same_ref != user_ref else "")
    )

    def img_s(names):
        return f"{med[names[0]]:.0f}" if names else "nan"

    prof = cpu_profile()
    dcgan_f32 = img_s([c.name for c in dcgan if " f32 " in c.name])
    dcgan_bf16 = img_s([c.name for c in dcgan if " bf16 " in c.name])
    dcgan_onednn = img_s([c.name for c in dcgan if " onednn-bf16 " in c.name])
    print(
        f"ratio={ratio:.2f} ratio_same_kernels={ratio_same:.2f} ours_img_s={med[best]:.0f} "
        f"ref_img_s={med[user_ref]:.0f} ref_same_kernels_img_s={med[same_ref]:.0f} "
        f"ours_f32_img_s={img_s([best_f32] if best_f32 else [])} "
        f"ours_config={best.split(' ', 1)[1].replace(' ', '/')} "
        f"dcgan_f32_img_s={dcgan_f32} dcgan_bf16_img_s={dcgan_bf16} "
        f"dcgan_onednn_bf16_img_s={dcgan_onednn} "
        f"steps={steps} rounds={len(rates[user_ref])} cpu_isa={isa_name(prof).replace(' ', '')} "
        f"onednn={int(bool(prof['onednn_active']))} wall_s={time.perf_counter() - t_start:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
