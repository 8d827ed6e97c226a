"""Why the dcgan discriminator has a 128-unit dense head: FCD per epoch for other head sizes.

Trains the default ``dcgan`` preset (all defaults, seed 0) on the 10,000 real digits once per
head size, swapping only the discriminator's dense layer (0 = Flatten -> logit), and prints the
evaluator's FCD after every epoch. FCD at a given epoch does not depend on machine load, so
the comparison holds on a busy machine; the img/s column does not.

    .venv/bin/python benchmarks/dcgan_ablation.py                     # heads 0 128 1024, 12 epochs
    .venv/bin/python benchmarks/dcgan_ablation.py --heads 128 256 --epochs 6

Last line: ``fcd_head<N>=...`` for each head at the final epoch, and the best head.
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
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--max-images", type=int)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import models.presets as presets
    from training.loop import TrainConfig, train

    base = presets.PRESETS["dcgan"]
    final = {}
    for units in args.heads:
        presets.PRESETS["dcgan"] = dataclasses.replace(
            base, build_discriminator=functools.partial(presets._dcgan_discriminator, units)
        )
        with tempfile.TemporaryDirectory() as tmp:
            res = train(
                TrainConfig(
                    run_dir=str(Path(tmp) / "run"),
                    data=args.data,
                    epochs=args.epochs,
                    max_images=args.max_images,
                    tensorboard=False,
                    progress_bar=False,
                )
            )
        print(f"head {units}:")
        print("  epoch  elapsed_s  img/s    FCD   classifier_score")
        for s in res.summaries:
            q = s["quality"]
            print(
                f"  {s['epoch']:5d}  {s['elapsed_s']:9.1f}  {s['images_per_s']:5.0f}  "
                f"{q['fcd']:6.2f}  {q['classifier_score']:5.2f}",
                flush=True,
            )
        final[units] = res.summaries[-1]["quality"]["fcd"]
    presets.PRESETS["dcgan"] = base
    best = min(final, key=final.get)
    print(
        " ".join(f"fcd_head{u}={v:.2f}" for u, v in final.items()) + f" best_head={best} epochs={args.epochs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
