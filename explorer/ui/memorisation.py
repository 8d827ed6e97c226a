"""The memorisation figure per epoch in Compare epochs (README: Quality; training/nnindex.py): its
plot and one sentence, filled by an event of their own, so /compare's outputs stay as they are."""

from __future__ import annotations

import gradio as gr

from explorer import figures, tables
from explorer.registry import ExplorerError
from explorer.ui.context import Ctx, err


def memo_text(rows: list[dict]) -> str:
    """One sentence on the memorisation figure: its last value and the rule, or why there is none."""
    got = [r for r in rows if r.get("memorised") is not None]
    if not got:
        return (
            "No memorisation figure in this run's metrics (runs trained before it existed, such as the "
            "bundled demo, or trained with --quality-samples 0)."
        )
    last = got[-1]
    return (
        f"Memorised at epoch {last['epoch']}: **{100 * last['memorised']:.1f}%** of the samples lie nearer "
        "a training digit than 95% of real digits lie to their nearest other real digit (a new "
        "digit drawn like the real ones scores about 5% or less)."
    )


def build(ctx: Ctx, compare_btn, tab=None) -> None:
    """The plot and its note; updated when Compare runs and when another run is picked (the figure
    is the run's, whatever the compare options)."""
    with gr.Row():
        memo_plot = gr.LinePlot(
            x="epoch",
            y="memorised %",
            title="Memorised share: samples nearer a training digit than 95% of real digits are to theirs",
            height=260,
            elem_id="memo-plot",
        )
        memo_md = gr.Markdown(elem_id="memo-note")

    @err
    def memorisation(run: str):
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        rows = figures.epoch_rows(ctx.registry.get(run), ctx.registry.metrics(run))
        return tables.compare_frames(rows, None)["memorised"], memo_text(rows)

    def quiet(run):
        try:
            return memorisation(run)
        except gr.Error:
            return gr.skip(), gr.skip()

    hidden = dict(api_visibility="undocumented")
    compare_btn.click(memorisation, [ctx.run_dd], [memo_plot, memo_md], api_name="memorisation", **hidden)
    ctx.run_dd.change(quiet, [ctx.run_dd], [memo_plot, memo_md], api_name="memorisation_run", **hidden)
    if tab is not None:  # Compare runs as its tab opens: so does this figure
        tab.select(quiet, [ctx.run_dd], [memo_plot, memo_md], api_name="memorisation_tab", **hidden)
