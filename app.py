"""Latent Explorer: `python app.py` opens the explorer (127.0.0.1 unless --host says otherwise)."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Explore a DCGAN's latent space, epoch by epoch.")
    p.add_argument(
        "--runs-dir",
        default=str(ROOT / "runs"),
        help="folder of run folders (default: runs/, which holds the bundled demo run)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.add_argument("--auth", help="user:password required for every page and API call")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    auth = None
    if args.auth is not None:
        user, sep, pw = args.auth.partition(":")
        if not sep or not user or not pw:
            print("error: --auth takes user:password (both non-empty)", file=sys.stderr)
            return 2
        auth = (user, pw)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be from 0 to 65535 (got {args.port})", file=sys.stderr)
        return 2
    runs = Path(args.runs_dir).expanduser().resolve()
    if runs.exists() and not runs.is_dir():
        print(f"error: --runs-dir {runs} is not a folder", file=sys.stderr)
        return 2
    runs.mkdir(parents=True, exist_ok=True)

    from models.tf_runtime import import_tensorflow

    import_tensorflow()  # without its C++ start-up notices on the console
    from explorer.ui import build_app

    app = build_app([runs], runs)
    # the interpolation GIFs live in a private temporary folder: gone when the app ends
    atexit.register(shutil.rmtree, app.gif_dir, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # SIGTERM ends as cleanly as Ctrl-C
    app.queue(default_concurrency_limit=8)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        inbrowser=not args.no_browser and not os.environ.get("CI"),
        allowed_paths=[str(app.gif_dir)],
        show_error=True,
        footer_links=["api"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
