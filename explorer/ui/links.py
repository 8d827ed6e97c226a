"""Points you can keep and share: a link holding the view (run, epoch, tab, point, slider
dimensions, a conditional run's digit), "Copy link", a PNG of the large image carrying the same
state, and dropping such a PNG (or opening such a link) to get the view back.

Nothing here runs on a slider move: the link and the PNG are built only when asked for.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from explorer import conditional, latent, render, state
from explorer.registry import ExplorerError
from explorer.ui import pickers, snapshot
from explorer.ui.context import N_DIM_SLIDERS, N_PCA_SLIDERS, Ctx, err

MAX_DROP_BYTES = 20_000_000  # a PNG from this app is a few kB; larger is not one of ours
COPY_JS = """(url) => {
  if (url && navigator.clipboard && window.isSecureContext)
    navigator.clipboard.writeText(url).catch(() => {});
  return [];
}"""
DOWNLOAD_JS = "() => { const a = document.querySelector('#png-download a'); if (a) a.click(); return []; }"


@dataclass
class ShareRow:
    copy_btn: gr.Button
    link_txt: gr.Textbox
    page_url: gr.Textbox
    png_btn: gr.Button
    png_html: gr.HTML
    drop: gr.File


def build() -> ShareRow:
    """The sliders view's share row (components only; `wire` connects them)."""
    with gr.Row():
        copy_btn = gr.Button("Copy link", elem_id="copy-link-btn", scale=1)
        png_btn = gr.Button("Download PNG", elem_id="png-btn", scale=1)
    link_txt = gr.Textbox(
        label="Link to this point (copied to the clipboard where the browser allows it)",
        elem_id="link",
        buttons=["copy"],
        interactive=False,
    )
    page_url = gr.Textbox(visible=False, elem_id="page-url")
    png_html = gr.HTML(elem_id="png-download")
    drop = gr.File(
        label="Drop a PNG downloaded from this app to restore its point",
        type="filepath",
        elem_id="state-drop",
        height=90,
    )
    return ShareRow(copy_btn, link_txt, page_url, png_btn, png_html, drop)


def current_point(pts, run, epoch, base, dims, vals) -> np.ndarray:
    """The point on screen: the base point unless a slider moved off it (then the composed one)."""
    dim = pts.engine.snapshot(run, epoch).latent_dim
    z = np.array(base if base is not None else [], np.float32).ravel()
    if z.shape != (dim,) or len(vals) != N_DIM_SLIDERS + N_PCA_SLIDERS or not dims:
        return pts.compose(run, epoch, base, dims, vals)
    dim_vals, pca_vals = vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:]
    moved = any(
        v is not None and 0 <= int(d) < dim and float(v) != round(float(z[int(d)]), 2)
        for d, v in zip(dims, dim_vals)
    )
    if moved or any(float(c or 0) != 0 for c in pca_vals):
        return pts.compose(run, epoch, base, dims, vals)
    return z


def resolve(ctx: Ctx, s: state.ViewState, problems: list[str]):
    """The nearest valid (run, epoch, point or None, dims, view) to a state, and what was changed."""
    notes = list(problems)
    names = [v for _, v in ctx.run_choices()]
    run, epoch = s.run, s.epoch
    if run not in names or ctx.default_epoch(run) is None:
        fallback = ctx.preferred_run(names)
        if run is not None:
            notes.append(f"run {run[:80]!r} is not on disk or has no loadable epoch; opened {fallback!r}")
        run, epoch = fallback, ctx.default_epoch(fallback) if fallback else None
    else:
        good = [e.epoch for e in ctx.registry.get(run).good_epochs()]
        if epoch not in good:
            last = ctx.default_epoch(run)
            if epoch is not None:
                notes.append(
                    f"epoch {epoch} of {run!r} is not on disk (or is broken); opened its last, {last}"
                )
            epoch = last
    z, dims = s.z, list(s.dims)
    if run and epoch is not None:
        dim = ctx.registry.get(run).latent_dim
        if z is not None and z.size != dim:
            notes.append(f"the point has {z.size} numbers but {run!r} takes {dim}; opened a random point")
            z = None
        if any(d >= dim for d in dims):
            dims = []
    if z is None and not any("random point" in n for n in notes) and (s.z is not None or problems):
        notes.append("opened a random point instead")
    return run, epoch, z, dims, s.view, notes, _digit(ctx, run, s.digit, notes)


def _digit(ctx: Ctx, run, digit, notes: list[str]) -> int | None:
    """The digit a state opens a conditional run as: its own (links made before the digit was
    kept, and points of other runs: 0); None for an unconditional run (a digit there is moot)."""
    classes = ctx.registry.get(run).num_classes if run else 0
    if not classes:
        return None
    if digit is not None and not 0 <= digit < classes:
        notes.append(f"digit {digit} is not one of {run!r}'s 0 to {classes - 1}; drawn as 0")
        digit = None
    return digit or 0


def restore(ctx: Ctx, pts, s: state.ViewState, problems: list[str]) -> list:
    """Every output of opening a state: pickers, Snapshot view, the point, the tab, the digit
    picker (a conditional run's digit; left as it is for another run)."""
    run, epoch, z, dims, view, notes, digit = resolve(ctx, s, problems)
    for note in notes:
        gr.Warning(note)
    run_up = gr.update(choices=ctx.run_choices(), value=run)
    ep_up = gr.update(choices=ctx.epoch_choices(run), value=epoch)
    snap = list(snapshot.view(ctx, run, epoch))
    if not run or epoch is None:
        return [
            run_up,
            ep_up,
            *snap,
            *[gr.skip()] * (6 + N_DIM_SLIDERS + N_PCA_SLIDERS),
            gr.Tabs(selected=view),
            gr.skip(),
        ]
    dim = ctx.registry.get(run).latent_dim
    if z is None:
        z = latent.random_vector(dim)
    top = ctx.engine.top_dims(run, epoch, N_DIM_SLIDERS)
    dims = (dims + [d for d in top if d not in dims])[:N_DIM_SLIDERS]
    point = pts.show(run, epoch, np.asarray(z, np.float32), dims, digit)
    picked = gr.skip() if digit is None else gr.update(value=str(digit))
    return [run_up, ep_up, *snap, *point, gr.Tabs(selected=view), picked]


def session(request: gr.Request | None):
    return getattr(request, "session_hash", None)


def _png_link(name: str, data: bytes) -> str:
    href = "data:image/png;base64," + base64.b64encode(data).decode()
    return f'<a href="{href}" download="{name}" style="font-size:13px">{name}</a> (PNG with this point in it)'


def endpoints(ctx: Ctx, s: state.ViewState, run) -> list:
    """The interpolation boxes A and B of a state (a strip's PNG carries them), each left as it
    is when the state has none or it does not fit the run opened."""
    try:
        dim = ctx.registry.get(run).latent_dim if run else None
    except ExplorerError:
        dim = None
    return [
        latent.format_vector(v) if v is not None and dim is not None and v.size == dim else gr.skip()
        for v in (s.a, s.b)
    ]


def wire(ctx: Ctx, app: gr.Blocks, tabs: gr.Tabs, snap, sliders, interp: dict | None = None) -> None:
    row: ShareRow = sliders.share
    pts = sliders.points
    boxes = [interp["a_txt"], interp["b_txt"]] if interp else []
    outputs = [ctx.run_dd, ctx.epoch_dd, *snap.outputs, *sliders.point_outputs(ctx), tabs, sliders.digit]
    outputs += boxes
    common = [ctx.run_dd, ctx.epoch_dd, ctx.base_state, ctx.dims_state]

    def restore_all(s: state.ViewState, problems: list[str]) -> list:
        out = restore(ctx, pts, s, problems)
        run = out[0].get("value") if isinstance(out[0], dict) else None
        return out + (endpoints(ctx, s, run) if boxes else [])

    def view_state(run, epoch, base, dims, vals) -> state.ViewState:
        """vals: the slider values, then the digit picker's (kept for a conditional run)."""
        run, epoch = ctx.need(run, epoch)
        vals, digit = vals[:-1], vals[-1]
        z = current_point(pts, run, epoch, base, dims, vals)
        classes = ctx.engine.snapshot(run, epoch).num_classes
        y = conditional.check_label(run, classes, digit) if classes else None
        return state.ViewState(run, epoch, "sliders", z, tuple(int(d) for d in dims or ()), digit=y)

    @err
    def copy_link(run, epoch, base, dims, page_url, *vals):
        page = (page_url or "/").split("?", 1)[0]
        return f"{page}?{state.encode(view_state(run, epoch, base, dims, vals))}"

    @err
    def png(run, epoch, base, dims, *vals):
        s = view_state(run, epoch, base, dims, vals)
        img, _ = ctx.engine.generate(s.run, s.epoch, s.z, s.digit)
        data = state.png_bytes(render.digit(img, 336), s)
        return _png_link(f"{s.run}-epoch{s.epoch}.png"[:120], data)

    def open_link(request: gr.Request):
        params = dict(request.query_params) if request is not None else {}
        if not state.has_state(params):
            return [gr.skip() for _ in outputs]  # a plain visit: explorer.ui.pickers opens the page
        try:  # a pick like any other: the refresh timer leaves the pickers alone meanwhile
            return pickers.answer_pick(ctx.picks, session(request), lambda: restore_all(*state.parse(params)))
        except ExplorerError as exc:
            gr.Warning(f"the link could not be opened: {exc}")
            return [gr.skip() for _ in outputs]

    def drop_png(path, request: gr.Request):
        """A dropped file -> its state restored, or a notice; the drop zone emptied either way."""
        if not path:
            return [*[gr.skip() for _ in outputs], None]
        try:
            p = Path(path)
            if p.stat().st_size > MAX_DROP_BYTES:
                raise state.StateError("that file is too large to be a PNG from this app")
            s, problems = state.parse(state.png_text(p.read_bytes()))
            if problems and s.run is None:
                raise state.StateError(problems[0])
            out = pickers.answer_pick(ctx.picks, session(request), lambda: restore_all(s, problems))
            return [*out, None]
        except (ExplorerError, OSError) as exc:
            gr.Warning(str(exc) if isinstance(exc, ExplorerError) else f"cannot read the dropped file: {exc}")
            return [*[gr.skip() for _ in outputs], None]

    hidden = dict(api_visibility="undocumented")
    vals = [*sliders.sliders, sliders.digit]
    app.load(None, None, row.page_url, js="() => location.origin + location.pathname", **hidden)
    app.load(open_link, None, outputs, **hidden)
    row.copy_btn.click(copy_link, [*common, row.page_url, *vals], row.link_txt, **hidden).success(
        None, row.link_txt, None, js=COPY_JS, **hidden
    )
    row.png_btn.click(png, [*common, *vals], row.png_html, **hidden).success(None, None, None, js=DOWNLOAD_JS)
    row.drop.upload(drop_png, row.drop, [*outputs, row.drop], **hidden)


def wire_cells(ctx: Ctx, tabs: gr.Tabs, snap, sliders, grids: list[dict]) -> None:
    """A click on an interpolation frame or a compare cell opens that point, at the cell's epoch,
    in the Latent sliders (as a link to it would)."""
    from explorer.ui.interpolation import cell_state  # the clickmap's reader lives with its writer

    outputs = [ctx.run_dd, ctx.epoch_dd, *snap.outputs, *sliders.point_outputs(ctx), tabs, sliders.digit]

    def open_cell(cm, evt: gr.SelectData, request: gr.Request):
        x, y = evt.index if isinstance(evt.index, list | tuple) and len(evt.index) == 2 else (None, None)
        s = cell_state(cm, x, y)
        if s is None:  # a margin, a label, or a grid drawn before this server started
            return [gr.skip() for _ in outputs]
        try:
            return pickers.answer_pick(
                ctx.picks, session(request), lambda: restore(ctx, sliders.points, s, [])
            )
        except ExplorerError as exc:
            gr.Warning(f"that cell could not be opened: {exc}")
            return [gr.skip() for _ in outputs]

    for g in grids:
        g["image"].select(open_cell, g["cells"], outputs, api_visibility="undocumented")
