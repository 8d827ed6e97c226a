"""Per-layer forward + backward time of the default ``dcgan`` preset, and equivalent layer forms.

    .venv/bin/python benchmarks/layer_speed.py [--reps 20] [--rounds 2] [--configs off,on] [--isa AVX2]

Batch 64 (D's convolutions also at 128: the step scores real + fake in one call). Each layer is
timed as one tf.function computing the output and the gradients of sum(output * r) with respect to
its input and its kernel. Alongside the stock layers, forms with the same weights and the same
outputs (checked to 1e-5 here):
- ``convT subpixel``: G's stride-2 4x4 transposed conv as a 3x3 conv to 4x the maps + depth_to_space;
- ``conv s2d``: D's stride-2 4x4 conv as space_to_depth + a 2x2 conv.
oneDNN is chosen at TensorFlow's import, so every configuration (off / on) runs in its own child
process, alternating round-robin. Last line: name=value pairs (ms, median over rounds).
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

from benchmarks._cpu import parse_or_run_child, round_robin, run_child  # noqa: E402  (before TensorFlow)


def subpixel_kernel(tf, w):
    """(4, 4, out, in) conv2d_transpose filter -> (3, 3, in, 4*out) conv filter (depth_to_space 2)."""
    wt = tf.transpose(w, [0, 1, 3, 2])  # (k, k, in, out)
    zero = tf.zeros_like(wt[0, 0])
    taps = {0: [3, 1, None], 1: [None, 2, 0]}  # phase r: the transposed kernel's tap at offset -1, 0, +1
    phases = []
    for rh in (0, 1):
        for rw in (0, 1):
            rows = [
                tf.stack([zero if (a is None or b is None) else wt[a, b] for b in taps[rw]]) for a in taps[rh]
            ]
            phases.append(tf.stack(rows))  # (3, 3, in, out)
    return tf.concat(phases, -1)  # depth index (rh * 2 + rw) * out + c, as depth_to_space reads it


def s2d_kernel(tf, w):
    """(4, 4, in, out) stride-2 conv filter -> (2, 2, 4*in, out) filter over space_to_depth(2)."""
    k = tf.reshape(w, [2, 2, 2, 2, w.shape[2], w.shape[3]])  # (ah, bh, aw, bw, in, out)
    k = tf.transpose(k, [0, 2, 1, 3, 4, 5])  # (ah, aw, bh, bw, in, out)
    return tf.reshape(k, [2, 2, 4 * w.shape[2], w.shape[3]])


def layers(tf, batch: int):
    """name -> (fn(x, w), x, w), for the stock layers and their equivalent forms."""
    rng = tf.random.Generator.from_seed(0)
    x7, x14, x28 = (rng.normal((batch, n, n, c)) for n, c in ((7, 128), (14, 64), (28, 1)))
    wt1, wt2 = rng.normal((4, 4, 64, 128)) * 0.05, rng.normal((4, 4, 1, 64)) * 0.05
    wc1, wc2 = rng.normal((4, 4, 1, 64)) * 0.05, rng.normal((4, 4, 64, 128)) * 0.05

    def conv_t(out_shape):
        return lambda x, w: tf.nn.conv2d_transpose(x, w, out_shape, 2, "SAME")

    def conv_s2(x, w):
        return tf.nn.conv2d(x, w, 2, "SAME")

    def subpixel(x, w):
        return tf.nn.depth_to_space(tf.nn.conv2d(x, subpixel_kernel(tf, w), 1, "SAME"), 2)

    def s2d(x, w):
        xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return tf.nn.conv2d(tf.nn.space_to_depth(xp, 2), s2d_kernel(tf, w), 1, "VALID")

    return {
        "G convT 128->64 7->14": (conv_t([batch, 14, 14, 64]), x7, wt1),
        "G convT 128->64 subpixel": (subpixel, x7, wt1),
        "G convT 64->1 14->28": (conv_t([batch, 28, 28, 1]), x14, wt2),
        "D conv 1->64 28->14": (conv_s2, x28, wc1),
        "D conv 64->128 14->7": (conv_s2, x14, wc2),
        "D conv 64->128 s2d": (s2d, x14, wc2),
    }


def _child(args) -> None:
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()
    out = {}
    for batch in (64, 128):
        forms = layers(tf, batch)
        ref = {}
        for name, (fn, x, w) in forms.items():
            if (batch == 128 and not name.startswith("D")) or args.only not in name:
                continue
            r = tf.random.Generator.from_seed(1).normal(fn(x, w).shape)

            @tf.function
            def fwd_bwd(x, w, fn=fn, r=r):
                with tf.GradientTape() as tape:
                    tape.watch([x, w])
                    y = fn(x, w)
                    loss = tf.reduce_sum(y * r)
                return (y, *tape.gradient(loss, [x, w]))

            res = [v.numpy() for v in fwd_bwd(x, w)]
            stock = name.rsplit(" ", 1)[0] if name.endswith(("subpixel", "s2d")) else None
            err = 0.0
            if stock:  # the same output and gradients as the stock form (relative to their scale)
                base = next(v for k, v in ref.items() if k.startswith(stock))
                err = max(float(abs(a - b).max() / (abs(b).max() + 1e-12)) for a, b in zip(res, base))
            ref[name] = res
            t = time.perf_counter()
            for _ in range(args.reps):
                fwd_bwd(x, w)[0].numpy()
            out[f"{name} b{batch}"] = {"ms": (time.perf_counter() - t) / args.reps * 1000, "err": err}
    out["_loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    print("RESULT " + json.dumps(out))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="", help="time only the layers whose name contains this")
    args = parse_or_run_child(ap, _child)
    if args is None:
        return 0
    configs = args.configs.split(",")
    res = {c: [] for c in configs}
    for r, c in round_robin(configs, args.rounds):
        res[c].append(
            run_child(__file__, ["--reps", str(args.reps), "--only", args.only], c == "on", args.isa)
        )
        print(f"round {r + 1} oneDNN {c}: loadavg {' '.join(res[c][-1]['_loadavg'])}", flush=True)
    names = [k for k in res[configs[0]][0] if not k.startswith("_")]
    print(
        f"\n{'layer (forward + backward)':34s}"
        + "".join(f"{'oneDNN ' + c:>14s}" for c in configs)
        + "   max rel. err vs stock"
    )
    pairs = []
    for n in names:
        med = [sorted(x[n]["ms"] for x in res[c])[len(res[c]) // 2] for c in configs]
        err = max(x[n]["err"] for c in configs for x in res[c])
        print(f"{n:34s}" + "".join(f"{m:11.2f} ms" for m in med) + f"   {err:.1e}")
        key = n.replace(" ", "_").replace("->", "to")
        pairs += [f"{key}_{c}_ms={m:.2f}" for c, m in zip(configs, med)]
    print(" ".join(pairs) + f" rounds={args.rounds} reps={args.reps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
