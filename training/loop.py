"""The custom training loop: GradientTape steps under tf.function, one snapshot per epoch.

Callable from Python (``train(TrainConfig(...), stop=event)``) and from the command line
(``python -m training``). Writes the run folder described in training/CONTRACT.md.

The step (``make_train_step``) is the DCGAN step with D first, then G, and one saving over the
textbook version: G's forward pass on the batch's noise is recorded once and used for both
updates (the D update happens with the G tape paused; the G loss then goes through the
*updated* D, as in the alternating scheme). Several steps run per tf.function call
(``steps_per_call``), so Python is visited a few times a second, not every step; a stop
request is honoured between those calls.
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from training import snapshot as snap
from training.data import DataError, load_dataset

# float32; Keras' mixed_bfloat16 policy (bf16 layers, float32 variables, bf16 snapshots); or
# onednn_bfloat16: float32 models whose training step TensorFlow's oneDNN graph rewrite runs in
# bfloat16 (about as fast as the Keras policy here; snapshots stay plain float32 models)
PRECISIONS = ("float32", "mixed_bfloat16", "onednn_bfloat16")
N_SAMPLES = 64  # the fixed latent batch drawn into samples.png every epoch


def keras_policy(precision: str) -> str:
    """The Keras dtype policy the models are built under for a --precision."""
    return "mixed_bfloat16" if precision == "mixed_bfloat16" else "float32"


class ConfigError(ValueError):
    """A training option is wrong; the message says which and what to do."""


@dataclass
class TrainConfig:
    run_dir: str
    preset: str = "dcgan"
    epochs: int | None = None  # None: the preset's default
    batch_size: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta_1: float | None = None
    seed: int = 0
    max_images: int | None = None
    data: str | None = None
    dataset: str = "mnist"
    precision: str = "float32"
    devices: int = 1
    steps_per_call: int = 10
    quality_samples: int = 2000
    label_noise: float = 0.0
    ema: float | None = None  # generator weight averaging decay; None: the preset's, 0: off
    tensorboard: bool = True
    progress_bar: bool = True
    resume: bool = False
    command: str | None = None

    def resolved(self) -> "TrainConfig":
        """Fill preset defaults and check every option; raises ConfigError."""
        from models import get_preset

        try:
            preset = get_preset(self.preset)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        c = dataclasses.replace(self)
        c.epochs = preset.epochs if c.epochs is None else c.epochs
        c.batch_size = preset.batch_size if c.batch_size is None else c.batch_size
        c.lr_g = preset.lr_g if c.lr_g is None else c.lr_g
        c.lr_d = preset.lr_d if c.lr_d is None else c.lr_d
        c.beta_1 = preset.beta_1 if c.beta_1 is None else c.beta_1
        c.ema = preset.ema if c.ema is None else c.ema
        checks = [
            (isinstance(c.epochs, int) and c.epochs >= 1,
             f"--epochs must be a whole number of at least 1, got {c.epochs}"),
            (isinstance(c.batch_size, int) and c.batch_size >= 1,
             f"--batch-size must be a positive whole number, got {c.batch_size}"),
            (c.lr_g > 0 and math.isfinite(c.lr_g), f"--lr-g must be a positive number, got {c.lr_g}"),
            (c.lr_d > 0 and math.isfinite(c.lr_d), f"--lr-d must be a positive number, got {c.lr_d}"),
            (0 <= c.beta_1 < 1, f"--beta-1 must be in [0, 1), got {c.beta_1}"),
            (c.max_images is None or c.max_images >= 1,
             f"--max-images must be a positive number, got {c.max_images}"),
            (c.precision in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}"),
            (0 <= c.ema < 1, f"--ema must be in [0, 1), got {c.ema}"),
            (c.devices >= 1, f"--devices must be at least 1, got {c.devices}"),
            (c.steps_per_call >= 1, f"--steps-per-call must be at least 1, got {c.steps_per_call}"),
            (c.quality_samples >= 0, f"--quality-samples must be 0 or more, got {c.quality_samples}"),
            (c.batch_size % c.devices == 0,
             f"--batch-size {c.batch_size} must be divisible by --devices {c.devices}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        return c

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("run_dir", "resume", "progress_bar", "command"):
            d.pop(k)
        return d


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # completed | stopped
    epochs_done: int
    summaries: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- devices
def make_strategy(devices: int):
    """Default strategy for one device; MirroredStrategy over GPUs or logical CPUs otherwise.

    With TF_CONFIG set (several machines), MultiWorkerMirroredStrategy. Splitting the CPU
    into logical devices must happen before TensorFlow initialises its runtime.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
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


# ----------------------------------------------------------------------------- the step
def make_train_step(strategy, generator, discriminator, g_opt, d_opt, rng, latent_dim: int,
                    global_batch: int, label_noise: float = 0.0, ema_generator=None,
                    ema_decay: float = 0.0, graph_bf16: bool = False):
    """Return ``train_steps(iterator, n)``: n DCGAN steps in one tf.function call.

    Returns the mean over the n steps of [d_loss, g_loss, d_acc_real, d_acc_fake].
    With ``ema_generator``, its variables track an exponential moving average of the
    generator's (decay ``ema_decay``, warmed up over the first steps): the averaged generator
    is the one snapshotted, a cheap and large gain in sample quality.
    With ``graph_bf16``, each call runs with TensorFlow's oneDNN auto-mixed-precision rewrite
    on (bfloat16 convolutions and matmuls), switched off again after it, so nothing else in
    the process (quality scoring, sample grids) is affected.
    """
    import tensorflow as tf

    from models.fast_ops import accelerate

    # same layers and weights, faster kernels where oneDNN is slow (models/fast_ops.py)
    for model in (generator, discriminator, ema_generator):
        if model is not None:
            accelerate(model)

    def xent(labels, logits):
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)[:, 0]

    def scaled_mean(per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

    def step(real):
        b = tf.shape(real)[0]
        z = rng.normal((b, latent_dim))
        ones = tf.ones((b, 1))
        zeros = tf.zeros((b, 1))
        with tf.GradientTape() as g_tape:
            fake = generator(z, training=True)
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    logits = tf.cast(
                        discriminator(tf.concat([real, fake], 0), training=True), tf.float32
                    )
                    lr, lf = logits[:b], logits[b:]
                    real_lab, fake_lab = ones, zeros
                    if label_noise:
                        real_lab = ones - label_noise * rng.uniform((b, 1))
                        fake_lab = zeros + label_noise * rng.uniform((b, 1))
                    d_loss = scaled_mean(xent(real_lab, lr) + xent(fake_lab, lf))
                d_vars = discriminator.trainable_variables
                d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
            lf2 = tf.cast(discriminator(fake, training=True), tf.float32)
            g_loss = scaled_mean(xent(ones, lf2))
        g_vars = generator.trainable_variables
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        acc_real = scaled_mean(tf.cast(lr[:, 0] > 0, tf.float32))
        acc_fake = scaled_mean(tf.cast(lf[:, 0] < 0, tf.float32))
        return tf.stack([d_loss, g_loss, acc_real, acc_fake])

    use_ema = ema_generator is not None and ema_decay > 0

    def update_ema():
        it = tf.cast(g_opt.iterations, tf.float32)
        decay = tf.minimum(ema_decay, (1.0 + it) / (10.0 + it))
        for e, w in zip(ema_generator.variables, generator.variables):
            if "float" in str(e.dtype):
                e.assign(decay * e + (1.0 - decay) * tf.cast(w, e.dtype))

    @tf.function
    def train_steps(iterator, n):
        total = tf.zeros(4)
        for _ in tf.range(n):
            per_replica = strategy.run(step, args=(next(iterator),))
            total += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            if use_ema:
                update_ema()
        return total / tf.cast(n, tf.float32)

    if not graph_bf16:
        return train_steps
    option = "auto_mixed_precision_onednn_bfloat16"

    def train_steps_bf16(iterator, n):
        tf.config.optimizer.set_experimental_options({option: True})
        try:
            return train_steps(iterator, n)
        finally:
            tf.config.optimizer.set_experimental_options({option: False})

    train_steps_bf16.experimental_get_tracing_count = train_steps.experimental_get_tracing_count
    return train_steps_bf16


# ----------------------------------------------------------------------------- checkpoint
def _opt_vars(opt):
    return list(opt.variables)


def _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator=None):
    groups = [("g", generator.variables), ("d", discriminator.variables),
              ("go", _opt_vars(g_opt)), ("do", _opt_vars(d_opt))]
    if ema_generator is not None:
        groups.append(("ge", ema_generator.variables))
    return groups


def save_checkpoint(run_dir: Path, state: dict, generator, discriminator, g_opt, d_opt, rng,
                    ema_generator=None):
    """checkpoint/ holds the latest whole epoch: written aside, then swapped in."""
    run_dir = Path(run_dir)
    tmp = run_dir / f".checkpoint.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = {}
        for prefix, vs in _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator):
            for i, v in enumerate(vs):
                arrays[f"{prefix}_{i:04d}"] = np.asarray(v.numpy())
        arrays["rng_state"] = rng.state.numpy()
        with open(tmp / "state.npz", "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        snap.write_json_atomic(tmp / "state.json", state)
        final = run_dir / "checkpoint"
        old = run_dir / f".checkpoint.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def find_checkpoint(run_dir: Path) -> Path | None:
    run_dir = Path(run_dir)
    cands = [run_dir / "checkpoint"] + sorted(run_dir.glob(".checkpoint.old-*"))
    for c in cands:  # an .old one survives only if killed between the two renames
        if (c / "state.json").is_file() and (c / "state.npz").is_file():
            return c
    return None


def load_checkpoint(path: Path, generator, discriminator, g_opt, d_opt, rng,
                    ema_generator=None) -> dict:
    state = snap.read_json(path / "state.json")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    with np.load(path / "state.npz") as z:
        for prefix, vs in _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator):
            for i, v in enumerate(vs):
                v.assign(z[f"{prefix}_{i:04d}"])
        rng.state.assign(z["rng_state"])
    return state


# ----------------------------------------------------------------------------- helpers
def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def _to_unit(x: np.ndarray, pixel_range) -> np.ndarray:
    lo, hi = pixel_range
    return np.clip((np.asarray(x, np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _quality_fn(n_samples: int):
    """The evaluator's scorer, or None (with the reason printed once) when unavailable."""
    if n_samples <= 0:
        return None
    try:
        from training.quality import score_generator
    except Exception as exc:  # missing evaluator weights or module
        print(f"note: quality metrics off ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return None
    return score_generator


def prepare_run_dir(cfg: TrainConfig) -> tuple[Path, dict | None]:
    """Check the run folder before anything is written. Returns (path, existing run.json)."""
    run_dir = Path(cfg.run_dir).expanduser()
    run_json = run_dir / "run.json"
    if cfg.resume:
        if not run_json.is_file():
            raise snap.RunFolderError(
                f"--resume: {run_dir} holds no run.json; start a new run without --resume"
            )
        try:
            return run_dir, snap.read_json(run_json)
        except (OSError, ValueError) as exc:
            raise snap.RunFolderError(f"--resume: cannot read {run_json}: {exc}") from None
    if run_dir.exists():
        if not run_dir.is_dir():
            raise snap.RunFolderError(f"{run_dir} exists and is not a folder; pick another --run-dir")
        if any(run_dir.iterdir()):
            raise snap.RunFolderError(
                f"run folder {run_dir} already exists; add --resume to continue it, "
                "or pick a new --run-dir (nothing was changed)"
            )
    return run_dir, None


# ----------------------------------------------------------------------------- train
def train(cfg: TrainConfig, stop: threading.Event | Callable[[], bool] | None = None,
          on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train per ``cfg``; stop cleanly between steps when ``stop`` is set.

    Raises ConfigError / DataError / RunFolderError before writing anything when the input
    is bad.
    """
    should_stop = (stop.is_set if isinstance(stop, threading.Event) else stop) or (lambda: False)
    run_dir, existing = prepare_run_dir(cfg)
    if existing is not None:  # resume: the run's own config is the truth; --epochs may extend
        saved = existing.get("config", {})
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        merged = {k: v for k, v in saved.items() if k in fields}
        merged.update(run_dir=str(run_dir), resume=True, progress_bar=cfg.progress_bar,
                      command=existing.get("command"))
        if cfg.epochs is not None:
            merged["epochs"] = cfg.epochs
        cfg = TrainConfig(**merged)
    cfg = cfg.resolved()
    images_u8, _labels, source = load_dataset(cfg.dataset, cfg.data, cfg.max_images)
    if len(images_u8) < cfg.batch_size:
        raise ConfigError(
            f"only {len(images_u8)} images for a batch of {cfg.batch_size}; "
            "lower --batch-size or raise --max-images"
        )
    if existing is not None and existing.get("dataset", {}).get("n_images") not in (None, len(images_u8)):
        raise DataError(
            f"--resume: the run was trained on {existing['dataset']['n_images']} images but its data "
            f"source now gives {len(images_u8)}; point --data at the same data"
        )

    # Everything is valid: only now is anything written.
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = snap.RunLock(run_dir)
    lock.acquire()
    try:
        return _train_locked(cfg, run_dir, existing, images_u8, source, should_stop, on_epoch)
    finally:
        lock.release()


def _train_locked(cfg, run_dir, existing, images_u8, source, should_stop, on_epoch):
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()
    import keras

    from models import get_preset

    preset = get_preset(cfg.preset)
    snap.clean_temporaries(run_dir)
    strategy = make_strategy(cfg.devices)
    keras.mixed_precision.set_global_policy(keras_policy(cfg.precision))
    keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        generator = preset.build_generator(preset.latent_dim)
        discriminator = preset.build_discriminator()
        g_opt = keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta_1)
        d_opt = keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta_1)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
        rng = tf.random.Generator.from_seed(cfg.seed)
        ema_generator = None
        if cfg.ema > 0:
            ema_generator = preset.build_generator(preset.latent_dim)
            ema_generator.set_weights(generator.get_weights())
    # what is snapshotted and scored: the weight-averaged generator when there is one
    published = ema_generator if ema_generator is not None else generator

    run_json_path = run_dir / "run.json"
    run_info = existing or {
        "name": run_dir.name,
        **preset.facts(),
        "config": cfg.to_json(),
        "dataset": {"source": source, "n_images": int(len(images_u8))},
        "command": cfg.command,
        "created": snap.now_iso(),
        "epochs_done": 0,
    }
    run_info.update(status="training", versions=_versions(), updated=snap.now_iso(), error=None,
                    config=cfg.to_json())
    metrics = snap.MetricsLog(run_dir / "metrics.jsonl")

    start_epoch, global_step, elapsed = 0, 0, 0.0
    summaries: list[dict] = []
    ckpt = find_checkpoint(run_dir) if existing is not None else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, generator, discriminator, g_opt, d_opt, rng, ema_generator)
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        elapsed = float(state.get("elapsed_s", 0.0))
        summaries = list(state.get("summaries", []))
    # whatever lies past the checkpoint is redone deterministically
    for e in snap.list_epochs(run_dir):
        if e > start_epoch:
            shutil.rmtree(run_dir / "epochs" / snap.epoch_dirname(e), ignore_errors=True)
    if existing is not None:
        metrics.truncate_after(start_epoch)
        logged = {int(r["epoch"]) for r in snap.read_jsonl(metrics.path) if r.get("kind") == "epoch"}
        for s in summaries:
            if s["epoch"] not in logged:
                metrics.append({"kind": "epoch", **s})
    run_info["epochs_done"] = start_epoch
    snap.write_json_atomic(run_json_path, run_info)

    fixed_z = np.random.default_rng([cfg.seed, 1]).standard_normal(
        (N_SAMPLES, preset.latent_dim)).astype(np.float32)

    def samples01():
        return _to_unit(published(fixed_z, training=False).numpy(), preset.pixel_range)

    # killed after the checkpoint but before the epoch folder: write it from the checkpoint
    if start_epoch and not (run_dir / "epochs" / snap.epoch_dirname(start_epoch)).is_dir():
        snap.write_epoch_folder(run_dir, start_epoch, published, discriminator, samples01(),
                                summaries[-1])

    lo, hi = preset.pixel_range
    images = tf.constant(images_u8)
    n_images = len(images_u8)
    steps_per_epoch = n_images // cfg.batch_size

    def to_model(batch_u8):
        x = tf.cast(batch_u8, tf.float32)[..., None] / 255.0
        return x * (hi - lo) + lo

    train_steps = make_train_step(strategy, generator, discriminator, g_opt, d_opt, rng,
                                  preset.latent_dim, cfg.batch_size, cfg.label_noise,
                                  ema_generator, cfg.ema,
                                  graph_bf16=cfg.precision == "onednn_bfloat16")
    score = _quality_fn(cfg.quality_samples)
    tb = tf.summary.create_file_writer(str(run_dir / "tensorboard")) if cfg.tensorboard else None
    progress_path = run_dir / "progress.json"
    status = "completed"
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            perm = np.random.default_rng([cfg.seed, 2, epoch]).permutation(n_images)
            ds = (tf.data.Dataset.from_tensor_slices(perm)
                  .batch(cfg.batch_size, drop_remainder=True)
                  .map(lambda idx: to_model(tf.gather(images, idx)),
                       num_parallel_calls=tf.data.AUTOTUNE)
                  .prefetch(tf.data.AUTOTUNE))
            iterator = iter(strategy.experimental_distribute_dataset(ds))
            bar = _progress_bar(cfg, epoch, steps_per_epoch)
            sums = np.zeros(4)
            done = 0
            t0 = time.perf_counter()
            last_write = 0.0
            while done < steps_per_epoch:
                if should_stop():
                    status = "stopped"
                    break
                n = min(cfg.steps_per_call, steps_per_epoch - done)
                means = train_steps(iterator, tf.constant(n, tf.int32)).numpy()
                if not np.all(np.isfinite(means)):
                    raise FloatingPointError(
                        f"losses became NaN/inf at epoch {epoch} step {done + n}; "
                        "lower the learning rates or use --precision float32"
                    )
                done += n
                global_step += n
                sums += means * n
                ips = done * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                row = {"kind": "step", "epoch": epoch, "step": global_step,
                       "d_loss": float(means[0]), "g_loss": float(means[1]),
                       "d_acc_real": float(means[2]), "d_acc_fake": float(means[3]),
                       "time": time.time()}
                metrics.append(row)
                if tb is not None:
                    with tb.as_default(step=global_step):
                        for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
                            tf.summary.scalar(f"step/{k}", row[k])
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(d=f"{means[0]:.3f}", g=f"{means[1]:.3f}", img_s=f"{ips:.0f}")
                now = time.perf_counter()
                if now - last_write > 0.5 or done == steps_per_epoch:
                    last_write = now
                    snap.write_json_atomic(progress_path, {
                        "status": "training", "pid": os.getpid(), "epoch": epoch,
                        "epochs": cfg.epochs, "step_in_epoch": done,
                        "steps_per_epoch": steps_per_epoch, "images_per_s": ips,
                        "d_loss": row["d_loss"], "g_loss": row["g_loss"], "time": time.time()})
            if bar is not None:
                bar.close()
            if status == "stopped":
                break
            epoch_time = time.perf_counter() - t0
            elapsed += epoch_time
            means = sums / steps_per_epoch
            summary = {"epoch": epoch, "steps": steps_per_epoch, "global_step": global_step,
                       "d_loss": float(means[0]), "g_loss": float(means[1]),
                       "d_acc_real": float(means[2]), "d_acc_fake": float(means[3]),
                       "images_per_s": steps_per_epoch * cfg.batch_size / epoch_time,
                       "epoch_time_s": epoch_time, "elapsed_s": elapsed, "quality": None}
            if score is not None:
                tq = time.perf_counter()
                summary["quality"] = score(published, preset.latent_dim, preset.pixel_range,
                                           n=cfg.quality_samples)
                summary["quality_time_s"] = time.perf_counter() - tq
            grid = samples01()
            summaries.append(summary)
            save_checkpoint(run_dir, {"epoch": epoch, "global_step": global_step,
                                      "elapsed_s": elapsed, "summaries": summaries},
                            generator, discriminator, g_opt, d_opt, rng, ema_generator)
            snap.write_epoch_folder(run_dir, epoch, published, discriminator, grid, summary)
            metrics.append({"kind": "epoch", **summary})
            run_info.update(epochs_done=epoch, updated=snap.now_iso())
            snap.write_json_atomic(run_json_path, run_info)
            if tb is not None:
                with tb.as_default(step=epoch):
                    tf.summary.image("samples", grid[:16], max_outputs=16)
                    for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "images_per_s"):
                        tf.summary.scalar(f"epoch/{k}", summary[k])
                    if summary["quality"]:
                        tf.summary.scalar("epoch/fcd", summary["quality"]["fcd"])
                        tf.summary.scalar("epoch/classifier_score",
                                          summary["quality"]["classifier_score"])
                tb.flush()
            _print_epoch(cfg, summary)
            if on_epoch is not None:
                on_epoch(summary)
    except BaseException as exc:
        run_info.update(status="failed" if not isinstance(exc, KeyboardInterrupt) else "stopped",
                        error=f"{exc.__class__.__name__}: {exc}", updated=snap.now_iso())
        _safe_write(run_json_path, run_info)
        _safe_write(progress_path, {"status": run_info["status"], "pid": os.getpid(),
                                    "error": run_info["error"], "time": time.time()})
        raise
    finally:
        if tb is not None:
            tb.close()
    run_info.update(status=status, updated=snap.now_iso())
    snap.write_json_atomic(run_json_path, run_info)
    snap.write_json_atomic(progress_path, {"status": status, "pid": os.getpid(),
                                           "epoch": run_info["epochs_done"], "epochs": cfg.epochs,
                                           "time": time.time()})
    return TrainResult(run_dir, status, run_info["epochs_done"], summaries)


def _safe_write(path, obj):
    try:
        snap.write_json_atomic(path, obj)
    except OSError:
        pass  # disk full / read-only: the error itself is what the user needs to see


def _progress_bar(cfg: TrainConfig, epoch: int, steps: int):
    if not cfg.progress_bar:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="step",
                dynamic_ncols=True, leave=False, file=sys.stderr)


def _print_epoch(cfg: TrainConfig, s: dict) -> None:
    if not cfg.progress_bar:
        return
    q = s.get("quality") or {}
    qtxt = (f"  FCD {q['fcd']:.2f}  IS {q['classifier_score']:.2f}" if q else "")
    print(f"epoch {s['epoch']}/{cfg.epochs}  d_loss {s['d_loss']:.3f}  g_loss {s['g_loss']:.3f}  "
          f"D acc real/fake {s['d_acc_real']:.2f}/{s['d_acc_fake']:.2f}  "
          f"{s['images_per_s']:.0f} img/s  {s['epoch_time_s']:.1f}s{qtxt}", flush=True)
