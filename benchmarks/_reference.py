"""The reference the training benchmarks compare against: the keras.io GAN loop, as written there.

Source: the keras.io guide "Writing a training loop from scratch in TensorFlow", section
"End-to-end example: a GAN training loop from scratch" (the MNIST DCGAN of
https://keras.io/examples/generative/dcgan_overriding_train_step/ in custom-loop form):

- networks: the keras.io ones (this project's ``keras-io`` preset builders), float32;
- Adam(3e-4) for D, Adam(4e-4) for G, other arguments default (beta_1 0.9);
- data: digits / 255 -> ``from_tensor_slices(...).shuffle(1024).batch(64)`` (last batch partial),
  iterated by a plain Python loop calling the ``@tf.function`` step once per batch, no XLA;
- step: D on concat(generated, real) with labels concat(ones, zeros) + 0.05 * uniform noise, then
  G on fresh noise through D with "misleading" all-zeros labels (G runs forward twice per step).

Shared by benchmarks/train_speed.py and benchmarks/time_to_quality.py. Not used by the project.
``ReferenceProcess`` runs the same loop in a process of its own, with TensorFlow's own kernel
choice (``python benchmarks/_reference.py --serve`` imports TensorFlow before anything of the
project could choose for it): the guide as a user runs it, where that differs from the project's
choice (an AVX2 CPU: TensorFlow leaves oneDNN off for convolutions; issue 15's 47 images/s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PRESET = "keras-io"
BATCH_SIZE = 64
LR_D, LR_G = 3e-4, 4e-4
SHUFFLE_BUFFER = 1024


class Reference:
    """The guide's models, optimizers, dataset and step; ``run(n)`` does n steps, as the guide does."""

    name = f"ref {PRESET} f32 (keras.io loop)"

    def __init__(self, images_u8: np.ndarray, batch_size: int = BATCH_SIZE, seed: int = 0):
        import keras
        import tensorflow as tf

        from models import get_preset

        preset = get_preset(PRESET)
        self.latent_dim = latent_dim = preset.latent_dim
        self.pixel_range = preset.pixel_range  # (0, 1): sigmoid output
        policy = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy("float32")  # the guide is float32
        try:
            keras.utils.set_random_seed(seed)
            self.generator = generator = preset.build_generator(latent_dim)
            self.discriminator = discriminator = preset.build_discriminator()
        finally:
            keras.mixed_precision.set_global_policy(policy)
        d_optimizer = keras.optimizers.Adam(learning_rate=LR_D)
        g_optimizer = keras.optimizers.Adam(learning_rate=LR_G)
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        # (built here rather than on the first step, so warm_up can trace without training)
        d_optimizer.build(discriminator.trainable_variables)
        g_optimizer.build(generator.trainable_variables)

        all_digits = images_u8.astype("float32") / 255.0
        all_digits = np.reshape(all_digits, (-1, 28, 28, 1))
        self.dataset = (
            tf.data.Dataset.from_tensor_slices(all_digits)
            .shuffle(buffer_size=SHUFFLE_BUFFER, seed=seed)
            .batch(batch_size)
        )
        self._batches = self._forever()
        self.input_wait_s = 0.0

        # the guide's step, line for line (it reads batch_size and latent_dim from module scope)
        @tf.function
        def train_step(real_images):
            random_latent_vectors = tf.random.normal(shape=(batch_size, latent_dim))
            generated_images = generator(random_latent_vectors)
            combined_images = tf.concat([generated_images, real_images], axis=0)
            labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((real_images.shape[0], 1))], axis=0)
            labels += 0.05 * tf.random.uniform(labels.shape)
            with tf.GradientTape() as tape:
                predictions = discriminator(combined_images)
                d_loss = loss_fn(labels, predictions)
            grads = tape.gradient(d_loss, discriminator.trainable_weights)
            d_optimizer.apply(grads, discriminator.trainable_weights)

            random_latent_vectors = tf.random.normal(shape=(batch_size, latent_dim))
            misleading_labels = tf.zeros((batch_size, 1))
            with tf.GradientTape() as tape:
                predictions = discriminator(generator(random_latent_vectors))
                g_loss = loss_fn(misleading_labels, predictions)
            grads = tape.gradient(g_loss, generator.trainable_weights)
            g_optimizer.apply(grads, generator.trainable_weights)
            return d_loss, g_loss, generated_images

        self.train_step = train_step
        self.batch_size, self.n_images = batch_size, len(all_digits)
        self.steps_per_epoch = -(-self.n_images // batch_size)

    def _forever(self):
        while True:  # the guide's `for epoch ...: for step, real_images in enumerate(dataset)`
            yield from self.dataset

    def warm_up(self, n_steps: int = 3) -> None:
        """Trace the step for both batch shapes it sees (full, partial last), then run n_steps."""
        import tensorflow as tf

        sizes = {self.batch_size, self.n_images % self.batch_size} - {0}
        for b in sizes:
            self.train_step.get_concrete_function(tf.TensorSpec((b, 28, 28, 1), tf.float32))
        self.run(n_steps)

    def traces(self) -> int:
        return self.train_step.experimental_get_tracing_count()

    def run(self, n_steps: int) -> int:
        """n_steps guide steps; returns the real images consumed. Blocks until done.
        ``input_wait_s`` adds up the time spent getting batches: at an epoch's end the guide lets
        go of its tf.data iterator, which can wait for tf.data's autotuning thread (README,
        Performance, "Between epochs"); the steps' own time is the rest."""
        import time

        images, d_loss = 0, None
        for _ in range(n_steps):
            t = time.perf_counter()
            real_images = next(self._batches)
            self.input_wait_s += time.perf_counter() - t
            d_loss, g_loss, _ = self.train_step(real_images)
            images += int(real_images.shape[0])
        if d_loss is not None:
            float(d_loss)
        return images


class ReferenceProcess:
    """``Reference`` in a child process started with ``env``; the same warm_up / run / traces.

    The child blocks on its pipe while the parent times something else, so the two never run
    at once; ``run`` is timed by the caller around the round trip (a pipe message: microseconds)."""

    def __init__(self, data: str, max_images: int, env: dict, label: str, seed: int = 0):
        self.name = f"ref {PRESET} f32 {label} (keras.io loop, own process)"
        self._err = tempfile.TemporaryFile(mode="w+")
        argv = ["--serve", "--data", data, "--max-images", str(max_images), "--seed", str(seed)]
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env=env,
        )
        self.facts: dict = {}

    def _reply(self, command: str | None = None) -> dict:
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        for line in self._proc.stdout:
            if line.startswith("REF "):
                return json.loads(line[4:])
        self._err.seek(0)
        raise SystemExit(
            f"the reference's own process ended ({command or 'start'}):\n{self._err.read()[-2000:]}"
        )

    def warm_up(self) -> None:
        self.facts = self._reply()  # built, traced and warmed up in the child

    def run(self, n_steps: int) -> int:
        return self._reply(f"run {n_steps}")["images"]

    def traces(self) -> int:
        return self._reply("traces")["traces"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()  # the child's loop ends at end of input
            self._proc.wait(timeout=60)
        self._err.close()


def _serve(argv: list[str]) -> int:
    """The child of ReferenceProcess: TensorFlow first (its own kernel choice), then the loop;
    one ``REF {json}`` line per request read from stdin."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--data", required=True)
    ap.add_argument("--max-images", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # before the project's modules: nothing chooses kernels for it

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from models.cpu import tf_onednn_enabled
    from training.data import load_dataset

    tf.get_logger().setLevel("ERROR")
    images_u8, _, _ = load_dataset("mnist", args.data, args.max_images)
    ref = Reference(images_u8, seed=args.seed)
    ref.warm_up()

    def say(obj) -> None:
        print("REF " + json.dumps(obj), flush=True)

    say({"onednn_active": tf_onednn_enabled(), "env": os.environ.get("TF_ENABLE_ONEDNN_OPTS")})
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["run"]:
            say({"images": ref.run(int(command[1]))})
        elif command[:1] == ["traces"]:
            say({"traces": ref.traces()})
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
