"""The Gradio layer: one module per view over explorer.engine / registry / latent / render /
tables, composed here.

Every handler turns an ExplorerError into a gr.Error (a clear message in the UI, an error
through the API) and the server keeps serving.

P(real) = sigmoid(D(x)) is shown on every generated image by the SAME epoch's discriminator;
where it helps (sliders, interpolation, compare) also by the final epoch's discriminator.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gradio as gr

from explorer.engine import Engine
from explorer.neighbours import Neighbours
from explorer.registry import ExplorerError, RunRegistry
from explorer.trainer import Trainer, check_run_name
from explorer.ui import (
    api,
    compare,
    interpolation,
    links,
    nearest,
    pickers,
    sliders,
    snapshot,
    train,
    yourdigit,
)
from explorer.ui.context import N_DIM_SLIDERS, N_PCA_SLIDERS, Ctx

__all__ = ["build_app", "check_run_name"]
INTRO = (
    "# Latent Explorer\nTrain a DCGAN on digits, then see what it learned. Every generated image "
    "carries the discriminator's verdict, **P(real)** (1 = looks real to D, 0 = looks fake)."
)


def _warm(ctx: Ctx):
    """The run and epoch the first page opens on, their models, traces and directions loaded."""
    first_run = ctx.preferred_run([v for _, v in ctx.run_choices()])
    first_epoch = ctx.default_epoch(first_run) if first_run else None
    if first_epoch is not None:
        try:
            ctx.engine.directions(first_run, first_epoch, N_PCA_SLIDERS)
            ctx.engine.top_dims(first_run, first_epoch, N_DIM_SLIDERS)
        except ExplorerError as exc:
            print(f"note: {exc}", file=sys.stderr)
    return first_run, first_epoch


def build_app(runs_dirs: list[Path], train_dir: Path, max_trainings: int = 1, data_roots=None) -> gr.Blocks:
    registry = RunRegistry(runs_dirs)
    ctx = Ctx(
        registry=registry,
        engine=Engine(registry),
        trainer=Trainer(train_dir, max_trainings, data_roots),
        train_dir=Path(train_dir),
        gif_dir=Path(tempfile.mkdtemp(prefix="latent-explorer-gif-")),
        neighbours=Neighbours(registry),
    )
    first_run, first_epoch = _warm(ctx)

    with gr.Blocks(title="Latent Explorer", delete_cache=(900, 1800)) as app:
        gr.Markdown(INTRO)
        top = pickers.build(ctx, first_run, first_epoch)
        with gr.Tabs() as tabs:
            with gr.Tab("Snapshot", id="snapshot"):
                snap = snapshot.build(ctx)
            with gr.Tab("Latent sliders", id="sliders"):
                point = sliders.build(ctx)
            with gr.Tab("Interpolation", id="interp") as interp_tab:
                interp = interpolation.build(ctx, point.vec_txt, interp_tab)
            with gr.Tab("Compare epochs", id="compare") as compare_tab:
                comp = compare.build(ctx, compare_tab)
            with gr.Tab("Your digit", id="yourdigit"):
                yourdigit.build(ctx, app, point, tabs)
            with gr.Tab("Train", id="train") as train_tab:
                data_dd = train.build(ctx, app)
        # TensorFlow imported ahead, while the person fills the form (explorer/trainer.py warm_up)
        train_tab.select(ctx.trainer.warm_up, None, None, queue=False, show_progress="hidden")
        roots = ctx.trainer.data_roots  # what lies in the data folders now (a listing, no model)
        train_tab.select(
            lambda: train.offered_data(roots), None, data_dd, queue=False, show_progress="hidden"
        )
        pickers.wire(ctx, app, top, snap, point)
        links.wire(ctx, app, tabs, snap, point, interp)  # opening a link, Copy link, PNGs with state
        links.wire_cells(ctx, tabs, snap, point, [interp, comp])  # a click on a frame or cell
        api.build(ctx)
        nearest.build_api(ctx)

    app.ctx = ctx  # for tests and benchmarks
    app.engine = ctx.engine
    app.registry = ctx.registry
    app.trainer = ctx.trainer
    app.gif_dir = ctx.gif_dir
    return app
