"""The dcgan recipe's choices, measured: D's dense head size and DiffAugment on or off.

Trains the default ``dcgan`` preset (all other defaults, seed 0) on the 10,000 real digits once
per (head size, augment policy), swapping only the discriminator's dense layer (0 = Flatten ->
logit) and the ``--augment`` setting (training/augment.py), and prints the evaluator's FCD,
classifier score and confident share after every epoch. These figures at a given epoch do not
depend on machine load, so the comparison holds on a busy machine; the img/s column does not.

    .venv/bin/python benchmarks/dcgan_ablation.py                     # heads 0 128 1024, 12 epochs
    .venv/bin/python benchmarks/dcgan_ablation.py --heads 128 256 --epochs 6
    .venv/bin/python benchmarks/dcgan_ablation.py --heads 128 --augment none translation,cutout_grey

Last line: ``fcd_<variant>=...`` for each variant at the final epoch, and the best variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, nargs="+", default=[0, 128, 1024])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument(
        "--augment",
        nargs="+",
        default=[None],
        help="DiffAugment policies to compare, e.g. none translation,cutout_grey (default: the preset's)",
    )
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--max-images", type=int)
    args = ap.parse_args()
    from training.augment import parse_policy

    try:
        args.augment = [None if a is None else parse_policy(a) for a in args.augment]
    except ValueError as exc:
        ap.error(str(exc))
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import models.presets as presets
    from training.loop import TrainConfig, train

    base = presets.PRESETS["dcgan"]
    final = {}
    for units in args.heads:
        for policy in args.augment:
            presets.PRESETS["dcgan"] = dataclasses.replace(
                base, build_discriminator=functools.partial(presets._dcgan_discriminator, units)
            )
            name = f"head{units}" + ("" if policy is None else f"_augment={policy}")
            final[name] = _train_and_print(name, args, TrainConfig, train, policy)
    presets.PRESETS["dcgan"] = base
    best = min(final, key=final.get)
    print(" ".join(f"fcd_{k}={v:.2f}" for k, v in final.items()) + f" best={best} epochs={args.epochs}")
    return 0


def _train_and_print(name, args, TrainConfig, train, policy) -> float:
    """One training run in a temporary folder; prints its per-epoch table, returns its final FCD."""
    with tempfile.TemporaryDirectory() as tmp:
        res = train(
            TrainConfig(
                run_dir=str(Path(tmp) / "run"),
                data=args.data,
                epochs=args.epochs,
                max_images=args.max_images,
                augment=policy,
                tensorboard=False,
                progress_bar=False,
            )
        )
    print(f"{name}:")
    print("  epoch  elapsed_s  img/s    FCD   classifier_score  confident_share")
    for s in res.summaries:
        q = s["quality"]
        print(
            f"  {s['epoch']:5d}  {s['elapsed_s']:9.1f}  {s['images_per_s']:5.0f}  "
            f"{q['fcd']:6.2f}  {q['classifier_score']:16.2f}  {q['confident_share']:15.3f}",
            flush=True,
        )
    return res.summaries[-1]["quality"]["fcd"]


if __name__ == "__main__":
    sys.exit(main())
