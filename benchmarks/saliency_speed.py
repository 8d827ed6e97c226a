"""Speed of the named directions on the demo's final epoch, warm (graphs traced, probe fitted).

    .venv/bin/python benchmarks/saliency_speed.py [--run demo] [--n 200]

Times, per request, as the explorer serves them (explorer.directions over the engine's cached
snapshot): the saliency map of one image (D's pixel gradient), the sliders' point with its
saliency in one graph call (`look`), the same point without it (`generate`, the drag path while
the toggle is off), a "toward digit" move, and "More real" (5 gradient steps through G and D);
plus the one-off probe fit of a snapshot. Goal (issue 11): saliency p95 at most 30 ms. Last line:
name=value pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed(fn, args_list) -> list[float]:
    out = []
    for a in args_list:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="demo")
    ap.add_argument("--epoch", type=int, default=0, help="default: the run's last epoch")
    ap.add_argument("--n", type=int, default=200, help="requests timed per kind")
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    import numpy as np

    from explorer import directions as dr
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    eng = Engine(RunRegistry([ROOT / "runs"]))
    epoch = args.epoch or eng.registry.get(args.run).good_epochs()[-1].epoch
    snap = eng.snapshot(args.run, epoch)
    z = np.random.default_rng(0).standard_normal((args.n, snap.latent_dim)).astype(np.float32)
    imgs, _ = snap.generate(z)
    t = time.perf_counter()
    dr.digit_directions(snap)
    probe_s = time.perf_counter() - t
    dr.saliency(eng, snap, imgs[0])  # trace and warm each graph once
    dr.look(eng, snap, z[0])
    dr.more_real(eng, snap, z[0])
    kinds = {
        "saliency": timed(lambda i: dr.saliency(eng, snap, imgs[i]), range(args.n)),
        "generate": timed(lambda i: eng.generate(args.run, epoch, z[i]), range(args.n)),
        "look": timed(lambda i: dr.look(eng, snap, z[i]), range(args.n)),
        "toward": timed(lambda i: dr.toward_digit(snap, z[i], i % 10, 2.0), range(args.n)),
        "toward_shown": timed(  # the move, its image and the evaluator's P(k) before and after
            lambda i: dr.evaluate(
                snap.generate(np.stack([z[i], dr.toward_digit(snap, z[i], i % 10, 2.0)]))[0]
            ),
            range(args.n),
        ),
        "more_real": timed(lambda i: dr.more_real(eng, snap, z[i]), range(min(args.n, 50))),
    }
    pairs = {}
    for name, ms in kinds.items():
        p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
        print(f"{name:13s} n={len(ms):4d}  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
        pairs[f"{name}_p50_ms"], pairs[f"{name}_p95_ms"] = p50, p95
    print(f"probe fit (once per snapshot, {dr.PROBE_N} samples): {probe_s:.2f} s")
    keys = ["saliency_p95_ms", "saliency_p50_ms", "toward_p95_ms", "toward_shown_p95_ms"]
    keys += ["look_p95_ms", "generate_p95_ms", "more_real_p95_ms"]
    line = " ".join(f"{k}={pairs[k]:.2f}" for k in keys)
    print(f"{line} probe_s={probe_s:.2f} goal_saliency_p95_ms=30 run={args.run} epoch={epoch} n={args.n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
