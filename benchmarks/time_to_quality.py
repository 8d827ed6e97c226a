"""Time to readable digits: training seconds until FCD falls below READABLE_FCD.

    .venv/bin/python benchmarks/time_to_quality.py [--max-images 10000] [--quality-samples 2000]
        [--threshold 50] [--ours-budget-s 900] [--ref-budget-s 900]

Two contenders train on the same real digits (the 10,000 shared ones), one after the other:
- ours: the default `dcgan` preset with default settings through training.loop.train (a real
  run folder, in a temporary directory), scored by the loop itself after every epoch
  (quality_samples); stopped after the first epoch whose FCD is below the threshold;
- ref: the keras.io guide's GAN loop (benchmarks/_reference.py, `keras-io` networks), scored
  with the same scorer (training.quality.score_generator, same sample count and latent batch)
  after every epoch, plus once when its training clock passes ours_s; capped at --ref-budget-s.

Clocks. ours_s / ref_s = TRAINING time only: the step loop including tf.function tracing, not
model building, data loading, scoring, checkpoints or epoch folders (for ours, the
`elapsed_s` the loop records). Scoring is reported apart (*_quality_s), and ours_wall_s is the
whole wall time from calling train() to the crossing epoch's end (everything included).
ratio = ref_s / ours_s. If the reference never crosses within its budget, ref_reached=0,
ratio=nan and ratio_lower_bound = budget / ours_s. "FCD at equal time": each contender's latest
FCD when its training clock reached ours_s (ours_fcd_at_ours_s; ref_fcd_at_ours_s is scored
on the reference's first step past ours_s, nan if its budget ended first), and at ref_s too
when the reference is the faster. Ours is scored at epoch ends, so its crossing time is
quantised to an epoch (10-20 s on 10,000 digits).
Default run: about 20 minutes on 2 CPU cores (the reference uses its budget). Last line:
name=value pairs.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MNIST = ROOT.parent / "shared" / "data" / "mnist"

from benchmarks._reference import Reference  # noqa: E402


def fcd_at(trace: list[tuple[float, float]], t: float) -> float:
    """The latest FCD scored at training time <= t (nan if none yet)."""
    seen = [fcd for s, fcd in trace if s <= t + 1e-9]
    return seen[-1] if seen else math.nan


def run_ours(args, threshold: float) -> dict:
    from training.loop import TrainConfig, train

    tmp = Path(tempfile.mkdtemp(prefix="ttq-"))
    stop = threading.Event()
    out = {"trace": [], "s": None, "wall_s": None, "quality_s": 0.0, "fcd": math.nan, "last_s": math.nan}
    t0 = time.perf_counter()

    def on_epoch(s: dict) -> None:
        if not s["quality"]:
            raise SystemExit("the loop scored nothing (evaluator missing?); see the note above")
        fcd = s["quality"]["fcd"]
        out["trace"].append((s["elapsed_s"], fcd))
        out["quality_s"] += s.get("quality_time_s", 0.0)
        out["fcd"], out["last_s"] = fcd, s["elapsed_s"]
        print(
            f"ours epoch {s['epoch']:3d}  train {s['elapsed_s']:7.1f} s  FCD {fcd:7.2f}  "
            f"{s['images_per_s']:5.0f} img/s",
            flush=True,
        )
        if fcd < threshold:
            out["s"], out["wall_s"] = s["elapsed_s"], time.perf_counter() - t0
            stop.set()
        elif s["elapsed_s"] >= args.ours_budget_s:
            stop.set()

    cfg = TrainConfig(
        run_dir=str(tmp / "ours"),
        data=args.data,
        max_images=args.max_images,
        epochs=10_000,
        quality_samples=args.quality_samples,
        seed=args.seed,
        tensorboard=False,
        progress_bar=False,
    )
    try:
        train(cfg, stop=stop, on_epoch=on_epoch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if out["wall_s"] is None:
        out["wall_s"] = time.perf_counter() - t0
    return out


def run_ref(args, threshold: float, images_u8, ours_s: float) -> dict:
    from training.quality import score_generator

    ref = Reference(images_u8, seed=args.seed)
    out = {"trace": [], "s": None, "quality_s": 0.0, "fcd": math.nan, "last_s": math.nan}
    clock, step, scored_at_ours = 0.0, 0, math.isnan(ours_s)
    while True:
        t = time.perf_counter()
        ref.run(1)
        clock += time.perf_counter() - t
        step += 1
        epoch_end = step % ref.steps_per_epoch == 0
        at_ours = not scored_at_ours and clock >= ours_s
        over = clock >= args.ref_budget_s
        if not (epoch_end or at_ours or over):
            continue
        scored_at_ours |= at_ours
        tq = time.perf_counter()
        fcd = score_generator(ref.generator, ref.latent_dim, ref.pixel_range, n=args.quality_samples)["fcd"]
        out["quality_s"] += time.perf_counter() - tq
        out["trace"].append((clock, fcd))
        out["fcd"], out["last_s"] = fcd, clock
        if at_ours:
            out["fcd_at_ours"] = fcd
        print(
            f"ref  step {step:6d} (epoch {step / ref.steps_per_epoch:5.2f})  train {clock:7.1f} s  "
            f"FCD {fcd:7.2f}{'  <- at ours_s' if at_ours else ''}",
            flush=True,
        )
        if fcd < threshold:
            out["s"] = clock
            return out
        if over:
            return out


def main() -> int:
    from training.quality import READABLE_FCD

    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--threshold",
        type=float,
        default=READABLE_FCD,
        help="FCD to reach (default: training.quality.READABLE_FCD)",
    )
    ap.add_argument("--max-images", type=int, default=10000)
    ap.add_argument("--quality-samples", type=int, default=2000)
    ap.add_argument("--ours-budget-s", type=float, default=900.0)
    ap.add_argument("--ref-budget-s", type=float, default=900.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(MNIST))
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()

    from training.data import load_dataset

    images_u8, _, source = load_dataset("mnist", args.data, args.max_images)
    print(
        f"{len(images_u8)} digits from {source}; threshold FCD {args.threshold:g} on "
        f"{args.quality_samples} samples; {os.cpu_count()} CPUs; TF {tf.__version__}",
        flush=True,
    )
    ours = run_ours(args, args.threshold)
    # the reference is also scored when its clock passes ours' crossing (or ours' last epoch)
    ref = run_ref(args, args.threshold, images_u8, ours["s"] if ours["s"] is not None else ours["last_s"])

    ours_reached, ref_reached = ours["s"] is not None, ref["s"] is not None
    ours_s = ours["s"] if ours_reached else ours["last_s"]
    ref_s = ref["s"] if ref_reached else ref["last_s"]
    ratio = ref_s / ours_s if ours_reached and ref_reached else math.nan
    lower = ref_s / ours_s if ours_reached else math.nan
    # scored on the first step its clock reached ours_s; its crossing FCD if it crossed earlier;
    # unknown (nan) if its budget ran out first
    ref_at_ours = ref.get("fcd_at_ours", fcd_at(ref["trace"], ours_s) if ref_reached else math.nan)
    pairs = {
        "ratio": f"{ratio:.2f}",
        "ratio_lower_bound": f"{lower:.2f}",
        "ours_s": f"{ours_s:.1f}",
        "ref_s": f"{ref_s:.1f}",
        "threshold": f"{args.threshold:g}",
        "ours_fcd_at_ours_s": f"{fcd_at(ours['trace'], ours_s):.2f}",
        "ref_fcd_at_ours_s": f"{ref_at_ours:.2f}",
    }
    if ref_reached and ref_s < ours_s:
        pairs["ours_fcd_at_ref_s"] = f"{fcd_at(ours['trace'], ref_s):.2f}"
        pairs["ref_fcd_at_ref_s"] = f"{fcd_at(ref['trace'], ref_s):.2f}"
    pairs.update(
        {
            "ours_reached": int(ours_reached),
            "ref_reached": int(ref_reached),
            "ours_wall_s": f"{ours['wall_s']:.1f}",
            "ours_quality_s": f"{ours['quality_s']:.1f}",
            "ref_quality_s": f"{ref['quality_s']:.1f}",
            "quality_samples": args.quality_samples,
            "n_images": len(images_u8),
        }
    )

    def verdict(reached, s, budget):
        return f"reached in {s:.1f} s" if reached else f"not reached in {s:.1f} s (budget {budget:g})"

    print(
        f"\nours (dcgan, training.loop.train): {verdict(ours_reached, ours_s, args.ours_budget_s)}"
        f"; FCD {ours['fcd']:.2f}; whole wall time {ours['wall_s']:.1f} s, of which scoring "
        f"{ours['quality_s']:.1f} s"
    )
    print(
        f"ref  (keras.io loop, keras-io):     {verdict(ref_reached, ref_s, args.ref_budget_s)}"
        f"; FCD {ref['fcd']:.2f}; scoring {ref['quality_s']:.1f} s (not in ref_s)"
    )
    print(
        f"at ours_s = {ours_s:.1f} s of training: ours FCD {pairs['ours_fcd_at_ours_s']}, "
        f"ref FCD {pairs['ref_fcd_at_ours_s']}"
    )
    if ref_reached and ours_reached:
        print(f"ratio ref_s / ours_s = {ratio:.2f}")
    elif ours_reached:
        print(f"ratio >= {lower:.2f} (the reference did not reach FCD {args.threshold:g})")
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
