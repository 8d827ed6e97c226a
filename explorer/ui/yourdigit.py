"""The "Your digit" tab: draw or upload a digit, see what the model sees, how every epoch's D judges
it, and where it lies in the latent space (explorer.yourdigit). API: /judge, /project, /project_epochs
(the image as a data URI; JSON back, images inside as PNG data URIs)."""

from __future__ import annotations

import base64
import io
import json

import gradio as gr
import numpy as np
import pandas as pd

from explorer import latent, render
from explorer import yourdigit as yd
from explorer.registry import ExplorerError
from explorer.ui import named, nearest
from explorer.ui.context import Ctx, err

INTRO = (
    "**Your digit.** Draw a digit on the pad (or upload a PNG/JPEG, dark-on-light or light-on-dark). "
    "It is turned into a 28x28 digit the way MNIST was made: the ink's bounding box fitted into 20x20, "
    "centred by its centre of mass. **Project** finds the latent point whose image is closest to it."
)
COLOUR_NOTE = (
    "**Your image.** Run {run!r} makes {shape} images, not 28x28 grey digits: **upload** a picture "
    "(the pad is for digits). It is made the run's size as its training images were: the centre "
    "square, resized{colour}."
)

CURVE_TITLE = "P(real) of your digit by each epoch's D"


def run_note(ctx: Ctx, run) -> str:
    """The tab's note when the picked run is not a digit run ("" for a 28x28 grey run)."""
    shape = yd.run_shape(ctx.engine, run)
    if shape == yd.DIGITS:
        return ""
    colour = ", in colour" if shape[2] == 3 else ", grey"
    return COLOUR_NOTE.format(run=run, shape="x".join(map(str, shape)), colour=colour)


def png_uri(img01) -> str:
    img01 = np.asarray(img01, np.float32)
    buf = io.BytesIO()
    render.digit(img01, img01.shape[1] if img01.ndim >= 2 else 28).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def verdict_md(j: dict) -> str:
    text = (
        f"**P(real) {j['p_real']:.2f}** by the D of epoch {j['epoch']} ({render.verdict(j['p_real'])}) "
        + (
            f"&middot; the evaluator reads **{j['label']}** (confidence {j['confidence']:.2f})"
            if j.get("label") is not None
            else f"&middot; {j.get('evaluator_note') or yd.NO_EVALUATOR}"
        )
    )
    if j["skipped"]:
        text += "  \nleft out: " + "; ".join(f"epoch {s['epoch']} ({s['reason']})" for s in j["skipped"])
    return text


def curve_frame(j: dict) -> pd.DataFrame:
    return pd.DataFrame([{"epoch": r["epoch"], "P(real)": r["p_real"]} for r in j["by_epoch"]])


def _pair(digit, rec, p_digit: float, p_rec: float):
    return render.grid(np.stack([digit, rec])[None], np.array([[p_digit, p_rec]]), cell=140, pad=6)


def _handlers(ctx: Ctx) -> dict:
    eng = ctx.engine

    def take(image, run, epoch):
        """The pad or the upload changed: preprocess and judge; an empty pad is a note, not an error."""
        if image is None or (isinstance(image, dict) and image.get("composite") is None):
            return None, None, "", None
        try:
            digit = yd.prepare(image, yd.run_shape(eng, run))
        except ExplorerError as exc:
            return None, None, str(exc), None
        seen = render.digit(digit, render.crisp(196, digit.shape[1]))
        try:
            run, epoch = ctx.need(run, epoch)
            j = yd.judge(eng, run, epoch, digit)
        except ExplorerError as exc:
            return digit.tolist(), seen, str(exc), None
        return digit.tolist(), seen, verdict_md(j), curve_frame(j)

    def need_digit(digit):
        if digit is None:
            raise ExplorerError("draw a digit on the pad or upload an image first")
        return np.asarray(digit, np.float32)  # the run's (H, W) or (H, W, 3), as `take` made it

    @err
    def project(digit, run, epoch, seed, steps):
        digit = need_digit(digit)
        run, epoch = ctx.need(run, epoch)
        r = yd.project(eng, run, epoch, digit, seed, steps)
        p_digit = float(eng.scores(run, epoch, digit[None])[0])
        md = (
            f"Reconstruction by epoch {epoch}: pixel distance **{r['distance']:.3f}** (RMS, 0-1 scale), "
            f"P(real) **{r['p_real']:.2f}**; "
        )
        if yd.run_shape(eng, run) == yd.DIGITS:
            label, conf, _ = yd.read(r["image"])
            md += f"the evaluator reads it as **{label}** ({conf:.2f})"
        else:
            md += yd.NO_EVALUATOR.split(";")[0]
        if r["drawn_as"] is not None:  # a conditional run: the style of your digit, drawn as that digit
            md += f". This run draws the digit it is asked for: searched as **{r['drawn_as']}**"
        return (
            _pair(digit, r["image"], p_digit, r["p_real"]),
            md,
            latent.format_vector(np.array(r["z"])),
            {"z": r["z"], "digit": r["drawn_as"]},
        )

    @err
    def project_epochs(digit, run, seed, steps):
        digit = need_digit(digit)
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        out = yd.project_epochs(eng, run, digit, seed, steps)
        rows, best = out["rows"], out["best_epoch"]
        imgs = np.stack([np.stack([digit, r["image"]]) for r in rows])
        p_digit = [float(eng.scores(run, r["epoch"], digit[None])[0]) for r in rows]
        scores = np.array([[pd_, r["p_real"]] for pd_, r in zip(p_digit, rows)])
        labels = [
            f"epoch {r['epoch']}\nd={r['distance']:.3f}" + ("\nbest" if r["epoch"] == best else "")
            for r in rows
        ]
        hi = tuple(i for i, r in enumerate(rows) if r["epoch"] == best)
        grid = render.grid(imgs, scores, labels, cell=72, highlight_rows=hi)
        frame = pd.DataFrame([{"epoch": r["epoch"], "distance": r["distance"]} for r in rows])
        md = (
            f"Epoch **{best}** draws it best (smallest distance). Left: your digit, right: its closest image."
        )
        return grid, frame, md

    return {"take": take, "project": project, "project_epochs": project_epochs}


def _api(ctx: Ctx) -> None:
    eng = ctx.engine

    @err
    def judge(image: str, run: str, epoch: int) -> str:
        """An image (data URI; a digit for a digit run) -> JSON: P(real) by the epoch's D and every
        epoch's D, the evaluator's label (null and a note for a run that is not 28x28 grey)."""
        run, epoch = ctx.need(run, epoch)
        digit = yd.prepare(image, yd.run_shape(eng, run))  # a digit run's as MNIST, else the run's size
        return json.dumps(dict(yd.judge(eng, run, epoch, digit), digit_png=png_uri(digit)))

    @err
    def project(image: str, run: str, epoch: int, seed: int = 0, steps: int = yd.STEPS) -> str:
        """An image (data URI; a digit for a digit run) -> JSON: the epoch's closest latent point z,
        its image, distance, P(real)."""
        run, epoch = ctx.need(run, epoch)
        digit = yd.prepare(image, yd.run_shape(eng, run))  # a digit run's as MNIST, else the run's size
        r = yd.project(eng, run, epoch, digit, seed, steps)
        return json.dumps(dict(r, image=png_uri(r["image"]), digit_png=png_uri(digit)))

    @err
    def project_epochs(image: str, run: str, seed: int = 0, steps: int = yd.STEPS) -> str:
        """An image (data URI; a digit for a digit run) -> JSON: the projection into every loadable
        epoch, best epoch marked."""
        run, _ = ctx.need(run, 0)
        out = yd.project_epochs(eng, run, yd.prepare(image, yd.run_shape(eng, run)), seed, steps)
        out["rows"] = [dict(r, image=png_uri(r["image"])) for r in out["rows"]]
        return json.dumps(out)

    gr.api(judge, api_name="judge")
    gr.api(project, api_name="project")
    gr.api(project_epochs, api_name="project_epochs")


def _run_note_md(ctx: Ctx) -> None:
    """The note under the intro, kept to the picked run (empty for a digit run)."""
    md = gr.Markdown(elem_id="digit-run-note")
    ctx.run_dd.change(
        lambda run: run_note(ctx, run),
        ctx.run_dd,
        md,
        api_name="digit_run_note",
        api_visibility="undocumented",
    )


def build(ctx: Ctx, app, point=None, tabs=None) -> None:
    """The view; `point` (the sliders view) and `tabs` enable "Open in the sliders"."""
    gr.Markdown(INTRO)
    _run_note_md(ctx)  # a colour run: upload an image, no evaluator
    digit_state, z_state = gr.State(None), gr.State(None)
    with gr.Row():
        with gr.Column():
            pad = gr.Sketchpad(
                label="Draw a digit",
                canvas_size=(280, 280),
                brush=gr.Brush(default_size=20, colors=["#000000"], color_mode="fixed"),
                type="pil",
                elem_id="digit-pad",
            )
            upload = gr.Image(label="...or upload a PNG/JPEG", type="pil", sources=["upload", "clipboard"])
        with gr.Column():
            seen = gr.Image(
                label="What the model sees (28x28, enlarged)", interactive=False, elem_id="digit-seen"
            )
            verdict = gr.Markdown(elem_id="digit-verdict")
            curve = gr.LinePlot(x="epoch", y="P(real)", title=CURVE_TITLE, y_lim=[0, 1], height=220)
            named.digit_saliency(ctx, digit_state)  # the saliency toggle and overlay (explorer.ui.named)
            nearest.digit_strip(ctx, digit_state)  # the nearest real training digits of the digit
    with gr.Row():
        seed_nb = gr.Number(value=0, precision=0, minimum=0, label="Seed of the starts")
        steps_sl = gr.Slider(
            20, 400, value=yd.STEPS, step=10, label="Projection steps", elem_id="digit-steps"
        )
        project_btn = gr.Button("Project", variant="primary", elem_id="project-btn")
        epochs_btn = gr.Button("Which epoch can draw it", elem_id="project-epochs-btn")
    with gr.Row():
        with gr.Column():
            pair = gr.Image(label="Your digit | its reconstruction", interactive=False, elem_id="digit-pair")
            proj_md = gr.Markdown(elem_id="digit-projection")
            z_txt = gr.Textbox(
                elem_id="digit-z",
                label="The found latent point z (paste it in Latent sliders)",
                lines=3,
                buttons=["copy"],
            )
            open_btn = gr.Button("Open in the sliders", visible=point is not None and tabs is not None)
        with gr.Column():
            epochs_img = gr.Image(
                label="Every epoch's closest image", interactive=False, elem_id="digit-epochs"
            )
            epochs_md = gr.Markdown(elem_id="digit-epochs-note")
            dist_plot = gr.LinePlot(
                x="epoch", y="distance", title="Pixel distance by epoch (lower: draws it better)", height=220
            )

    h = _handlers(ctx)
    hidden, take_out = dict(api_visibility="undocumented"), [digit_state, seen, verdict, curve]
    for comp, name in ((pad, "digit_drawn"), (upload, "digit_uploaded")):
        # always_last: the pad changes with every stroke; the last drawing is the one judged
        comp.change(
            h["take"],
            [comp, ctx.run_dd, ctx.epoch_dd],
            take_out,
            trigger_mode="always_last",
            api_name=name,
            **hidden,
        )
    pick = [ctx.run_dd, ctx.epoch_dd, seed_nb, steps_sl]
    project_btn.click(
        h["project"],
        [digit_state, *pick],
        [pair, proj_md, z_txt, z_state],
        api_name="digit_project",
        **hidden,
    )
    epochs_btn.click(
        h["project_epochs"],
        [digit_state, ctx.run_dd, seed_nb, steps_sl],
        [epochs_img, dist_plot, epochs_md],
        api_name="digit_project_epochs",
        **hidden,
    )
    if point is not None and tabs is not None:
        _wire_open(ctx, open_btn, z_state, point, tabs)
    _api(ctx)


def _wire_open(ctx: Ctx, open_btn, z_state, point, tabs) -> None:
    """The found z becomes the sliders' base point (and a conditional run's digit the sliders'
    digit); the sliders tab opens on it."""

    @err
    def to_base(found):
        if not found:
            raise ExplorerError("project your digit first")
        digit = found["digit"]  # a conditional run's: the sliders draw the point as that digit
        return found["z"], gr.Tabs(selected="sliders"), gr.skip() if digit is None else str(digit)

    open_btn.click(
        to_base,
        z_state,
        [ctx.base_state, tabs, point.digit],
        api_name="digit_open",
        api_visibility="undocumented",
    ).success(
        point.snapshot_point,
        [ctx.run_dd, ctx.epoch_dd, ctx.base_state, ctx.dims_state, point.digit],
        point.point_outputs(ctx),
        api_name="digit_open_point",
        api_visibility="undocumented",
    )
