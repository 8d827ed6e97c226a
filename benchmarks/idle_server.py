"""An explorer server nobody uses: its CPU with the queue app.py serves (explorer/ui/quiet_queue.py)
and with Gradio 6.31's own (a 1 ms poll), and what each costs a request.

    .venv/bin/python benchmarks/idle_server.py [--runs-dir runs] [--seconds 20] [--rounds 2]

Each measurement is a fresh process that builds the explorer on the runs folder (the bundled demo
by default) and serves it through app.py's `serve`, with or without the quiet queue. Once it
answers and has settled (5 s), over --seconds nothing touches it and this reads its CPU time
(/proc); then 30 calls of the `/list_runs` endpoint one after another (gradio_client) give the
p50 / p95 of a request's time. Rounds alternate the two. Prints each measurement; last line:
name=value pairs (medians over rounds; cpu_ratio = gradio CPU / quiet CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._browser import ROOT, stop_process, wait_answering  # noqa: E402
from benchmarks._cpu import cpu_profile, isa_name, print_cpu, round_robin  # noqa: E402
from tests.test_browser import free_port  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
CHILD = """import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from app import serve
from explorer.ui import build_app
runs = Path({runs!r})
app = build_app([runs], runs)
serve(app, quiet_queue={quiet}, server_name="127.0.0.1", server_port={port}, quiet=True)
"""


def cpu_s(pid: int) -> float:
    rest = Path(f"/proc/{pid}/stat").read_text()
    rest = rest[rest.rfind(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / HZ


def measure(runs: Path, quiet: bool, seconds: float, log: Path) -> tuple[float, float, float]:
    """(CPU seconds while idle, p50 ms, p95 ms of /list_runs) of one fresh server."""
    from gradio_client import Client

    port = free_port()
    code = CHILD.format(root=str(ROOT), runs=str(runs), quiet=quiet, port=port)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_answering(proc, url, log, 300)
        time.sleep(5)
        before = cpu_s(proc.pid)
        time.sleep(seconds)
        idle = cpu_s(proc.pid) - before
        client = Client(url, verbose=False)
        client.predict(api_name="/list_runs")
        times = []
        for _ in range(30):
            t = time.perf_counter()
            client.predict(api_name="/list_runs")
            times.append((time.perf_counter() - t) * 1000)
        client.close()
        times.sort()
        return idle, times[len(times) // 2], times[int(len(times) * 0.95) - 1]
    finally:
        stop_process(proc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    print_cpu()
    got: dict[str, list] = {"quiet": [], "gradio": []}
    log = Path(tempfile.mkdtemp(prefix="idle-server-")) / "servers.log"
    for r, arm in round_robin(["quiet", "gradio"], args.rounds):
        idle, p50, p95 = measure(args.runs_dir.resolve(), arm == "quiet", args.seconds, log)
        got[arm].append((idle, p50, p95))
        print(
            f"round {r + 1} {arm:6}: {idle:5.2f} CPU-s in {args.seconds:.0f} s idle "
            f"({100 * idle / args.seconds:.1f} % of a core); /list_runs p50 {p50:.0f} ms p95 {p95:.0f} ms",
            flush=True,
        )

    def med(arm, i):
        return statistics.median(m[i] for m in got[arm])

    q, g = med("quiet", 0), med("gradio", 0)
    print(
        f"quiet_cpu_s={q:.2f} gradio_cpu_s={g:.2f} cpu_ratio={g / max(q, 1e-9):.1f} "
        f"quiet_p50_ms={med('quiet', 1):.0f} gradio_p50_ms={med('gradio', 1):.0f} "
        f"quiet_p95_ms={med('quiet', 2):.0f} gradio_p95_ms={med('gradio', 2):.0f} "
        f"seconds={args.seconds:.0f} rounds={args.rounds} cpu_isa={isa_name(cpu_profile())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
