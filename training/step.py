"""The distribution strategy and the training step (GradientTape under tf.function).

The step (``make_train_step``) is the DCGAN step with D first, then G, and one saving over the
textbook version: G's forward pass on the batch's noise is recorded once and used for both
updates (the D update happens with the G tape paused; the G loss then goes through the
*updated* D, as in the alternating scheme). Several steps run per tf.function call
(``steps_per_call``), so Python is visited a few times a second, not every step; a stop
request is honoured between those calls.
"""

from __future__ import annotations

import os

from training.config import ConfigError


def make_strategy(devices: int):
    """Default strategy for one device; MirroredStrategy over GPUs or logical CPUs otherwise.

    With TF_CONFIG set (several machines), MultiWorkerMirroredStrategy. Splitting the CPU
    into logical devices must happen before TensorFlow initialises its runtime.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG", "").strip():  # checked by training.cluster.read_tf_config
        from training.cluster import keep_sigterm

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        keep_sigterm()
        return strategy
    if devices <= 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= devices:
        names = [f"/gpu:{i}" for i in range(devices)]
        return tf.distribute.MirroredStrategy(devices=names)
    cpu = tf.config.list_physical_devices("CPU")[0]
    logical = tf.config.get_logical_device_configuration(cpu)
    if not logical or len(logical) < devices:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
            )
        except RuntimeError:
            raise ConfigError(
                f"--devices {devices}: TensorFlow is already initialised in this process, so the "
                "CPU cannot be split any more; start a new process (python -m training --devices N)"
            ) from None
    names = [f"/cpu:{i}" for i in range(devices)]
    return tf.distribute.MirroredStrategy(
        devices=names, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def make_train_step(
    strategy,
    generator,
    discriminator,
    g_opt,
    d_opt,
    rng,
    latent_dim: int,
    global_batch: int,
    label_noise: float = 0.0,
    ema_generator=None,
    ema_decay: float = 0.0,
    graph_bf16: bool = False,
    num_classes: int = 0,
    augment: str = "none",
    pixel_range: tuple[float, float] = (-1.0, 1.0),
):
    """Return ``train_steps(iterator, n)``: n DCGAN steps in one tf.function call.

    Returns the mean over the n steps of [d_loss, g_loss, d_acc_real, d_acc_fake].
    With ``ema_generator``, its variables track an exponential moving average of the
    generator's (decay ``ema_decay``, warmed up over the first steps): the averaged generator
    is the one snapshotted, a cheap and large gain in sample quality.
    With ``graph_bf16``, each call runs with oneDNN's auto-mixed-precision rewrite on (bfloat16
    convolutions and matmuls) and off after it. ``num_classes``: see ``_split_batch``.
    ``augment``, ``pixel_range``: DiffAugment of every image D sees, real and fake (training/augment.py).
    """
    import tensorflow as tf

    from models.fast_ops import accelerate
    from training.augment import make_augment

    # same layers and weights, faster kernels where oneDNN is slow (models/fast_ops.py)
    for model in (m for m in (generator, discriminator, ema_generator) if m is not None):
        accelerate(model)

    aug = make_augment(augment, rng, pixel_range) or (lambda x: x)
    d_core, onehots = _clustered(generator, discriminator)

    def scaled_mean(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

    def step(batch):
        real, both_y, fake_y = _split_batch(batch, num_classes, rng)
        b = tf.shape(real)[0]
        z = rng.normal((b, latent_dim))
        both_y, d_fake_y = _d_labels(onehots, z, real, both_y, fake_y)  # what D is told
        with tf.GradientTape() as g_tape:
            fake = generator(_with_label(z, fake_y), training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    both = _with_label(aug(tf.concat([real, fake], 0)), both_y)
                    logits = tf.cast(d_core(both, training=True), tf.float32)
                    lr, lf = logits[:b], logits[b:]
                    real_lab, fake_lab = _d_targets(b, label_noise, rng)
                    d_loss = scaled_mean(_xent(real_lab, lr) + _xent(fake_lab, lf))
                d_vars = discriminator.trainable_variables
                d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
            lf2 = tf.cast(d_core(_with_label(aug(fake), d_fake_y), training=True), tf.float32)
            g_loss = scaled_mean(_xent(tf.ones((b, 1)), lf2))
        g_vars = generator.trainable_variables
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        acc_real = scaled_mean(tf.cast(lr[:, 0] > 0, tf.float32))
        acc_fake = scaled_mean(tf.cast(lf[:, 0] < 0, tf.float32))
        return tf.stack([d_loss, g_loss, acc_real, acc_fake])

    use_ema = ema_generator is not None and ema_decay > 0
    update_ema = _ema_updater(generator, ema_generator, g_opt, ema_decay) if use_ema else None

    train_steps = _steps_loop(strategy, step, update_ema)
    return _with_onednn_bf16(train_steps) if graph_bf16 else train_steps


def _steps_loop(strategy, step, update_ema):
    """``train_steps(iterator, n)``: n calls of ``step`` on the iterator's batches in one
    tf.function call, the EMA updated after each (``update_ema`` None: no EMA); the mean losses.

    Autograph off: the loop is written as the tf.while_loop it would become, and nothing in the
    step branches on a tensor in Python, so no source is converted. Converting it cost every
    training process about 3.5 s before its first step (epoch 1 of a 512-digit run: 7.9-10.0 s
    -> 3.6-5.2 s on 2 AVX2 cores, one thread), with the same numbers."""
    import tensorflow as tf

    @tf.function(autograph=False)
    def train_steps(iterator, n):
        def body(i, total):
            per_replica = strategy.run(step, args=(next(iterator),))
            total += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            if update_ema is not None:
                update_ema()
            return i + 1, total

        _, total = tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), tf.zeros(4)))
        return total / tf.cast(n, tf.float32)

    return train_steps


def _xent(labels, logits):
    """Per-example sigmoid cross-entropy of [b, 1] logits."""
    import tensorflow as tf

    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)[:, 0]


def _d_targets(b, label_noise: float, rng):
    """D's targets for real (1) and fake (0) images, each moved by up to ``label_noise``."""
    import tensorflow as tf

    ones, zeros = tf.ones((b, 1)), tf.zeros((b, 1))
    if not label_noise:
        return ones, zeros
    return ones - label_noise * rng.uniform((b, 1)), zeros + label_noise * rng.uniform((b, 1))


def _with_label(x, y):
    """A model's input: x, or [x, label] for a conditional preset's G and D."""
    return x if y is None else [x, y]


def _split_batch(batch, num_classes: int, rng):
    """(real images, labels of [real, fake] for D, labels G draws the fakes for).

    Unconditional: (batch, None, None). Conditional: the batch is (images, labels) and each
    fake is drawn for a label picked uniformly, so G learns every class equally often."""
    import tensorflow as tf

    if not num_classes:
        return batch, None, None
    real, real_y = batch
    fake_y = rng.uniform((tf.shape(real)[0],), 0, num_classes, dtype=tf.int32)
    return real, tf.concat([real_y, fake_y], 0), fake_y


def _clustered(generator, discriminator):
    """(the D to train, ``onehots``): for a clustered preset (models/clusters.py) D's core, which
    takes [image, cluster one-hot], and ``onehots(z, real)``: each real image's nearest cluster
    and the cluster G draws each z in, by the models' own fixed layers. Else (D, None)."""
    import tensorflow as tf

    try:
        core = discriminator.get_layer("discriminator_core")
    except ValueError:
        return discriminator, None
    g_logits, d_logits = generator.get_layer("cluster_logits"), discriminator.get_layer("cluster_logits")

    def onehots(z, real):
        flat = tf.reshape(real, (tf.shape(real)[0], -1))
        return tf.nn.softmax(d_logits(flat)), tf.nn.softmax(g_logits(z))

    return core, onehots


def _d_labels(onehots, z, real, both_y, fake_y):
    """D's labels for [real, fake] and for the fakes: as given (None: unconditional), or for a
    clustered preset the clusters: G draws each z in its own cluster and D is told which."""
    import tensorflow as tf

    if onehots is None:
        return both_y, fake_y
    real_c, fake_c = onehots(z, real)
    return tf.concat([real_c, fake_c], 0), fake_c


def _ema_updater(generator, ema_generator, g_opt, ema_decay: float):
    """The EMA update: the averaged generator's weights move toward G's (warmed-up decay)."""
    import tensorflow as tf

    def update_ema():
        it = tf.cast(g_opt.iterations, tf.float32)
        decay = tf.minimum(ema_decay, (1.0 + it) / (10.0 + it))
        for e, w in zip(ema_generator.variables, generator.variables):
            if "float" in str(e.dtype):
                e.assign(decay * e + (1.0 - decay) * tf.cast(w, e.dtype))

    return update_ema


def _with_onednn_bf16(train_steps):
    """``train_steps`` run with oneDNN's bfloat16 graph rewrite on, and off again after."""
    import tensorflow as tf

    option = "auto_mixed_precision_onednn_bfloat16"

    def train_steps_bf16(iterator, n):
        tf.config.optimizer.set_experimental_options({option: True})
        try:
            return train_steps(iterator, n)
        finally:
            tf.config.optimizer.set_experimental_options({option: False})

    train_steps_bf16.experimental_get_tracing_count = train_steps.experimental_get_tracing_count
    return train_steps_bf16
