"""Training options (TrainConfig), their checks, and the run folder's first check.

Nothing here imports TensorFlow: the explorer reads PRECISIONS without loading it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from models.presets import DEFAULT_PRESET
from training import runfolder as rf
from training.augment import NONE as NO_AUGMENT
from training.augment import parse_policy

# float32; Keras' mixed_bfloat16 policy (bf16 layers, float32 variables, bf16 snapshots); or
# onednn_bfloat16: float32 models whose training step TensorFlow's oneDNN graph rewrite runs in
# bfloat16 (about as fast as the Keras policy here; snapshots stay plain float32 models)
PRECISIONS = ("float32", "mixed_bfloat16", "onednn_bfloat16")
N_SAMPLES = 64  # the fixed latent batch drawn into samples.png every epoch
DEFAULT_QUALITY_SAMPLES = 2000


def keras_policy(precision: str) -> str:
    """The Keras dtype policy the models are built under for a --precision."""
    return "mixed_bfloat16" if precision == "mixed_bfloat16" else "float32"


class ConfigError(ValueError):
    """A training option is wrong; the message says which and what to do."""


@dataclass
class TrainConfig:
    run_dir: str
    preset: str = DEFAULT_PRESET
    epochs: int | None = None  # None: the preset's default
    batch_size: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta_1: float | None = None
    seed: int = 0
    max_images: int | None = None
    data: str | None = None
    dataset: str = "mnist"
    image_size: int | None = None  # an image folder's side in px (28, 32, 64); None: 32
    channels: int | None = None  # an image folder's 1 (grey) or 3 (RGB); None: what the images are
    precision: str = "float32"
    devices: int = 1
    steps_per_call: int = 10
    quality_samples: int | None = None  # None: DEFAULT_QUALITY_SAMPLES (or the run's own on resume)
    label_noise: float = 0.0
    ema: float | None = None  # generator weight averaging decay; None: the preset's, 0: off
    augment: str | None = None  # DiffAugment policy for D's inputs (training/augment.py); None: preset's
    tensorboard: bool = True
    progress_bar: bool = True
    resume: bool = False
    command: str | None = None

    def resolved(self) -> TrainConfig:
        """Fill preset defaults and check every option; raises ConfigError."""
        from models import get_preset
        from models.cpu import precision_error

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
        try:
            c.augment = parse_policy(preset.augment if c.augment is None else c.augment)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        c.quality_samples = DEFAULT_QUALITY_SAMPLES if c.quality_samples is None else c.quality_samples
        checks = [
            (
                isinstance(c.epochs, int) and c.epochs >= 1,
                f"--epochs must be a whole number of at least 1, got {c.epochs}",
            ),
            (
                isinstance(c.batch_size, int) and c.batch_size >= 1,
                f"--batch-size must be a positive whole number, got {c.batch_size}",
            ),
            (c.lr_g > 0 and math.isfinite(c.lr_g), f"--lr-g must be a positive number, got {c.lr_g}"),
            (c.lr_d > 0 and math.isfinite(c.lr_d), f"--lr-d must be a positive number, got {c.lr_d}"),
            (0 <= c.beta_1 < 1, f"--beta-1 must be in [0, 1), got {c.beta_1}"),
            (
                c.max_images is None or c.max_images >= 1,
                f"--max-images must be a positive number, got {c.max_images}",
            ),
            (
                c.precision in PRECISIONS,
                f"--precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}",
            ),
            (not (why := precision_error(c.precision)), why),
            (0 <= c.ema < 1, f"--ema must be in [0, 1), got {c.ema}"),
            (c.image_size in (None, 28, 32, 64), f"--image-size must be 28, 32 or 64, got {c.image_size}"),
            (c.channels in (None, 1, 3), f"--channels must be 1 (grey) or 3 (RGB), got {c.channels}"),
            (c.devices >= 1, f"--devices must be at least 1, got {c.devices}"),
            (c.steps_per_call >= 1, f"--steps-per-call must be at least 1, got {c.steps_per_call}"),
            (c.quality_samples >= 0, f"--quality-samples must be 0 or more, got {c.quality_samples}"),
            (
                c.batch_size % c.devices == 0,
                f"--batch-size {c.batch_size} must be divisible by --devices {c.devices}",
            ),
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
    wrote: bool = True  # False: a worker other than the chief (several workers), which wrote nothing


def prepare_run_dir(cfg: TrainConfig) -> tuple[Path, dict | None]:
    """Check the run folder before anything is written. Returns (path, existing run.json)."""
    run_dir = Path(cfg.run_dir).expanduser()
    run_json = run_dir / rf.RUN_JSON
    if cfg.resume:
        if not run_json.is_file():
            raise rf.RunFolderError(
                f"--resume: {run_dir} holds no {rf.RUN_JSON}; start a new run without --resume"
            )
        try:
            return run_dir, rf.read_json_dict(run_json)
        except rf.RunFolderError as exc:
            raise rf.RunFolderError(f"--resume: cannot read {run_json}: {exc}") from None
    if run_dir.exists():
        if not run_dir.is_dir():
            raise rf.RunFolderError(f"{run_dir} exists and is not a folder; pick another --run-dir")
        if any(run_dir.iterdir()):
            raise rf.RunFolderError(
                f"run folder {run_dir} already exists; add --resume to continue it, "
                "or pick a new --run-dir (nothing was changed)"
            )
    return run_dir, None


def resume_config(cfg: TrainConfig, run_dir: Path, existing: dict) -> TrainConfig:
    """On --resume the run's own config is the truth; --epochs may extend it and
    --quality-samples may change how many samples are scored (neither changes the training)."""
    saved = existing.get("config")
    if not isinstance(saved, dict):
        raise rf.RunFolderError(f"--resume: {run_dir / rf.RUN_JSON} holds no config; cannot resume it")
    done = existing.get("epochs_done")
    if cfg.epochs is not None and isinstance(done, int) and cfg.epochs < done:
        # a total below what is done would train nothing and rewrite the run's planned total
        raise rf.RunFolderError(
            f"--resume --epochs {cfg.epochs}: {run_dir} has already trained {done} epochs; "
            f"--epochs is the new total, so give more than {done} (or leave it out)"
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    merged = {k: v for k, v in saved.items() if k in fields}
    # a run from before --augment trained without it: it keeps doing so whatever the preset's default
    merged.setdefault("augment", NO_AUGMENT)
    merged.update(
        run_dir=str(run_dir), resume=True, progress_bar=cfg.progress_bar, command=existing.get("command")
    )
    for name in ("epochs", "quality_samples"):
        if getattr(cfg, name) is not None:
            merged[name] = getattr(cfg, name)
    try:
        return TrainConfig(**merged)
    except TypeError as exc:
        raise rf.RunFolderError(f"--resume: the config in {rf.RUN_JSON} is not usable ({exc})") from None
