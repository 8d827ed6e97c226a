"""The Compare epochs tab: the same latent points through every epoch on disk, and the
per-epoch figures of every epoch the run finished (explorer.figures, explorer.tables)."""

from __future__ import annotations

import gradio as gr
import numpy as np

from explorer import conditional, figures, render, state, tables
from explorer.registry import ExplorerError
from explorer.ui import interpolation, pickers
from explorer.ui.context import Ctx, err


def _handlers(ctx: Ctx, n_outputs: int):
    newest = pickers.Picks()  # per page: which of its Compare answers is the newest

    @err
    def compare(run: str, points: float, seed: float, final_d: bool, chosen=None, digit=None):
        """digit: what a conditional run draws (0-9, or conditional.EACH: a column per digit);
        ignored for other runs (the picker is hidden for them)."""
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        skipped: list = []
        wanted = [int(e) for e in chosen or [] if str(e).isdigit()] or None
        info = ctx.registry.get(run)
        digit = digit if info.num_classes else None
        epochs, imgs, scores = ctx.engine.compare(
            run, points, seed, bool(final_d), skipped=skipped, epochs=wanted, label=digit
        )
        metrics = ctx.registry.metrics(run)
        rows = figures.epoch_rows(info, metrics)
        best_all = figures.best_epoch(rows)
        best_disk = figures.best_epoch(
            [dict(r, snapshot="on disk" if r["epoch"] in epochs else "-") for r in rows], on_disk_only=True
        )
        labels = [f"epoch {e}" + ("\nbest FCD" if best_disk and e == best_disk[0] else "") for e in epochs]
        hi = tuple(i for i, e in enumerate(epochs) if best_disk and e == best_disk[0])
        z, y = conditional.point_labels(
            run, info.num_classes, digit, ctx.engine.compare_points(run, points, seed)
        )
        each = y is not None and np.ndim(y) == 1
        heads = [f"digit {k}" for k in y] if each else None
        grid = render.grid(imgs, scores, labels, cell=72, highlight_rows=hi, col_labels=heads)
        drawn = None if y is None else (list(map(int, y)) if each else [int(y)] * len(z))
        zs = np.broadcast_to(z, (len(epochs), *z.shape))
        cm = interpolation.clickmap(grid, run, epochs, zs, drawn)
        state.tag(grid, state.ViewState(run, None, "compare"))  # the PNG names its run
        judge = f"the final epoch's ({epochs[-1]}) D" if final_d else "each row's own epoch's D"
        text = tables.compare_text(
            rows,
            epochs,
            best_all,
            best_disk,
            figures.fcd_floor(metrics, info),
            judge,
            skipped,
            info.info.get("quality_note"),
        )
        if y is not None:
            text += (
                " Columns: one latent point drawn as each digit (0 to 9)."
                if each
                else f" Every point is drawn as digit {int(y)}."
            )
        f = tables.compare_frames(rows, best_all)
        table = tables.epoch_table(rows, best_all)
        return grid, text, f["loss"], f["acc"], f["fcd"], f["score"], table, cm

    def view(run, points, seed, final_d, chosen=None, digit=None, request: gr.Request = None):
        """The page's Compare (the button, an option): an answer that finishes after a newer one
        of the same page began leaves the view alone (a click, then "each digit" at once: the
        click's answer landing last showed the grid of the option no longer chosen)."""
        session = getattr(request, "session_hash", None)
        return pickers.answer_pick(
            newest, session, lambda: compare(run, points, seed, final_d, chosen, digit)
        )

    def auto(run, points, seed, final_d, chosen, digit=None, request: gr.Request = None):
        """Compare without the button (the view opened, an option changed): a run that cannot be
        compared leaves the view as it is instead of raising a notice nobody asked for."""
        try:
            return view(run, points, seed, final_d, chosen, digit, request)
        except gr.Error:
            return [gr.skip() for _ in range(n_outputs)]

    return compare, view, auto


def _wire_digit(ctx: Ctx, compare, inputs: list, outputs: list) -> None:
    """/compare_digit (/compare keeps its four inputs for raw callers) and the digit picker
    (inputs[-1]) shown only for a conditional run."""
    digit_rd = inputs[-1]

    def compare_digit(run: str, points: float, seed: float, final_d: bool, digit: str):
        """/compare_digit: /compare drawing a conditional run's points as one digit (0-9), or, with
        "each digit", the first point as every digit (a column per digit)."""
        return compare(run, points, seed, final_d, None, digit)

    digit_btn = gr.Button(visible=False)
    digit_btn.click(compare_digit, [*inputs[:4], digit_rd], outputs, api_name="compare_digit")

    def digit_shown(run):
        try:
            return gr.update(visible=bool(run and ctx.registry.get(run).num_classes))
        except ExplorerError:
            return gr.update(visible=False)

    ctx.run_dd.change(
        digit_shown, ctx.run_dd, digit_rd, api_name="compare_digit_shown", api_visibility="undocumented"
    )


def build(ctx: Ctx, tab: gr.Tab | None = None) -> dict:
    with gr.Row():
        points_sl = gr.Slider(1, 16, value=8, step=1, label="Latent points")
        seed_nb = gr.Number(value=0, precision=0, label="Seed of the points", minimum=0)
        final_cb = gr.Checkbox(label="Score every row with the final epoch's D", value=False)
        compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
    epochs_dd = gr.Dropdown(
        [],
        multiselect=True,
        label="Epochs to compare (none chosen: every epoch on disk)",
        elem_id="compare-epochs",
    )
    digit_rd = gr.Radio(
        [conditional.EACH] + [str(i) for i in range(10)],
        value="0",
        label="Digit drawn at every epoch (a conditional run; each digit: a column per digit)",
        visible=False,
        elem_id="compare-digit",
    )  # the sliders' digit picker's twin: shown for a conditional run only (_wire_digit)
    best_md = gr.Markdown(elem_id="best-epoch")
    gr.Markdown(
        "**The same latent points through every epoch on disk** (one row per epoch); "
        "click a cell to open it in the Latent sliders"
    )
    cells = gr.State(None)
    compare_img = gr.Image(
        label="epochs", show_label=False, type="pil", interactive=False, elem_id="compare-grid", format="png"
    )
    with gr.Row():
        fcd_plot = gr.LinePlot(
            x="epoch",
            y="FCD",
            color="series",
            title="FCD per epoch (lower is better; vertical line: best epoch)",
            height=260,
            elem_id="fcd-plot",
        )
        is_plot = gr.LinePlot(
            x="epoch", y="classifier score", title="Classifier score (max 10)", height=260, y_lim=[0, 10]
        )
    with gr.Row():
        loss_plot = gr.LinePlot(x="epoch", y="loss", color="series", title="Losses", height=260)
        acc_plot = gr.LinePlot(
            x="epoch", y="accuracy", color="series", title="D accuracy", height=260, y_lim=[0, 1]
        )
    from explorer.ui import memorisation

    memorisation.build(ctx, compare_btn, tab)  # the memorisation figure per epoch: its plot and note
    epoch_table = gr.Dataframe(
        label="Per-epoch figures (from metrics.jsonl)", interactive=False, elem_id="epoch-table"
    )

    outputs = [compare_img, best_md, loss_plot, acc_plot, fcd_plot, is_plot, epoch_table, cells]
    compare, view, auto = _handlers(ctx, len(outputs))

    def epoch_options(run, chosen):
        eps = [e for _, e in ctx.epoch_choices(run)] if isinstance(run, str) else []
        return gr.update(choices=eps, value=[e for e in chosen or [] if e in eps])

    inputs = [ctx.run_dd, points_sl, seed_nb, final_cb, epochs_dd, digit_rd]
    compare_btn.click(view, inputs, outputs, api_name="compare_view", api_visibility="undocumented")

    def compare_api(run: str, points: float, seed: float, final_d: bool):
        """/compare: every epoch on disk (the view's choice of epochs is the view's own)."""
        return compare(run, points, seed, final_d, None)

    # the named endpoint keeps its four inputs (a raw call sends exactly those)
    api_btn = gr.Button(visible=False)
    api_btn.click(compare_api, inputs[:4], outputs, api_name="compare")
    _wire_digit(ctx, compare, inputs, outputs)
    hidden = dict(api_visibility="undocumented")
    for ev in (final_cb.input, points_sl.release, seed_nb.submit, epochs_dd.input, digit_rd.input):
        ev(auto, inputs, outputs, **hidden)
    if tab is not None:
        tab.select(epoch_options, [ctx.run_dd, epochs_dd], epochs_dd, **hidden).then(
            auto, inputs, outputs, **hidden
        )
    return dict(image=compare_img, cells=cells)
