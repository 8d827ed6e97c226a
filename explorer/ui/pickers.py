"""The run and epoch pickers at the top of the page, and what choosing (or a new run or epoch
appearing on disk) updates: the Snapshot view and the sliders' point."""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr

from explorer import state
from explorer.ui import snapshot
from explorer.ui.context import Ctx
from explorer.ui.sliders import N_SLIDERS, SlidersView


@dataclass
class Pickers:
    refresh_btn: gr.Button
    refresh_timer: gr.Timer
    seen_state: gr.State


def build(ctx: Ctx, first_run, first_epoch) -> Pickers:
    """The pickers' row; sets ctx.run_dd, ctx.epoch_dd and the per-session point state."""
    with gr.Row():
        ctx.run_dd = gr.Dropdown(
            ctx.run_choices(),
            value=first_run,
            label="Run",
            scale=3,
            elem_id="run-dd",
            info="runs found on disk (broken ones are marked)",
            allow_custom_value=True,
        )
        ctx.epoch_dd = gr.Dropdown(
            ctx.epoch_choices(first_run),
            value=first_epoch,
            label="Epoch",
            scale=2,
            elem_id="epoch-dd",
            info="snapshots of this run on disk",
            allow_custom_value=True,
        )
        refresh_btn = gr.Button("↻ Refresh runs", scale=1)
    ctx.base_state = gr.State([])
    ctx.dims_state = gr.State([])
    return Pickers(refresh_btn, gr.Timer(3.0), gr.State(None))


def wire(ctx: Ctx, app: gr.Blocks, p: Pickers, snap: snapshot.SnapshotView, sliders: SlidersView) -> None:
    views = [*snap.outputs, *sliders.point_outputs(ctx)]  # what a new run/epoch choice updates

    def skip_views() -> list:  # fresh each call: Gradio post-processes (mutates) update dicts
        return [gr.skip() for _ in views]

    def show_epoch(run, epoch, base, dims):
        try:  # first: it loads the snapshot, whose D then scores the samples
            pt = sliders.snapshot_point(run, epoch, base, dims)
        except gr.Error as exc:
            if run and epoch not in (None, ""):
                gr.Warning(exc.message)
            pt = [f"<p>{exc.message}</p>", None, "", base, dims, "", *[gr.skip()] * N_SLIDERS]
        return [*snapshot.view(ctx, run, epoch), *pt]

    def show_run(run, base, dims):
        ep = ctx.default_epoch(run)
        return [gr.update(choices=ctx.epoch_choices(run), value=ep), *show_epoch(run, ep, base, dims)]

    def pickers_as_on_disk(run, epoch):
        runs = ctx.run_choices()
        names = [v for _, v in runs]
        run_v = run if run in names else ctx.preferred_run(names)
        eps = ctx.epoch_choices(run_v)
        ep_v = epoch if epoch in [v for _, v in eps] else ctx.default_epoch(run_v)
        return gr.update(choices=runs, value=run_v), gr.update(choices=eps, value=ep_v)

    def refresh(run, epoch, base, dims):
        """Dropdowns as on disk now; the views too when the chosen run or epoch changed."""
        run_up, ep_up = pickers_as_on_disk(run, epoch)
        if run_up["value"] != run or ep_up["value"] != epoch:
            return [run_up, ep_up, *show_epoch(run_up["value"], ep_up["value"], base, dims)]
        if not run_up["value"]:
            return [run_up, ep_up, *skip_views()]
        ctx.loadable_final(run_up["value"])  # a new epoch may have become the final one
        return [run_up, ep_up, snapshot.run_facts(ctx, run_up["value"]), *skip_views()[1:]]

    def refresh_if_changed(run, epoch, base, dims, seen):
        """New runs and epochs appear without a restart; per session, only when they change."""
        sig = json.dumps([ctx.run_choices(), ctx.epoch_choices(run)], default=str)
        if sig == seen:
            return [gr.skip(), gr.skip(), *skip_views(), seen]
        return [*refresh(run, epoch, base, dims), sig]

    def open_page(run, epoch, base, dims, request: gr.Request):
        if request is not None and state.has_state(dict(request.query_params)):
            return [gr.skip(), gr.skip(), *skip_views()]  # a link: explorer.ui.links opens it
        # the run list as it is now (runs may have appeared since the server started)
        run_up, ep_up = pickers_as_on_disk(run, epoch)
        return [run_up, ep_up, *show_epoch(run_up["value"], ep_up["value"], base, dims)]

    point = [ctx.base_state, ctx.dims_state]
    pick = [ctx.run_dd, ctx.epoch_dd]
    hidden = dict(api_visibility="undocumented")
    # .input (a person's choice), not .change: handlers that set the epoch themselves (run
    # change, refresh, page load) render the views too, so no view is rendered twice and no
    # late duplicate overwrites a newer choice
    ctx.epoch_dd.input(show_epoch, [*pick, *point], views, **hidden)
    ctx.run_dd.input(show_run, [ctx.run_dd, *point], [ctx.epoch_dd, *views], **hidden)
    p.refresh_btn.click(refresh, [*pick, *point], [*pick, *views], **hidden)
    p.refresh_timer.tick(
        refresh_if_changed,
        [*pick, *point, p.seen_state],
        [*pick, *views, p.seen_state],
        show_progress="hidden",
        **hidden,
    )
    app.load(open_page, [*pick, *point], [*pick, *views], **hidden)
