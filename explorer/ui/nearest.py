"""Nearest real training digits in the UI (explorer.neighbours): the strip shown under the sliders'
large image and beside the user's digit, and the named API endpoint /neighbours."""

from __future__ import annotations

import base64
import html
import io
import json

import gradio as gr
import numpy as np

from explorer import latent, render
from explorer.neighbours import K_DEFAULT, NeighboursUnavailable
from explorer.registry import ExplorerError
from explorer.ui.context import Ctx, err

THUMB = 56


def png_uri(img01, size: int = 28) -> str:
    buf = io.BytesIO()
    render.digit(img01, size).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _row(images: dict, title: str, hits, unit: str) -> str:
    cells = []
    for h in hits:
        img = images[h["position"]] / 255.0
        label = "" if h["label"] is None else f"a {h['label']}, "
        tip = f"training digit #{h['training_index']}"
        cells.append(
            f'<figure style="margin:0 4px;text-align:center" title="{tip}">'
            f'<img src="{png_uri(img, THUMB)}" width="{THUMB}" height="{THUMB}" '
            f'style="image-rendering:pixelated;border-radius:4px" alt="{tip}"/>'
            f'<figcaption style="font-size:12px">{label}{h["distance"]:.3f}</figcaption></figure>'
        )
    return (
        f'<div style="margin-top:6px"><div style="font-size:13px">{title} <span style="opacity:.7">'
        f'({unit})</span></div><div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div></div>'
    )


def strip_html(ctx: Ctx, run: str, img01, k: int = K_DEFAULT) -> str:
    """The k nearest real training digits of one image, by pixels and by features, with distances;
    or one line saying why they cannot be shown (never an error: the view around it goes on)."""
    try:
        out = ctx.neighbours.query(run, np.asarray(img01, np.float32)[None], k)
    except ExplorerError as exc:
        return f'<div class="nn-note" style="font-size:13px">{html.escape(str(exc))}</div>'
    r = out["results"][0]
    parts = [
        f'<div class="nn-strip"><b>Nearest real training digits</b> '
        f'<span style="font-size:12px;opacity:.7">(of {out["n_index"]:,} kept from '
        f"{out['n_training']:,}; {html.escape(out['source'])})</span>",
        _row(out["images"], "by pixels", r["pixels"], "RMS pixel distance, 0-1 scale"),
    ]
    if r["features"] is not None:
        parts.append(_row(out["images"], "by the evaluator's features", r["features"], "feature distance"))
    if out["note"]:
        parts.append(f'<div style="font-size:12px;opacity:.7">{html.escape(out["note"])}</div>')
    return "".join(parts) + "</div>"


def point_strip(ctx: Ctx, run, epoch, vector: str, show: bool, digit=None) -> str:
    """The sliders' strip: the image of the point in the vector box (regenerated: 1 graph call),
    a conditional run's drawn as the digit picked."""
    if not show:
        return ""
    try:
        run, epoch = ctx.need(run, epoch)
        snap = ctx.engine.snapshot(run, epoch)
        y = digit if snap.num_classes else None
        img, _ = ctx.engine.generate(run, epoch, latent.parse_vector(vector, snap.latent_dim), y)
    except ExplorerError as exc:
        return f'<div class="nn-note" style="font-size:13px">{html.escape(str(exc))}</div>'
    return strip_html(ctx, run, img)


def digit_strip(ctx: Ctx, digit_state) -> gr.HTML:
    """Your digit's strip, under the verdict: updated whenever the digit changes when the run's
    index is at hand; a run whose index must first be rebuilt from its data (seconds) waits for
    the button, so drawing stays quick."""
    box = gr.HTML(elem_id="digit-nn")
    btn = gr.Button("Find the nearest real training digits", size="sm", elem_id="digit-nn-btn")

    def auto(digit, run):
        if digit is None:
            return ""
        if not ctx.neighbours.ready(run):
            return (
                '<div class="nn-note" style="font-size:13px">Press <b>Find the nearest real training '
                "digits</b>: this run has no stored index, so the first search rebuilds it from its "
                "training data (a few seconds).</div>"
            )
        return strip_html(ctx, run, digit)

    def find(digit, run):
        if digit is None:
            return '<div class="nn-note">draw a digit on the pad or upload one first</div>'
        return strip_html(ctx, run, digit)

    hidden = dict(trigger_mode="always_last", api_visibility="undocumented")
    digit_state.change(auto, [digit_state, ctx.run_dd], box, api_name="digit_neighbours", **hidden)
    btn.click(find, [digit_state, ctx.run_dd], box, api_name="digit_neighbours_find", **hidden)
    return box


def slider_strip(ctx: Ctx, vec_txt, digit) -> None:
    """The sliders' toggle and strip. It follows the vector box (every way a point changes ends
    there) and the digit picker (``digit``) as a request of its own, so the slider path itself
    stays one graph call."""
    show = gr.Checkbox(
        label="Show the nearest real training digits (by pixels and by the evaluator's features)",
        value=False,
        elem_id="nn-toggle",
    )
    box = gr.HTML(elem_id="nn-box")
    ins = [ctx.run_dd, ctx.epoch_dd, vec_txt, show, digit]
    for trigger, name in (
        (vec_txt.change, "nn_point"),
        (show.change, "nn_toggle"),
        (ctx.epoch_dd.change, "nn_epoch"),
        (digit.change, "nn_digit"),
    ):
        trigger(
            lambda run, epoch, vec, on, d: point_strip(ctx, run, epoch, vec, on, d),
            ins,
            box,
            trigger_mode="always_last",
            show_progress="hidden",
            api_name=name,
            api_visibility="undocumented",
        )


def _api_image(image: str) -> np.ndarray:
    """A PNG/JPEG data URI -> a 28x28 digit in [0,1]: a 28x28 image as it is (light ink on dark, as
    /generate gives; dark-on-light is inverted), any other size prepared as in Your digit."""
    from PIL import Image

    from explorer import yourdigit as yd

    if not isinstance(image, str) or not image:
        raise ExplorerError("send the image as a data URI (data:image/png;base64,...) or base64 PNG")
    raw = yd._decode(image)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            pic = im.copy()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ExplorerError("that is not an image this app can read; send a PNG or JPEG") from None
    if pic.size != (28, 28):
        return yd.preprocess(pic)
    gray = np.asarray(pic.convert("L"), np.float32) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if np.mean(border > 0.5) >= 0.5 else gray


def build_api(ctx: Ctx) -> None:
    @err
    def neighbours(image: str, run: str, k: int = K_DEFAULT) -> str:
        """An image (PNG/JPEG data URI) -> JSON: the k nearest real training digits of the run, by
        pixels (RMS distance, 0-1 scale) and by the evaluator's features, each with its distance,
        its index in the training data, its label and its image (PNG data URI)."""
        if not run or not isinstance(run, str):
            raise ExplorerError("name a run (see /list_runs)")
        digit = _api_image(image)
        out = ctx.neighbours.query(run, digit[None], k)
        r, images = out.pop("results")[0], out.pop("images")
        for hits in (r["pixels"], r["features"] or []):
            for h in hits:
                h["image"] = png_uri(images[h["position"]] / 255.0)
        return json.dumps(dict(out, pixels=r["pixels"], features=r["features"], image=png_uri(digit)))

    gr.api(neighbours, api_name="neighbours")


__all__ = ["NeighboursUnavailable", "build_api", "point_strip", "strip_html"]
