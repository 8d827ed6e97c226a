"""The sliders view's history of points: Back and Forward through the base points shown in this
browser tab (a random point, a nudge, a pasted vector, a link, a clicked cell, ...), like a
browser's history. Kept in the page's own state: nothing on the server, nothing on disk."""

from __future__ import annotations

import gradio as gr
import numpy as np

from explorer.registry import ExplorerError
from explorer.ui.context import Ctx, err

MAX_POINTS = 50  # the oldest are forgotten first


def empty() -> dict:
    return {"points": [], "at": -1}


def push(hist, base) -> dict:
    """The history after `base` became the point on screen (forward entries dropped, as a
    browser does after a new page); unchanged when it is the point already current."""
    h = hist if isinstance(hist, dict) and isinstance(hist.get("points"), list) else empty()
    pts, at = list(h["points"]), int(h.get("at", -1))
    if base is None or not len(base):
        return h
    z = [float(x) for x in np.asarray(base, np.float32).ravel()]
    if 0 <= at < len(pts) and pts[at] == z:
        return h
    pts = pts[: at + 1] + [z]
    pts = pts[-MAX_POINTS:]
    return {"points": pts, "at": len(pts) - 1}


def step(hist, by: int) -> tuple[dict, list | None]:
    """(history moved by `by`, the point there), or (as it was, None) at either end."""
    h = hist if isinstance(hist, dict) and isinstance(hist.get("points"), list) else empty()
    at = int(h.get("at", -1)) + by
    if not 0 <= at < len(h["points"]):
        return h, None
    return {"points": h["points"], "at": at}, h["points"][at]


def labels(hist) -> tuple[str, str]:
    h = hist if isinstance(hist, dict) and isinstance(hist.get("points"), list) else empty()
    at, n = int(h.get("at", -1)), len(h["points"])
    return f"◀ Back ({max(at, 0)})", f"Forward ({max(n - at - 1, 0)}) ▶"


def wire(ctx: Ctx, view, back_btn: gr.Button, fwd_btn: gr.Button) -> None:
    hist = gr.State(empty())
    pts = view.points

    def record(base, h):
        h = push(h, base)
        back, fwd = labels(h)
        return h, gr.update(value=back), gr.update(value=fwd)

    def go(by):
        @err
        def move(run, epoch, dims, h, digit=None):
            """digit: the sliders' digit picker (a conditional run's point keeps the digit picked)."""
            h2, z = step(h, by)
            if z is None:
                raise ExplorerError("no earlier point" if by < 0 else "no later point")
            run, epoch, dim, _ = pts.start(run, epoch, None)
            if len(z) != dim:
                raise ExplorerError(f"that point has {len(z)} numbers; this run takes {dim}")
            return [
                *pts.show(
                    run, epoch, np.asarray(z, np.float32), pts.valid_dims(run, epoch, dims, dim), digit
                ),
                h2,
            ]

        return move

    hidden = dict(api_visibility="undocumented")
    ctx.base_state.change(record, [ctx.base_state, hist], [hist, back_btn, fwd_btn], **hidden)
    inputs = [ctx.run_dd, ctx.epoch_dd, ctx.dims_state, hist, view.digit]
    outputs = [*view.point_outputs(ctx), hist]
    back_btn.click(go(-1), inputs, outputs, **hidden)
    fwd_btn.click(go(+1), inputs, outputs, **hidden)
