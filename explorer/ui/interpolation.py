"""The Interpolation tab: a path from point A to point B, each frame scored by D, as a strip,
a plot and a GIF."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from explorer import conditional, latent, render, state
from explorer.registry import ExplorerError
from explorer.ui.context import Ctx, err

MAX_GIFS = 64  # interpolation GIFs kept on disk (older ones are deleted)
_gif_lock = threading.Lock()


def new_gif_path(gif_dir: Path, run, epoch) -> Path:
    # deletes only GIFs in the app's private temporary folder: each is a re-makeable rendering
    # of a path (press Interpolate again), never the only copy of anything
    with _gif_lock:
        old = sorted(gif_dir.glob("*.gif"), key=lambda p: p.stat().st_mtime)
        for p in old[: max(0, len(old) - MAX_GIFS + 1)]:
            p.unlink(missing_ok=True)
    return gif_dir / f"path-{run}-epoch{epoch}-{time.time_ns()}.gif"


def path_frame(scores, epoch, final_scores=None, final=None) -> pd.DataFrame:
    """P(real) per step, by this epoch's D and (when given) by the final epoch's D."""
    steps = np.arange(len(scores))
    df = pd.DataFrame({"step": steps, "P(real)": scores.astype(float), "judged by": f"D of epoch {epoch}"})
    if final_scores is not None:
        df = pd.concat(
            [
                df,
                pd.DataFrame(
                    {
                        "step": steps,
                        "P(real)": final_scores.astype(float),
                        "judged by": f"D of final epoch {final}",
                    }
                ),
            ]
        )
    return df


def _handlers(ctx: Ctx) -> dict:
    @err
    def current_point(run, epoch, current):
        ctx.engine.snapshot(*ctx.need(run, epoch))  # a run/epoch that cannot load says so first
        if not (current or "").strip():
            raise ExplorerError("there is no current point yet: open the Latent sliders tab first")
        return current

    @err
    def random_point(run, epoch):
        run, epoch = ctx.need(run, epoch)
        return latent.format_vector(latent.random_vector(ctx.engine.snapshot(run, epoch).latent_dim))

    def outputs(run, epoch, imgs, scores, label, a, b=None):
        """The strip, plot and GIF of a path's frames; ``label``: how the final D judges them."""
        final, final_scores = ctx.default_epoch(run), None
        if final is not None and final != epoch:
            try:
                final_scores = ctx.engine.scores(run, final, imgs, label)
            except ExplorerError:
                final = None
        strip = render.strip(imgs, scores, cell=84, scores2=final_scores, score2_name="final D")
        state.tag(strip, state.ViewState(run, epoch, "interp", a=a, b=b))  # the PNG keeps A, B
        gif = new_gif_path(ctx.gif_dir, run, epoch)
        gif.write_bytes(render.gif_bytes(imgs, scores))
        return strip, path_frame(scores, epoch, final_scores, final), str(gif), str(gif)

    @err
    def interpolate(run: str, epoch: float, a_text: str, b_text: str, steps: float, path: str, digit=""):
        """digit: what a conditional run draws the path as (0-9; empty: 0); ignored for other runs."""
        run, epoch = ctx.need(run, epoch)
        snap = ctx.engine.snapshot(run, epoch)
        a = latent.parse_vector(a_text, snap.latent_dim)
        b = latent.parse_vector(b_text, snap.latent_dim)
        label = conditional.check_label(run, snap.num_classes, digit) if snap.num_classes else None
        imgs, scores, _ = ctx.engine.interpolate(run, epoch, a, b, latent.clamp_steps(steps), path, label)
        return outputs(run, epoch, imgs, scores, None if label is None else [label], a, b)

    @err
    def digit_path(run: str, epoch: float, a_text: str, digit: str, digit_b: str, steps: float):
        """A conditional run's point A (one style) drawn from one digit to another."""
        run, epoch = ctx.need(run, epoch)
        a = latent.parse_vector(a_text, ctx.engine.snapshot(run, epoch).latent_dim)
        imgs, scores = conditional.digit_path(ctx.engine, run, epoch, a, digit, digit_b, steps)
        return outputs(run, epoch, imgs, scores, None, a)

    def digit_row_shown(run):
        try:
            return gr.update(visible=bool(run and ctx.registry.get(run).num_classes))
        except ExplorerError:
            return gr.update(visible=False)

    return dict(
        current_point=current_point,
        random_point=random_point,
        interpolate=interpolate,
        digit_path=digit_path,
        digit_row_shown=digit_row_shown,
    )


def build(ctx: Ctx, vec_txt: gr.Textbox) -> None:
    with gr.Row():
        a_txt = gr.Textbox(label="Start point A", lines=2, elem_id="interp-a")
        b_txt = gr.Textbox(label="End point B", lines=2, elem_id="interp-b")
    with gr.Row():
        a_cur = gr.Button("A ← current point")
        a_rnd = gr.Button("A ← random")
        b_cur = gr.Button("B ← current point")
        b_rnd = gr.Button("B ← random")
    with gr.Row():
        steps_sl = gr.Slider(
            latent.MIN_STEPS, latent.MAX_STEPS, value=10, step=1, label="Steps", elem_id="steps"
        )
        path_rd = gr.Radio(["spherical", "linear"], value="spherical", label="Path")
        interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interp-btn")
    with gr.Row(visible=False) as digit_row:  # a conditional run only
        digits = [str(i) for i in range(10)]
        digit_a = gr.Radio(
            digits, value="0", label="Digit (A → B is drawn as this digit)", elem_id="interp-digit"
        )
        digit_b = gr.Radio(digits, value="1", label="Second digit", elem_id="interp-digit-b")
        digits_btn = gr.Button("Digit → second digit at point A", elem_id="digit-path-btn")
    gr.Markdown(
        "**The path A → B**: each frame with P(real) by this epoch's D and, "
        'when this is not the final epoch, by the final epoch\'s D ("final D")'
    )
    strip_img = gr.Image(
        label="path", show_label=False, type="pil", interactive=False, elem_id="strip", format="png"
    )
    with gr.Row():
        path_plot = gr.LinePlot(
            x="step",
            y="P(real)",
            color="judged by",
            title="P(real) along the path",
            y_lim=[0, 1],
            height=280,
            elem_id="path-plot",
        )
        gif_img = gr.Image(label="Animation (A → B → A)", type="filepath", interactive=False, elem_id="gif")
        gif_file = gr.File(label="Download the GIF", elem_id="gif-file")

    h = _handlers(ctx)
    pick = [ctx.run_dd, ctx.epoch_dd]
    a_cur.click(h["current_point"], [*pick, vec_txt], a_txt, api_visibility="undocumented")
    b_cur.click(h["current_point"], [*pick, vec_txt], b_txt, api_visibility="undocumented")
    a_rnd.click(h["random_point"], pick, a_txt, api_visibility="undocumented")
    b_rnd.click(h["random_point"], pick, b_txt, api_visibility="undocumented")
    views = [strip_img, path_plot, gif_img, gif_file]
    interp_btn.click(
        h["interpolate"], [*pick, a_txt, b_txt, steps_sl, path_rd, digit_a], views, api_name="interpolate"
    )
    digits_btn.click(
        h["digit_path"], [*pick, a_txt, digit_a, digit_b, steps_sl], views, api_name="digit_path"
    )
    ctx.run_dd.change(
        h["digit_row_shown"], ctx.run_dd, digit_row, show_progress="hidden", api_visibility="undocumented"
    )
