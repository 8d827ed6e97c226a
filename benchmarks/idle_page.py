"""An explorer page nobody touches: the CPU Chromium spends on it and the animation frames its
scripts ask for, as app.py serves it and without explorer/ui/idle_page.py's script.

    .venv/bin/python benchmarks/idle_page.py [--runs-dir runs] [--seconds 15] [--rounds 2]

Starts app.py on the runs folder (the bundled demo by default) and opens it in Debian's Chromium
(1400x1000), a fresh page per measurement:
- served: the page as app.py sends it;
- unfixed: the same page with that script taken out on its way to the browser (a Playwright
  route), which is Gradio 6.31 as it is.
Each page loads and settles (6 s: its entrance animations end), then over --seconds: the CPU time
of this benchmark's Chromium processes (/proc; only children of this process) and the
requestAnimationFrame calls the page's scripts make (an init script counts them). Rounds
alternate the two. Prints each measurement; last line: name=value pairs (medians over rounds;
cpu_ratio = unfixed CPU / served CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._browser import ROOT, chromium, running_app  # noqa: E402
from benchmarks._cpu import cpu_profile, isa_name, print_cpu  # noqa: E402
from explorer.ui.idle_page import TAG  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
COUNT_JS = """(() => { const raf = window.requestAnimationFrame.bind(window); window.__frames = 0;
  window.requestAnimationFrame = (cb) => { window.__frames++; return raf(cb); }; })();"""


def chromium_cpu_s() -> float:
    """CPU seconds (user + system) of the Chromium processes under this process."""
    parent, cpu, name = {}, {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2 :].split()
        pid = int(d)
        parent[pid], cpu[pid] = int(rest[1]), (int(rest[11]) + int(rest[12])) / HZ
        name[pid] = st[st.find("(") + 1 : st.rfind(")")]

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 1)
            if pid == os.getpid():
                return True
        return False

    return sum(c for pid, c in cpu.items() if "chrom" in name[pid].lower() and mine(pid))


def measure(browser, url: str, fixed: bool, seconds: float) -> tuple[float, int]:
    """(Chromium CPU-s, frames asked for) over `seconds` of an idle page."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        pg.add_init_script(COUNT_JS)
        if not fixed:

            def strip(route):
                resp = route.fetch()
                body = resp.body()
                assert TAG in body, "the served page lacks the idle script"
                route.fulfill(response=resp, body=body.replace(TAG, b""))

            pg.route(url, strip)
        pg.goto(url)
        pg.locator("#facts li").first.wait_for(timeout=120_000)
        time.sleep(6)
        c0, n0 = chromium_cpu_s(), pg.evaluate("() => window.__frames")
        time.sleep(seconds)
        return chromium_cpu_s() - c0, pg.evaluate("() => window.__frames") - n0
    finally:
        pg.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    print_cpu()
    res = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp, running_app(a.runs_dir, Path(tmp) / "app.log") as url:
        with chromium() as browser:
            for r in range(a.rounds):
                for fixed in (False, True) if r % 2 == 0 else (True, False):
                    cpu, frames = measure(browser, url, fixed, a.seconds)
                    res[fixed].append((cpu, frames))
                    label = "served " if fixed else "unfixed"
                    print(f"round {r + 1} {label}: Chromium {cpu:5.2f} CPU-s, {frames:5d} frames", flush=True)
    med = {
        k: (statistics.median(c for c, _ in v), statistics.median(f for _, f in v)) for k, v in res.items()
    }
    print(
        f"served_cpu_s={med[True][0]:.2f} unfixed_cpu_s={med[False][0]:.2f} "
        f"cpu_ratio={med[False][0] / max(med[True][0], 1e-9):.1f} served_frames={med[True][1]:.0f} "
        f"unfixed_frames={med[False][1]:.0f} seconds={a.seconds:.0f} rounds={a.rounds} "
        f"cpu_isa={isa_name(cpu_profile())}"
    )


if __name__ == "__main__":
    main()
