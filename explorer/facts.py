"""What a run folder says, validated ONCE into typed values (training/CONTRACT.md).

run.json -> ``RunFacts``, summary.json -> ``EpochSummary``, metrics.jsonl rows -> clean dicts.
Everything downstream (engine, render, figures, the UI) reads these, never raw JSON from disk:
numbers are finite or None, whole numbers are in range, strings are short, containers are
shallow and plain. A file whose known fields have impossible values raises ``FactsError``
with a one-line reason naming the field; the registry then marks only that run or epoch broken.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from models.evaluator import EVALUATORS  # the evaluators by name (standard library only)
from training.runfolder import MAX_EPOCH, as_epoch

MAX_LATENT_DIM = 4096
MAX_CLASSES = 1000
MAX_PIXEL_ABS = 1000.0  # a pixel range is [0, 1] or [-1, 1]; [0, 255] is still fine
MAX_TEXT = 2000  # characters kept of any string read from disk
MAX_ITEMS = 256  # entries kept of any list or object read from disk
MAX_PLAIN_DEPTH = 6


class FactsError(ValueError):
    """A run-folder file holds a value that cannot be what training wrote."""


def finite(value) -> float | None:
    """A JSON number as a finite float; anything else (NaN, inf, strings, bools) -> None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return f if math.isfinite(f) else None


def whole(value, lo: int, hi: int) -> int | None:
    f = finite(value)
    if f is None or not f.is_integer() or not lo <= f <= hi:
        return None
    return int(f)


def plain(obj, depth: int = 0):
    """Any JSON value -> a bounded plain copy: finite numbers, short strings, shallow containers."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, (int, float)):
        f = finite(obj)
        return None if f is None else (int(obj) if isinstance(obj, int) and abs(obj) < 2**53 else f)
    if isinstance(obj, str):
        return obj[:MAX_TEXT]
    if depth >= MAX_PLAIN_DEPTH:
        return None
    if isinstance(obj, dict):
        return {str(k)[:200]: plain(v, depth + 1) for k, v in list(obj.items())[:MAX_ITEMS]}
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in list(obj)[:MAX_ITEMS]]
    return None


def _number(obj: dict, key: str, where: str) -> float | None:
    """An optional number field: absent or null -> None; NaN/inf -> None; wrong type -> FactsError."""
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FactsError(f"{where}: {key} is {_show(v)}, not a number")
    return finite(v)


def _count(obj: dict, key: str, where: str, hi: int) -> int | None:
    """An optional whole-number field: absent, null, NaN or inf -> None; else 0..hi or FactsError."""
    v = _number(obj, key, where)
    if v is None:
        return None
    if not v.is_integer() or not 0 <= v <= hi:
        raise FactsError(f"{where}: {key} is {_show(obj[key])}, not a whole number from 0 to {hi}")
    return int(v)


def _show(v) -> str:
    """A value for a one-line message: short, never the whole of a big container."""
    if isinstance(v, dict) or (isinstance(v, list) and len(v) > 8):
        return "an object" if isinstance(v, dict) else f"a list of {len(v)}"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(obj: dict, key: str, default: str | None = None) -> str | None:
    v = obj.get(key)
    return v[:200] if isinstance(v, str) else default


# ----------------------------------------------------------------------------- run.json
@dataclass(frozen=True)
class RunFacts:
    latent_dim: int
    pixel_range: tuple[float, float]
    image_shape: tuple[int, ...] = (28, 28, 1)
    d_outputs_logits: bool = True
    num_classes: int = 0  # > 0: a conditional run (G and D take a class label too)
    status: str = "unknown"
    name: str | None = None
    preset: str | None = None
    epochs_done: int | None = None
    config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # the whole run.json, cleaned (for display)


def run_facts(raw) -> RunFacts:
    """run.json's values -> RunFacts, or FactsError saying which field is impossible."""
    if not isinstance(raw, dict):
        raise FactsError(f"run.json holds a {type(raw).__name__}, not a JSON object")
    if "latent_dim" not in raw:
        raise FactsError("run.json lacks latent_dim")
    dim = whole(raw["latent_dim"], 1, MAX_LATENT_DIM)
    if dim is None:
        raise FactsError(
            f"run.json: latent_dim is {_show(raw['latent_dim'])}, "
            f"not a whole number from 1 to {MAX_LATENT_DIM}"
        )
    pr = raw.get("pixel_range", [0.0, 1.0])
    lo, hi = (finite(v) for v in pr) if isinstance(pr, list) and len(pr) == 2 else (None, None)
    if lo is None or hi is None or not -MAX_PIXEL_ABS <= lo < hi <= MAX_PIXEL_ABS or hi - lo < 1e-3:
        raise FactsError(
            f"run.json: pixel_range is {_show(pr)}, not [low, high] with "
            f"low < high within ±{MAX_PIXEL_ABS:g} (e.g. [-1, 1] or [0, 1])"
        )
    shape = raw.get("image_shape", [28, 28, 1])
    dims = [whole(v, 1, 4096) for v in shape] if isinstance(shape, list) and 2 <= len(shape) <= 3 else [None]
    if None in dims or len(dims) == 3 and dims[2] not in (1, 3):
        raise FactsError(
            f"run.json: image_shape is {_show(shape)}, not [height, width, channels] with 1 or 3 channels"
        )
    dims = [*dims[:2], dims[2] if len(dims) == 3 else 1]
    logits = raw.get("d_outputs_logits", True)
    if not isinstance(logits, bool):
        raise FactsError(f"run.json: d_outputs_logits is {_show(logits)}, not true or false")
    classes = _classes(raw)
    info = plain(raw)
    info.update(latent_dim=dim, pixel_range=[lo, hi], image_shape=dims, d_outputs_logits=logits)
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    return RunFacts(
        latent_dim=dim,
        pixel_range=(lo, hi),
        image_shape=tuple(dims),
        d_outputs_logits=logits,
        num_classes=classes,
        status=_text(raw, "status", "unknown"),
        name=_text(raw, "name"),
        preset=_text(raw, "preset"),
        epochs_done=whole(raw.get("epochs_done"), 0, MAX_EPOCH),
        config=config,
        info=info,
    )


def _classes(raw: dict) -> int:
    """run.json's ``conditional`` / ``num_classes`` -> the number of classes (0: unconditional)."""
    cond = raw.get("conditional", False)
    if not isinstance(cond, bool):
        raise FactsError(f"run.json: conditional is {_show(cond)}, not true or false")
    if not cond:
        return 0
    n = whole(raw.get("num_classes"), 2, MAX_CLASSES)
    if n is None:
        raise FactsError(
            f"run.json: conditional is true but num_classes is {_show(raw.get('num_classes'))}, "
            f"not a whole number from 2 to {MAX_CLASSES}"
        )
    return n


def cell_shape(image_shape) -> tuple:
    """(H, W, 1) -> (H, W); (H, W, 3) stays: one image's array as the explorer's views get it."""
    h, w, c = image_shape
    return (h, w) if c == 1 else (h, w, c)


# ----------------------------------------------------------------------------- summary.json
SUMMARY_NUMBERS = (
    "d_loss",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "images_per_s",
    "epoch_time_s",
    "elapsed_s",
    "quality_time_s",
)
QUALITY_NUMBERS = ("fcd", "fcd_floor", "classifier_score", "confident_share", "conditional_accuracy")
# the memorisation figure (training/nnindex.py) and its distances: a value that is not a number in
# range is read as missing, never as a broken epoch (older runs lack them; they are extras)
MEMORISATION = {"memorised_share": 1.0, "memorised_threshold": 2.0, "nn_distance_median": 2.0}


@dataclass(frozen=True)
class Quality:
    fcd: float | None = None
    fcd_floor: float | None = None
    classifier_score: float | None = None
    confident_share: float | None = None
    digit_histogram: tuple[float, ...] | None = None
    mode_coverage: int | None = None
    n_samples: int | None = None
    conditional_accuracy: float | None = None  # conditional runs: share read as the digit asked for
    memorised_share: float | None = None
    memorised_threshold: float | None = None
    nn_distance_median: float | None = None
    evaluator: str | None = None  # which evaluator scored (models/evaluator.py); None: MNIST's

    def as_dict(self) -> dict:
        d = asdict(self)
        d["digit_histogram"] = None if self.digit_histogram is None else list(self.digit_histogram)
        return d


def quality(raw, where: str = "quality") -> Quality:
    if not isinstance(raw, dict):
        raise FactsError(f"{where} is {_show(raw)}, not an object")
    nums = {k: _number(raw, k, where) for k in QUALITY_NUMBERS}
    hist = raw.get("digit_histogram")
    if hist is not None:
        if not isinstance(hist, list) or len(hist) > 1000:
            raise FactsError(f"{where}: digit_histogram is {_show(hist)}, not a list of numbers")
        hist = tuple(_number({"v": h}, "v", f"{where}: digit_histogram") or 0.0 for h in hist)
    ints = {k: _count(raw, k, where, 10**9) for k in ("mode_coverage", "n_samples")}
    memo = {k: in_range(raw.get(k), 0.0, hi) for k, hi in MEMORISATION.items()}
    ev = raw.get("evaluator")  # an unknown name reads as missing (MNIST's), never as a broken epoch
    ev = ev if isinstance(ev, str) and ev in EVALUATORS else None
    return Quality(**nums, digit_histogram=hist, **ints, **memo, evaluator=ev)


def in_range(value, lo: float, hi: float) -> float | None:
    """A finite number within [lo, hi], else None (missing)."""
    f = finite(value)
    return f if f is not None and lo <= f <= hi else None


@dataclass(frozen=True)
class EpochSummary:
    epoch: int | None = None
    steps: int | None = None
    global_step: int | None = None
    d_loss: float | None = None
    g_loss: float | None = None
    d_acc_real: float | None = None
    d_acc_fake: float | None = None
    images_per_s: float | None = None
    epoch_time_s: float | None = None
    elapsed_s: float | None = None
    quality_time_s: float | None = None
    quality: Quality | None = None
    quality_note: str | None = None  # why quality was not scored (data the evaluator cannot judge)

    def as_dict(self) -> dict:
        """The cleaned summary as plain JSON values (what ``EpochInfo.summary`` holds)."""
        d = asdict(self)
        d["quality"] = None if self.quality is None else self.quality.as_dict()
        return d


def epoch_summary(raw) -> EpochSummary:
    """summary.json's values -> EpochSummary, or FactsError naming the impossible field."""
    if not isinstance(raw, dict):
        raise FactsError(f"summary.json holds a {type(raw).__name__}, not a JSON object")
    nums = {k: _number(raw, k, "summary.json") for k in SUMMARY_NUMBERS}
    counts = {
        k: _count(raw, k, "summary.json", MAX_EPOCH if k == "epoch" else 10**12)
        for k in ("epoch", "steps", "global_step")
    }
    q = raw.get("quality")
    return EpochSummary(
        **counts,
        **nums,
        quality=None if q is None else quality(q, "summary.json: quality"),
        quality_note=_text(raw, "quality_note"),
    )


# ----------------------------------------------------------------------------- metrics.jsonl
def metrics_row(raw) -> dict | None:
    """One metrics.jsonl line -> a clean row, or None to skip it.

    'epoch' (when present) must be a whole number in range, else the row is skipped; numbers
    that are not finite become None; 'quality' becomes a clean quality dict or None.
    """
    if not isinstance(raw, dict):
        return None
    row = plain(raw)
    if "epoch" in raw:
        row["epoch"] = as_epoch(raw["epoch"])
        if row["epoch"] is None:
            return None
    if "kind" in raw and not isinstance(raw["kind"], str):
        return None
    if "quality" in raw:
        try:
            row["quality"] = quality(raw["quality"]).as_dict() if raw["quality"] is not None else None
        except FactsError:
            row["quality"] = None
    return row
