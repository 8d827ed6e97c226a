"""The Snapshot tab: the run's facts, the chosen epoch's figures and its scored samples."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer import state, tables
from explorer.registry import ExplorerError
from explorer.ui.context import Ctx


@dataclass
class SnapshotView:
    facts_md: gr.Markdown
    samples_img: gr.Image
    quality_md: gr.Markdown
    hist_plot: gr.BarPlot

    @property
    def outputs(self) -> list:
        return [self.facts_md, self.samples_img, self.quality_md, self.hist_plot]


def build(ctx: Ctx) -> SnapshotView:
    """Components only: the pickers (explorer.ui.pickers) fill them via `view`."""
    with gr.Row():
        with gr.Column():
            facts_md = gr.Markdown(elem_id="facts")
            quality_md = gr.Markdown(elem_id="quality")
            hist_plot = gr.BarPlot(
                x="digit",
                y="share",
                title="What the generator draws, by class (the quality classifier)",
                y_lim=[0, 1],
                height=220,
                elem_id="digit-hist",
            )
        with gr.Column():
            gr.Markdown(
                "**Samples** (samples.png: the same fixed latent points every epoch), "
                "each with P(real) by this epoch's D"
            )
            samples_img = gr.Image(
                label="samples",
                show_label=False,
                type="pil",
                interactive=False,
                elem_id="samples",
                format="png",
            )
    return SnapshotView(facts_md, samples_img, quality_md, hist_plot)


def view(ctx: Ctx, run, epoch) -> tuple:
    """(run facts, scored samples, epoch figures, digit histogram) of a run and epoch."""
    empty = None  # an empty bar plot
    if not run:
        return "No run chosen. Train one in the **Train** tab, or start with `--runs-dir`.", None, "", empty
    try:
        info = ctx.registry.get(run)
    except ExplorerError as exc:
        return f"**{exc}**", None, "", empty
    facts = tables.run_facts(info)
    if epoch in (None, ""):
        return facts, None, "", empty
    try:
        e = info.epoch(ctx.engine.epoch_number(epoch))
    except ExplorerError as exc:
        return facts, None, f"**{exc}**", empty
    samples, note = ctx.scored_samples(run, e)
    if samples is not None:  # its PNG, downloaded and dropped on the app, opens this run and epoch
        samples.info.pop("layout", None)
        state.tag(samples, state.ViewState(run, e.epoch, "snapshot"))
    quality = e.summary.get("quality") if isinstance(e.summary, dict) else None
    hist = tables.digit_histogram(quality) if isinstance(quality, dict) and quality else None
    return facts, samples, tables.epoch_quality(e, samples is not None, note), hist


def run_facts(ctx: Ctx, run) -> str:
    """Only the run's facts (epochs done / on disk, status): what a refresh updates."""
    return view(ctx, run, None)[0]
