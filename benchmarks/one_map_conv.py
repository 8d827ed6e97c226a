"""keras-io's last layer (7x7 conv, 128 maps -> 1, 28x28, batch 64): stock kernels vs models/fast_ops.py.

    .venv/bin/python benchmarks/one_map_conv.py [--batch 64] [--reps 30]

For float32 and bfloat16, times (median of 5 runs of --reps calls, each a traced tf.function):
the forward pass alone, and forward + both gradients (input and kernel) as a training step
needs them. "stock" is tf.nn.conv2d and its registered gradients (what Keras' Conv2D runs);
"fast" is models.fast_ops.one_map_conv. Also checks the two agree. Last line: name=value pairs.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()
    import numpy as np

    from models.fast_ops import one_map_conv

    def stock(x, w):
        return tf.nn.conv2d(x, w, 1, "SAME")

    rng = np.random.default_rng(0)
    x32 = tf.constant(rng.normal(size=(args.batch, 28, 28, 128)), tf.float32)
    w32 = tf.constant(rng.normal(size=(7, 7, 128, 1)) * 0.02, tf.float32)
    up32 = tf.constant(rng.normal(size=(args.batch, 28, 28, 1)), tf.float32)
    out = {}
    print(f"batch {args.batch}, 28x28x128 -> 28x28x1, 7x7 kernel; {os.cpu_count()} CPUs; TF {tf.__version__}")
    for dtype in (tf.float32, tf.bfloat16):
        x, w, up = (tf.cast(t, dtype) for t in (x32, w32, up32))
        results = {}
        for name, conv in (("stock", stock), ("fast", one_map_conv)):
            fwd = tf.function(lambda: conv(x, w))

            @tf.function
            def train(conv=conv):
                with tf.GradientTape() as tape:
                    tape.watch([x, w])
                    y = conv(x, w)
                    loss = tf.reduce_sum(tf.cast(y * up, tf.float32))
                dx, dw = tape.gradient(loss, [x, w])
                return y, dx, dw

            def timed(f):
                f(), f()
                runs = []
                for _ in range(5):
                    t = time.perf_counter()
                    for _ in range(args.reps):
                        r = f()
                    _ = [np.asarray(v) for v in tf.nest.flatten(r)]
                    runs.append((time.perf_counter() - t) / args.reps * 1000)
                return float(np.median(runs))

            results[name] = (timed(fwd), timed(train), [np.asarray(tf.cast(v, tf.float32)) for v in train()])
        errs = [
            float(np.abs(a - b).max() / (np.abs(a).max() + 1e-9))
            for a, b in zip(results["stock"][2], results["fast"][2])
        ]
        tag = "f32" if dtype == tf.float32 else "bf16"
        for name in ("stock", "fast"):
            f, t, _ = results[name]
            print(f"{tag:5s} {name:6s} forward {f:6.2f} ms   forward+gradients {t:6.2f} ms")
        print(
            f"{tag:5s} fast vs stock, max relative difference: value {errs[0]:.1e}, "
            f"d input {errs[1]:.1e}, d kernel {errs[2]:.1e}"
        )
        out[tag] = (results["stock"][1], results["fast"][1], max(errs))
    print(
        " ".join(
            f"{tag}_stock_ms={s:.1f} {tag}_fast_ms={f:.1f} {tag}_speedup={s / f:.2f} "
            f"{tag}_max_rel_diff={e:.1e}"
            for tag, (s, f, e) in out.items()
        )
        + f" batch={args.batch}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
