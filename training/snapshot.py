"""Writing snapshots into the run folder (names and atomic writes: training/runfolder.py).

Every file goes to a temporary name in the same folder and is renamed into place; an epoch
folder is built as ``epochs/.epoch-NNNN.tmp-PID`` and renamed whole.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from training import runfolder as rf


def image_grid(images01: np.ndarray, cols: int = 8, pad: int = 2) -> Image.Image:
    """(N,H,W[,1]) floats in [0,1] -> one grayscale PIL grid; (N,H,W,3) -> an RGB grid."""
    imgs = np.asarray(images01, dtype=np.float32)
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    n, h, w = imgs.shape[:3]
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, *imgs.shape[3:]), dtype=np.uint8)
    u8 = (np.clip(imgs, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = u8[i]
    return Image.fromarray(grid, mode="L" if grid.ndim == 2 else "RGB")


def write_epoch_folder(
    run_dir: Path, epoch: int, generator, discriminator, samples01: np.ndarray, summary: dict
) -> Path:
    """Write epochs/epoch-NNNN whole, or not at all."""
    epochs_dir = Path(run_dir) / rf.EPOCHS
    epochs_dir.mkdir(parents=True, exist_ok=True)
    name = rf.epoch_dirname(epoch)
    final = epochs_dir / name
    tmp = epochs_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        generator.save(tmp / rf.GENERATOR)
        discriminator.save(tmp / rf.DISCRIMINATOR)
        image_grid(samples01).save(tmp / rf.SAMPLES)
        rf.write_json_atomic(tmp / rf.SUMMARY, summary)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        # Re-written after a resume: the old folder is moved aside only once the new one is
        # whole, and removed only after the new one is in its place, so it is never deleted
        # without its replacement (a kill in between leaves the .old- copy, cleaned next time
        # only because the new folder is already in place).
        if final.exists():
            old = epochs_dir / f".{name}.old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        rf.fsync_dir(epochs_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
