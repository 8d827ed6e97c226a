"""Cost of the per-epoch quality metrics against an epoch's training time.

    .venv/bin/python benchmarks/quality_cost.py [--run-dir runs/demo]

Times score_generator (2,000 samples: generate, embed, FCD, classifier score) on the run's last
generator, and compares it with the time of one epoch on the full 70,000-digit MNIST at the
run's measured images/s. Goal (issue 4): under 5%. Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", default=str(ROOT / "runs" / "demo"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    import_tensorflow()
    import keras
    import numpy as np

    from training.quality import score_generator

    run = Path(args.run_dir)
    info = json.loads((run / "run.json").read_text())
    last = sorted((run / "epochs").glob("epoch-*"))[-1]
    summary = json.loads((last / "summary.json").read_text())
    g = keras.saving.load_model(last / "generator.keras", safe_mode=True, compile=False)
    score_generator(g, info["latent_dim"], info["pixel_range"])  # warm: evaluator load + trace
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        q = score_generator(g, info["latent_dim"], info["pixel_range"])
        times.append(time.perf_counter() - t)
    score_s = float(np.median(times))
    epoch_70k_s = 70000 / summary["images_per_s"]
    share = 100 * score_s / epoch_70k_s
    print(f"scoring 2,000 samples: median {score_s:.2f} s of {args.repeats}; FCD {q['fcd']:.2f}")
    print(f"one 70k-digit epoch at the run's {summary['images_per_s']:.0f} img/s: {epoch_70k_s:.0f} s")
    print(f"score_s={score_s:.2f} epoch_70k_s={epoch_70k_s:.0f} share_pct={share:.2f} goal_pct=5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
