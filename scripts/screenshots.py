"""Screenshots of every view of the explorer on the bundled demo, at 1400x1000 and at a narrow
800 px width, into artifacts/screenshots/ (wide-*.png, narrow-*.png).

    .venv/bin/python scripts/screenshots.py [--runs-dir runs] [--out artifacts/screenshots]

Each view is opened as a person would (tab clicks; Interpolate pressed; Compare runs as it
opens) and shot full-page. For each, it prints whether anything sticks out sideways (the page
wider than the window: something cut off or scrolled), and exits 1 if anything does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._browser import ROOT, chromium, running_app  # noqa: E402

WIDTHS = {"wide": (1400, 1000), "narrow": (800, 1000)}
VIEWS = ["Snapshot", "Latent sliders", "Interpolation", "Compare epochs", "Your digit", "Train"]


def open_view(pg, name: str) -> None:
    pg.get_by_role("tab", name=name).click()
    if name == "Snapshot":
        pg.locator("#samples img").wait_for()
    elif name == "Latent sliders":
        pg.locator("#latent-image").wait_for()
    elif name == "Interpolation":
        pg.wait_for_function(
            "() => document.querySelector('#interp-b textarea')?.value.split(',').length > 8"
        )
        pg.locator("#interp-btn").click()
        pg.locator("#strip img").wait_for()
    elif name == "Compare epochs":
        pg.locator("#compare-grid img").wait_for()
    pg.wait_for_timeout(800)  # plots draw after their data arrives


def overflow(pg) -> int:
    """How many px the page is wider than the window (0: nothing sticks out sideways)."""
    return int(pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bad = 0
    log = Path(tempfile.mkdtemp(prefix="screenshots-")) / "app.log"
    with running_app(Path(args.runs_dir), log) as url, chromium() as b:
        for kind, (w, h) in WIDTHS.items():
            pg = b.new_page(viewport={"width": w, "height": h})
            pg.set_default_timeout(120_000)
            pg.goto(url)
            pg.locator("#facts").get_by_text("epochs").first.wait_for()
            for i, name in enumerate(VIEWS, 1):
                open_view(pg, name)
                path = out / f"{kind}-{i}-{name.lower().replace(' ', '-')}.png"
                pg.screenshot(path=str(path), full_page=True)
                extra = overflow(pg)
                bad += extra > 0
                print(
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {w}px wide, "
                    + ("nothing sticks out sideways" if extra <= 0 else f"{extra} px stick out sideways")
                )
            pg.close()
    print(f"shots={2 * len(VIEWS)} overflowing={bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
