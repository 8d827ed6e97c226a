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


def clickmap(im, run, epochs: list, zs: np.ndarray, digits: list | None = None) -> dict:
    """What a click on a drawn grid needs to open the cell under it: the run, each row's epoch,
    each cell's latent point (rows, cols, dim), each column's digit (a conditional run) and the
    cells' layout (taken off the image)."""
    layout = im.info.pop("layout", None)
    cm = dict(run=run, epochs=list(map(int, epochs)), zs=np.asarray(zs).tolist(), layout=layout)
    return cm | ({"digits": list(digits)} if digits is not None else {})


def cell_state(cm: dict | None, x, y) -> state.ViewState | None:
    """The sliders' view of the cell under (x, y) of a grid described by `clickmap`, or None."""
    if not isinstance(cm, dict) or not cm.get("layout"):
        return None
    zs = np.asarray(cm["zs"], np.float32)
    rc = render.cell_at(cm["layout"], x, y)
    if rc is None or zs.ndim != 3 or rc[0] >= zs.shape[0] or rc[1] >= zs.shape[1]:
        return None
    digits = cm.get("digits")
    digit = digits[rc[1]] if isinstance(digits, list) and rc[1] < len(digits) else None
    return state.ViewState(cm["run"], cm["epochs"][rc[0]], "sliders", zs[rc], digit=digit)


def _digit(ctx: Ctx, run, epoch, digit) -> int | None:
    """The digit a conditional run draws (checked; empty: 0); None for any other run."""
    snap = ctx.engine.snapshot(run, epoch)
    return conditional.check_label(run, snap.num_classes, digit) if snap.num_classes else None


def endpoint_picture(ctx: Ctx, run, epoch, text: str, name: str, digit=""):
    """The point in an endpoint box as a picture with its P(real), or None while it is no point;
    a conditional run's drawn as ``digit``."""
    try:
        run, epoch = ctx.need(run, epoch)
        z = latent.parse_vector(text, ctx.engine.snapshot(run, epoch).latent_dim)
        img, p = ctx.engine.generate(run, epoch, z, _digit(ctx, run, epoch, digit))
    except (ExplorerError, gr.Error):
        return None
    return render.grid(img[None, None], np.array([[p]]), [name], cell=84, label_w=24)


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

    def outputs(run, epoch, imgs, scores, label, zs, a, b=None):
        """The strip, plot, GIF and click map of a path's frames (latent points ``zs``);
        ``label``: how the final D judges them."""
        final, final_scores = ctx.default_epoch(run), None
        if final is not None and final != epoch:
            try:
                final_scores = ctx.engine.scores(run, final, imgs, label)
            except ExplorerError:
                final = None
        strip = render.strip(imgs, scores, cell=84, scores2=final_scores, score2_name="final D")
        lay = strip.info["layout"]
        cells = np.zeros((lay["rows"] * lay["cols"], a.size), np.float32)
        cells[: len(imgs)] = zs
        cm = clickmap(strip, run, [epoch] * lay["rows"], cells.reshape(lay["rows"], lay["cols"], -1))
        state.tag(strip, state.ViewState(run, epoch, "interp", a=a, b=b))  # the PNG keeps A, B
        gif = new_gif_path(ctx.gif_dir, run, epoch)
        gif.write_bytes(render.gif_bytes(imgs, scores))
        return strip, path_frame(scores, epoch, final_scores, final), str(gif), str(gif), cm

    @err
    def interpolate(run: str, epoch: float, a_text: str, b_text: str, steps: float, path: str, digit=""):
        """digit: what a conditional run draws the path as (0-9; empty: 0); ignored for other runs."""
        run, epoch = ctx.need(run, epoch)
        snap = ctx.engine.snapshot(run, epoch)
        a = latent.parse_vector(a_text, snap.latent_dim)
        b = latent.parse_vector(b_text, snap.latent_dim)
        label = _digit(ctx, run, epoch, digit)
        imgs, scores, zs = ctx.engine.interpolate(run, epoch, a, b, latent.clamp_steps(steps), path, label)
        return outputs(run, epoch, imgs, scores, None if label is None else [label], zs, a, b)

    @err
    def digit_path(run: str, epoch: float, a_text: str, digit: str, digit_b: str, steps: float):
        """A conditional run's point A (one style) drawn from one digit to another."""
        run, epoch = ctx.need(run, epoch)
        a = latent.parse_vector(a_text, ctx.engine.snapshot(run, epoch).latent_dim)
        imgs, scores = conditional.digit_path(ctx.engine, run, epoch, a, digit, digit_b, steps)
        return outputs(run, epoch, imgs, scores, None, np.repeat(a[None], len(imgs), axis=0), a)

    def digit_row_shown(run):
        try:
            return gr.update(visible=bool(run and ctx.registry.get(run).num_classes))
        except ExplorerError:
            return gr.update(visible=False)

    def opened(run, epoch, a_text, b_text, current):
        """The view opens with A = the current point and B = a random one (empty boxes only)."""
        try:
            a = a_text if (a_text or "").strip() else current_point(run, epoch, current)
            b = b_text if (b_text or "").strip() else random_point(run, epoch)
        except gr.Error:
            return gr.skip(), gr.skip()
        return a, b

    return dict(
        current_point=current_point,
        random_point=random_point,
        interpolate=interpolate,
        digit_path=digit_path,
        digit_row_shown=digit_row_shown,
        opened=opened,
    )


def build(ctx: Ctx, vec_txt: gr.Textbox, tab: gr.Tab | None = None) -> dict:
    with gr.Row():
        a_img = gr.Image(show_label=False, interactive=False, elem_id="interp-a-img", scale=1, height=150)
        a_txt = gr.Textbox(label="Start point A", lines=2, elem_id="interp-a", scale=3)
        b_img = gr.Image(show_label=False, interactive=False, elem_id="interp-b-img", scale=1, height=150)
        b_txt = gr.Textbox(label="End point B", lines=2, elem_id="interp-b", scale=3)
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
    digit_now = gr.State("0")  # digit_a's value: a state, so raw /interpolate callers send what they did
    as_digit = gr.Button(visible=False)  # only for /interpolate_digit: the path as a chosen digit
    gr.Markdown(
        "**The path A → B**: each frame with P(real) by this epoch's D and, "
        'when this is not the final epoch, by the final epoch\'s D ("final D"). '
        "Click a frame to open it in the Latent sliders."
    )
    cells = gr.State(None)
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
    views = [strip_img, path_plot, gif_img, gif_file, cells]
    path_in = [*pick, a_txt, b_txt, steps_sl, path_rd]
    interp_btn.click(h["interpolate"], [*path_in, digit_now], views, api_name="interpolate")
    as_digit.click(h["interpolate"], [*path_in, digit_a], views, api_name="interpolate_digit")
    digits_btn.click(
        h["digit_path"], [*pick, a_txt, digit_a, digit_b, steps_sl], views, api_name="digit_path"
    )
    hidden = dict(api_visibility="undocumented", show_progress="hidden")
    ctx.run_dd.change(h["digit_row_shown"], ctx.run_dd, digit_row, **hidden)
    digit_a.change(lambda d: d, digit_a, digit_now, **hidden)
    for txt, img, name in ((a_txt, a_img, "A"), (b_txt, b_img, "B")):
        show = lambda r, e, t, d, n=name: endpoint_picture(ctx, r, e, t, n, d)  # noqa: E731
        for trigger in (txt.change, digit_a.change):
            trigger(show, [*pick, txt, digit_a], img, **hidden)
    if tab is not None:
        tab.select(h["opened"], [*pick, a_txt, b_txt, vec_txt], [a_txt, b_txt], **hidden)
    return dict(image=strip_img, cells=cells, a_txt=a_txt, b_txt=b_txt)
