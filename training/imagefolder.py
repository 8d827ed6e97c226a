"""A folder of images as training data, read with the convention of Keras'
``keras.utils.image_dataset_from_directory``.

- Files: .png .jpg .jpeg .bmp .gif (any case; a GIF's first frame). When the folder has
  sub-folders (not starting with '.'), each is a class (label = its index in sorted order) and
  is walked recursively; files directly in the folder are then ignored (Keras' rule). A folder
  without sub-folders is one unlabelled set.
- Each image: transparency composited over white, palette / 16-bit / CMYK converted, grey
  (ITU-R 601 luma) or RGB per ``channels`` (default RGB when any image is colour), then the
  centre square of the shorter side resized (Lanczos) to ``size`` px (``PREPROCESSING``).
- A file that cannot be decoded, is under ``MIN_SIDE`` px a side, or has more pixels than
  PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is skipped and counted (never
  decoded whole); no usable image at all is a DataError. Nothing here writes into a run folder.
- Decoded once into uint8 (N, size, size, channels): in memory, or, beyond ``memory_budget``
  bytes, into a memory-mapped cache file in a private temporary folder that the training loop
  streams batches from with tf.data (training/loop.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras' ALLOWLIST_FORMATS
SIZES = (28, 32, 64)
MIN_SIDE = 8
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
MEMORY_BUDGET = int(os.environ.get("LATENT_EXPLORER_IMAGE_MEMORY", 2 * 1024**3))
GREY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
# probe() refuses images over the limit itself (one line each, counted); PIL's own warning for
# them (it raises only above twice the limit) would only repeat that, and its filter is global
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
PREPROCESSING = (
    "transparency over white; the centre square of the shorter side, resized (Lanczos) to {s}x{s}; {c}"
)


class FolderError(ValueError):
    """No usable image in the folder (training.data re-raises it as DataError)."""


@dataclass
class FolderData:
    images: np.ndarray  # uint8 (N, size, size, channels); a np.memmap for large folders
    labels: np.ndarray | None
    info: dict = field(default_factory=dict)  # what run.json's "dataset" states


def list_images(folder: Path) -> tuple[list[Path], list[int] | None, list[str], int]:
    """(files, labels or None, class names, files ignored at the top) by Keras' convention."""
    subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def walk(top: Path) -> list[Path]:
        out = []
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out += [Path(root) / f for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
        return out

    if not subdirs:
        return walk(folder), None, [], 0
    files, labels = [], []
    for i, name in enumerate(subdirs):
        found = walk(folder / name)
        files += found
        labels += [i] * len(found)
    top = sum(1 for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(EXTENSIONS))
    return files, labels, subdirs, top


def _is_colour(im: Image.Image) -> bool:
    if im.mode in GREY_MODES:
        return False
    if im.mode in ("P", "PA"):
        pal = np.asarray(im.getpalette() or [], np.uint8).reshape(-1, 3)
        return bool(len(pal)) and not (np.all(pal[:, 0] == pal[:, 1]) and np.all(pal[:, 1] == pal[:, 2]))
    return True


def probe(path: Path) -> tuple[bool | None, str]:
    """Read only the header: (is it colour, "") or (None, why it is skipped)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            colour = _is_colour(im)
    except Image.DecompressionBombError:
        return None, f"over PIL's decompression-bomb limit of {MAX_PIXELS} pixels; downscale it first"
    except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, not fatal
        return None, _reason(exc)
    if w * h > MAX_PIXELS:
        return None, f"{w}x{h} is over PIL's decompression-bomb limit of {MAX_PIXELS} pixels; downscale it"
    if min(w, h) < MIN_SIDE:
        return None, f"{w}x{h} px is too small (at least {MIN_SIDE} px a side)"
    return colour, ""


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"cannot be read ({exc.__class__.__name__}{': ' + text if text else ''})"


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float greys -> 8-bit L; transparency composited over white."""
    if im.mode.startswith("I") or im.mode == "F":
        a = np.asarray(im, np.float32)
        a = a / 257.0 if im.mode.startswith("I;16") or a.max() > 255 else a
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if im.mode in ("P", "PA", "LA", "La", "RGBA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One file -> uint8 (size, size, channels); raises on a file that cannot be decoded."""
    mode = "RGB" if channels == 3 else "L"
    with Image.open(path) as im:
        im.draft(mode, (size, size))  # JPEG: decode at a reduced scale (no-op for other formats)
        im.load()
        im = _to_8bit(im).convert(mode)
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))  # then the filter sees only the square
        im = im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        return np.asarray(im, np.uint8).reshape(size, size, channels)


def _cache_array(shape: tuple, memory_budget: int) -> np.ndarray:
    """An array for the decoded images: in memory, or a memmap in a private temporary folder."""
    if int(np.prod(shape)) <= memory_budget:
        return np.empty(shape, np.uint8)
    tmp = tempfile.mkdtemp(prefix="latent-explorer-images-")
    # removes only the folder mkdtemp just made for this process: a re-makeable decoded copy
    atexit.register(shutil.rmtree, tmp, True)
    print(f"note: decoding into a cache file in {tmp} (removed at exit)", file=sys.stderr, flush=True)
    return np.lib.format.open_memmap(os.path.join(tmp, "images.npy"), "w+", np.uint8, shape)


def _skip_note(folder: Path, n_files: int, skipped: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"skipped {len(skipped)} of {n_files} image files in {folder}: {shown}{more}"


def load_image_folder(
    folder,
    size: int | None = None,
    channels: int | None = None,
    max_images: int | None = None,
    memory_budget: int = MEMORY_BUDGET,
) -> FolderData:
    """Read an image folder (see the module docstring); FolderError when nothing is usable."""
    folder = Path(folder)
    size = 32 if size is None else size
    files, labels, classes, top = list_images(folder)
    if not files:
        raise FolderError(
            f"{folder} holds no image files ({' '.join(EXTENSIONS)}) and no MNIST IDX files"
            + (f" in its class sub-folders ({', '.join(classes[:5])})" if classes else "")
        )
    if max_images is not None:
        files, labels = files[:max_images], (labels[:max_images] if labels is not None else None)
    with ThreadPoolExecutor(4) as pool:
        probes = list(pool.map(probe, files))
    skipped = [(_rel(folder, f), why) for f, (c, why) in zip(files, probes) if c is None]
    keep = [i for i, (c, _) in enumerate(probes) if c is not None]
    colour = any(probes[i][0] for i in keep)
    channels = (3 if colour else 1) if channels is None else channels
    out = _cache_array((len(keep), size, size, channels), memory_budget) if keep else None

    def one(j_i):
        j, i = j_i
        try:
            out[j] = decode(files[i], size, channels)
            return ""
        except Exception as exc:  # noqa: BLE001 - a corrupt file among good ones is skipped
            return _reason(exc)

    with ThreadPoolExecutor(4) as pool:
        errors = list(pool.map(one, enumerate(keep)))
    good = [j for j, e in enumerate(errors) if not e]
    skipped += [(_rel(folder, files[keep[j]]), e) for j, e in enumerate(errors) if e]
    if not good:
        why = f" (e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise FolderError(
            f"no readable image in {folder}: all {len(files)} image file(s) were skipped{why}; "
            "point --data at a folder of PNG/JPEG/BMP/GIF pictures"
        )
    images = out if len(good) == len(keep) else _compact(out, good, memory_budget)
    if skipped:
        print(f"note: {_skip_note(folder, len(files), skipped)}", file=sys.stderr, flush=True)
    if top:
        print(
            f"note: {top} image file(s) directly in {folder} ignored: with class sub-folders, "
            "only those are read (Keras' convention)",
            file=sys.stderr,
            flush=True,
        )
    lab = None if labels is None else np.asarray([labels[keep[j]] for j in good], np.int32)
    info = {
        "kind": "image folder",
        "image_size": size,
        "channels": channels,
        "preprocessing": PREPROCESSING.format(s=size, c="RGB" if channels == 3 else "grey (ITU-R 601 luma)"),
        "classes": classes or None,
        "skipped": {"count": len(skipped), "files": [{"file": f, "reason": r} for f, r in skipped[:20]]},
    }
    return FolderData(images, lab, info)


def _compact(out: np.ndarray, good: list[int], memory_budget: int) -> np.ndarray:
    """The decoded images without the rows of files that failed to decode."""
    compact = _cache_array((len(good), *out.shape[1:]), memory_budget)
    for k, j in enumerate(good):
        compact[k] = out[j]
    return compact


def _rel(folder: Path, f: Path) -> str:
    try:
        return str(f.relative_to(folder))
    except ValueError:
        return str(f)
