"""The custom training loop: GradientTape steps under tf.function, one snapshot per epoch.

Callable from Python (``train(TrainConfig(...), stop=event)``) and from the command line
(``python -m training``). Writes the run folder described in training/CONTRACT.md through
training/runfolder.py. The step itself is in training/step.py, where a run continues from in
training/checkpoint.py, publishing a finished epoch in training/publish.py.

``train`` checks everything (options, data, the run folder, what a resume continues from)
before writing anything; then, holding the run's lock: build or restore the models
(``_open_session``), train epoch after epoch (``_train_epoch``), publish each (``publish_epoch``).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from models import get_preset
from training import runfolder as rf
from training.checkpoint import (  # noqa: F401  (public names other code imports from here)
    ResumePoint,
    find_checkpoint,
    find_resume_point,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from training.cluster import (
    agreed_stop,
    as_worker_lost,
    dump_weights_if_asked,
    is_chief,
    moving_stats_sync,
    read_tf_config,
)
from training.config import (  # noqa: F401
    N_SAMPLES,
    PRECISIONS,
    ConfigError,
    TrainConfig,
    TrainResult,
    keras_policy,
    prepare_run_dir,
    resume_config,
)
from training.data import DataError, class_labels, load_training_data
from training.publish import Session, fail_run, finish_run, open_records, progress_bar, publish_epoch
from training.step import make_strategy, make_train_step  # noqa: F401


def train(
    cfg: TrainConfig,
    stop: threading.Event | Callable[[], bool] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train per ``cfg``; stop cleanly between steps when ``stop`` is set.

    Raises ConfigError / DataError / RunFolderError before writing anything when the input
    is bad (a resume's damaged last epoch included).
    """
    should_stop = (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)
    run_dir, existing = prepare_run_dir(cfg)
    if existing is not None:
        cfg = resume_config(cfg, run_dir, existing)
    cfg = cfg.resolved()
    if read_tf_config() is not None and cfg.devices > 1 and not cfg.resume:
        raise ConfigError(
            f"--devices {cfg.devices} does not apply with TF_CONFIG: each worker trains on all its GPUs "
            "(or its CPU); drop --devices"
        )
    images_u8, labels, dataset = load_training_data(
        cfg.dataset, cfg.data, cfg.max_images, cfg.image_size, cfg.channels
    )
    shape = (*images_u8.shape[1:3], images_u8.shape[3] if images_u8.ndim == 4 else 1)
    if "image_size" in dataset:  # an image folder: run.json's config states what was used
        cfg = dataclasses.replace(cfg, image_size=dataset["image_size"], channels=dataset["channels"])
    elif images_u8.ndim == 3:  # 28x28 grey: scored by the evaluator of its data (run.json says which)
        from training.quality import evaluator_for

        dataset["evaluator"] = evaluator_for(images_u8)
    try:
        get_preset(cfg.preset).for_shape(shape)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    num_classes = get_preset(cfg.preset).num_classes
    if num_classes:
        labels = class_labels(labels, num_classes, dataset["source"])
    if len(images_u8) < cfg.batch_size:
        raise ConfigError(
            f"only {len(images_u8)} images for a batch of {cfg.batch_size}; "
            "lower --batch-size or raise --max-images"
        )
    saved_data = (existing or {}).get("dataset")
    n_saved = saved_data.get("n_images") if isinstance(saved_data, dict) else None
    if existing is not None and n_saved not in (None, len(images_u8)):
        raise DataError(
            f"--resume: the run was trained on {n_saved} images but its data "
            f"source now gives {len(images_u8)}; point --data at the same data"
        )
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    strategy = make_strategy(cfg.devices)
    chief = is_chief(strategy)  # only the chief writes the run folder (training/cluster.py)
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} (the global batch) must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas training it"
        )
    point = ResumePoint()
    if existing is not None:
        if chief and rf.is_locked(run_dir):  # say "being trained", not whatever a half-written file says
            probe = rf.RunLock(run_dir)
            probe.acquire()  # raises the one-line "being trained by another process" error
            probe.release()
        point = find_resume_point(run_dir)  # reads only: a refusal here changes nothing

    # Everything is valid: only now is anything written (by the chief; the others write nothing).
    lock = rf.RunLock(run_dir) if chief else None
    if lock is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    try:
        s = _open_session(cfg, run_dir, strategy, point, existing, dataset, images_u8, shape, chief)
        return _run(s, images_u8, labels, should_stop, on_epoch)
    finally:
        if lock is not None:
            lock.release()


def _open_session(cfg, run_dir, strategy, point, existing, dataset, images_u8, shape, chief) -> Session:
    """Build the models, restore ``point`` into them, then (and only then) open the records."""
    import keras

    # a clustered preset finds its clusters in the training images; a resume restores them
    restored = point.checkpoint is not None or point.weights is not None
    preset = get_preset(cfg.preset).for_shape(shape).fitted(images_u8, cfg.seed, restored)
    keras.mixed_precision.set_global_policy(keras_policy(cfg.precision))
    keras.utils.set_random_seed(cfg.seed)
    s = Session(
        cfg=cfg,
        run_dir=run_dir,
        preset=preset,
        point=point,
        global_step=point.global_step,
        elapsed=point.elapsed,
        summaries=list(point.summaries),
        chief=chief,
    )
    _build_models(s, strategy)
    restore(point, s.generator, s.discriminator, s.g_opt, s.d_opt, s.rng, s.ema_generator)
    if chief:
        rf.clean_temporaries(run_dir)
    if point.weights is not None:
        print(
            f"resuming from {rf.EPOCHS}/{rf.epoch_dirname(point.epoch)}: its snapshot's weights, "
            f"optimizer state {point.optimizer_state}",
            file=sys.stderr,
            flush=True,
        )
    s.quality_note = _quality_note(cfg, shape, dataset)
    open_records(s, existing, dataset["source"], len(images_u8), dataset)
    return s


def _build_models(s: Session, strategy) -> None:
    import keras
    import tensorflow as tf

    cfg, preset = s.cfg, s.preset
    s.strategy = strategy
    with strategy.scope():
        s.generator = preset.build_generator(preset.latent_dim)
        s.discriminator = preset.build_discriminator()
        s.g_opt = keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta_1)
        s.d_opt = keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta_1)
        s.g_opt.build(s.generator.trainable_variables)
        s.d_opt.build(s.discriminator.trainable_variables)
        s.rng = tf.random.Generator.from_seed(cfg.seed)
        if cfg.ema > 0:
            s.ema_generator = preset.build_generator(preset.latent_dim)
            s.ema_generator.set_weights(s.generator.get_weights())
    s.sync_stats = moving_stats_sync(strategy, (s.generator, s.discriminator, s.ema_generator))


def _run(s: Session, images_u8: np.ndarray, labels, should_stop, on_epoch) -> TrainResult:
    """The epoch loop: train, publish, repeat; records a failure in run.json and re-raises."""
    import tensorflow as tf

    cfg = s.cfg
    lo, hi = s.preset.pixel_range
    gather = _gatherer(images_u8)

    conditional_labels = tf.constant(labels) if s.preset.num_classes else None

    def to_model(batch_u8):
        x = tf.cast(batch_u8, tf.float32) / 255.0
        x = x[..., None] if images_u8.ndim == 3 else x
        return x * (hi - lo) + lo

    def batch(idx):  # images, or (images, labels) for a conditional preset
        x = to_model(gather(idx))
        return x if conditional_labels is None else (x, tf.gather(conditional_labels, idx))

    train_steps = make_train_step(
        s.strategy,
        s.generator,
        s.discriminator,
        s.g_opt,
        s.d_opt,
        s.rng,
        s.preset.latent_dim,
        cfg.batch_size,
        cfg.label_noise,
        s.ema_generator,
        cfg.ema,
        graph_bf16=cfg.precision == "onednn_bfloat16",
        num_classes=s.preset.num_classes,
        augment=cfg.augment,
        pixel_range=(lo, hi),
    )
    if s.chief and s.quality_note is None:  # scoring writes the neighbour index
        # made when the first epoch is published, not before the first step: embedding the
        # training digits for the index is 6 s of 10k (a run stopped sooner has none; the
        # explorer then makes it from the recorded data)
        s.open_score = functools.partial(_quality_fn, cfg.quality_samples, s.run_dir, images_u8, labels)
    tensorboard = cfg.tensorboard and s.chief
    s.tb = tf.summary.create_file_writer(str(s.run_dir / rf.TENSORBOARD)) if tensorboard else None
    should_stop = agreed_stop(s.strategy, should_stop)  # with several workers: any of them
    status = "completed"
    try:
        for epoch in range(s.point.epoch + 1, cfg.epochs + 1):
            perm = np.random.default_rng([cfg.seed, 2, epoch]).permutation(len(images_u8))
            ds = epoch_batches(perm, cfg.batch_size, batch)
            iterator = iter(s.strategy.experimental_distribute_dataset(ds))
            summary = _train_epoch(s, epoch, iterator, train_steps, len(images_u8), should_stop)
            if summary is None:
                status = "stopped"
                break
            publish_epoch(s, summary)
            if on_epoch is not None:
                on_epoch(summary)
    except BaseException as exc:
        lost = as_worker_lost(s.strategy, exc)  # one line, not TensorFlow's page, in run.json
        fail_run(s, lost)
        if lost is not exc:
            raise lost from None
        raise
    finally:
        if s.tb is not None:
            s.tb.close()
    finish_run(s, status)
    dump_weights_if_asked(s.published, s.discriminator)
    return TrainResult(s.run_dir, status, s.run_info["epochs_done"], s.summaries, wrote=s.chief)


def epoch_batches(perm: np.ndarray, batch_size: int, batch):
    """One epoch's batches: the digits of ``perm`` in order, ``batch`` applied, 2 batches ahead.

    tf.data's autotuning is off. With it on, every iterator runs a tuning thread that sleeps
    between rounds for a period that doubles while the iterator lives, and letting go of the
    iterator waits for that sleep to end: a 10k-digit run waited 3.3-4.1 s at 3 of every 5 epoch
    boundaries (epochs of ~7 s on an AVX-512 EPYC; TensorFlow 2.21, stack in
    ``UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper``), and longer for longer
    epochs. There is nothing to tune: the map is one gather, run a batch or two ahead."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return (
        tf.data.Dataset.from_tensor_slices(perm)
        .batch(batch_size, drop_remainder=True)
        .map(batch)
        .prefetch(2)
        .with_options(options)
    )


def _train_epoch(s: Session, epoch: int, iterator, train_steps, n_images: int, should_stop):
    """One epoch's steps; its summary (quality not yet scored), or None when stopped."""
    import tensorflow as tf

    cfg = s.cfg
    steps_per_epoch = n_images // cfg.batch_size
    bar = progress_bar(cfg, epoch, steps_per_epoch)
    sums, done, t0, last_write = np.zeros(4), 0, time.perf_counter(), 0.0
    try:
        while done < steps_per_epoch:
            if should_stop():
                return None
            n = min(cfg.steps_per_call, steps_per_epoch - done)
            means = train_steps(iterator, tf.constant(n, tf.int32)).numpy()
            if not np.all(np.isfinite(means)):
                raise FloatingPointError(
                    f"losses became NaN/inf at epoch {epoch} step {done + n}; "
                    "lower the learning rates or use --precision float32"
                )
            done += n
            s.global_step += n
            sums += means * n
            ips = done * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            row = s.log_step(epoch, means)
            if bar is not None:
                bar.update(n)
                bar.set_postfix(d=f"{means[0]:.3f}", g=f"{means[1]:.3f}", img_s=f"{ips:.0f}")
            now = time.perf_counter()
            if now - last_write > 0.5 or done == steps_per_epoch:
                last_write = now
                s.write_progress(
                    {
                        "status": "training",
                        "epoch": epoch,
                        "epochs": cfg.epochs,
                        "step_in_epoch": done,
                        "steps_per_epoch": steps_per_epoch,
                        "images_per_s": ips,
                        "d_loss": row["d_loss"],
                        "g_loss": row["g_loss"],
                    }
                )
    finally:
        if bar is not None:
            bar.close()
    epoch_time = time.perf_counter() - t0
    s.elapsed += epoch_time
    means = sums / steps_per_epoch
    return {
        "epoch": epoch,
        "steps": steps_per_epoch,
        "global_step": s.global_step,
        "d_loss": float(means[0]),
        "g_loss": float(means[1]),
        "d_acc_real": float(means[2]),
        "d_acc_fake": float(means[3]),
        "images_per_s": steps_per_epoch * cfg.batch_size / epoch_time,
        "epoch_time_s": epoch_time,
        "elapsed_s": s.elapsed,
        "quality": None,
    }


def _gatherer(images_u8: np.ndarray):
    """Batch indices -> uint8 images: from a tensor in memory, or, for an image folder decoded
    into a cache file (np.memmap), read from disk inside the tf.data pipeline (prefetched)."""
    import tensorflow as tf

    if not isinstance(images_u8, np.memmap):
        images = tf.constant(images_u8)
        return lambda idx: tf.gather(images, idx)
    shape = images_u8.shape[1:]

    def read(idx):
        order = np.argsort(idx)  # sorted reads from the file, then back to the batch's order
        out = np.empty((len(idx), *shape), np.uint8)
        out[order] = images_u8[idx[order]]
        return out

    def gather(idx):
        batch = tf.numpy_function(read, [idx], tf.uint8, stateful=False)
        return tf.ensure_shape(batch, [None, *shape])

    return gather


def _quality_note(cfg: TrainConfig, shape: tuple, dataset: dict) -> str | None:
    """Why this run's quality is not scored (None: it is, when --quality-samples > 0)."""
    if "image_size" not in dataset and tuple(shape) == (28, 28, 1):
        return None
    kind = "an image folder" if "image_size" in dataset else "data"
    colour = "RGB" if shape[2] == 3 else "grey"
    return (
        "the evaluator knows only MNIST digits and Fashion-MNIST garments (28x28 grey); "
        f"this run trains on {kind} ({shape[0]}x{shape[1]} {colour})"
    )


def _quality_fn(n_samples: int, run_dir, images_u8, labels):
    """The scorer of the evaluator of this data (with the memorisation figure), or None (with the
    reason printed once) when unavailable. Writes the run's neighbour index (neighbours.npz) either way."""
    try:
        from training.quality import QualityScorer, evaluator_for, open_index, score_generator

        evaluator = evaluator_for(images_u8)
        if n_samples > 0:
            QualityScorer.load(evaluator)
    except Exception as exc:  # missing evaluator weights or module
        print(f"note: quality metrics off ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return None
    try:
        index = open_index(run_dir, images_u8, labels, with_features=n_samples > 0, evaluator=evaluator)
    except Exception as exc:  # noqa: BLE001 - the index is an extra: training goes on without it
        print(f"note: no neighbour index ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        index = None
    return functools.partial(score_generator, index=index, evaluator=evaluator) if n_samples > 0 else None
