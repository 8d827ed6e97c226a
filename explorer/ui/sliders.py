"""The Latent sliders tab: one point in latent space, its image and D's verdict, moved by the
most influential dimensions and the main directions of variation (PCA, as in GANSpace).

The slider path returns an inline PNG (a data URI in gr.HTML): one traced graph call and one
small PNG encode, no disk I/O.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

import gradio as gr
import numpy as np

from explorer import conditional, directions, latent, render
from explorer.registry import ExplorerError
from explorer.ui import history, links, named, nearest
from explorer.ui.context import N_DIM_SLIDERS, N_PCA_SLIDERS, Ctx, err

IMAGE_PX = 336  # the slider view's large image
N_SLIDERS = N_DIM_SLIDERS + N_PCA_SLIDERS


def png_html(img, caption: str = "", alt: str = "digit", overlay=None) -> str:
    """The large image (and, when given, its saliency overlay, shown by the toggle: ui.named)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f'<div id="latent-caption" style="margin-top:6px;font-size:15px">{caption}</div>' if caption else ""
    style = (
        f"image-rendering: pixelated; width: {IMAGE_PX}px; height: {IMAGE_PX}px; border-radius: 6px; "
        "display: block; margin: 0 auto;"
    )
    return (
        f'<div style="text-align:center">{named.overlay_img(overlay, style) if overlay is not None else ""}'
        f'<img id="latent-image" alt="{alt}" src="data:image/png;base64,{data}" style="{style}"/>{cap}</div>'
    )


@dataclass
class SlidersView:
    image_html: gr.HTML
    score_lbl: gr.Label
    vec_txt: gr.Textbox
    dims_txt: gr.Textbox
    sliders: list  # N_DIM_SLIDERS dimension sliders, then N_PCA_SLIDERS direction sliders
    snapshot_point: object  # handler: the point view for a newly chosen run/epoch
    points: Points | None = None  # the point logic (explorer.ui.links restores points with it)
    share: links.ShareRow | None = None  # Copy link, Download PNG, drop a PNG
    digit: gr.Radio | None = None  # a conditional run's digit picker (hidden for other runs)

    def point_outputs(self, ctx: Ctx) -> list:
        return [
            self.image_html,
            self.score_lbl,
            self.vec_txt,
            ctx.base_state,
            ctx.dims_state,
            self.dims_txt,
            *self.sliders,
        ]


class Points:
    """The point logic over the engine: compose a point from the sliders, render it."""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.engine = ctx.engine

    def compose(self, run, epoch, base, dims, vals):
        dim_vals, pca_vals = vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:]
        snap = self.engine.snapshot(run, epoch)
        z = np.array(base if base is not None else [], np.float32).ravel().copy()
        if z.shape != (snap.latent_dim,):
            z = latent.random_vector(snap.latent_dim, 0)
        if not dims or any(d is None or not 0 <= int(d) < snap.latent_dim for d in dims):
            dims = self.engine.top_dims(run, epoch, N_DIM_SLIDERS)  # cached per snapshot
        for d, v in zip(dims, dim_vals):
            if v is not None:
                z[int(d)] = float(v)
        pca = [float(c or 0) for c in pca_vals]
        if any(c != 0 for c in pca):  # NaN counts too: it is refused below, clearly
            dirs, _ = self.engine.directions(run, epoch, N_PCA_SLIDERS)
            z = z + np.asarray(pca[: len(dirs)], np.float32) @ dirs
        if not np.all(np.isfinite(z)):
            raise ExplorerError("slider values must be finite numbers")
        return np.clip(z, -latent.MAX_ABS, latent.MAX_ABS)

    def render(self, run, epoch, z, final=None, digit=None, saliency=True):
        """The point's image, D's verdict and vector; with `saliency`, D's pixel gradient over it too
        (the drag path asks for it only while the toggle is on: one graph call either way). A
        conditional run draws it as ``digit`` (the picker's value), and D judges it as that digit)."""
        classes = self.engine.snapshot(run, epoch).num_classes
        label = conditional.check_label(run, classes, digit) if classes else None
        overlay = None
        if saliency:
            img, p, grad = directions.look(self.engine, self.engine.snapshot(run, epoch), z, label)
            overlay = render.saliency_overlay(img, grad, 28)  # scaled up by the browser (pixelated)
        else:
            img, p = self.engine.generate(run, epoch, z, label)
        caption = ("" if label is None else f"digit <b>{label}</b> &middot; ") + (
            f"P(real) <b>{p:.2f}</b> by the D of epoch {epoch}"
        )
        if final is not None and final != epoch:
            try:
                y = None if label is None else [label]
                pf = float(self.engine.snapshot(run, final).score(img[None], y)[0])
                caption += f" &middot; <b>{pf:.2f}</b> by the final epoch's ({final}) D"
            except ExplorerError:
                pass
        label = {f"{render.verdict(p)}: P(real) {p:.2f} (D of epoch {epoch})": float(p)}
        html_ = png_html(render.digit(img, IMAGE_PX), caption, overlay=overlay)
        return html_, label, latent.format_vector(z)

    def slider_updates(self, run, epoch, base, dims) -> list:
        dir_labels = []
        try:
            _, var = self.engine.directions(run, epoch, N_PCA_SLIDERS)
            dir_labels = [f"PC{i + 1} ({v * 100:.1f}% of feature variance)" for i, v in enumerate(var)]
        except ExplorerError:
            pass
        ups = [gr.update(label=f"z[{d}]", value=round(float(base[d]), 2)) for d in dims]
        ups += [
            gr.update(value=0.0, label=dir_labels[i] if i < len(dir_labels) else f"PC{i + 1}")
            for i in range(N_PCA_SLIDERS)
        ]
        return ups

    def start(self, run, epoch, base):
        """(run, epoch, latent size, the base point as sent or the origin-seeded default)."""
        run, epoch = self.ctx.need(run, epoch)
        dim = self.engine.snapshot(run, epoch).latent_dim
        base = np.array(
            base if base is not None and len(base) == dim else latent.random_vector(dim, 0), np.float32
        )
        return run, epoch, dim, base

    def valid_dims(self, run, epoch, dims, dim):
        return self.engine.top_dims(run, epoch, N_DIM_SLIDERS) if not dims or max(dims) >= dim else dims

    def show(self, run, epoch, base, dims, digit=None) -> list:
        """Every output of a new base point: image, verdict, vector, state, sliders."""
        final = self.ctx.loadable_final(run)  # loads the final D now, not on the first slider move
        html_, label, text = self.render(run, epoch, base, final, digit)
        return [
            html_,
            label,
            text,
            base.tolist(),
            dims,
            ", ".join(map(str, dims)),
            *self.slider_updates(run, epoch, base, dims),
        ]


def parse_dims(text: str, dim: int, current: list) -> list[int]:
    """'3, 10 7' -> [3, 10, 7, then the current dims not chosen], N_DIM_SLIDERS in all."""
    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    try:
        chosen = list(dict.fromkeys(int(p) for p in parts))
    except ValueError:
        raise ExplorerError("dimensions must be whole numbers separated by commas") from None
    if not chosen or any(not 0 <= c < dim for c in chosen):
        raise ExplorerError(f"choose dimensions between 0 and {dim - 1}")
    return (chosen + [d for d in current if d not in chosen])[:N_DIM_SLIDERS]


def _handlers(ctx: Ctx, pts: Points) -> dict:
    @err
    def slide(run, epoch, base, dims, saliency, *vals):
        """vals: the slider values, then (optional) the digit picker's value."""
        run, epoch = ctx.need(run, epoch)
        vals, digit = vals[:N_SLIDERS], (vals[N_SLIDERS] if len(vals) > N_SLIDERS else None)
        z = pts.compose(run, epoch, base, dims, vals)
        # the final epoch is a fact of the run, kept server-side (set when a point or snapshot is
        # chosen, refreshed by the run-list timer): no disk access or tracing here after that
        final = ctx.finals[run] if run in ctx.finals else ctx.loadable_final(run)
        return pts.render(run, epoch, z, final, digit, saliency=bool(saliency))

    @err
    def random_point(run, epoch, base, dims, digit=None):
        run, epoch, dim, _ = pts.start(run, epoch, base)
        return pts.show(run, epoch, latent.random_vector(dim), pts.valid_dims(run, epoch, dims, dim), digit)

    @err
    def reset_point(run, epoch, base, dims, digit=None):
        run, epoch, dim, _ = pts.start(run, epoch, base)
        z = latent.random_vector(dim, 0)
        return pts.show(run, epoch, z, pts.valid_dims(run, epoch, dims, dim), digit)

    @err
    def nudge_point(run, epoch, base, dims, pasted="", dims_text="", *vals):
        """A small step from the point on screen (sliders included)."""
        run, epoch, dim, base = pts.start(run, epoch, base)
        vals, digit = vals[:N_SLIDERS], (vals[N_SLIDERS] if len(vals) > N_SLIDERS else None)
        if len(vals) == N_SLIDERS:
            base = pts.compose(run, epoch, base, dims, vals)
        base = np.clip(base + 0.35 * latent.random_vector(dim), -4, 4).astype(np.float32)
        return pts.show(run, epoch, base, pts.valid_dims(run, epoch, dims, dim), digit)

    @err
    def paste_point(run, epoch, base, dims, pasted="", dims_text="", *vals):
        vals, digit = vals[:N_SLIDERS], (vals[N_SLIDERS] if len(vals) > N_SLIDERS else None)
        run, epoch, dim, _ = pts.start(run, epoch, base)
        try:
            z = latent.parse_vector(pasted, dim)
        except ExplorerError as exc:
            # refused: say why, and put the point on screen back in the box so box and image agree
            gr.Warning(f"that vector was not applied: {exc}")
            here = links.current_point(pts, run, epoch, base, dims, vals)
            out = [gr.skip() for _ in range(6 + N_SLIDERS)]
            out[2] = latent.format_vector(here)
            return out
        return pts.show(run, epoch, z, pts.valid_dims(run, epoch, dims, dim), digit)

    @err
    def show_dims(run, epoch, base, dims, pasted="", dims_text="", *vals):
        run, epoch, dim, base = pts.start(run, epoch, base)
        vals, digit = vals[:N_SLIDERS], (vals[N_SLIDERS] if len(vals) > N_SLIDERS else None)
        if len(vals) == N_SLIDERS:
            base = pts.compose(run, epoch, base, dims, vals)
        dims = parse_dims(dims_text, dim, pts.valid_dims(run, epoch, dims, dim))
        return pts.show(run, epoch, base, dims, digit)

    @err
    def snapshot_point(run, epoch, base, dims, digit=None):
        """A run or epoch was chosen: same point (and digit), that snapshot's most influential
        dimensions."""
        run, epoch, _, base = pts.start(run, epoch, base)
        return pts.show(run, epoch, base, ctx.engine.top_dims(run, epoch, N_DIM_SLIDERS), digit)

    return {
        "slide": slide,
        "random_point": random_point,
        "reset_point": reset_point,
        "nudge_point": nudge_point,
        "paste_point": paste_point,
        "show_dims": show_dims,
        "snapshot_point": snapshot_point,
    }


def _wire_digit(ctx: Ctx, h: dict, v: SlidersView, saliency: gr.State, digit_now: gr.State) -> None:
    """The digit picker: shown for conditional runs; a pick redraws the same point as that digit
    (/slide_digit) and is kept in ``digit_now`` for /slide, whose API inputs stay the sliders."""

    def digit_picker(run):
        """The digit picker: shown for a conditional run, hidden for any other. Its value stays: a
        new run or epoch draws the point as the digit picked (explorer.ui.pickers passes it to
        snapshot_point), and a link sets it with the run it opens."""
        try:
            classes = ctx.registry.get(run).num_classes if run else 0
        except ExplorerError:
            classes = 0
        return gr.update(visible=bool(classes))

    hidden = dict(show_progress="hidden", api_visibility="undocumented")
    ctx.run_dd.change(digit_picker, ctx.run_dd, v.digit, api_name="digit_picker_shown", **hidden)
    v.digit.change(lambda d: d, v.digit, digit_now, **hidden)
    common = [ctx.run_dd, ctx.epoch_dd, ctx.base_state, ctx.dims_state]
    # /slide_digit, API only (a button no one sees): the page's digit picks redraw through the
    # page's one redraw listener (below, in build)
    gr.Button(visible=False, elem_id="slide-digit-api").click(
        h["slide"],
        [*common, saliency, *v.sliders, v.digit],
        [v.image_html, v.score_lbl, v.vec_txt],
        api_name="slide_digit",  # named: unnamed, it would take "slide" from the public slider endpoint
        **hidden,
    )


def _wire_redraws(h: dict, v: SlidersView, common: list, controls, digit_now: gr.State) -> None:
    """The point's redraws on the page, and the public /slide."""
    point_out = [v.image_html, v.score_lbl, v.vec_txt]
    # The page's redraws: one listener for every slider, the saliency toggle and the digit picker,
    # so always_last orders them (a toggle then a quick drag can no longer have the toggle's older
    # point land last), reading the toggle and the digit picker as the page shows them (their
    # server-side states lag by a round trip: a drag right after the toggle came back bare).
    # .input fires while dragging (not on programmatic updates, so no loops).
    gr.on(
        [s.input for s in v.sliders] + [controls.saliency_cb.change, v.digit.input],
        h["slide"],
        [*common, controls.saliency_cb, *v.sliders, v.digit],
        point_out,
        trigger_mode="always_last",
        show_progress="hidden",
        api_name="slide_page",
        api_visibility="undocumented",
    )
    # The public /slide keeps its inputs (the sliders; the toggle and digit from the session's
    # states, which /sliders_saliency and /slide_digit set): a button no one sees, API only.
    api_btn = gr.Button(visible=False, elem_id="slide-api")
    api_btn.click(
        h["slide"],
        [*common, controls.saliency_state, *v.sliders, digit_now],
        point_out,
        show_progress="hidden",
        api_name="slide",
        api_visibility="public",
    )


def _digit_radio() -> gr.Radio:
    """Made before the layout places it (render=False): the nearest-digits strip, built first,
    follows it too."""
    return gr.Radio(
        [str(i) for i in range(10)],
        render=False,
        value="0",
        label="Digit: the same latent point drawn as this digit (a conditional run)",
        visible=False,
        elem_id="digit-picker",
    )


def build(ctx: Ctx) -> SlidersView:
    digit = _digit_radio()
    with gr.Row():
        with gr.Column(scale=1):
            image_html = gr.HTML(elem_id="latent-image-box")
            score_lbl = gr.Label(label="Discriminator verdict (this epoch's D)", elem_id="score")
            with gr.Row():
                random_btn = gr.Button("Random point", elem_id="random-btn")
                reset_btn = gr.Button("Reset", elem_id="reset-btn")
                nudge_btn = gr.Button("Nudge", elem_id="nudge-btn")
            with gr.Row():
                back_btn = gr.Button("◀ Back (0)", elem_id="back-btn", size="sm")
                fwd_btn = gr.Button("Forward (0) ▶", elem_id="fwd-btn", size="sm")
            controls = named.build()  # Toward digit, More real, the saliency toggle
            vec_txt = gr.Textbox(
                label="Latent vector (copy it, or paste one and press Apply)",
                lines=3,
                elem_id="vector",
                buttons=["copy"],
            )
            paste_btn = gr.Button("Apply pasted vector")
            nearest.slider_strip(ctx, vec_txt, digit)  # a toggle and the strip of nearest real digits
            share = links.build()
        with gr.Column(scale=1):
            digit.render()
            gr.Markdown(
                "**Latent dimensions**: the 8 that move the image most (measured); "
                "type others under the sliders"
            )
            sliders = [
                gr.Slider(-4, 4, value=0, step=0.05, label=f"z[{i}]", elem_id=f"dim-slider-{i}")
                for i in range(N_DIM_SLIDERS)
            ]
            with gr.Row():
                dims_txt = gr.Textbox(
                    label="Dimensions shown (0-based, comma separated)", scale=3, elem_id="dims-txt"
                )
                dims_btn = gr.Button("Show these", scale=1)
            gr.Markdown(
                "**Main directions of variation** (PCA of the generator's first "
                "features, mapped back to latent space, as in GANSpace); "
                "0 = the point above"
            )
            sliders += [
                gr.Slider(-6, 6, value=0, step=0.1, label=f"PC{i + 1}", elem_id=f"pca-slider-{i}")
                for i in range(N_PCA_SLIDERS)
            ]

    pts = Points(ctx)
    h = _handlers(ctx, pts)
    v = SlidersView(image_html, score_lbl, vec_txt, dims_txt, sliders, h["snapshot_point"], pts, share, digit)
    common = [ctx.run_dd, ctx.epoch_dd, ctx.base_state, ctx.dims_state]
    digit_now = gr.State("0")  # the picker's digit: a state, so raw /slide callers send what they did
    _wire_digit(ctx, h, v, controls.saliency_state, digit_now)
    _wire_redraws(h, v, common, controls, digit_now)
    with_vals = common + [vec_txt, dims_txt, *sliders, digit]
    out = v.point_outputs(ctx)
    hidden = dict(api_visibility="undocumented")
    random_btn.click(h["random_point"], [*common, digit], out, **hidden)
    reset_btn.click(h["reset_point"], [*common, digit], out, **hidden)
    nudge_btn.click(h["nudge_point"], with_vals, out, **hidden)
    paste_btn.click(h["paste_point"], with_vals, out, **hidden)
    vec_txt.submit(h["paste_point"], with_vals, out, **hidden)
    dims_btn.click(h["show_dims"], with_vals, out, **hidden)
    dims_txt.submit(h["show_dims"], with_vals, out, **hidden)
    history.wire(ctx, v, back_btn, fwd_btn)
    named.wire(ctx, v, controls)
    return v
