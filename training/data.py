"""Loading the digits: Keras' MNIST loader online, a local IDX folder or .npz offline; or a
folder of images (training/imagefolder.py) through ``load_training_data``.

Every loader returns ``(images, labels)``: ``images`` uint8 of shape (N, 28, 28), ``labels``
uint8 of shape (N,) or None. Bad input raises :class:`DataError` with a message that says what
was wrong and what to do.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
OFFLINE_HINT = (
    "point at local data with --data PATH (a folder of MNIST IDX files such as "
    "../shared/data/mnist, or an .npz holding x_train)"
)


class DataError(ValueError):
    """Bad or missing training data; the message says what to do."""


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip or plain) into a NumPy array."""
    path = Path(path)
    try:
        with _open(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header incomplete)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    size = int(np.prod(dims)) if dims else 0
    if len(raw) - header < size:
        raise DataError(f"{path} is truncated: expected {size} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims)


def _pick(folder: Path, kind: str) -> list[Path]:
    """IDX files of a kind ('images' -> idx3, 'labels' -> idx1), train split first."""
    tag = "idx3" if kind == "images" else "idx1"
    files = sorted(p for p in folder.iterdir() if tag in p.name and p.is_file())
    return sorted(files, key=lambda p: (0 if "train" in p.name else 1, p.name))


def load_idx_folder(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    folder = Path(folder)
    image_files = _pick(folder, "images")
    if not image_files:
        raise DataError(f"no IDX image files (*idx3-ubyte[.gz]) in {folder}; " + OFFLINE_HINT)
    label_files = _pick(folder, "labels")
    images = [read_idx(p) for p in image_files]
    labels = [read_idx(p) for p in label_files]
    images_arr = np.concatenate(images) if len(images) > 1 else images[0]
    labels_arr = None
    if labels and sum(len(l) for l in labels) == len(images_arr):
        labels_arr = np.concatenate(labels) if len(labels) > 1 else labels[0]
    return images_arr, labels_arr


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            if "x_train" not in keys:
                raise DataError(
                    f"{path} has no 'x_train' array (it has: {', '.join(sorted(keys)) or 'nothing'});"
                    " save the images as x_train (and optionally x_test, y_train, y_test)"
                )
            x = [data["x_train"]]
            y = [data["y_train"]] if "y_train" in keys else None
            if "x_test" in keys:
                x.append(data["x_test"])
                if y is not None and "y_test" in keys:
                    y.append(data["y_test"])
                else:
                    y = None
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
        raise DataError(f"cannot read {path} as an .npz archive: {exc}") from None
    images = np.concatenate(x)
    labels = np.concatenate(y) if y is not None else None
    return images, labels


def _load_keras(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[name]
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:
        raise DataError(
            f"could not load {name} with Keras' loader (no internet?): {exc.__class__.__name__}; "
            + OFFLINE_HINT
        ) from None
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def _normalise(images: np.ndarray, source: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"images from {source} have shape {images.shape}; expected (N, 28, 28) or "
            "(N, 28, 28, 1) grayscale digits"
        )
    if len(images) == 0:
        raise DataError(f"{source} holds no images")
    if images.dtype != np.uint8:
        imgs = images.astype(np.float32)
        if not np.isfinite(imgs).all():
            raise DataError(f"images from {source} contain NaN or inf")
        if imgs.max() <= 1.0 + 1e-6 and imgs.min() >= -1e-6:
            imgs = imgs * 255.0
        images = np.clip(np.rint(imgs), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(images)


def load_dataset(
    dataset: str = "mnist", data: str | None = None, max_images: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Load training digits; returns (images uint8 (N,28,28), labels or None, source)."""
    if data:
        path = Path(data).expanduser()
        if not path.exists():
            raise DataError(f"data path {data} does not exist; " + OFFLINE_HINT)
        if path.is_dir():
            images, labels = load_idx_folder(path)
        elif path.suffix == ".npz":
            images, labels = load_npz(path)
        elif "idx" in path.name:
            images, labels = read_idx(path), None
        else:
            raise DataError(f"{data} is neither a folder of IDX files nor an .npz archive; " + OFFLINE_HINT)
        source = str(path.resolve())
    elif dataset == "fashion_mnist" and FASHION_DIR.is_dir():
        images, labels = load_idx_folder(FASHION_DIR)
        source = str(FASHION_DIR)
    elif dataset in ("mnist", "fashion_mnist"):
        images, labels = _load_keras(dataset)
        source = f"keras.datasets.{dataset}"
    else:
        raise DataError(f"unknown dataset {dataset!r}; use mnist or fashion_mnist, or --data PATH")
    images = _normalise(images, source)
    if labels is not None and len(labels) != len(images):
        labels = None
    if max_images is not None:
        if max_images <= 0:
            raise DataError(f"--max-images must be a positive number, got {max_images}")
        images = images[:max_images]
        labels = labels[:max_images] if labels is not None else None
    return images, labels, source


def is_image_folder(path: str | os.PathLike) -> bool:
    """A --data folder without MNIST IDX image files in it: a folder of images (Keras' convention)."""
    path = Path(path)
    return path.is_dir() and not _pick(path, "images")


def load_training_data(
    dataset: str = "mnist",
    data: str | None = None,
    max_images: int | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The training images, labels or None, and run.json's "dataset" facts (source, ...).

    A --data folder without MNIST IDX files is a folder of images: uint8 (N, s, s, c) at
    ``image_size`` px with ``channels``; everything else is 28x28 grey digits (N, 28, 28).
    """
    path = Path(data).expanduser() if data else None
    if path is not None and is_image_folder(path):
        from training.imagefolder import FolderError, load_image_folder

        if max_images is not None and max_images <= 0:
            raise DataError(f"--max-images must be a positive number, got {max_images}")
        try:
            folder = load_image_folder(path, image_size, channels, max_images)
        except (FolderError, OSError) as exc:
            raise DataError(str(exc)) from None
        return folder.images, folder.labels, {"source": str(path.resolve()), **folder.info}
    if (image_size or 28) != 28 or (channels or 1) != 1:
        raise DataError(
            "--image-size and --channels apply to a folder of images (--data FOLDER); "
            "MNIST-style digits are 28x28 grey (leave both out)"
        )
    images, labels, source = load_dataset(dataset, data, max_images)
    return images, labels, {"source": source}


def class_labels(labels: np.ndarray | None, num_classes: int, source: str) -> np.ndarray:
    """The labels a conditional preset trains on, as int32 in [0, num_classes); DataError otherwise."""
    if labels is None:
        raise DataError(
            f"the conditional preset needs a label for every image, and {source} gives none; use a "
            "folder of MNIST IDX files with its *idx1-ubyte label files, an .npz with y_train, or an "
            "image folder with one sub-folder per class"
        )
    y = np.asarray(labels).reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and not 0 <= y.min() <= y.max() < num_classes):
        found = f"{y.min()}..{y.max()}" if len(y) and np.issubdtype(y.dtype, np.number) else str(y.dtype)
        raise DataError(
            f"labels from {source} must be whole numbers from 0 to {num_classes - 1} (found {found}); "
            "fix the label file or train an unconditional preset"
        )
    return y.astype(np.int32)
