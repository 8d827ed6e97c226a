"""Latent Explorer: `python app.py` opens the explorer (127.0.0.1 unless --host says otherwise)."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent
MAX_FILE_SIZE = "10mb"  # the largest upload Gradio's upload route accepts (the app needs none bigger)


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
    p.add_argument(
        "--max-trainings",
        type=int,
        default=1,
        help="how many trainings started from the Train tab may run at once (default 1)",
    )
    p.add_argument(
        "--data-root",
        action="append",
        metavar="DIR",
        help="a folder the Train tab may read data from (repeatable; default: the data sets it "
        "offers: ../shared/data/mnist, /usr/share/datasets/fashion-mnist, data/ next to the runs folder)",
    )
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
    if not 1 <= args.max_trainings <= 64:
        print(f"error: --max-trainings must be from 1 to 64 (got {args.max_trainings})", file=sys.stderr)
        return 2
    roots = None
    if args.data_root:
        roots = [Path(d).expanduser().resolve() for d in args.data_root]
        for d in roots:
            if not d.is_dir():
                print(f"error: --data-root {d} is not a folder", file=sys.stderr)
                return 2

    from models.tf_runtime import import_tensorflow

    import_tensorflow()  # without its C++ start-up notices on the console
    from explorer.ui import build_app

    app = build_app([runs], runs, max_trainings=args.max_trainings, data_roots=roots)
    # the interpolation GIFs live in a private temporary folder: gone when the app ends
    atexit.register(shutil.rmtree, app.gif_dir, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: quick_exit(app))
    serve(
        app,
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        inbrowser=not args.no_browser and not os.environ.get("CI"),
    )
    return 0


def serve(app, quiet_queue: bool = True, **where) -> None:
    """Queue and launch a built explorer the one way it is served (its event-driven queue, error
    messages, GIF folder and upload limit); ``where``: host, port and the like. The tests serve it
    through this; ``quiet_queue=False`` (Gradio's 1 ms poll) only for benchmarks/idle_server.py."""
    from starlette.middleware import Middleware

    from explorer.ui.idle_page import IdlePageScript
    from explorer.ui.quiet_queue import quiet

    app.queue(default_concurrency_limit=8)
    if quiet_queue:
        quiet(app._queue)  # an idle server waits for its events instead of polling every 1 ms
    app.launch(
        app_kwargs={"middleware": [Middleware(IdlePageScript)]},  # an idle page asks for no frames
        allowed_paths=[str(app.gif_dir)],
        show_error=True,
        footer_links=["api"],
        max_file_size=MAX_FILE_SIZE,
        **where,
    )


def quick_exit(app) -> None:
    """SIGTERM: close the server (bounded), remove the GIF folder, and exit at once. A normal
    interpreter exit spends seconds garbage-collecting TensorFlow's objects; nothing the app
    holds needs it (run folders are written only by the trainers, separate processes that
    keep running by design and finish their epoch on their own)."""
    closer = threading.Thread(target=app.close, daemon=True)
    closer.start()
    closer.join(1.5)
    shutil.rmtree(app.gif_dir, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
