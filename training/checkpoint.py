"""Where a run continues from: checkpoint/ (everything) or, without one, the last epoch folder.

checkpoint/ holds the latest whole epoch's weights, optimizer slots and RNG state: resuming from
it gives the same numbers as an uninterrupted run. A run folder without one (the pruned demo, a
copied run) continues from its last whole epoch folder: the snapshotted generator and
discriminator, with fresh optimizer state. Either way nothing on disk is deleted to resume:
every epoch folder and metrics line stays until the re-trained epoch that replaces it is written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training import runfolder as rf
from training.runfolder import RunFolderError


@dataclass
class ResumePoint:
    """Where training starts: epoch 0 (a new run) or the end of a whole epoch."""

    epoch: int = 0
    global_step: int = 0
    elapsed: float = 0.0
    summaries: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None  # restore weights, optimizers and RNG from here ...
    weights: tuple[list, list] | None = None  # ... or only (G, D) weights of an epoch snapshot
    optimizer_state: str = "new run"

    def record(self) -> dict:
        """The run.json "resumes" entry for this resume."""
        return {"from_epoch": self.epoch, "optimizer_state": self.optimizer_state, "time": rf.now_iso()}


# ----------------------------------------------------------------------------- checkpoint/
def _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator=None):
    groups = [
        ("g", generator.variables),
        ("d", discriminator.variables),
        ("go", list(g_opt.variables)),
        ("do", list(d_opt.variables)),
    ]
    if ema_generator is not None:
        groups.append(("ge", ema_generator.variables))
    return groups


def save_checkpoint(
    run_dir: Path, state: dict, generator, discriminator, g_opt, d_opt, rng, ema_generator=None
):
    """checkpoint/ holds the latest whole epoch: written aside, then swapped in.

    The old checkpoint is removed only after the new one was renamed into its place, and a
    temporary is never the only copy of anything, so nothing that cannot be re-made is deleted.
    """
    run_dir = Path(run_dir)
    tmp = run_dir / f".{rf.CHECKPOINT}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        arrays = {}
        for prefix, vs in _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator):
            for i, v in enumerate(vs):
                arrays[f"{prefix}_{i:04d}"] = np.asarray(v.numpy())
        arrays["rng_state"] = rng.state.numpy()
        with open(tmp / rf.CHECKPOINT_ARRAYS, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        rf.write_json_atomic(tmp / rf.CHECKPOINT_STATE, state)
        final = run_dir / rf.CHECKPOINT
        old = run_dir / f".{rf.CHECKPOINT}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def find_checkpoint(run_dir: Path) -> Path | None:
    run_dir = Path(run_dir)
    cands = [run_dir / rf.CHECKPOINT] + sorted(run_dir.glob(f".{rf.CHECKPOINT}.old-*"))
    for c in cands:  # an .old one survives only if killed between the two renames
        if (c / rf.CHECKPOINT_STATE).is_file() and (c / rf.CHECKPOINT_ARRAYS).is_file():
            return c
    return None


def load_checkpoint(path: Path, generator, discriminator, g_opt, d_opt, rng, ema_generator=None) -> None:
    """Restore every variable from checkpoint ``path``; RunFolderError when it does not fit."""
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    try:
        with np.load(path / rf.CHECKPOINT_ARRAYS) as z:
            for prefix, vs in _ckpt_groups(generator, discriminator, g_opt, d_opt, ema_generator):
                for i, v in enumerate(vs):
                    v.assign(z[f"{prefix}_{i:04d}"])
            rng.state.assign(z["rng_state"])
    except (OSError, ValueError, KeyError) as exc:
        raise RunFolderError(
            f"--resume: {path.name}/{rf.CHECKPOINT_ARRAYS} cannot be restored "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]}); move {path.name} aside "
            "to continue from the last epoch folder (nothing was changed)"
        ) from None


def _checkpoint_point(ckpt: Path) -> ResumePoint:
    where = f"{ckpt.name}/{rf.CHECKPOINT_STATE}"
    try:
        state = rf.read_json_dict(ckpt / rf.CHECKPOINT_STATE)
        point = ResumePoint(
            epoch=int(state["epoch"]),
            global_step=int(state["global_step"]),
            elapsed=float(state.get("elapsed_s", 0.0)),
            summaries=[dict(s) for s in state.get("summaries", [])],
            checkpoint=ckpt,
            optimizer_state=f"restored from {rf.CHECKPOINT}/",
        )
    except (RunFolderError, KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"--resume: {where} is not usable ({exc}); move {ckpt.name} aside to "
            "continue from the last epoch folder (nothing was changed)"
        ) from None
    if not all(isinstance(s.get("epoch"), int) for s in point.summaries):
        raise RunFolderError(f"--resume: {where} holds malformed summaries (nothing was changed)")
    return point


# ----------------------------------------------------------------------------- epoch snapshots
def _load_snapshot_model(folder: Path, name: str):
    import keras

    try:
        return keras.saving.load_model(folder / name, safe_mode=True, compile=False)
    except Exception as exc:  # a torn or foreign file: Keras raises many kinds
        reason = (str(exc).splitlines() or [""])[0][:160]
        raise RunFolderError(
            f"--resume: cannot load {folder.name}/{name} ({exc.__class__.__name__}: {reason}); "
            f"the last whole epoch is damaged and there is no {rf.CHECKPOINT}/ to resume from: "
            f"restore {folder.name} or move it out of {rf.EPOCHS}/ (nothing was changed)"
        ) from None


def _snapshot_summaries(run_dir: Path, epoch: int, last: dict) -> list[dict]:
    """Epoch summaries up to ``epoch``: metrics.jsonl's epoch lines, the folder's summary last."""
    by_epoch: dict[int, dict] = {}
    for row in rf.read_jsonl(run_dir / rf.METRICS):
        e = rf.as_epoch(row.get("epoch"))
        if row.get("kind") == "epoch" and e is not None and e < epoch:
            by_epoch[e] = {k: v for k, v in row.items() if k != "kind"}
    by_epoch[epoch] = last
    return [by_epoch[e] for e in sorted(by_epoch)]


def _snapshot_point(run_dir: Path, epoch: int, why: str) -> ResumePoint:
    folder = rf.epoch_path(run_dir, epoch)
    try:
        summary = rf.read_json_dict(folder / rf.SUMMARY)
        global_step, elapsed = int(summary["global_step"]), float(summary["elapsed_s"])
    except (RunFolderError, KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"--resume: {folder.name}/{rf.SUMMARY} is not usable ({exc}); restore {folder.name} "
            f"or move it out of {rf.EPOCHS}/ (nothing was changed)"
        ) from None
    g = _load_snapshot_model(folder, rf.GENERATOR).get_weights()
    d = _load_snapshot_model(folder, rf.DISCRIMINATOR).get_weights()
    return ResumePoint(
        epoch=epoch,
        global_step=global_step,
        elapsed=elapsed,
        summaries=_snapshot_summaries(run_dir, epoch, summary),
        weights=(g, d),
        optimizer_state=f"fresh ({why})",
    )


def find_resume_point(run_dir: Path) -> ResumePoint:
    """Where ``--resume`` continues; reads only, so a refusal changes nothing.

    The checkpoint when it is at least as new as the last whole epoch folder; otherwise that
    folder's snapshot (weights only); with neither, a new start at epoch 0.
    """
    epochs = rf.list_epochs(run_dir)
    last = epochs[-1] if epochs else 0
    ckpt = find_checkpoint(run_dir)
    if ckpt is not None:
        point = _checkpoint_point(ckpt)
        if point.epoch >= last:
            return point
        return _snapshot_point(run_dir, last, f"{rf.CHECKPOINT}/ is older, epoch {point.epoch}")
    if last == 0:
        return ResumePoint(optimizer_state="new (nothing whole to resume from)")
    return _snapshot_point(run_dir, last, f"no {rf.CHECKPOINT}/")


def restore(point: ResumePoint, generator, discriminator, g_opt, d_opt, rng, ema_generator=None):
    """Put ``point``'s state into freshly built models (RunFolderError when it does not fit)."""
    if point.checkpoint is not None:
        load_checkpoint(point.checkpoint, generator, discriminator, g_opt, d_opt, rng, ema_generator)
    elif point.weights is not None:
        g, d = point.weights
        try:  # the snapshotted G is the weight average when there is one: it seeds both copies
            generator.set_weights(g)
            discriminator.set_weights(d)
            if ema_generator is not None:
                ema_generator.set_weights(g)
        except ValueError as exc:
            raise RunFolderError(
                f"--resume: epoch {point.epoch}'s snapshot does not fit this run's preset "
                f"({str(exc).splitlines()[0][:160]}) (nothing was changed)"
            ) from None
