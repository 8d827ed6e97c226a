"""Load: 16 gradio_client threads move sliders and interpolate against one app for 60 s.

    .venv/bin/python benchmarks/load_test.py [--run-dir runs/demo] [--clients 16] [--seconds 60]

Every client alternates slider moves (/slide, mostly) and interpolations (/interpolate, every
10th request) on the run's epochs, so the model cache is exercised too. Counts failed requests,
reports p50/p95 latency and the server's peak RSS (sampled from /proc). Traffic goes only to
127.0.0.1 (plain http, so the clients use ssl_verify=False and do not load the CA bundle per
request on the same 2 cores as the server). Last line: name=value pairs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", default=str(ROOT / "runs" / "demo"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu  # the CPU and kernel choice, before TensorFlow

    print_cpu()
    run = Path(args.run_dir).resolve()
    from explorer.registry import RunRegistry

    info = RunRegistry([run.parent]).get(run.name)
    epochs = [e.epoch for e in info.good_epochs()]
    dim = info.latent_dim
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen(
        [sys.executable, "app.py", "--runs-dir", str(run.parent), "--port", str(port), "--no-browser"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from gradio_client import Client

    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            Client(url, verbose=False)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.time() > deadline:
                app.kill()
                raise
            time.sleep(0.5)

    lat: list[tuple[str, float]] = []
    failures: list[str] = []
    lock = threading.Lock()
    peak = [rss_mb(app.pid)]
    stop = time.time() + args.seconds

    def client_loop(i: int):
        rng = np.random.default_rng(i)
        c = Client(url, verbose=False, ssl_verify=False)  # plain http: see explorer_latency.py
        n = 0
        while time.time() < stop:
            ep = int(rng.choice(epochs))
            t = time.perf_counter()
            try:
                if n % 10 == 9:
                    a = ", ".join(f"{x:.3f}" for x in rng.standard_normal(dim))
                    b = ", ".join(f"{x:.3f}" for x in rng.standard_normal(dim))
                    c.predict(run.name, ep, a, b, 12, "spherical", api_name="/interpolate")
                    kind = "interpolate"
                else:
                    vals = [float(v) for v in rng.uniform(-3, 3, 8)] + [0.0] * 6
                    c.predict(run.name, ep, *vals, api_name="/slide")
                    kind = "slide"
                with lock:
                    lat.append((kind, time.perf_counter() - t))
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    failures.append(f"{exc.__class__.__name__}: {str(exc)[:200]}")
            n += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak[0] = max(peak[0], rss_mb(app.pid))
        time.sleep(0.2)
    alive = app.poll() is None
    app.terminate()
    app.wait(20)
    slide = [x for k, x in lat if k == "slide"]
    interp = [x for k, x in lat if k == "interpolate"]

    def p(xs, q):
        return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")

    for f in failures[:10]:
        print("FAILED:", f)
    print(
        f"{args.clients} clients x {args.seconds:.0f} s against {run.name} ({len(epochs)} epochs): "
        f"{len(lat)} ok, {len(failures)} failed; server alive after: {alive}"
    )
    print(f"/slide        n={len(slide)}  p50 {p(slide, 50):.0f} ms  p95 {p(slide, 95):.0f} ms")
    print(f"/interpolate  n={len(interp)}  p50 {p(interp, 50):.0f} ms  p95 {p(interp, 95):.0f} ms")
    print(
        f"requests={len(lat) + len(failures)} failed={len(failures)} slide_p50_ms={p(slide, 50):.0f} "
        f"slide_p95_ms={p(slide, 95):.0f} interp_p95_ms={p(interp, 95):.0f} "
        f"peak_rss_mb={peak[0]:.0f} clients={args.clients} seconds={args.seconds:.0f}"
    )
    return 0 if not failures and alive else 1


if __name__ == "__main__":
    sys.exit(main())
