"""Speed of the nearest-real-digit search (explorer/neighbours.py), warm, on the demo run.

    .venv/bin/python benchmarks/neighbours_speed.py [--runs-dir runs] [--run demo] [--n 200]

Loads the run's index once (from neighbours.npz, or rebuilt from the run's recorded data: the
demo's case), then times queries of generated digits of its last epoch: one image, k = 5, by
pixels AND by the evaluator's features (what the sliders' strip and /neighbours compute), and a
batch of 8. Also the memorisation figure on 2,000 samples (what training adds per epoch).
Goal (issue 11): p95 of one query at most 50 ms. Last line: name=value pairs.
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


def pct(times: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(times, q) * 1000)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--run", default="demo")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    from benchmarks._cpu import cpu_profile, isa_name, print_cpu  # before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import numpy as np

    from explorer.engine import Engine
    from explorer.neighbours import Neighbours
    from explorer.registry import RunRegistry

    reg = RunRegistry([args.runs_dir])
    nb, eng = Neighbours(reg), Engine(reg)
    t = time.perf_counter()
    loaded = nb.index(args.run)
    load_s = time.perf_counter() - t
    print(f"index of {len(loaded.index):,} digits loaded in {load_s:.1f} s ({loaded.source})")
    last = reg.get(args.run).good_epochs()[-1].epoch
    z = np.random.default_rng(0).standard_normal((args.n + 8, eng.snapshot(args.run, last).latent_dim))
    imgs, _ = eng.snapshot(args.run, last).generate(z.astype(np.float32))
    nb.query(args.run, imgs[:1], 5)  # warm: the evaluator's feature graph is traced here
    one, eight = [], []
    for i in range(args.n):
        t = time.perf_counter()
        nb.query(args.run, imgs[i : i + 1], 5)
        one.append(time.perf_counter() - t)
    for i in range(0, args.n, 8):
        t = time.perf_counter()
        nb.query(args.run, imgs[i : i + 8], 5)
        eight.append(time.perf_counter() - t)
    samples, _ = eng.snapshot(args.run, last).generate(
        np.random.default_rng(1).standard_normal((2000, z.shape[1])).astype(np.float32)
    )
    t = time.perf_counter()
    memo = loaded.index.memorisation(samples)
    memo_s = time.perf_counter() - t
    p50, p95 = pct(one, 50), pct(one, 95)
    print(
        f"one image, k=5, pixels+features  n={len(one):5d}  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms"
        "  goal <= 50 ms"
    )
    print(
        f"8 images, k=5, pixels+features   n={len(eight):5d}  p50 {pct(eight, 50):7.2f} ms"
        f"  p95 {pct(eight, 95):7.2f} ms"
    )
    print(
        f"memorisation of 2,000 samples (epoch {last}): {memo_s:.2f} s, share {memo['memorised_share']:.4f}"
    )
    print(
        f"nn_p50_ms={p50:.2f} nn_p95_ms={p95:.2f} nn_batch8_p95_ms={pct(eight, 95):.2f} "
        f"memorisation_2000_s={memo_s:.2f} load_s={load_s:.1f} n_index={len(loaded.index)} "
        f"queries={len(one)} cpu={isa_name(cpu_profile()).replace(' ', '')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
