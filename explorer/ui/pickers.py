"""The run and epoch pickers at the top of the page, and what choosing (or a new run or epoch
appearing on disk) updates: the Snapshot view and the sliders' point."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr

from explorer import state
from explorer.ui import snapshot
from explorer.ui.context import Ctx
from explorer.ui.sliders import N_SLIDERS, SlidersView


class Picks:
    """Per browser session, which pick of a run or epoch is the latest. Picks are answered
    concurrently (loading a run's models takes seconds): an answer that finishes after a newer
    pick began returns nothing, so a late answer never overwrites a newer choice; and the refresh
    timer leaves the views and the pickers alone while a pick is being answered."""

    def __init__(self, keep: int = 4096):
        self._lock = threading.Lock()
        # session -> [latest ticket, picks in flight, the run last sent to its pickers]
        self._by_session: OrderedDict = OrderedDict()
        self._keep = keep  # sessions remembered (the oldest are forgotten first)

    def start(self, session) -> int:
        with self._lock:
            entry = self._by_session.pop(session, [0, 0, None])
            entry[0] += 1
            entry[1] += 1
            self._by_session[session] = entry
            while len(self._by_session) > self._keep:
                self._by_session.popitem(last=False)
            return entry[0]

    def finish(self, session, ticket: int) -> bool:
        """The pick is answered; True when no newer pick began meanwhile."""
        with self._lock:
            entry = self._by_session.get(session)
            if entry is None:  # forgotten among thousands of sessions: answer anyway
                return True
            entry[1] = max(0, entry[1] - 1)
            return entry[0] == ticket

    def latest(self, session) -> tuple[int, int]:
        """(latest ticket, picks in flight) of the session."""
        with self._lock:
            return tuple(self._by_session.get(session, (0, 0, None))[:2])

    def sent(self, session, run) -> None:
        """The run an answer just put in the session's run picker."""
        with self._lock:
            entry = self._by_session.get(session)
            if entry is not None:
                entry[2] = run

    def shown(self, session):
        """The run last put in the session's run picker by an answer (None: none yet)."""
        with self._lock:
            return self._by_session.get(session, (0, 0, None))[2]


def _session(request: gr.Request | None):
    return getattr(request, "session_hash", None)


def answer_pick(picks: Picks, session, answer, run=None) -> list:
    """Answer a pick (anything that sets the run and epoch pickers): its outputs, or outputs left
    as they are when a newer pick began meanwhile. Records the run the answer shows."""
    ticket = picks.start(session)
    try:
        out = answer()
    finally:
        latest = picks.finish(session, ticket)
    if not latest:
        return skip(len(out))
    if run is None and out and isinstance(out[0], dict) and "value" in out[0]:
        run = out[0]["value"]
    if run is not None:
        picks.sent(session, run)
    return out


@dataclass
class Pickers:
    refresh_btn: gr.Button
    refresh_timer: gr.Timer
    seen_state: gr.State  # what the views last showed of the disk (a signature)
    found_state: gr.State  # a new signature the timer found, and when


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
    ctx.picks = Picks()
    return Pickers(refresh_btn, gr.Timer(3.0), gr.State(None), gr.State(None))


def pickers_as_on_disk(ctx: Ctx, run, epoch):
    """Updates of the run and epoch pickers: choices as on disk now, the values kept if still there."""
    runs = ctx.run_choices()
    names = [v for _, v in runs]
    run_v = run if run in names else ctx.preferred_run(names)
    eps = ctx.epoch_choices(run_v)
    ep_v = epoch if epoch in [v for _, v in eps] else ctx.default_epoch(run_v)
    return gr.update(choices=runs, value=run_v), gr.update(choices=eps, value=ep_v)


def skip(n: int) -> list:
    """n outputs left as they are; fresh objects each call (Gradio mutates update dicts)."""
    return [gr.skip() for _ in range(n)]


def _looker(ctx: Ctx):
    def look(run, seen, request: gr.Request):
        """The refresh timer's tick (every 3 s): the disk's signature and the time, only when it
        differs from what the views show. Its one output is a State, so a tick that finds nothing
        new touches no view: the views' status no longer goes pending and back every 3 s. (An
        idle page's Chromium: 0.73-0.85 CPU-s in 15 s, 0.90-0.91 with the views as outputs; the
        rest is Gradio's cost of one event.)"""
        if ctx.picks.shown(_session(request)) not in (None, run):
            return gr.skip()  # stale: see refresh_if_changed
        sig = json.dumps([ctx.run_choices(), ctx.epoch_choices(run)], default=str)
        return gr.skip() if sig == seen else [sig, time.monotonic_ns()]  # the time: found again

    return look


def _handlers(ctx: Ctx, views: list, sliders: SlidersView) -> dict:
    """What a pick, the refresh button, the refresh timer and a page load answer."""
    picks: Picks = ctx.picks

    def picked(request, answer, run=None) -> list:
        """The answer to the session's newest pick, or nothing if a newer pick began meanwhile.
        `run` is the run the answer puts in the run picker (None: the run picker's update's value)."""
        return answer_pick(picks, _session(request), answer, run)

    def render(run, epoch, base, dims, digit=None):
        try:  # first: it loads the snapshot, whose D then scores the samples
            pt = sliders.snapshot_point(run, epoch, base, dims, digit)
        except gr.Error as exc:
            if run and epoch not in (None, ""):
                gr.Warning(exc.message)
            pt = [f"<p>{exc.message}</p>", None, "", base, dims, "", *skip(N_SLIDERS)]
        return [*snapshot.view(ctx, run, epoch), *pt]

    def as_on_disk(run, epoch, base, dims, digit=None):
        """The pickers' choices as on disk now. Their values, and the views, only when the chosen
        run or epoch is gone: writing a value the person chose races their next pick."""
        run_up, ep_up = pickers_as_on_disk(ctx, run, epoch)
        if run_up["value"] != run or ep_up["value"] != epoch:
            return [run_up, ep_up, *render(run_up["value"], ep_up["value"], base, dims, digit)]
        del run_up["value"], ep_up["value"]
        if not run:
            return [run_up, ep_up, *skip(len(views))]
        ctx.loadable_final(run)  # a new epoch may have become the final one
        return [run_up, ep_up, snapshot.run_facts(ctx, run), *skip(len(views) - 1)]

    def show_epoch(run, epoch, base, dims, digit, request: gr.Request):
        return picked(request, lambda: render(run, epoch, base, dims, digit), run)

    def show_run(run, base, dims, digit, request: gr.Request):
        def answer():
            ep = ctx.default_epoch(run)
            return [gr.update(choices=ctx.epoch_choices(run), value=ep), *render(run, ep, base, dims, digit)]

        return picked(request, answer, run)

    def refresh(run, epoch, base, dims, digit, request: gr.Request):
        return picked(request, lambda: as_on_disk(run, epoch, base, dims, digit))

    def refresh_if_changed(run, epoch, base, dims, digit, found, request: gr.Request):
        """New runs and epochs appear without a restart; while a pick is answered, only the facts."""
        session = _session(request)
        if not found or picks.shown(session) not in (None, run):
            # a stale tick: it was sent before an answer put another run in the picker (a link,
            # a pick); answering it would put the other run's epochs under the new run
            return skip(3 + len(views))
        before = picks.latest(session)
        sig = found[0]
        if before[1]:  # only the chosen run's facts (seen unchanged: a tick after the pick looks again)
            out = [gr.skip(), gr.skip(), snapshot.run_facts(ctx, run), *skip(len(views) - 1), gr.skip()]
        else:
            out = [*as_on_disk(run, epoch, base, dims, digit), sig]
        if picks.latest(session) != before:  # a pick began meanwhile
            return skip(len(out))
        return out

    def open_page(run, epoch, base, dims, digit, request: gr.Request):
        if request is not None and state.has_state(dict(request.query_params)):
            return skip(2 + len(views))  # a link: explorer.ui.links opens it

        # the run list as it is now (runs may have appeared since the server started)
        def answer():
            run_up, ep_up = pickers_as_on_disk(ctx, run, epoch)
            return [run_up, ep_up, *render(run_up["value"], ep_up["value"], base, dims, digit)]

        return picked(request, answer)

    return dict(
        show_epoch=show_epoch,
        show_run=show_run,
        refresh=refresh,
        refresh_if_changed=refresh_if_changed,
        open_page=open_page,
    )


def wire(ctx: Ctx, app: gr.Blocks, p: Pickers, snap: snapshot.SnapshotView, sliders: SlidersView) -> None:
    views = [*snap.outputs, *sliders.point_outputs(ctx)]  # what a new run/epoch choice updates
    h = _handlers(ctx, views, sliders)
    point = [ctx.base_state, ctx.dims_state, sliders.digit]  # the digit: a conditional run draws it
    pick = [ctx.run_dd, ctx.epoch_dd]
    hidden = dict(api_visibility="undocumented")
    # .input (a person's choice), not .change: handlers that set the epoch themselves (run
    # change, refresh, page load) render the views too, so no view is rendered twice. "multiple":
    # Gradio's default for .input ("once") silently drops a pick made while the previous pick of
    # the same picker is answered (seconds while a run's models load); `picked` keeps the newest.
    ctx.epoch_dd.input(h["show_epoch"], [*pick, *point], views, trigger_mode="multiple", **hidden)
    ctx.run_dd.input(
        h["show_run"], [ctx.run_dd, *point], [ctx.epoch_dd, *views], trigger_mode="multiple", **hidden
    )
    p.refresh_btn.click(h["refresh"], [*pick, *point], [*pick, *views], **hidden)
    p.refresh_timer.tick(
        _looker(ctx), [ctx.run_dd, p.seen_state], p.found_state, show_progress="hidden", **hidden
    )
    p.found_state.change(
        h["refresh_if_changed"],
        [*pick, *point, p.found_state],
        [*pick, *views, p.seen_state],
        show_progress="hidden",
        **hidden,
    )
    app.load(h["open_page"], [*pick, *point], [*pick, *views], **hidden)
