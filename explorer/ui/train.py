"""The Train tab: start, stop and resume training runs (separate processes, explorer.trainer)
and watch them: progress, live losses, the latest epoch's scored samples."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr

from explorer import tables
from explorer.registry import ExplorerError
from explorer.trainer import ROOT, check_run_name, new_run_args, resume_args
from explorer.ui import manage
from explorer.ui.context import Ctx, err
from models.cpu import fast_precisions, precision_error, precision_note  # standard library only
from models.presets import DEFAULT_PRESET, PRESETS  # names only: keras loads when a net is built

# no TensorFlow: it loads only when training starts
from training.config import DEFAULT_QUALITY_SAMPLES, PRECISIONS


def precision_label(precision: str) -> str:
    """What the precision picker says beside a precision that is not float32's equal here."""
    return (
        "cannot run under this ONEDNN_MAX_CPU_ISA"
        if precision_error(precision)
        else "slower here: no native bfloat16"
    )


def latest_samples(ctx: Ctx, name: str, cache: dict):
    """(scored samples image, epoch) of the run's newest loadable epoch, or None."""
    try:
        info = ctx.registry.get(name)
    except ExplorerError:
        return None
    good = info.good_epochs()
    if not good:
        return None
    e = good[-1]
    key = (name, e.epoch, ctx.registry.stamp(e.path / "samples.png"))
    if key not in cache:
        img, _ = ctx.scored_samples(name, e)
        cache.clear()  # one picture per run is all the tab shows
        cache[key] = (img, e.epoch)
    return cache[key]


MAX_OFFERED = 50  # data sets offered per root (a data/ folder may hold many)


def data_choices(roots) -> list[tuple[str, str]]:
    """The data sets the Train tab offers: each allowed data folder and what lies directly in it
    that can be trained on (a sub-folder, as a folder of images or of IDX files; an .npz), relative
    to the repository (the trainer's working folder) when near it, as `../shared/data/mnist`, else
    absolute. Something whose real path leaves the root (a symlink out) is not offered: the form
    would refuse it. Listed again each time the Train tab is opened."""
    out = []
    for r in roots:
        r = Path(os.path.abspath(r))  # as named, symlinks kept: ../shared may be a link elsewhere
        try:
            shown = os.path.relpath(r, ROOT)
        except ValueError:
            shown = str(r)
        if Path(shown).parts.count("..") > 1:
            shown = str(r)
        out.append((shown, shown))
        out += [(f"{shown}/{name}", f"{shown}/{name}") for name in _trainable_children(r)]
    return out


def offered_data(roots):
    """The data field's choices as they are on disk now (its value, typed or picked, stays)."""
    return gr.update(choices=data_choices(roots))


def _trainable_children(root: Path) -> list[str]:
    """Names of the sub-folders and .npz files directly in `root` that stay inside it, sorted."""
    try:
        real = root.resolve()
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError:  # unreadable: the root itself is still offered
        return []
    names = []
    for p in entries:
        if len(names) == MAX_OFFERED:
            break
        if p.name.startswith("."):
            continue
        try:
            ok = p.is_dir() or (p.suffix.lower() == ".npz" and p.is_file())
            inside = real in p.resolve().parents
        except (OSError, RuntimeError):  # a symlink loop, a vanished entry
            continue
        if ok and inside:
            names.append(p.name)
    return names


def _data_row(roots) -> dict:
    """The data field, a folder's image size and channels, and the precision (one row)."""
    with gr.Row():
        choices = data_choices(roots)
        data = gr.Dropdown(
            choices,
            value=choices[0][1] if choices else None,
            allow_custom_value=True,
            label="Data: a folder of images (any size, grey or colour; class sub-folders "
            "are its labels), of MNIST IDX files, or an .npz, inside the offered folders "
            "(empty: Keras' MNIST, downloads once)",
            elem_id="train-data",
            scale=3,
        )
        image_size = gr.Dropdown(
            [("auto", "auto"), ("28 px", "28"), ("32 px", "32"), ("64 px", "64")],
            value="auto",
            label="Image size (a folder of images)",
            info="auto: 32 px; 64 px: the dcgan preset",
            elem_id="train-image-size",
            scale=1,
        )
        channels = gr.Dropdown(
            [("auto", "auto"), ("grey", "1"), ("RGB", "3")],
            value="auto",
            label="Channels (a folder of images)",
            info="auto: RGB when any image is colour",
            elem_id="train-channels",
            scale=1,
        )
        fast = fast_precisions()
        precision = gr.Dropdown(
            [(p if p in fast else f"{p} ({precision_label(p)})", p) for p in PRECISIONS],
            value="float32",
            label="Precision",
            elem_id="train-precision",
            info="bfloat16 trains faster only on CPUs with avx512_bf16 or AMX (README: Performance); "
            "onednn_bfloat16 keeps float32 snapshots",
            scale=1,
        )
    return {"data": data, "image_size": image_size, "channels": channels, "precision": precision}


def _layout(roots):
    with gr.Row():
        name = gr.Textbox(
            label="Run name", value=f"run-{time.strftime('%Y%m%d-%H%M%S')}", elem_id="train-name"
        )
        preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset")
        epochs = gr.Number(value=15, precision=0, label="Epochs (Resume: new total)", elem_id="train-epochs")
        batch = gr.Number(value=64, precision=0, label="Batch size", elem_id="train-batch")
        max_images = gr.Number(value=None, precision=0, label="Max images (empty: all)", elem_id="train-max")
        quality = gr.Number(
            value=DEFAULT_QUALITY_SAMPLES,
            precision=0,
            label="Quality samples/epoch (0: none)",  # FCD and the classifier's figures; fewer: faster
            elem_id="train-quality",
        )
    row = _data_row(roots)
    with gr.Row():
        train_btn = gr.Button("Train", variant="primary", elem_id="train-btn")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", interactive=False)
        resume_btn = gr.Button("Resume", elem_id="resume-btn")
    gr.Markdown(
        "Training runs as a separate process; the rest of the app keeps working, "
        "and each finished epoch appears in the run picker above."
    )
    notice = gr.Markdown(elem_id="train-notice")  # what a button did (the refresh leaves it be)
    status = gr.Markdown(elem_id="train-status")
    bar = gr.HTML()
    with gr.Row():
        loss = gr.LinePlot(
            x="step",
            y="loss",
            color="series",
            title="Losses (live)",
            x_title="training step",
            y_title="loss",
            height=300,
        )
        with gr.Column():
            gr.Markdown("**Latest samples**, each with P(real) by that epoch's D")
            samples = gr.Image(
                label="latest samples",
                show_label=False,
                type="pil",
                interactive=False,
                elem_id="train-samples",
            )
    # the status, losses and samples of the run in training, every 2 s: each tick re-draws the loss
    # plot in the page and reads the run's records in the app. Measured on 2 AVX2 cores, a dcgan
    # run on 2,048 digits: 8.9-10.1 steps/s with no page open, 4.7 with the Train tab watching it
    # every 1 s (Chromium 8.2 CPU-s and the app 5.8 in 20 s)
    timer = gr.Timer(2.0, active=False)
    return {**locals(), **row}


def build(ctx: Ctx, app: gr.Blocks):
    """The Train tab; returns its data field (its choices are listed again as the tab opens)."""
    c = _layout(ctx.trainer.data_roots)
    trainer, samples_cache = ctx.trainer, {}
    phases: dict = {}  # run -> its phase at the last refresh while it ran (to notice the end)

    @err
    def start_training(
        name, preset, epochs, batch, max_images, data, precision="float32", quality=None, *folder
    ):
        name = check_run_name(name)  # folder: image size and channels ("auto": the trainer's defaults)
        form = (preset, epochs, batch, max_images, data, precision, PRESETS, PRECISIONS, trainer.data_roots)
        args = new_run_args(ctx.train_dir / name, *form, quality, *folder)
        p = trainer.start(name, args)
        if note := precision_note(precision):
            gr.Warning(note)
        return f"started `{name}` (pid {p.pid})", gr.update(active=True)

    @err
    def resume_training(name, epochs):
        name = check_run_name(name)
        p = trainer.start(name, resume_args(ctx.train_dir / name, epochs))
        return f"started `{name}` (pid {p.pid})", gr.update(active=True)

    @err
    def stop_training(name):
        name = check_run_name(name)
        if trainer.stop(name):
            return f"stop requested for `{name}`: it ends after the current steps, keeping whole epochs"
        return f"`{name}` is not training in this app"

    def show_progress(name):
        try:
            name = check_run_name(name)
        except ExplorerError as exc:
            return f"**{exc}**", "", None, None, gr.update(active=False), *[gr.skip()] * 3
        state, last, running = trainer.settled_state(name)
        try:
            metrics, progress = ctx.registry.metrics(name), ctx.registry.progress(name)
        except ExplorerError:  # the process has not written run.json yet: starting
            metrics, progress = [], None
        latest = latest_samples(ctx, name, samples_cache)
        phase = tables.train_phase(state, name in trainer.stopping, progress)
        text, pct = tables.train_status(name, state, last, progress, latest[1] if latest else None, phase)
        buttons = tables.PHASE_BUTTONS.get(phase, tables.IDLE_BUTTONS) if running else tables.IDLE_BUTTONS
        if not running and phases.pop(name, None) in ("starting", "training", "stopping"):
            gr.Info(f"run {name} has {phase if phase != 'failed' else 'failed: see the status'}")
        elif running:
            phases[name] = phase
        # the timer stays on while either read saw a process: a Resume clicked during this poll
        # must not be switched off by this answer arriving second, and a process that ended
        # after the settled read gets one more tick to show that it has
        ticking = running or trainer.is_training(name)
        return (
            text,
            tables.progress_bar(pct),
            tables.step_losses(metrics),
            latest[0] if latest else None,
            gr.update(active=ticking),
            *[gr.update(interactive=b) for b in buttons],
        )

    def watch_running_run():
        """A page opened (or reloaded) while a run trains from this app watches that run."""
        running = trainer.running()
        if running:
            return gr.update(value=running[-1]), gr.update(active=True)
        return gr.skip(), gr.skip()

    _wire(ctx, app, c, start_training, resume_training, stop_training, show_progress, watch_running_run)
    return c["data"]


# the Train form's fields in the order /train takes them (image size and channels last: a client
# that sends the first eight gets "auto" for both from gradio_client's defaults)
FORM = (
    "name",
    "preset",
    "epochs",
    "batch",
    "max_images",
    "data",
    "precision",
    "quality",
    "image_size",
    "channels",
)


def _wire(ctx, app, c, start_training, resume_training, stop_training, show_progress, watch_running_run):
    manage.build(ctx, c["name"], c["notice"])  # Delete or rename this run
    c["train_btn"].click(
        start_training,
        [c[k] for k in FORM],
        [c["notice"], c["timer"]],
        api_name="train",
    )
    c["resume_btn"].click(
        resume_training, [c["name"], c["epochs"]], [c["notice"], c["timer"]], api_name="resume"
    )
    c["stop_btn"].click(stop_training, c["name"], c["notice"], api_name="stop")
    c["timer"].tick(
        show_progress,
        c["name"],
        [
            c["status"],
            c["bar"],
            c["loss"],
            c["samples"],
            c["timer"],
            c["train_btn"],
            c["stop_btn"],
            c["resume_btn"],
        ],
        show_progress="hidden",
        api_visibility="undocumented",
    )
    app.load(watch_running_run, None, [c["name"], c["timer"]], api_visibility="undocumented")
