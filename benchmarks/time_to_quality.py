"""Time to readable digits: training seconds until FCD falls below READABLE_FCD, and until the
confident share (samples the evaluator reads as one digit with p >= 0.9) reaches 0.9.

    .venv/bin/python benchmarks/time_to_quality.py [--max-images 10000] [--quality-samples 2000]
        [--threshold 50] [--confident 0.9] [--ours-budget-s 900] [--ref-budget-s 900]

Two contenders train on the same real digits (the 10,000 shared ones), one after the other:
- ours: the default preset (`scgan`, models.presets.DEFAULT_PRESET) with default settings
  through training.loop.train (a real run folder, in a temporary directory), scored by the
  loop itself after every epoch (quality_samples); stopped after the first epoch by which both
  thresholds were reached;
- ref: the keras.io guide's GAN loop (benchmarks/_reference.py, `keras-io` networks), scored
  with the same scorer (training.quality.score_generator, same sample count and latent batch)
  after every epoch, plus once when its training clock passes ours_s (and ours_conf_s); stopped
  when both thresholds were reached; capped at --ref-budget-s.

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
The confident share is reported the same way under conf_* names: ours_conf_s / ref_conf_s (the
first scoring with confident share >= --confident and FCD below --threshold: an untrained,
collapsed generator's blobs already score a confident share near 1; --conf-ungated drops the FCD
condition), conf_ratio (or conf_ratio_lower_bound), and each contender's confident share when
its clock reached ours_conf_s.
Default run: about 20 minutes on 2 CPU cores (the reference uses its budget). Last line:
name=value pairs. Smallest check (about a minute): --max-images 256 --quality-samples 200
--ours-budget-s 5 --ref-budget-s 5.
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


def fcd_at(trace: list[tuple], t: float, k: int = 1) -> float:
    """The latest figure k (1: FCD, 2: confident share) scored at training time <= t (nan if none)."""
    seen = [row[k] for row in trace if row[0] <= t + 1e-9]
    return seen[-1] if seen else math.nan


def crossed(out: dict, clock: float, q: dict, args) -> bool:
    """Record a scoring (training clock, its quality) in a contender's trace and the first time
    each threshold was reached; True once both were."""
    fcd, conf = q["fcd"], q["confident_share"]
    out["trace"].append((clock, fcd, conf))
    out["fcd"], out["conf"], out["last_s"] = fcd, conf, clock
    if out["s"] is None and fcd < args.threshold:
        out["s"] = clock
    # a collapsed generator's blobs are read as one digit with confidence (measured: confident share
    # 1.000 at FCD 579 after one tiny epoch), so the share counts only once FCD is readable too
    if out["conf_s"] is None and conf >= args.confident and (args.conf_ungated or fcd < args.threshold):
        out["conf_s"] = clock
    return out["s"] is not None and out["conf_s"] is not None


def new_out() -> dict:
    keys = ("s", "conf_s", "wall_s", "conf_wall_s")
    return {"trace": [], "quality_s": 0.0, "fcd": math.nan, "conf": math.nan, "last_s": math.nan} | {
        k: None for k in keys
    }


def run_ours(args) -> dict:
    from training.loop import TrainConfig, train

    tmp = Path(tempfile.mkdtemp(prefix="ttq-"))
    stop = threading.Event()
    out = new_out()
    t0 = time.perf_counter()

    def on_epoch(s: dict) -> None:
        if not s["quality"]:
            raise SystemExit("the loop scored nothing (evaluator missing?); see the note above")
        out["quality_s"] += s.get("quality_time_s", 0.0)
        both = crossed(out, s["elapsed_s"], s["quality"], args)
        print(
            f"ours epoch {s['epoch']:3d}  train {s['elapsed_s']:7.1f} s  FCD {out['fcd']:7.2f}  "
            f"confident {out['conf']:.3f}  {s['images_per_s']:5.0f} img/s",
            flush=True,
        )
        for key, wall in (("s", "wall_s"), ("conf_s", "conf_wall_s")):
            if out[key] is not None and out[wall] is None:
                out[wall] = time.perf_counter() - t0
        if both or s["elapsed_s"] >= args.ours_budget_s:
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
    for wall in ("wall_s", "conf_wall_s"):
        out[wall] = out[wall] if out[wall] is not None else time.perf_counter() - t0
    return out


def run_ref(args, images_u8, marks: dict[str, float]) -> dict:
    """The reference until both thresholds are reached (or its budget ends); also scored on the
    first step its clock passes each of ``marks`` (name -> training seconds of ours), recorded as
    out["at_" + name] = (FCD, confident share)."""
    from training.quality import score_generator

    ref = Reference(images_u8, seed=args.seed)
    out = new_out()
    clock, step, pending = 0.0, 0, {k: t for k, t in marks.items() if not math.isnan(t)}
    while True:
        t = time.perf_counter()
        ref.run(1)
        clock += time.perf_counter() - t
        step += 1
        epoch_end = step % ref.steps_per_epoch == 0
        at = [k for k, t in pending.items() if clock >= t]
        over = clock >= args.ref_budget_s
        if not (epoch_end or at or over):
            continue
        tq = time.perf_counter()
        q = score_generator(ref.generator, ref.latent_dim, ref.pixel_range, n=args.quality_samples)
        out["quality_s"] += time.perf_counter() - tq
        both = crossed(out, clock, q, args)
        for k in at:
            out["at_" + k] = (out["fcd"], out["conf"])
            del pending[k]
        print(
            f"ref  step {step:6d} (epoch {step / ref.steps_per_epoch:5.2f})  train {clock:7.1f} s  "
            f"FCD {out['fcd']:7.2f}  confident {out['conf']:.3f}"
            f"{''.join(f'  <- at {k}' for k in at)}",
            flush=True,
        )
        if both or over:
            out["input_wait_s"] = ref.input_wait_s
            return out


def threshold_pairs(ours: dict, ref: dict, t: str, fig: str, k: int, level: float, fmt: str) -> dict:
    """One threshold's name=value pairs, named as the FCD ones were (t: "" for FCD, "conf_" for
    the confident share; fig: the figure's name in the *_at_* pairs; k: its place in a trace)."""
    key = t + "s"
    o_reached, r_reached = ours[key] is not None, ref[key] is not None
    o_s = ours[key] if o_reached else ours["last_s"]
    r_s = ref[key] if r_reached else ref["last_s"]
    # the reference scored on the first step its clock reached o_s; its value at its crossing if it
    # crossed earlier; unknown (nan) if its budget ran out first
    at = ref.get("at_ours_" + key)
    r_at_o = at[k - 1] if at else (fcd_at(ref["trace"], o_s, k) if r_reached else math.nan)
    pairs = {
        f"{t}ratio": f"{r_s / o_s if o_reached and r_reached else math.nan:.2f}",
        f"{t}ratio_lower_bound": f"{r_s / o_s if o_reached else math.nan:.2f}",
        f"ours_{key}": f"{o_s:.1f}",
        f"ref_{key}": f"{r_s:.1f}",
        f"{t}threshold": f"{level:g}",
        f"ours_{fig}_at_ours_{key}": format(fcd_at(ours["trace"], o_s, k), fmt),
        f"ref_{fig}_at_ours_{key}": format(r_at_o, fmt),
    }
    if r_reached and r_s < o_s:
        pairs[f"ours_{fig}_at_ref_{key}"] = format(fcd_at(ours["trace"], r_s, k), fmt)
        pairs[f"ref_{fig}_at_ref_{key}"] = format(fcd_at(ref["trace"], r_s, k), fmt)
    return pairs | {f"ours_{t}reached": int(o_reached), f"ref_{t}reached": int(r_reached)}


def report(args, ours: dict, ref: dict, n_images: int) -> None:
    fcd = threshold_pairs(ours, ref, "", "fcd", 1, args.threshold, ".2f")
    conf = threshold_pairs(ours, ref, "conf_", "conf", 2, args.confident, ".3f")
    pairs = fcd | {
        "ours_wall_s": f"{ours['wall_s']:.1f}",
        "ours_quality_s": f"{ours['quality_s']:.1f}",
        "ref_quality_s": f"{ref['quality_s']:.1f}",
        "ref_input_wait_s": f"{ref.get('input_wait_s', math.nan):.1f}",
        "quality_samples": args.quality_samples,
        "n_images": n_images,
    }
    pairs |= conf | {
        "ours_conf_wall_s": f"{ours['conf_wall_s']:.1f}",
        "conf_gated": int(not args.conf_ungated),
    }
    from models.presets import DEFAULT_PRESET

    names = {
        "ours": f"ours ({DEFAULT_PRESET}, training.loop.train)",
        "ref": "ref  (keras.io loop, keras-io)  ",
    }
    for t, what in (
        ("", f"FCD below {args.threshold:g}"),
        ("conf_", f"confident share >= {args.confident:g}"),
    ):
        print(f"\n{what}:")
        for who, out, budget in (("ours", ours, args.ours_budget_s), ("ref", ref, args.ref_budget_s)):
            s = pairs[f"{who}_{t}s"]
            got = (
                f"reached in {s} s"
                if pairs[f"{who}_{t}reached"]
                else f"not reached in {s} s (budget {budget:g})"
            )
            print(
                f"  {names[who]}: {got} of training; last scored: FCD {out['fcd']:.2f}, "
                f"confident share {out['conf']:.3f}"
            )
        ratio, lower = pairs[f"{t}ratio"], pairs[f"{t}ratio_lower_bound"]
        if ratio != "nan":
            print(f"  ratio ref_{t}s / ours_{t}s = {ratio}")
        elif lower != "nan":
            print(f"  ratio >= {lower} (the reference did not reach it)")
    print(
        f"whole wall time of ours {ours['wall_s']:.1f} s to the FCD crossing (or its end), scoring "
        f"{ours['quality_s']:.1f} s (ours) and {ref['quality_s']:.1f} s (ref), not in *_s; the ref's "
        f"training clock includes {ref.get('input_wait_s', math.nan):.1f} s of waiting for its "
        "batches (tf.data's pause at its epoch ends: README, Performance, Between epochs)"
    )
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


def main() -> int:
    from training.quality import READABLE_FCD

    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--threshold",
        type=float,
        default=READABLE_FCD,
        help="FCD to reach (default: training.quality.READABLE_FCD)",
    )
    ap.add_argument(
        "--confident", type=float, default=0.9, help="confident share to reach (the second threshold)"
    )
    ap.add_argument(
        "--conf-ungated",
        action="store_true",
        help="count the confident share's crossing even while FCD is above --threshold",
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
        f"{len(images_u8)} digits from {source}; thresholds FCD {args.threshold:g} and confident share "
        f"{args.confident:g} on {args.quality_samples} samples; {os.cpu_count()} CPUs; TF {tf.__version__}",
        flush=True,
    )
    ours = run_ours(args)
    # the reference is also scored when its clock passes ours' crossings (or ours' last epoch)
    marks = {f"ours_{k}": ours[k] if ours[k] is not None else ours["last_s"] for k in ("s", "conf_s")}
    ref = run_ref(args, images_u8, marks)
    report(args, ours, ref, len(images_u8))
    return 0


if __name__ == "__main__":
    sys.exit(main())
