"""Slider drags as a person makes them, in a real browser: how long from releasing the mouse
until the image on screen is the one for the released position.

    .venv/bin/python benchmarks/slider_drag.py [--runs-dir runs] [--drags 30]

Starts app.py on the runs folder (the bundled demo by default), opens the Latent sliders in
Debian's Chromium (1400x1000), and drags a dimension slider's thumb with the real mouse
(down, a few moves, up) to a new place, `--drags` times over the 8 sliders. "Settled" is when
the vector under the image holds the released slider's value in its dimension (the image, the
verdict and the vector come in one answer). The drag itself sends moves while it lasts; only the
time after the release counts. Prints p50/p95 and, last, name=value pairs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._browser import ROOT, chromium, running_app  # noqa: E402


def settled_js() -> str:
    return """([d, v]) => {
      const t = document.querySelector('#vector textarea');
      if (!t) return false;
      const z = t.value.split(',').map(parseFloat);
      return z.length > d && Math.abs(z[d] - v) < 0.006;
    }"""


def drag(pg, i: int, frac: float) -> tuple[float, float]:
    """Drag slider i's thumb to `frac` of its track; (seconds from release to settled, value)."""
    rng = pg.locator(f"#dim-slider-{i} input[type=range]")
    box = rng.bounding_box()
    lo, hi = float(rng.get_attribute("min")), float(rng.get_attribute("max"))
    cur = float(rng.input_value())
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + box["width"] * (cur - lo) / (hi - lo)
    x1 = box["x"] + box["width"] * frac
    pg.mouse.move(x0, y)
    pg.mouse.down()
    for k in range(1, 6):
        pg.mouse.move(x0 + (x1 - x0) * k / 5, y)
        pg.wait_for_timeout(40)
    dims = [int(d) for d in pg.locator("#dims-txt textarea").input_value().split(",")]
    t = time.perf_counter()
    pg.mouse.up()
    value = float(rng.input_value())
    pg.wait_for_function(settled_js(), arg=[dims[i], value], polling="raf", timeout=60_000)
    return time.perf_counter() - t, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--drags", type=int, default=30)
    args = ap.parse_args()
    from benchmarks._cpu import print_cpu

    print_cpu()
    log = Path(tempfile.mkdtemp(prefix="slider-drag-")) / "app.log"
    with running_app(Path(args.runs_dir), log) as url, chromium() as b:
        pg = b.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(url)
        pg.get_by_role("tab", name="Latent sliders").click()
        pg.wait_for_function("() => document.querySelector('#vector textarea')?.value.split(',').length > 8")
        drag(pg, 0, 0.3)  # warm: the first answer of a page
        times = []
        for n in range(args.drags):
            secs, _ = drag(pg, n % 8, [0.2, 0.8, 0.35, 0.65, 0.5][n % 5])
            times.append(secs * 1000)
        pg.close()
    times.sort()
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(
        f"{len(times)} drags; release -> settled: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {times[-1]:.0f} ms"
    )
    print(f"drags={len(times)} settle_p50_ms={p50:.0f} settle_p95_ms={p95:.0f} settle_max_ms={times[-1]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
