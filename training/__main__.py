"""python -m training: train a DCGAN, one snapshot per epoch (see training/CONTRACT.md)."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # grappler prints harmless "errors"
# Keras imports pandas when it is installed (Gradio installs it), only to accept DataFrames as
# data. The trainer never gets one, and that import is 0.6-0.8 s of every training process's start
# (`import tensorflow, keras`: 5.4-6.4 s of CPU with it, 4.8-5.6 s without, 2 AVX2 cores).
# Keras then treats pandas as absent (it catches the ImportError); nothing else here uses it.
if __name__ == "__main__":
    sys.modules.setdefault("pandas", None)


def build_parser() -> argparse.ArgumentParser:
    from models.presets import DEFAULT_PRESET, PRESETS
    from training.loop import PRECISIONS

    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a DCGAN on MNIST-like digits; writes a snapshot after every epoch.",
    )
    p.add_argument("--run-dir", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=sorted(PRESETS),
        help=f"network preset (default {DEFAULT_PRESET})",
    )
    p.add_argument("--epochs", type=int, help="total epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: the preset's)")
    p.add_argument("--lr-g", type=float, help="generator Adam learning rate")
    p.add_argument("--lr-d", type=float, help="discriminator Adam learning rate")
    p.add_argument("--beta-1", type=float, help="Adam beta_1")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic)")
    p.add_argument("--max-images", type=int, help="train on the first N images only")
    p.add_argument(
        "--data",
        help="local data: a folder of IDX files (gz or not), an .npz with x_train, or a folder of "
        "images (PNG/JPEG/BMP/GIF, nested; class sub-folders are labels, as in Keras)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        choices=[28, 32, 64],
        help="an image folder's size in px (centre square, resized; default 32)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=[1, 3],
        help="an image folder's channels: 1 grey, 3 RGB (default: RGB if any image is colour)",
    )
    p.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion_mnist"],
        help="dataset for Keras' loader when --data is not given",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="float32 (default); mixed_bfloat16: Keras' policy, bf16 snapshots; "
        "onednn_bfloat16: float32 models whose training step oneDNN runs in "
        "bfloat16. Both bf16 options pay off only on CPUs with avx512_bf16 or AMX",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="devices for MirroredStrategy (GPUs, or the CPU split in logical devices)",
    )
    p.add_argument("--steps-per-call", type=int, default=10, help="train steps per tf.function call")
    p.add_argument(
        "--quality-samples",
        type=int,
        help="generated samples scored per epoch by the evaluator (0: off; default "
        "2000, or the run's own with --resume, where it may be changed)",
    )
    _add_recipe_args(p)
    p.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard logs")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    return p


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    """The options that change what D and G are trained against (beyond the optimiser)."""
    p.add_argument(
        "--label-noise", type=float, default=0.0, help="noise added to D's labels (keras.io uses 0.05)"
    )
    p.add_argument(
        "--ema",
        type=float,
        help="decay of the generator weight average that is snapshotted (0: off; default: the preset's)",
    )
    p.add_argument(
        "--augment",
        help="DiffAugment of every image D sees, real and fake: 'none' or a comma list of "
        "translation, cutout (black square), cutout_grey (grey square) (default: the preset's, "
        "dcgan: translation,cutout_grey; kept on --resume)",
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)

    from training.cluster import WorkerLost
    from training.data import DataError
    from training.loop import ConfigError, TrainConfig, train
    from training.runfolder import RunFolderError

    cfg = TrainConfig(
        run_dir=args.run_dir,
        preset=args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        beta_1=args.beta_1,
        seed=args.seed,
        max_images=args.max_images,
        data=args.data,
        dataset=args.dataset,
        image_size=args.image_size,
        channels=args.channels,
        precision=args.precision,
        devices=args.devices,
        steps_per_call=args.steps_per_call,
        quality_samples=args.quality_samples,
        label_noise=args.label_noise,
        ema=args.ema,
        augment=args.augment,
        tensorboard=not args.no_tensorboard,
        progress_bar=not args.quiet,
        resume=args.resume,
        command="python -m training " + shlex.join(argv),
    )
    from models.cpu import precision_note

    if note := precision_note(args.precision):
        print(f"note: {note}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def request_stop(signum, _frame):
        if stop.is_set():  # a second Ctrl-C: leave now (whole epochs are already safe)
            raise KeyboardInterrupt
        print(
            f"\nstopping after the current steps ({signal.Signals(signum).name}); "
            "whole epochs are kept; continue with --resume",
            file=sys.stderr,
            flush=True,
        )
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        result = train(cfg, stop=stop)
    except (ConfigError, DataError, RunFolderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: could not write the run folder {args.run_dir}: {exc.strerror or exc}. "
            "Whole epochs already written are intact; free space or fix permissions, then "
            "continue with --resume",
            file=sys.stderr,
        )
        return 1
    except (FloatingPointError, WorkerLost) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = f"in {result.run_dir}" if result.wrote else "(not the chief: the chief wrote the run folder)"
    print(f"{result.status}: {result.epochs_done} epoch(s) {where}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
