"""The CPU kernel choice, measured: oneDNN opts off vs on (and thread settings) for the default step.

    .venv/bin/python benchmarks/cpu_choice.py [--rounds 2] [--steps 30] [--configs off,on]

oneDNN is chosen when TensorFlow is imported, so each configuration runs in its own child
process; the children alternate round-robin (off, on, off, on, ...) so machine noise hits all
alike. Each child builds the default ``dcgan`` preset's training step (float32, EMA on, batch 64,
seed 0, as training.loop runs it), warms it up, times ``--steps`` steps, and times the explorer's
generator + D forward (batch 8, as explorer.engine's gen_score). It also records the losses of
the first calls: the same configuration must give the same losses in every round (determinism),
and the table says how far oneDNN on moves them from off.
A configuration is ``off`` / ``on`` (TF_ENABLE_ONEDNN_OPTS) with an optional ``:intra/inter``
thread setting, e.g. ``on:2/1``. On an AVX-512 machine, pass ``--isa AVX2`` to approach an
AVX2-only CPU (ONEDNN_MAX_CPU_ISA=AVX2). Last line: name=value pairs.
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
MNIST = ROOT.parent / "shared" / "data" / "mnist"

from benchmarks._cpu import parse_or_run_child, round_robin, run_child  # noqa: E402  (before TensorFlow)


def _child(args) -> None:
    from models.tf_runtime import import_tensorflow

    tf = import_tensorflow()
    if args.threads:
        intra, inter = (int(v) for v in args.threads.split("/"))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import numpy as np

    from benchmarks.train_speed import Ours
    from training.data import load_dataset

    losses, build, step_rate = [[0.0]], 0.0, 0.0
    if args.steps:  # --steps 0: the explorer's forward only
        images_u8, _, _ = load_dataset("mnist", args.data, 2048)
        t0 = time.perf_counter()
        ours = Ours(images_u8, "dcgan", "float32", args.spc)
        losses = [
            ours._steps(ours._iterator, tf.constant(args.spc, tf.int32)).numpy().tolist() for _ in range(2)
        ]  # trace + warm up; the first 2 calls' losses, for determinism
        build = time.perf_counter() - t0
        t = time.perf_counter()
        n = ours.run(args.steps)
        step_rate = n / (time.perf_counter() - t)

    # the explorer's path: generator + D, inference only, as explorer.engine's gen_score
    from models import get_preset

    p = get_preset("dcgan")
    gen, disc = p.build_generator(p.latent_dim), p.build_discriminator()

    @tf.function(input_signature=[tf.TensorSpec([None, p.latent_dim], tf.float32)])
    def gen_score(z):
        x = gen(z, training=False)
        return x, tf.sigmoid(disc(x, training=False))

    zs = [np.random.default_rng(0).standard_normal((n, p.latent_dim)).astype(np.float32) for n in (1, 8)]
    fwd = {}
    for z in zs + zs:  # warm-up pass, then timed pass
        t = time.perf_counter()
        for _ in range(args.fwd_reps):
            gen_score(z)[1].numpy()
        fwd[len(z)] = (time.perf_counter() - t) / args.fwd_reps * 1000
    fwd_ms = fwd[8]
    from tensorflow.python.util import _pywrap_util_port

    print(
        "RESULT "
        + json.dumps(
            {
                "img_s": step_rate,
                "gen_score_ms": fwd_ms,
                "gen_score_1_ms": fwd[1],
                "build_s": build,
                "losses": losses,
                "onednn": _pywrap_util_port.IsMklEnabled(),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            }
        )
    )


def _run_child(cfg: str, args) -> dict:
    onednn, _, threads = cfg.partition(":")
    argv = [
        "--steps",
        str(args.steps),
        "--spc",
        str(args.spc),
        "--data",
        args.data,
        "--fwd-reps",
        str(args.fwd_reps),
    ] + (["--threads", threads] if threads else [])
    return run_child(__file__, argv, onednn == "on", args.isa)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per child")
    ap.add_argument("--spc", type=int, default=10, help="steps per call")
    ap.add_argument("--data", default=str(MNIST))
    ap.add_argument("--threads", default="", help=argparse.SUPPRESS)
    ap.add_argument("--fwd-reps", type=int, default=50, help="timed explorer forwards per batch size")
    args = parse_or_run_child(ap, _child)
    if args is None:
        return 0
    configs = args.configs.split(",")
    res: dict[str, list[dict]] = {c: [] for c in configs}
    for r, c in round_robin(configs, args.rounds):
        res[c].append(_run_child(c, args))
        x = res[c][-1]
        print(
            f"round {r + 1} {c:8s} oneDNN={x['onednn']} {x['img_s']:6.0f} img/s  gen+D(8) "
            f"{x['gen_score_ms']:6.2f} ms gen+D(1) {x['gen_score_1_ms']:6.2f} ms  "
            f"build {x['build_s']:4.0f} s  "
            f"loadavg "
            f"{' '.join(x['loadavg'])}  losses {[round(v, 6) for v in x['losses'][0][:2]]}",
            flush=True,
        )
    base = configs[0]
    pairs = []
    for c in configs:
        same = all(x["losses"] == res[c][0]["losses"] for x in res[c])
        img = [x["img_s"] for x in res[c]]
        ratio = (
            sum(x["img_s"] / b["img_s"] for x, b in zip(res[c], res[base])) / len(img)
            if args.steps
            else float("nan")
        )  # --steps 0: forward only
        fwd = sum(b["gen_score_ms"] / x["gen_score_ms"] for x, b in zip(res[c], res[base])) / len(img)
        fwd1 = sum(b["gen_score_1_ms"] / x["gen_score_1_ms"] for x, b in zip(res[c], res[base])) / len(img)
        diff = max(
            abs(a - b) for x, y in zip(res[c][0]["losses"], res[base][0]["losses"]) for a, b in zip(x, y)
        )
        print(
            f"{c:8s} step x{ratio:.2f} vs {base}, gen+D forward x{fwd:.2f} (batch 8) "
            f"x{fwd1:.2f} (batch 1) (speed ratios, mean over rounds); deterministic across "
            f"rounds: {same}; max |loss - {base}'s| {diff:.2e}"
        )
        key = c.replace(":", "_").replace("/", "_")
        pairs.append(
            f"{key}_step_ratio={ratio:.2f} {key}_fwd_ratio={fwd:.2f} {key}_fwd1_ratio={fwd1:.2f} "
            f"{key}_deterministic={int(same)} {key}_loss_diff={diff:.1e}"
        )
    print(" ".join(pairs) + f" rounds={args.rounds} steps={args.steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
