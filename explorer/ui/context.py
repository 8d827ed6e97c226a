"""What every view shares: the registry, engine and trainer, the run/epoch pickers, and the
small helpers the views have in common (error wrapping, choices for the pickers, scored samples)."""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from explorer import render
from explorer.engine import Engine
from explorer.registry import EpochInfo, ExplorerError, RunInfo, RunRegistry
from explorer.trainer import Trainer

N_DIM_SLIDERS = 8
N_PCA_SLIDERS = 6


def err(fn):
    """Run a handler; explorer errors become clear UI/API errors (escaped: messages quote input)."""

    @functools.wraps(fn)  # keeps the signature: gr.api builds the API schema from it
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ExplorerError as exc:
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None

    return wrapped


def run_note(r: RunInfo) -> str:
    """What the run picker says of a run: its status, the epochs it trained and, where they
    differ, how many snapshots are on disk (the bundled demo keeps 3 of its 20), and the broken
    ones. "demo  (completed, 20 epochs, 3 on disk)", not "3 epochs" for a 20-epoch run."""
    if r.broken:
        return f"broken: {r.broken}"
    on_disk, good = len(r.epochs), len(r.good_epochs())
    done = r.facts.epochs_done if r.facts and r.facts.epochs_done is not None else 0
    done = max(done, max((e.epoch for e in r.epochs), default=0))  # run.json a step behind
    note = f"{r.status}, {done} epoch{'' if done == 1 else 's'}"
    if on_disk != done:
        note += f", {on_disk} on disk"
    if good < on_disk:
        note += f", {on_disk - good} broken"
    return note


@dataclass
class Ctx:
    registry: RunRegistry
    engine: Engine
    trainer: Trainer
    train_dir: Path
    gif_dir: Path
    finals: dict = field(default_factory=dict)  # run -> its final loadable epoch (shared by sessions)
    neighbours: object = None  # explorer.neighbours.Neighbours: nearest real digits per run
    run_dd: gr.Dropdown | None = None  # the pickers (set by explorer.ui.pickers.build)
    epoch_dd: gr.Dropdown | None = None
    base_state: gr.State | None = None
    dims_state: gr.State | None = None
    picks: object = None  # explorer.ui.pickers.Picks: which answer to a session's picks is the newest

    # ------------------------------------------------------------------ the pickers' choices
    def run_choices(self) -> list[tuple[str, str]]:
        out = []
        for r in self.registry.list_runs():
            out.append((f"{r.name}  ({run_note(r)})", r.name))
        return out

    def epoch_choices(self, run: str) -> list[tuple[str, int]]:
        if not run:
            return []
        try:
            r = self.registry.get(run)
        except ExplorerError:
            return []
        return [(e.label, e.epoch) for e in r.epochs]

    def default_epoch(self, run: str):
        """The run's last loadable epoch on disk (also the final epoch whose D is the strongest judge)."""
        try:
            good = self.registry.get(run).good_epochs()
        except ExplorerError:
            return None
        return good[-1].epoch if good else None

    def preferred_run(self, names: list[str]):
        """The run to open on: the demo when usable, else the latest-updated usable run."""
        usable = []
        for r in self.registry.list_runs():
            if r.name in names and r.good_epochs():
                try:
                    t = (r.path / "run.json").stat().st_mtime
                except OSError:
                    t = 0.0
                usable.append((r.name != "demo", -t, r.name))
        return min(usable)[2] if usable else (names[0] if names else None)

    # ------------------------------------------------------------------ shared by views
    def need(self, run, epoch) -> tuple[str, int]:
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        if epoch is None or epoch == "":
            raise ExplorerError(f"run {run[:80]!r} has no loadable epoch yet; pick another run or wait")
        return run, self.engine.epoch_number(epoch)

    def loadable_final(self, run: str):
        """The final epoch whose D also scores the slider image, its snapshot loaded and its
        scoring graph traced (so no slider move pays for either), or None."""
        final = self.default_epoch(run)
        if final is not None:
            try:
                snap = self.engine.snapshot(run, final)
                snap.score(np.zeros((1, *snap.cell_shape), np.float32))
            except ExplorerError:
                final = None
        self.finals[run] = final
        return final

    def scored_samples(self, run: str, e: EpochInfo):
        """samples.png with each cell's P(real) by the same epoch's D -> (image, note)."""
        from PIL import Image

        try:
            side, _, channels = self.registry.get(run).image_shape
            with Image.open(e.path / "samples.png") as im:
                im.load()
                pic = im.convert("L" if channels == 1 else "RGB")
        except (OSError, ValueError) as exc:
            return None, f"samples.png unreadable ({exc.__class__.__name__})"
        except ExplorerError as exc:
            return None, str(exc)
        cells = render.split_samples(pic, cell=side, channels=channels)
        if cells is None or e.broken:
            big = pic.resize((pic.width * 2, pic.height * 2), Image.NEAREST)
            return big, (
                ""
                if cells is not None
                else f"samples.png is not an 8-column grid of {side} px images; shown without scores"
            )
        rows = len(cells) // 8
        try:
            classes = self.registry.get(run).num_classes  # a conditional run's grid: row r is digit r
            labels = np.repeat(np.arange(rows), 8) if classes and rows == classes else None
            p = self.engine.scores(run, e.epoch, cells, labels)
        except ExplorerError as exc:
            big = pic.resize((pic.width * 2, pic.height * 2), Image.NEAREST)
            return big, f"no scores: {exc}"
        names = None if labels is None else [f"digit {r}" for r in range(rows)]
        cell = 56 if side == 28 else max(64, side)
        grid = cells.reshape(rows, 8, *cells.shape[1:])
        return render.grid(grid, p.reshape(rows, 8), names, cell=cell, pad=5), ""
