"""Directions you can name (explorer.directions) in the views: "Toward digit k" and "More real" move
the sliders' point; a toggle lays D's pixel gradient over the large image and over the user's digit.
API: /toward_digit, /more_real, /saliency (JSON strings back, images inside as PNG data URIs).

The sliders' overlay costs nothing while the toggle is off: the drag path draws it only when the
toggle's state says so, and the toggle itself flips a class on the page (CSS below) that swaps the
plain image for the overlay every point view carries.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import gradio as gr
import numpy as np

from explorer import conditional, directions, latent, render
from explorer.registry import ExplorerError
from explorer.ui.context import Ctx, err

STYLE = (
    "<style>body.le-saliency #latent-saliency + #latent-image{display:none !important}"
    "body.le-saliency #latent-saliency{display:block !important}</style>"
)
TOGGLE_JS = "(on) => { document.body.classList.toggle('le-saliency', !!on); return []; }"
SALIENCY_LABEL = "Show where D looks (saliency)"
LEGEND = (
    "Saliency: the gradient of D's logit with respect to the pixels. **Red**: more ink there would "
    'look more fake to D (where D sees "fake"); **blue**: more ink there would look more real. '
    "The stronger the colour, the larger the gradient."
)


def data_uri(im) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def overlay_img(overlay, style: str) -> str:
    """The saliency overlay, put just before the large image and hidden until the toggle shows it in
    the image's place (STYLE: an overlay followed by the image hides the image)."""
    src = data_uri(overlay)
    return f'<img id="latent-saliency" alt="where D looks" src="{src}" style="{style} display:none"/>'


@dataclass
class Controls:
    saliency_state: gr.State
    saliency_cb: gr.Checkbox
    digit_dd: gr.Dropdown
    strength_sl: gr.Slider
    toward_btn: gr.Button
    real_btn: gr.Button
    note_md: gr.Markdown


def build() -> Controls:
    """The components, placed under the large image (sliders.build calls this inside its layout)."""
    gr.HTML(STYLE, elem_id="named-style")
    with gr.Row():
        digit_dd = gr.Dropdown(
            list(range(10)), value=0, label="Toward digit", elem_id="toward-digit", scale=1
        )
        strength_sl = gr.Slider(
            0.5,
            directions.MAX_STRENGTH,
            value=2.0,
            step=0.5,
            label="Strength",
            elem_id="toward-strength",
            scale=2,
        )
        toward_btn = gr.Button("Move toward digit", elem_id="toward-btn", scale=1)
    with gr.Row():
        real_btn = gr.Button("More real (D's gradient)", elem_id="more-real-btn")
        saliency_cb = gr.Checkbox(False, label=SALIENCY_LABEL, elem_id="saliency-toggle")
    note_md = gr.Markdown(elem_id="named-note")
    gr.Markdown(LEGEND, elem_id="saliency-legend")
    return Controls(gr.State(False), saliency_cb, digit_dd, strength_sl, toward_btn, real_btn, note_md)


def _sliders_handlers(ctx: Ctx, view) -> dict:
    pts, eng = view.points, ctx.engine

    def current(run, epoch, base, dims, vals):
        """The point on screen (sliders included) and the dimensions shown."""
        run, epoch, dim, base = pts.start(run, epoch, base)
        dims = pts.valid_dims(run, epoch, dims, dim)
        return run, epoch, pts.compose(run, epoch, base, dims, vals), dims

    def picked(snap, digit):
        """The sliders' digit picker's digit for a conditional run (checked), else None."""
        return conditional.check_label(snap.run, snap.num_classes, digit) if snap.num_classes else None

    # *vals: the slider values, then the digit picker's (a conditional run's point keeps its digit)
    @err
    def toward(run, epoch, base, dims, k, strength, *vals):
        run, epoch, z, dims = current(run, epoch, base, dims, vals[:-1])
        snap = eng.snapshot(run, epoch)
        y = picked(snap, vals[-1])
        new = directions.toward_digit(snap, z, k, strength)
        k = directions.check_digit(k)
        p = directions.evaluate(snap.generate(np.stack([z, new]), y)[0])[:, k]
        note = (
            f"Toward **{k}** by {float(strength):g}: the evaluator's P({k}) {p[0]:.2f} &rarr; **{p[1]:.2f}**"
        )
        return [*pts.show(run, epoch, new, dims, y), note]

    @err
    def more_real(run, epoch, base, dims, *vals):
        run, epoch, z, dims = current(run, epoch, base, dims, vals[:-1])
        y = picked(eng.snapshot(run, epoch), vals[-1])
        r = directions.more_real(eng, eng.snapshot(run, epoch), z, label=y)
        a, b = r["logit_before"], r["logit_after"]
        note = (
            f"More real ({directions.REAL_STEPS} steps of {directions.REAL_STEP:g} up D's gradient): "
            f"D's logit {a:.2f} &rarr; **{b:.2f}**, P(real) {_sigmoid(a):.2f} &rarr; **{_sigmoid(b):.2f}**"
        )
        return [*pts.show(run, epoch, r["z"], dims, y), note]

    return {"toward": toward, "more_real": more_real}


def saliency_on(on) -> bool:
    """The saliency toggle's value, kept in the session's state."""
    return bool(on)


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def wire(ctx: Ctx, view, c: Controls) -> None:
    """Connect the controls to the sliders view `view` (explorer.ui.sliders.SlidersView)."""
    h = _sliders_handlers(ctx, view)
    common = [ctx.run_dd, ctx.epoch_dd, ctx.base_state, ctx.dims_state]
    out = [*view.point_outputs(ctx), c.note_md]
    hidden = dict(api_visibility="undocumented")  # named: the public /toward_digit etc. keep their names
    vals = [*view.sliders, view.digit]
    toward_in = [*common, c.digit_dd, c.strength_sl, *vals]
    c.toward_btn.click(h["toward"], toward_in, out, api_name="sliders_toward_digit", **hidden)
    c.real_btn.click(h["more_real"], [*common, *vals], out, api_name="sliders_more_real", **hidden)
    c.saliency_cb.change(None, c.saliency_cb, None, js=TOGGLE_JS, api_name="saliency_class", **hidden)
    # the session's state, for the API's /slide and /slide_digit; the page redraws the point itself
    # (explorer.ui.sliders: the toggle is one of the redraw's triggers)
    c.saliency_cb.change(
        saliency_on,
        c.saliency_cb,
        c.saliency_state,
        show_progress="hidden",
        api_name="sliders_saliency",
        **hidden,
    )
    _api(ctx)


def digit_saliency(ctx: Ctx, digit_state) -> None:
    """The Your digit view's toggle: D's pixel gradient over the user's digit (the chosen epoch's D)."""
    cb = gr.Checkbox(False, label=SALIENCY_LABEL, elem_id="digit-saliency-toggle")
    img = gr.Image(label="Where D looks", visible=False, interactive=False, elem_id="digit-saliency")
    gr.Markdown(LEGEND)

    @err
    def show(on, digit, run, epoch):
        if not on:
            return gr.update(visible=False)
        if digit is None:
            return gr.update(visible=True, value=None)
        run, epoch = ctx.need(run, epoch)
        x = np.asarray(digit, np.float32)
        if x.size != 28 * 28:  # Your image of a colour run (explorer.yourdigit.picture)
            raise ExplorerError(
                "D's saliency is drawn over 28x28 grey digits only; this run's images are not"
            )
        x = x.reshape(28, 28)
        grad, _ = directions.saliency(ctx.engine, ctx.engine.snapshot(run, epoch), x)
        return gr.update(visible=True, value=render.saliency_overlay(x, grad, 196))

    gr.on(
        [cb.change, digit_state.change, ctx.epoch_dd.change],
        show,
        [cb, digit_state, ctx.run_dd, ctx.epoch_dd],
        img,
        show_progress="hidden",
        api_name="digit_saliency",
        api_visibility="undocumented",
    )


def _api(ctx: Ctx) -> None:
    eng = ctx.engine

    def point(run, epoch, vector):
        run, epoch = ctx.need(run, epoch)
        snap = eng.snapshot(run, epoch)
        return snap, latent.parse_vector(vector, snap.latent_dim)

    @err
    def toward_digit(run: str, epoch: int, vector: str, digit: int, strength: float = 2.0) -> str:
        """A latent vector (text) moved `strength` along the epoch's "toward digit" direction -> JSON:
        z, its image, P(real), the evaluator's probability of the digit before and after."""
        snap, z = point(run, epoch, vector)
        new = directions.toward_digit(snap, z, digit, strength)
        imgs, p = snap.generate(np.stack([z, new]))
        pk = directions.evaluate(imgs)[:, directions.check_digit(digit)]
        return json.dumps(
            {"z": new.tolist(), "image": data_uri(render.digit(imgs[1], 28)), "p_real": float(p[1])}
            | {"p_digit_before": float(pk[0]), "p_digit_after": float(pk[1])}
        )

    @err
    def more_real(
        run: str,
        epoch: int,
        vector: str,
        steps: int = directions.REAL_STEPS,
        step: float = directions.REAL_STEP,
    ) -> str:
        """A latent vector (text) moved up D's logit of G(z) -> JSON: z, image, D's logit before/after."""
        snap, z = point(run, epoch, vector)
        r = directions.more_real(eng, snap, z, steps, step)
        img, p = snap.generate(r["z"][None])
        return json.dumps(
            dict(r, z=r["z"].tolist(), image=data_uri(render.digit(img[0], 28)), p_real=float(p[0]))
        )

    @err
    def saliency(run: str, epoch: int, vector: str = "", image: str = "") -> str:
        """D's pixel gradient for a latent vector's image, or for a digit (PNG/JPEG data URI, made
        MNIST-like as in Your digit) -> JSON: the 28x28 gradient, D's logit, the image and its overlay."""
        from explorer import yourdigit

        if bool(vector and vector.strip()) == bool(image):
            raise ExplorerError("send either a latent vector or an image (a PNG/JPEG data URI), not both")
        if image:
            run, epoch = ctx.need(run, epoch)
            snap, x = eng.snapshot(run, epoch), yourdigit.preprocess(image)
        else:
            snap, z = point(run, epoch, vector)
            x = snap.generate(z[None])[0][0]  # a conditional run's: digit 0, judged as 0
        grad, logit = directions.saliency(eng, snap, x, 0 if snap.num_classes and not image else None)
        return json.dumps(
            {"saliency": np.round(grad, 6).tolist(), "logit": logit, "p_real": _sigmoid(logit)}
            | {
                "image": data_uri(render.digit(x, 28)),
                "overlay": data_uri(render.saliency_overlay(x, grad, 28)),
            }
        )

    gr.api(toward_digit, api_name="toward_digit")
    gr.api(more_real, api_name="more_real")
    gr.api(saliency, api_name="saliency")
