"""Explorer latency: slider move -> new image + P(real), in the logic layer and over HTTP.

    .venv/bin/python benchmarks/explorer_latency.py [--run-dir runs/NAME]

Without --run-dir it trains a 10-epoch run on 512 real digits into a temporary folder (about a
minute). Measures, warm:
- logic: what one slider move costs in-process (compose z, G+D graph call, 280 px PNG), 1,000 calls;
- http: the app's /slide endpoint through gradio_client against `python app.py`, 200 calls,
  with `Client(url, ssl_verify=False)`: the server is plain http on 127.0.0.1, so there is no
  certificate to verify, and with the default (ssl_verify=True) httpx loads the CA bundle again
  for every request it makes (about 18 ms per call here). The default client is measured too;
- compare: 10 epochs x 8 latent points with scores, warm (models cached) and cold (a new
  engine loading every model from disk).
Bounds (issue 4): logic p95 <= 10 ms, http p95 <= 60 ms, compare warm <= 300 ms, cold <= 2 s.
Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MNIST = ROOT.parent / "shared" / "data" / "mnist"

import numpy as np  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def make_run(dst: Path) -> Path:
    run = dst / "bench"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--run-dir",
            str(run),
            "--data",
            str(MNIST),
            "--max-images",
            "512",
            "--epochs",
            "10",
            "--batch-size",
            "64",
            "--quality-samples",
            "500",
            "--quiet",
            "--no-tensorboard",
        ],
        cwd=ROOT,
        check=True,
    )
    return run


def push_latencies(url: str, run: str, epoch: int, sliders: list[float], values) -> list[float]:
    """/slide over Gradio's queue protocol as the web page uses it: POST queue/join, then read
    the server-sent events until process_completed. Seconds per call."""
    import uuid

    import httpx

    config = httpx.get(url + "config", timeout=30).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "slide")
    out = []
    with httpx.Client(base_url=url + "gradio_api/", timeout=30) as http:
        for i, v in enumerate(values):
            session = uuid.uuid4().hex
            data = [run, epoch, None, None, float(v), *sliders[1:]]
            t = time.perf_counter()
            r = http.post(
                "queue/join",
                json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None},
            )
            r.raise_for_status()
            done = False
            with http.stream("GET", "queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:") and '"process_completed"' in line:
                        msg = json.loads(line[5:])
                        if not msg.get("success"):
                            raise RuntimeError(f"/slide failed: {msg.get('output')}")
                        done = True
                        break
            if not done:
                raise RuntimeError("/slide: the event stream ended without a result")
            if i >= 10:  # the first calls warm the connection
                out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", help="a run with at least 10 epochs (default: train one)")
    ap.add_argument("--logic-calls", type=int, default=1000)
    ap.add_argument("--http-calls", type=int, default=200)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    tmp = Path(tempfile.mkdtemp(prefix="latency-"))
    run = Path(args.run_dir).resolve() if args.run_dir else make_run(tmp)
    runs_dir, name = run.parent, run.name

    from explorer import latent, render
    from explorer.engine import Engine
    from explorer.registry import RunRegistry

    reg = RunRegistry([runs_dir])
    info = reg.get(name)
    epochs = [e.epoch for e in info.good_epochs()][-10:]
    last = epochs[-1]
    eng = Engine(reg)
    eng.snapshot(name, last)
    dims = eng.top_dims(name, last, 8)
    base = latent.random_vector(info.latent_dim, 0)
    rng = np.random.default_rng(0)

    def slider_move(v):
        z = base.copy()
        z[dims[0]] = v
        img, p = eng.generate(name, last, z)
        buf = io.BytesIO()
        render.digit(img).save(buf, format="PNG", compress_level=1)
        return p

    for v in rng.uniform(-3, 3, 50):
        slider_move(v)
    logic = []
    for v in rng.uniform(-3, 3, args.logic_calls):
        t = time.perf_counter()
        slider_move(v)
        logic.append(time.perf_counter() - t)

    # compare: warm (cached) and cold (fresh engine, every model from disk)
    eng.compare(name, 8, 0, epochs=epochs)
    warm = []
    for _ in range(10):
        t = time.perf_counter()
        eng.compare(name, 8, 0, epochs=epochs)
        warm.append(time.perf_counter() - t)
    cold = []
    for _ in range(3):
        fresh = Engine(RunRegistry([runs_dir]))
        t = time.perf_counter()
        fresh.compare(name, 8, 0, epochs=epochs)
        cold.append(time.perf_counter() - t)

    # HTTP through gradio_client against the real app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen(
        [sys.executable, "app.py", "--runs-dir", str(runs_dir), "--port", str(port), "--no-browser"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from gradio_client import Client

        def connect(**kw):
            deadline = time.time() + 120
            while True:
                try:
                    return Client(f"http://127.0.0.1:{port}/", verbose=False, **kw)
                except Exception:  # noqa: BLE001 - not up yet
                    if time.time() > deadline:
                        raise
                    time.sleep(0.5)

        sliders = [0.0] * 14

        def slide_calls(c, n):
            for v in rng.uniform(-3, 3, 20):
                c.predict(name, last, v, *sliders[1:], api_name="/slide")
            out = []
            for v in rng.uniform(-3, 3, n):
                t = time.perf_counter()
                c.predict(name, last, v, *sliders[1:], api_name="/slide")
                out.append(time.perf_counter() - t)
            return out

        default_client = connect()
        client = connect(ssl_verify=False)
        http_default = slide_calls(default_client, args.http_calls)
        http = slide_calls(client, args.http_calls)
        # the floor of that client: a no-op-sized endpoint (list the runs folder) the same way
        floor = []
        for _ in range(args.http_calls // 2):
            t = time.perf_counter()
            client.predict(api_name="/list_runs")
            floor.append(time.perf_counter() - t)
        # the same /slide call the way the browser makes it: the queue's join + server-sent
        # events read as they are pushed (gradio_client polls its message queue every 50 ms)
        push = push_latencies(
            f"http://127.0.0.1:{port}/", name, last, sliders, rng.uniform(-3, 3, args.http_calls)
        )
    finally:
        app.terminate()
        app.wait(20)
    shutil.rmtree(tmp, ignore_errors=True)

    rows = [
        ("logic slider->image+score", logic, 10),
        ("http /slide, gradio_client default", http_default, 60),
        ("http /slide, gradio_client no-TLS", http, 60),
        ("http /slide, browser protocol (SSE)", push, 60),
    ]
    print(f"run {name}: {len(epochs)} epochs, latent {info.latent_dim}, {os.cpu_count()} CPUs")
    for label, xs, bound in rows:
        print(
            f"{label:36s} n={len(xs):5d}  p50 {pct(xs, 50):7.2f} ms  p95 {pct(xs, 95):7.2f} ms  "
            f"bound p95 <= {bound} ms  {'OK' if pct(xs, 95) <= bound else 'OVER'}"
        )
    print(
        f"{'http /list_runs, gradio_client no-TLS':36s} n={len(floor):5d}  p50 {pct(floor, 50):7.2f} ms  "
        f"p95 {pct(floor, 95):7.2f} ms  (the client's own floor: a no-op-sized endpoint)"
    )
    print(
        f"{'compare 10x8 warm':36s} n={len(warm):5d}  p50 {pct(warm, 50):7.1f} ms  "
        f"bound <= 300 ms  {'OK' if pct(warm, 50) <= 300 else 'OVER'}"
    )
    print(
        f"{'compare 10x8 cold':36s} n={len(cold):5d}  p50 {pct(cold, 50):7.1f} ms  "
        f"bound <= 2000 ms  {'OK' if pct(cold, 50) <= 2000 else 'OVER'}"
    )
    print(
        f"logic_p50_ms={pct(logic, 50):.2f} logic_p95_ms={pct(logic, 95):.2f} "
        f"http_p50_ms={pct(http, 50):.1f} http_p95_ms={pct(http, 95):.1f} "
        f"http_default_p95_ms={pct(http_default, 95):.1f} "
        f"http_floor_p95_ms={pct(floor, 95):.1f} sse_p50_ms={pct(push, 50):.1f} "
        f"sse_p95_ms={pct(push, 95):.1f} "
        f"compare_warm_ms={pct(warm, 50):.0f} compare_cold_ms={pct(cold, 50):.0f} epochs={len(epochs)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
