"""What one training process writes into its run folder, and the state it keeps meanwhile.

``Session`` is that state (config, models, optimizers, counters, open logs). ``open_records``
starts run.json and metrics.jsonl for a new or resumed run; ``publish_epoch`` makes a finished
epoch visible: quality scores, checkpoint, snapshot folder, metrics line, run.json,
TensorBoard, the epoch line on stdout; ``fail_run``/``finish_run`` record how it ended.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.cpu import cpu_profile
from training import runfolder as rf
from training.checkpoint import ResumePoint, save_checkpoint
from training.config import N_SAMPLES, TrainConfig
from training.snapshot import write_epoch_folder

LOSS_KEYS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
SAMPLE_COLS = 8  # samples.png's columns


@dataclass
class Session:
    """One training process on one run folder."""

    cfg: TrainConfig
    run_dir: Path
    preset: object
    point: ResumePoint
    global_step: int = 0
    elapsed: float = 0.0
    summaries: list[dict] = field(default_factory=list)
    strategy: object = None
    generator: object = None
    discriminator: object = None
    ema_generator: object = None
    g_opt: object = None
    d_opt: object = None
    rng: object = None
    run_info: dict = field(default_factory=dict)
    metrics: rf.MetricsLog | None = None
    fixed_z: np.ndarray | None = None
    fixed_y: np.ndarray | None = None  # a conditional preset's labels for fixed_z
    score: object = None  # the quality scorer, or None
    open_score: object = None  # makes `score` (and the neighbour index) at the first epoch's end
    quality_note: str | None = None  # why quality is not scored for this data (None: it is)
    tb: object = None  # the TensorBoard writer, or None
    chief: bool = True  # False: a worker other than the chief, which writes nothing (cluster.py)
    sync_stats: object = None  # sets BatchNorm statistics to the replicas' mean (None: one replica)

    @property
    def published(self):
        """What is snapshotted and scored: the weight-averaged generator when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def samples01(self) -> np.ndarray:
        from training.quality import to_unit_range

        inputs = self.fixed_z if self.fixed_y is None else [self.fixed_z, self.fixed_y]
        return to_unit_range(self.published(inputs, training=False).numpy(), self.preset.pixel_range)

    def log_step(self, epoch: int, means) -> dict:
        row = {
            "kind": "step",
            "epoch": epoch,
            "step": self.global_step,
            **{k: float(v) for k, v in zip(LOSS_KEYS, means)},
            "time": time.time(),
        }
        if self.metrics is not None:
            self.metrics.append(row)
        if self.tb is not None:
            import tensorflow as tf

            with self.tb.as_default(step=self.global_step):
                for k in LOSS_KEYS:
                    tf.summary.scalar(f"step/{k}", row[k])
        return row

    def write_progress(self, fields: dict, safe: bool = False) -> None:
        if not self.chief:
            return
        obj = {"status": fields.pop("status"), "pid": os.getpid(), **fields, "time": time.time()}
        (_safe_write if safe else rf.write_json_atomic)(self.run_dir / rf.PROGRESS, obj)

    def write_run_info(self, safe: bool = False, **changes) -> None:
        self.run_info.update(updated=rf.now_iso(), **changes)
        if not self.chief:  # kept in memory only
            return
        (_safe_write if safe else rf.write_json_atomic)(self.run_dir / rf.RUN_JSON, self.run_info)


def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def open_records(
    s: Session, existing: dict | None, source: str, n_images: int, dataset: dict | None = None
) -> None:
    """Start run.json and metrics.jsonl; write the start epoch's folder if a kill skipped it.

    Nothing is deleted or truncated here: lines and folders of epochs past the resume point are
    replaced only when their re-trained epoch is published (MetricsLog.append_epoch,
    write_epoch_folder), so a resume can never lose what it does not re-make.
    """
    cfg, point = s.cfg, s.point
    s.run_info = existing or {
        "name": s.run_dir.name,
        **s.preset.facts(),
        "config": cfg.to_json(),
        "dataset": {**(dataset or {}), "source": source, "n_images": int(n_images)},
        "command": cfg.command,
        "created": rf.now_iso(),
        "epochs_done": 0,
    }
    if existing is not None:
        earlier = existing.get("resumes")
        s.run_info["resumes"] = [*(earlier if isinstance(earlier, list) else []), point.record()]
    s.fixed_z, s.fixed_y = fixed_batch(cfg.seed, s.preset)
    if not s.chief:  # a worker other than the chief writes nothing
        s.run_info["epochs_done"] = point.epoch
        return
    s.metrics = rf.MetricsLog(s.run_dir / rf.METRICS)
    if existing is not None:  # summaries the log lacks (it lags the checkpoint when killed)
        rows = rf.read_jsonl(s.metrics.path)
        logged = {rf.as_epoch(r.get("epoch")) for r in rows if r.get("kind") == "epoch"}
        for summary in s.summaries:
            if summary["epoch"] not in logged:
                s.metrics.append({"kind": "epoch", **summary})
    s.metrics.mark()
    s.write_run_info(
        status="training",
        versions=_versions(),
        error=None,
        config=cfg.to_json(),
        epochs_done=point.epoch,
        cpu=cpu_profile(),
        **({"quality_note": s.quality_note} if s.quality_note else {}),
    )
    # killed after the checkpoint but before the epoch folder: write it from the checkpoint
    if point.epoch and not rf.epoch_path(s.run_dir, point.epoch).is_dir():
        write_epoch_folder(
            s.run_dir, point.epoch, s.published, s.discriminator, s.samples01(), s.summaries[-1]
        )


def fixed_batch(seed: int, preset) -> tuple[np.ndarray, np.ndarray | None]:
    """The latent batch drawn into samples.png every epoch (and its labels, or None).

    Unconditional: N_SAMPLES points, 8 a row. Conditional: one row per class, the same 8
    points in every row, so a column is one latent point drawn as each digit."""
    rng = np.random.default_rng([seed, 1])
    if not preset.num_classes:
        return rng.standard_normal((N_SAMPLES, preset.latent_dim)).astype(np.float32), None
    z = rng.standard_normal((SAMPLE_COLS, preset.latent_dim)).astype(np.float32)
    labels = np.repeat(np.arange(preset.num_classes, dtype=np.int32), SAMPLE_COLS)
    return np.tile(z, (preset.num_classes, 1)), labels


def publish_epoch(s: Session, summary: dict) -> None:
    """Score, checkpoint and snapshot a finished epoch, then tell the logs and the user."""
    cfg, epoch = s.cfg, summary["epoch"]
    if s.sync_stats is not None:  # a collective: every worker, before anything is drawn or saved
        s.sync_stats()
    if not s.chief:
        s.summaries.append(summary)
        s.write_run_info(epochs_done=epoch)  # in memory: a worker other than the chief writes nothing
        print_epoch(cfg, summary)
        return
    if s.open_score is not None:
        s.score, s.open_score = s.open_score(), None
    if s.score is not None:
        tq = time.perf_counter()
        cond = {"num_classes": s.preset.num_classes} if s.preset.num_classes else {}
        summary["quality"] = s.score(
            s.published, s.preset.latent_dim, s.preset.pixel_range, n=cfg.quality_samples, **cond
        )
        summary["quality_time_s"] = time.perf_counter() - tq
    elif s.quality_note:
        summary["quality_note"] = s.quality_note
    grid = s.samples01()
    s.summaries.append(summary)
    save_checkpoint(
        s.run_dir,
        {"epoch": epoch, "global_step": s.global_step, "elapsed_s": s.elapsed, "summaries": s.summaries},
        s.generator,
        s.discriminator,
        s.g_opt,
        s.d_opt,
        s.rng,
        s.ema_generator,
    )
    # An epoch folder of this number left by an earlier writer is replaced only here, by a
    # whole new one swapped in atomically (write_epoch_folder); the same goes for its
    # metrics lines (append_epoch). Nothing is deleted before its replacement exists.
    write_epoch_folder(s.run_dir, epoch, s.published, s.discriminator, grid, summary)
    s.metrics.append_epoch({"kind": "epoch", **summary})
    s.write_run_info(epochs_done=epoch)
    if s.tb is not None:
        _tensorboard_epoch(s.tb, epoch, grid, summary)
    print_epoch(cfg, summary)


def _tensorboard_epoch(tb, epoch: int, grid: np.ndarray, summary: dict) -> None:
    import tensorflow as tf

    with tb.as_default(step=epoch):
        tf.summary.image("samples", grid[:16], max_outputs=16)
        for k in (*LOSS_KEYS, "images_per_s"):
            tf.summary.scalar(f"epoch/{k}", summary[k])
        if summary["quality"]:
            tf.summary.scalar("epoch/fcd", summary["quality"]["fcd"])
            tf.summary.scalar("epoch/classifier_score", summary["quality"]["classifier_score"])
    tb.flush()


def fail_run(s: Session, exc: BaseException) -> None:
    status = "failed" if not isinstance(exc, KeyboardInterrupt) else "stopped"
    s.write_run_info(safe=True, status=status, error=f"{exc.__class__.__name__}: {exc}")
    s.write_progress({"status": status, "error": s.run_info["error"]}, safe=True)


def finish_run(s: Session, status: str) -> None:
    s.write_run_info(status=status)
    s.write_progress({"status": status, "epoch": s.run_info["epochs_done"], "epochs": s.cfg.epochs})


def _safe_write(path, obj):
    try:
        rf.write_json_atomic(path, obj)
    except OSError:
        pass  # disk full / read-only: the error itself is what the user needs to see


def progress_bar(cfg: TrainConfig, epoch: int, steps: int):
    if not cfg.progress_bar:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=steps,
        desc=f"epoch {epoch}/{cfg.epochs}",
        unit="step",
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
    )


def print_epoch(cfg: TrainConfig, s: dict) -> None:
    if not cfg.progress_bar:
        return
    q = s.get("quality") or {}
    qtxt = f"  FCD {q['fcd']:.2f}  IS {q['classifier_score']:.2f}" if q else ""
    print(
        f"epoch {s['epoch']}/{cfg.epochs}  d_loss {s['d_loss']:.3f}  g_loss {s['g_loss']:.3f}  "
        f"D acc real/fake {s['d_acc_real']:.2f}/{s['d_acc_fake']:.2f}  "
        f"{s['images_per_s']:.0f} img/s  {s['epoch_time_s']:.1f}s{qtxt}",
        flush=True,
    )
