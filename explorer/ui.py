"""The Gradio layer: thin handlers over explorer.engine / registry / latent / render.

Every handler turns an ExplorerError into a gr.Error (a clear message in the UI, an error
through the API) and the server keeps serving. The slider path returns an inline PNG (a data
URI in gr.HTML): one traced graph call and one small PNG encode, no disk I/O.
"""
from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from explorer import latent, render
from explorer.engine import Engine
from explorer.registry import ExplorerError, RunRegistry

N_DIM_SLIDERS = 8
N_PCA_SLIDERS = 6
PRESETS = ("dcgan", "keras-io", "tf-tutorial")
ROOT = Path(__file__).resolve().parents[1]
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _png_html(img: "Image.Image", alt: str = "digit") -> str:  # noqa: F821
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f'<img id="latent-image" alt="{alt}" src="data:image/png;base64,{data}" '
            'style="image-rendering: pixelated; width: 280px; height: 280px; border-radius: 6px;"/>')


def _score_label(p: float, epoch) -> dict:
    return {f"real (D of epoch {epoch})": float(p), "fake": float(1 - p)}


def _err(fn):
    """Run a handler; explorer errors become clear UI/API errors."""
    @functools.wraps(fn)  # keeps the signature: gr.api builds the API schema from it
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ExplorerError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return wrapped


class Trainer:
    """Training runs started from the UI: separate processes, watched through the run folder."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def log_path(self, name: str) -> Path:
        d = self.runs_dir / ".logs"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}.log"

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with self.lock:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                raise ExplorerError(f"run {name!r} is already training (pid {p.pid})")
            log = open(self.log_path(name), "ab")
            cmd = [sys.executable, "-m", "training", "--run-dir", str(self.runs_dir / name), *args]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
            log.close()
            self.procs[name] = p
            return p

    def stop(self, name: str) -> bool:
        with self.lock:
            p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return False
        p.send_signal(signal.SIGTERM)
        return True

    def state(self, name: str) -> tuple[str, str]:
        """(running | exited N | none, last meaningful log line)."""
        p = self.procs.get(name)
        last = ""
        try:
            lines = [l for l in self.log_path(name).read_text(errors="replace").replace("\r", "\n")
                     .splitlines() if l.strip() and not l.startswith(("I0000", "WARNING: All log"))]
            last = lines[-1] if lines else ""
        except OSError:
            pass
        if p is None:
            return "none", last
        rc = p.poll()
        return ("running" if rc is None else f"exited {rc}"), last


def build_app(runs_dirs: list[Path], train_dir: Path) -> gr.Blocks:
    registry = RunRegistry(runs_dirs)
    engine = Engine(registry)
    trainer = Trainer(train_dir)
    gif_dir = Path(tempfile.mkdtemp(prefix="latent-explorer-gif-"))

    # ------------------------------------------------------------------ helpers
    def run_choices():
        out = []
        for r in registry.list_runs():
            good = len(r.good_epochs())
            note = f"{r.status}, {good} epoch(s)" + (f", {len(r.epochs) - good} broken" if len(r.epochs) > good else "")
            if r.broken:
                note = f"broken: {r.broken}"
            out.append((f"{r.name}  ({note})", r.name))
        return out

    def epoch_choices(run: str):
        if not run:
            return []
        try:
            r = registry.get(run)
        except ExplorerError:
            return []
        return [(e.label, e.epoch) for e in r.epochs]

    def default_epoch(run: str):
        try:
            good = registry.get(run).good_epochs()
        except ExplorerError:
            return None
        return good[-1].epoch if good else None

    def need(run, epoch):
        if not run:
            raise ExplorerError("pick a run first (top of the page)")
        if epoch is None or epoch == "":
            raise ExplorerError(f"run {run!r} has no loadable epoch yet; pick another run or wait")
        return run, int(epoch)

    def compose(run, epoch, base, dims, dim_vals, pca_vals):
        snap = engine.snapshot(run, epoch)
        z = np.array(base, np.float32).copy()
        if z.shape != (snap.latent_dim,):
            z = latent.random_vector(snap.latent_dim, 0)
        for d, v in zip(dims, dim_vals):
            if d is not None and 0 <= int(d) < snap.latent_dim and v is not None:
                z[int(d)] = float(v)
        if any(abs(float(c or 0)) > 0 for c in pca_vals):
            dirs, _ = engine.directions(run, epoch, N_PCA_SLIDERS)
            z = z + np.asarray([float(c or 0) for c in pca_vals[: len(dirs)]], np.float32) @ dirs
        return snap, np.clip(z, -latent.MAX_ABS, latent.MAX_ABS)

    def render_point(run, epoch, z):
        img, p = engine.generate(run, epoch, z)
        return _png_html(render.digit(img)), _score_label(p, epoch), latent.format_vector(z)

    # ------------------------------------------------------------------ handlers
    @_err
    def on_slide(run, epoch, base, dims, *vals):
        run, epoch = need(run, epoch)
        _, z = compose(run, epoch, base, dims, vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:])
        return render_point(run, epoch, z)

    def slider_updates(run, epoch, base, dims, pca_reset=True):
        dir_labels = []
        try:
            _, var = engine.directions(run, epoch, N_PCA_SLIDERS)
            dir_labels = [f"PC{i + 1} ({v * 100:.1f}% of feature variance)" for i, v in enumerate(var)]
        except ExplorerError:
            pass
        ups = [gr.update(label=f"z[{d}]", value=round(float(base[d]), 2)) for d in dims]
        ups += [gr.update(value=0.0, label=dir_labels[i] if i < len(dir_labels) else f"PC{i + 1}")
                if pca_reset else gr.skip() for i in range(N_PCA_SLIDERS)]
        return ups

    @_err
    def on_point(run, epoch, base, dims, how: str, pasted: str = "", dims_text: str = ""):
        """Random / reset / nudge / paste / snapshot change / choose dims: new base point."""
        run, epoch = need(run, epoch)
        snap = engine.snapshot(run, epoch)
        dim = snap.latent_dim
        base = np.array(base if base is not None and len(base) == dim else latent.random_vector(dim, 0),
                        np.float32)
        if how == "random":
            base = latent.random_vector(dim)
        elif how == "reset":
            base = latent.random_vector(dim, 0)
        elif how == "nudge":
            base = np.clip(base + 0.35 * latent.random_vector(dim), -4, 4).astype(np.float32)
        elif how == "paste":
            base = latent.parse_vector(pasted, dim)
        if how == "snapshot" or not dims or max(dims) >= dim:
            dims = engine.top_dims(run, epoch, N_DIM_SLIDERS)
        if how == "dims":
            parts = [p for p in re.split(r"[\s,;]+", dims_text or "") if p]
            try:
                chosen = [int(p) for p in parts]
            except ValueError:
                raise ExplorerError("dimensions must be whole numbers separated by commas") from None
            if not chosen or any(not 0 <= c < dim for c in chosen):
                raise ExplorerError(f"choose dimensions between 0 and {dim - 1}")
            dims = (chosen + [d for d in dims if d not in chosen])[:N_DIM_SLIDERS]
        html, label, text = render_point(run, epoch, base)
        return [html, label, text, base.tolist(), dims, ", ".join(map(str, dims)),
                *slider_updates(run, epoch, base, dims)]

    @_err
    def on_interpolate(run: str, epoch: float, a_text: str, b_text: str, steps: float, path: str):
        run, epoch = need(run, epoch)
        snap = engine.snapshot(run, epoch)
        a = latent.parse_vector(a_text, snap.latent_dim)
        b = latent.parse_vector(b_text, snap.latent_dim)
        imgs, scores, _ = engine.interpolate(run, epoch, a, b, latent.clamp_steps(steps), path)
        strip = render.strip(imgs, scores, cell=64)
        gif = gif_dir / f"path-{run}-{epoch}-{time.time_ns()}.gif"
        gif.write_bytes(render.gif_bytes(imgs, scores))
        df = pd.DataFrame({"step": np.arange(len(scores)), "P(real)": scores.astype(float)})
        return strip, df, str(gif), str(gif)

    def endpoint_text(run, epoch, which, current):
        run, epoch = need(run, epoch)
        dim = engine.snapshot(run, epoch).latent_dim
        if which == "current":
            return current
        return latent.format_vector(latent.random_vector(dim))

    @_err
    def on_compare(run: str, points: float, seed: float, final_d: bool):
        if not run:
            raise ExplorerError("pick a run first (top of the page)")
        epochs, imgs, scores = engine.compare(run, int(points), int(seed), bool(final_d))
        info = registry.get(run)
        last = epochs[-1]
        who = f"the final epoch's ({last}) D" if final_d else "each epoch's own D"
        grid = render.grid(imgs, scores, [f"epoch {e}" for e in epochs], cell=64)
        rows = []
        for e in info.epochs:
            s = e.summary or {}
            q = s.get("quality") or {}
            rows.append({"epoch": e.epoch, "d_loss": s.get("d_loss"), "g_loss": s.get("g_loss"),
                         "d_acc_real": s.get("d_acc_real"), "d_acc_fake": s.get("d_acc_fake"),
                         "FCD": q.get("fcd"), "classifier_score": q.get("classifier_score"),
                         "confident_share": q.get("confident_share"),
                         "modes": q.get("mode_coverage"), "broken": e.broken or ""})
        # curves from metrics.jsonl's epoch lines (they cover epochs pruned from disk too)
        ep_rows = [r for r in registry.metrics(run) if r.get("kind") == "epoch"] or \
                  [dict(epoch=r["epoch"], quality={"fcd": r["FCD"], "classifier_score": r["classifier_score"]},
                        **{k: r[k] for k in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")}) for r in rows]
        loss_df = pd.DataFrame([{"epoch": r["epoch"], "loss": r[k], "series": k}
                                for r in ep_rows for k in ("d_loss", "g_loss") if r.get(k) is not None])
        acc_df = pd.DataFrame([{"epoch": r["epoch"], "accuracy": r[k], "series": k}
                               for r in ep_rows for k in ("d_acc_real", "d_acc_fake") if r.get(k) is not None])
        q_rows = [(r["epoch"], r.get("quality") or {}) for r in ep_rows]
        fcd_df = pd.DataFrame([{"epoch": e, "FCD": q["fcd"]} for e, q in q_rows if q.get("fcd") is not None])
        is_df = pd.DataFrame([{"epoch": e, "classifier score": q["classifier_score"]}
                              for e, q in q_rows if q.get("classifier_score") is not None])
        on_disk = {e.epoch for e in info.good_epochs()}
        scored = [(e, q["fcd"]) for e, q in q_rows if q.get("fcd") is not None and e in on_disk]
        if scored:
            best, fcd = min(scored, key=lambda t: t[1])
            best_md = (f"**Best epoch by FCD: {best}** (FCD {fcd:.2f}; lower is better, real digits "
                       f"score about {((ep_rows[-1].get('quality') or {}).get('fcd_floor') or 0):.1f}). "
                       f"Scores under the images are P(real) by {who}.")
        else:
            best_md = f"No quality figures in this run (trained with --quality-samples 0). Scores are P(real) by {who}."
        table = pd.DataFrame(rows).round(4)
        return grid, best_md, loss_df, acc_df, fcd_df, is_df, table

    def on_snapshot_view(run, epoch):
        if not run:
            return "No run chosen. Train one in the **Train** tab, or start with `--runs-dir`.", None, ""
        try:
            info = registry.get(run)
        except ExplorerError as exc:
            return f"**{exc}**", None, ""
        i = info.info
        cfg = i.get("config", {})
        facts = [f"### {info.name}  ·  {info.status}",
                 f"- preset **{i.get('preset', '?')}**, latent {i.get('latent_dim', '?')}, "
                 f"pixels {i.get('pixel_range', '?')}, D outputs {'logits' if i.get('d_outputs_logits', True) else 'probabilities'}",
                 f"- data: {i.get('dataset', {}).get('source', '?')} ({i.get('dataset', {}).get('n_images', '?')} images)",
                 f"- epochs done {i.get('epochs_done', '?')} of {cfg.get('epochs', '?')}, batch {cfg.get('batch_size', '?')}, "
                 f"lr G {cfg.get('lr_g', '?')} / D {cfg.get('lr_d', '?')}, seed {cfg.get('seed', '?')}, {cfg.get('precision', '')}",
                 f"- command: `{i.get('command', '?')}`",
                 f"- created {i.get('created', '?')}, TF {i.get('versions', {}).get('tensorflow', '?')}, "
                 f"Keras {i.get('versions', {}).get('keras', '?')}"]
        if info.broken:
            facts.append(f"- **broken: {info.broken}**")
        samples, qtxt = None, ""
        if epoch not in (None, ""):
            try:
                e = info.epoch(int(epoch))
            except (ExplorerError, ValueError) as exc:
                return "\n".join(facts), None, f"**{exc}**"
            if e.broken:
                qtxt = f"**Epoch {e.epoch} is broken: {e.broken}**"
            else:
                from PIL import Image

                try:
                    with Image.open(e.path / "samples.png") as im:
                        samples = im.convert("L").resize((im.width * 2, im.height * 2), Image.NEAREST)
                except OSError as exc:
                    qtxt = f"**samples.png unreadable: {exc}**"
                s = e.summary or {}
                q = s.get("quality") or {}
                lines = [f"### Epoch {e.epoch}",
                         f"- d_loss {s.get('d_loss', float('nan')):.3f}, g_loss {s.get('g_loss', float('nan')):.3f}, "
                         f"D accuracy real {s.get('d_acc_real', float('nan')):.2f} / fake {s.get('d_acc_fake', float('nan')):.2f}",
                         f"- {s.get('images_per_s', 0):.0f} images/s, epoch {s.get('epoch_time_s', 0):.1f} s, "
                         f"total {s.get('elapsed_s', 0):.0f} s"]
                if q:
                    hist = " ".join(f"{d}:{h * 100:.0f}%" for d, h in enumerate(q.get("digit_histogram", [])))
                    lines += [f"- **FCD {q['fcd']:.2f}** (real digits: {q.get('fcd_floor', 0):.2f}; lower is better)",
                              f"- classifier score {q['classifier_score']:.2f} / 10, confident {q['confident_share'] * 100:.0f}%, "
                              f"digits covered {q.get('mode_coverage', '?')}/10",
                              f"- digit histogram: {hist}"]
                else:
                    lines.append("- no quality figures for this epoch")
                qtxt = qtxt or "\n".join(lines)
        return "\n".join(facts), samples, qtxt

    # ------------------------------------------------------------------ train tab
    def on_train(name, preset, epochs, batch, max_images, data, resume=False):
        name = (name or "").strip()
        if not _RUN_NAME.match(name):
            raise gr.Error("run name: letters, digits, '.', '_' or '-', up to 64 characters")
        run_dir = train_dir / name
        if resume:
            if not (run_dir / "run.json").is_file():
                raise gr.Error(f"there is no run {name!r} in {train_dir} to resume")
            args = ["--resume"] + (["--epochs", str(int(epochs))] if epochs else [])
        else:
            if run_dir.exists():
                raise gr.Error(f"run {name!r} already exists: press Resume to continue it, or pick a new name")
            if preset not in PRESETS:
                raise gr.Error(f"unknown preset {preset!r}")
            try:
                epochs, batch = int(epochs), int(batch)
                max_images = int(max_images) if max_images else None
            except (TypeError, ValueError):
                raise gr.Error("epochs, batch size and max images must be whole numbers") from None
            if epochs < 1 or batch < 1 or (max_images is not None and max_images < 1):
                raise gr.Error("epochs, batch size and max images must be at least 1")
            args = ["--preset", preset, "--epochs", str(epochs), "--batch-size", str(batch)]
            if max_images:
                args += ["--max-images", str(max_images)]
            if (data or "").strip():
                args += ["--data", data.strip()]
        try:
            p = trainer.start(name, args)
        except ExplorerError as exc:
            raise gr.Error(str(exc)) from None
        return f"started `{name}` (pid {p.pid})", gr.update(active=True)

    def on_stop(name):
        name = (name or "").strip()
        if trainer.stop(name):
            return f"stop requested for `{name}`: it ends after the current steps, keeping whole epochs"
        return f"`{name}` is not training in this app"

    def on_poll(name):
        name = (name or "").strip()
        state, last = trainer.state(name)
        prog = None
        try:
            prog = json.loads((train_dir / name / "progress.json").read_text())
        except (OSError, ValueError):
            pass
        lines = [f"**{name or '(no run)'}**: process {state}"]
        pct = 0.0
        if prog:
            if prog.get("steps_per_epoch"):
                pct = 100.0 * prog["step_in_epoch"] / prog["steps_per_epoch"]
                lines.append(f"epoch {prog['epoch']}/{prog['epochs']} · step {prog['step_in_epoch']}/"
                             f"{prog['steps_per_epoch']} ({pct:.0f}%) · {prog.get('images_per_s', 0):.0f} img/s · "
                             f"d_loss {prog.get('d_loss', 0):.3f} · g_loss {prog.get('g_loss', 0):.3f}")
            lines.append(f"status: {prog.get('status')}" + (f" · {prog['error']}" if prog.get("error") else ""))
        if last and state.startswith("exited") and not state.endswith(" 0"):
            lines.append(f"`{last[:300]}`")
        rows = []
        try:
            for r in (train_dir / name / "metrics.jsonl").read_text().splitlines():
                try:
                    r = json.loads(r)
                except ValueError:
                    continue
                if r.get("kind") == "step":
                    rows += [{"step": r["step"], "loss": r["d_loss"], "series": "d_loss"},
                             {"step": r["step"], "loss": r["g_loss"], "series": "g_loss"}]
        except OSError:
            pass
        latest = None
        eps = sorted((train_dir / name / "epochs").glob("epoch-*")) if name else []
        if eps:
            from PIL import Image

            try:
                with Image.open(eps[-1] / "samples.png") as im:
                    latest = im.convert("L").copy()
            except OSError:
                latest = None
        running = state == "running"
        bar = (f'<div style="background:#eee;border-radius:4px;height:14px;width:100%">'
               f'<div id="train-progress" style="background:#4a7;height:14px;border-radius:4px;width:{pct:.1f}%"></div></div>')
        return "\n\n".join(lines), bar, pd.DataFrame(rows[-2000:]), latest, gr.update(active=running or state == "none" and bool(prog and prog.get("status") == "training"))

    # ------------------------------------------------------------------ layout
    first_runs = run_choices()
    first_run = next((v for _, v in first_runs if v == "demo"), first_runs[0][1] if first_runs else None)
    first_epoch = default_epoch(first_run) if first_run else None
    if first_epoch is not None:  # warm the first page: models, traces, directions, dimensions
        try:
            engine.directions(first_run, first_epoch, N_PCA_SLIDERS)
            engine.top_dims(first_run, first_epoch, N_DIM_SLIDERS)
        except ExplorerError as exc:
            print(f"note: {exc}", file=sys.stderr)

    with gr.Blocks(title="Latent Explorer") as app:
        gr.Markdown("# Latent Explorer\nTrain a DCGAN on digits, then see what it learned. "
                    "Every generated image carries the discriminator's verdict, **P(real)**.")
        with gr.Row():
            run_dd = gr.Dropdown(first_runs, value=first_run, label="Run", scale=3, elem_id="run-dd",
                                 info="runs found on disk (broken ones are marked)")
            epoch_dd = gr.Dropdown(epoch_choices(first_run), value=first_epoch, label="Epoch", scale=2,
                                   elem_id="epoch-dd", info="snapshots of this run")
            refresh_btn = gr.Button("↻ Refresh runs", scale=1)
        base_state = gr.State([])
        dims_state = gr.State([])
        refresh_timer = gr.Timer(3.0)

        with gr.Tabs():
            with gr.Tab("Snapshot", id="snapshot"):
                with gr.Row():
                    facts_md = gr.Markdown(elem_id="facts")
                    with gr.Column():
                        samples_img = gr.Image(label="samples.png (the same fixed z every epoch)",
                                               type="pil", interactive=False, elem_id="samples")
                        quality_md = gr.Markdown(elem_id="quality")

            with gr.Tab("Latent sliders", id="sliders"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image_html = gr.HTML(elem_id="latent-image-box")
                        score_lbl = gr.Label(label="Discriminator verdict", elem_id="score")
                        with gr.Row():
                            random_btn = gr.Button("Random point", elem_id="random-btn")
                            reset_btn = gr.Button("Reset")
                            nudge_btn = gr.Button("Nudge")
                        vec_txt = gr.Textbox(label="Latent vector (copy it, or paste one and press Apply)",
                                             lines=3, elem_id="vector", buttons=["copy"])
                        paste_btn = gr.Button("Apply pasted vector")
                    with gr.Column(scale=1):
                        gr.Markdown("**Latent dimensions** (the 8 that move the image most, measured; "
                                    "choose others below)")
                        dim_sliders = [gr.Slider(-4, 4, value=0, step=0.05, label=f"z[{i}]",
                                                 elem_id=f"dim-slider-{i}") for i in range(N_DIM_SLIDERS)]
                        with gr.Row():
                            dims_txt = gr.Textbox(label="Dimensions shown", scale=3)
                            dims_btn = gr.Button("Show these", scale=1)
                        gr.Markdown("**Main directions of variation** (PCA of the generator's first "
                                    "features, mapped back to latent space, as in GANSpace)")
                        pca_sliders = [gr.Slider(-6, 6, value=0, step=0.1, label=f"PC{i + 1}",
                                                 elem_id=f"pca-slider-{i}") for i in range(N_PCA_SLIDERS)]

            with gr.Tab("Interpolation", id="interp"):
                with gr.Row():
                    a_txt = gr.Textbox(label="Start point A", lines=2, elem_id="interp-a")
                    b_txt = gr.Textbox(label="End point B", lines=2, elem_id="interp-b")
                with gr.Row():
                    a_cur = gr.Button("A ← current point")
                    a_rnd = gr.Button("A ← random")
                    b_cur = gr.Button("B ← current point")
                    b_rnd = gr.Button("B ← random")
                with gr.Row():
                    steps_sl = gr.Slider(latent.MIN_STEPS, latent.MAX_STEPS, value=10, step=1, label="Steps")
                    path_rd = gr.Radio(["spherical", "linear"], value="spherical", label="Path")
                    interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interp-btn")
                strip_img = gr.Image(label="The path, each frame with P(real)", type="pil",
                                     interactive=False, elem_id="strip")
                with gr.Row():
                    path_plot = gr.LinePlot(x="step", y="P(real)", title="P(real) along the path",
                                            y_lim=[0, 1], height=260)
                    gif_img = gr.Image(label="Animation", type="filepath", interactive=False, elem_id="gif")
                    gif_file = gr.File(label="Download the GIF")

            with gr.Tab("Compare epochs", id="compare"):
                with gr.Row():
                    points_sl = gr.Slider(1, 16, value=8, step=1, label="Latent points")
                    seed_nb = gr.Number(value=0, precision=0, label="Seed of the points")
                    final_cb = gr.Checkbox(label="Score every row with the final epoch's D", value=False)
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                best_md = gr.Markdown(elem_id="best-epoch")
                compare_img = gr.Image(label="Same latent points through every epoch (rows)", type="pil",
                                       interactive=False, elem_id="compare-grid")
                with gr.Row():
                    fcd_plot = gr.LinePlot(x="epoch", y="FCD", title="FCD per epoch (lower is better)", height=240)
                    is_plot = gr.LinePlot(x="epoch", y="classifier score", title="Classifier score (max 10)", height=240)
                with gr.Row():
                    loss_plot = gr.LinePlot(x="epoch", y="loss", color="series", title="Losses", height=240)
                    acc_plot = gr.LinePlot(x="epoch", y="accuracy", color="series", title="D accuracy", height=240,
                                           y_lim=[0, 1])
                epoch_table = gr.Dataframe(label="Per-epoch figures", interactive=False)

            with gr.Tab("Train", id="train"):
                with gr.Row():
                    tr_name = gr.Textbox(label="Run name", value=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
                                         elem_id="train-name")
                    tr_preset = gr.Dropdown(list(PRESETS), value="dcgan", label="Preset")
                    tr_epochs = gr.Number(value=15, precision=0, label="Epochs", elem_id="train-epochs")
                    tr_batch = gr.Number(value=64, precision=0, label="Batch size")
                    tr_max = gr.Number(value=None, precision=0, label="Max images (empty: all)",
                                       elem_id="train-max")
                tr_data = gr.Textbox(label="Data: a folder of MNIST IDX files or an .npz (empty: Keras' MNIST, "
                                           "downloads once)", placeholder="../shared/data/mnist",
                                     elem_id="train-data")
                with gr.Row():
                    train_btn = gr.Button("Train", variant="primary", elem_id="train-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                    resume_btn = gr.Button("Resume", elem_id="resume-btn")
                tr_status = gr.Markdown(elem_id="train-status")
                tr_bar = gr.HTML()
                with gr.Row():
                    tr_loss = gr.LinePlot(x="step", y="loss", color="series", title="Losses (live)", height=260)
                    tr_samples = gr.Image(label="Latest samples", type="pil", interactive=False)
                train_timer = gr.Timer(1.0, active=False)

        # ------------------------------------------------------------------ wiring
        slider_inputs = [run_dd, epoch_dd, base_state, dims_state, *dim_sliders, *pca_sliders]
        slide_outputs = [image_html, score_lbl, vec_txt]
        point_outputs = [image_html, score_lbl, vec_txt, base_state, dims_state, dims_txt,
                         *dim_sliders, *pca_sliders]
        for i, s in enumerate(dim_sliders + pca_sliders):
            s.input(on_slide, slider_inputs, slide_outputs, trigger_mode="always_last",
                    show_progress="hidden", api_name="slide" if i == 0 else None,
                    api_visibility="public" if i == 0 else "undocumented")

        def point_handler(how):
            def fn(run, epoch, base, dims, pasted="", dims_text=""):
                return on_point(run, epoch, base, dims, how, pasted, dims_text)
            fn.__name__ = f"point_{how}"
            return fn

        common = [run_dd, epoch_dd, base_state, dims_state]
        random_btn.click(point_handler("random"), common, point_outputs, api_visibility="undocumented")
        reset_btn.click(point_handler("reset"), common, point_outputs, api_visibility="undocumented")
        nudge_btn.click(point_handler("nudge"), common, point_outputs, api_visibility="undocumented")
        paste_btn.click(point_handler("paste"), common + [vec_txt], point_outputs, api_visibility="undocumented")
        vec_txt.submit(point_handler("paste"), common + [vec_txt], point_outputs, api_visibility="undocumented")
        dims_btn.click(point_handler("dims"), common + [vec_txt, dims_txt], point_outputs,
                       api_visibility="undocumented")

        def on_run_change(run):
            ep = default_epoch(run)
            return gr.update(choices=epoch_choices(run), value=ep)

        run_dd.input(on_run_change, run_dd, epoch_dd, api_visibility="undocumented")

        def on_epoch_change(run, epoch, base, dims):
            facts, samples, q = on_snapshot_view(run, epoch)
            try:
                pt = on_point(run, epoch, base, dims, "snapshot")
            except gr.Error as exc:
                gr.Warning(str(exc))
                pt = [f"<p>{exc}</p>", None, "", base, dims, "", *[gr.skip()] * (N_DIM_SLIDERS + N_PCA_SLIDERS)]
            return [facts, samples, q, *pt]

        epoch_dd.change(on_epoch_change, [run_dd, epoch_dd, base_state, dims_state],
                        [facts_md, samples_img, quality_md, *point_outputs], api_visibility="undocumented")

        def on_refresh(run, epoch):
            runs = run_choices()
            names = [v for _, v in runs]
            run_v = run if run in names else (names[0] if names else None)
            eps = epoch_choices(run_v)
            ep_vals = [v for _, v in eps]
            ep_v = epoch if epoch in ep_vals else default_epoch(run_v)
            return gr.update(choices=runs, value=run_v), gr.update(choices=eps, value=ep_v)

        refresh_btn.click(on_refresh, [run_dd, epoch_dd], [run_dd, epoch_dd], api_visibility="undocumented")
        last_seen = {"sig": None}

        def on_tick(run, epoch):
            sig = json.dumps([run_choices(), epoch_choices(run)], default=str)
            if sig == last_seen["sig"]:
                return gr.skip(), gr.skip()
            last_seen["sig"] = sig
            return on_refresh(run, epoch)

        refresh_timer.tick(on_tick, [run_dd, epoch_dd], [run_dd, epoch_dd], show_progress="hidden",
                           api_visibility="undocumented")
        app.load(on_epoch_change, [run_dd, epoch_dd, base_state, dims_state],
                 [facts_md, samples_img, quality_md, *point_outputs], api_visibility="undocumented")

        a_cur.click(lambda r, e, c: endpoint_text(r, e, "current", c), [run_dd, epoch_dd, vec_txt], a_txt,
                    api_visibility="undocumented")
        b_cur.click(lambda r, e, c: endpoint_text(r, e, "current", c), [run_dd, epoch_dd, vec_txt], b_txt,
                    api_visibility="undocumented")
        a_rnd.click(_err(lambda r, e: endpoint_text(r, e, "random", "")), [run_dd, epoch_dd], a_txt,
                    api_visibility="undocumented")
        b_rnd.click(_err(lambda r, e: endpoint_text(r, e, "random", "")), [run_dd, epoch_dd], b_txt,
                    api_visibility="undocumented")
        interp_btn.click(on_interpolate, [run_dd, epoch_dd, a_txt, b_txt, steps_sl, path_rd],
                         [strip_img, path_plot, gif_img, gif_file], api_name="interpolate")
        compare_btn.click(on_compare, [run_dd, points_sl, seed_nb, final_cb],
                          [compare_img, best_md, loss_plot, acc_plot, fcd_plot, is_plot, epoch_table],
                          api_name="compare")

        train_btn.click(lambda *a: on_train(*a, resume=False),
                        [tr_name, tr_preset, tr_epochs, tr_batch, tr_max, tr_data],
                        [tr_status, train_timer], api_name="train")
        resume_btn.click(lambda n, e: on_train(n, None, e, None, None, None, resume=True),
                         [tr_name, tr_epochs], [tr_status, train_timer], api_name="resume")
        stop_btn.click(on_stop, tr_name, tr_status, api_name="stop")
        train_timer.tick(on_poll, tr_name, [tr_status, tr_bar, tr_loss, tr_samples, train_timer],
                         show_progress="hidden", api_visibility="undocumented")

        # ------------------------------------------------------------------ API-only endpoints
        @_err
        def list_runs() -> str:
            """All runs on disk with their status and epochs (JSON)."""
            out = []
            for r in registry.list_runs():
                out.append({"name": r.name, "status": r.status, "broken": r.broken,
                             "latent_dim": r.info.get("latent_dim"),
                             "epochs": [{"epoch": e.epoch, "broken": e.broken,
                                         "fcd": ((e.summary or {}).get("quality") or {}).get("fcd")}
                                        for e in r.epochs]})
            return json.dumps(out)

        @_err
        def generate(run: str, epoch: int, vector: str) -> tuple[str, float]:
            """Render one latent vector (text, comma-separated) -> (PNG data URI, P(real))."""
            run, epoch = need(run, epoch)
            dim = engine.snapshot(run, epoch).latent_dim
            img, p = engine.generate(run, epoch, latent.parse_vector(vector, dim))
            buf = io.BytesIO()
            render.digit(img, 28).save(buf, format="PNG")
            return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), p

        gr.api(list_runs, api_name="list_runs")
        gr.api(generate, api_name="generate")

    app.engine = engine  # for tests and benchmarks
    app.registry = registry
    app.trainer = trainer
    app.gif_dir = gif_dir
    return app
