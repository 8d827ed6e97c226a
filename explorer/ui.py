"""The Gradio layer: thin handlers over explorer.engine / registry / latent / render / figures.

Every handler turns an ExplorerError into a gr.Error (a clear message in the UI, an error
through the API) and the server keeps serving. The slider path returns an inline PNG (a data
URI in gr.HTML): one traced graph call and one small PNG encode, no disk I/O.

P(real) = sigmoid(D(x)) is shown on every generated image by the SAME epoch's discriminator;
where it helps (sliders, interpolation, compare) also by the final epoch's discriminator.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import html
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

from explorer import figures, latent, render
from explorer.engine import Engine
from explorer.registry import ExplorerError, RunRegistry
from models.presets import DEFAULT_PRESET, PRESETS  # names only: keras loads when a net is built
from training.loop import PRECISIONS  # TensorFlow loads only when training starts

N_DIM_SLIDERS = 8
N_PCA_SLIDERS = 6
ROOT = Path(__file__).resolve().parents[1]
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
IMAGE_PX = 336  # the slider view's large image
MAX_GIFS = 64  # interpolation GIFs kept on disk (older ones are deleted)


def _png_html(img: "Image.Image", caption: str = "", alt: str = "digit") -> str:  # noqa: F821
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f'<div id="latent-caption" style="margin-top:6px;font-size:15px">{caption}</div>' if caption else ""
    return (f'<div style="text-align:center"><img id="latent-image" alt="{alt}" src="data:image/png;base64,{data}" '
            f'style="image-rendering: pixelated; width: {IMAGE_PX}px; height: {IMAGE_PX}px; border-radius: 6px; display: block; margin: 0 auto;"/>'
            f'{cap}</div>')


def _score_label(p: float, epoch) -> dict:
    return {f"real (D of epoch {epoch})": float(p), "fake": float(1 - p)}


def _frame(rows: list[dict], columns: list[str], text: tuple[str, ...] = ("series",)) -> pd.DataFrame | None:
    """A plot's DataFrame with fixed dtypes, or None when there is nothing to plot yet: an empty
    frame sets the plot up for good with category axes and no colour series (no lines ever)."""
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({c: (str if c in text else float) for c in columns})


def _fmt(v, spec: str = ".3f", missing: str = "n/a") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return missing
    return format(f, spec) if np.isfinite(f) else missing


def _err(fn):
    """Run a handler; explorer errors become clear UI/API errors (escaped: messages quote input)."""
    @functools.wraps(fn)  # keeps the signature: gr.api builds the API schema from it
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ExplorerError as exc:
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None
    return wrapped


def check_run_name(name) -> str:
    """A run name typed in the Train tab: one plain folder name inside the runs folder."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not _RUN_NAME.match(name):
        raise ExplorerError("run name: letters, digits, '.', '_' or '-' (not starting with '.'), "
                            "up to 64 characters")
    return name


class Trainer:
    """Training runs started from the UI: separate processes, watched through the run folder."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping: set[str] = set()
        self.lock = threading.Lock()

    def log_path(self, name: str) -> Path:
        d = self.runs_dir / ".logs"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{check_run_name(name)}.log"

    def start(self, name: str, args: list[str], wait_stopping: float = 60.0) -> subprocess.Popen:
        name = check_run_name(name)
        with self.lock:
            p = self.procs.get(name)
        if p is not None and p.poll() is None and name in self.stopping:
            try:  # Resume right after Stop: let the old process finish its last whole epoch
                p.wait(timeout=wait_stopping)
            except subprocess.TimeoutExpired:
                raise ExplorerError(f"run {name!r} is still stopping (pid {p.pid}); try again in a moment") from None
        if self.lock_holder(name) is not None and (p is None or p.poll() is not None):
            raise ExplorerError(f"run {name!r} is being trained by another process; stop it first")
        with self.lock:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                raise ExplorerError(f"run {name!r} is already training (pid {p.pid})")
            self.stopping.discard(name)
            log = open(self.log_path(name), "ab")
            cmd = [sys.executable, "-m", "training", "--run-dir", str(self.runs_dir / name), *args]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
            log.close()
            self.procs[name] = p
            return p

    def lock_holder(self, name: str) -> int | None:
        """pid of a trainer of this run that this app did not start (e.g. before a restart).

        The run's flock says someone trains it; the pid it wrote is trusted only when
        /proc shows a `training` process whose --run-dir is this run folder.
        """
        run_dir = (self.runs_dir / check_run_name(name)).resolve()
        path = run_dir / "run.lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None  # nobody holds it
            except OSError:
                pass
            pid = int(path.read_text().strip())
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        if "training" not in args or "--run-dir" not in args[:-1]:
            return None
        target = Path(args[args.index("--run-dir") + 1])
        return pid if (cwd / target).resolve() == run_dir else None

    def is_training(self, name: str) -> bool:
        """Is a trainer of this run alive right now (started here or elsewhere)?"""
        with self.lock:
            p = self.procs.get(name)
        return (p is not None and p.poll() is None) or self.lock_holder(name) is not None

    def stop(self, name: str) -> bool:
        with self.lock:
            p = self.procs.get(name)
        if p is not None and p.poll() is None:
            self.stopping.add(name)
            p.send_signal(signal.SIGTERM)
            return True
        pid = self.lock_holder(name)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def running(self) -> list[str]:
        with self.lock:
            return [n for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for name in self.running():
            self.stop(name)

    def state(self, name: str) -> tuple[str, str]:
        """(running | exited N | none, last meaningful log line)."""
        p = self.procs.get(name)
        last = ""
        try:
            lines = [l for l in self.log_path(name).read_text(errors="replace").replace("\r", "\n")
                     .splitlines() if l.strip() and not l.startswith(("I0000", "W0000", "E0000", "WARNING: All log"))]
            last = lines[-1] if lines else ""
        except OSError:
            pass
        if p is None:
            pid = self.lock_holder(name)
            return ("none" if pid is None else f"running (pid {pid}, started outside this app)"), last
        rc = p.poll()
        return ("running" if rc is None else f"exited {rc}"), last


def build_app(runs_dirs: list[Path], train_dir: Path) -> gr.Blocks:
    registry = RunRegistry(runs_dirs)
    engine = Engine(registry)
    trainer = Trainer(train_dir)
    gif_dir = Path(tempfile.mkdtemp(prefix="latent-explorer-gif-"))
    gif_lock = threading.Lock()
    train_samples_cache: dict[tuple, object] = {}
    finals: dict[str, int | None] = {}  # run -> its final loadable epoch (shared by sessions)

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

    def preferred_run(names: list[str]):
        """The run to open on: the demo when usable, else the latest-updated usable run."""
        usable = []
        for r in registry.list_runs():
            if r.name in names and r.good_epochs():
                try:
                    t = (r.path / "run.json").stat().st_mtime
                except OSError:
                    t = 0.0
                usable.append((r.name != "demo", -t, r.name))
        return min(usable)[2] if usable else (names[0] if names else None)

    def final_epoch(run: str):
        """The run's last loadable epoch on disk (its D is the strongest judge)."""
        return default_epoch(run)

    def need(run, epoch):
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        if epoch is None or epoch == "":
            raise ExplorerError(f"run {run[:80]!r} has no loadable epoch yet; pick another run or wait")
        return run, engine.epoch_number(epoch)

    def compose(run, epoch, base, dims, dim_vals, pca_vals):
        snap = engine.snapshot(run, epoch)
        z = np.array(base if base is not None else [], np.float32).ravel().copy()
        if z.shape != (snap.latent_dim,):
            z = latent.random_vector(snap.latent_dim, 0)
        if not dims or any(d is None or not 0 <= int(d) < snap.latent_dim for d in dims):
            dims = engine.top_dims(run, epoch, N_DIM_SLIDERS)  # cached per snapshot
        for d, v in zip(dims, dim_vals):
            if v is not None:
                z[int(d)] = float(v)
        pca = [float(c or 0) for c in pca_vals]
        if any(c != 0 for c in pca):  # NaN counts too: it is refused below, clearly
            dirs, _ = engine.directions(run, epoch, N_PCA_SLIDERS)
            z = z + np.asarray(pca[: len(dirs)], np.float32) @ dirs
        if not np.all(np.isfinite(z)):
            raise ExplorerError("slider values must be finite numbers")
        return snap, np.clip(z, -latent.MAX_ABS, latent.MAX_ABS)

    def render_point(run, epoch, z, final=None):
        img, p = engine.generate(run, epoch, z)
        caption = f"P(real) <b>{p:.2f}</b> by the D of epoch {epoch}"
        if final is not None and final != epoch:
            try:
                pf = float(engine.snapshot(run, final).score(img[None])[0])
                caption += f" &middot; <b>{pf:.2f}</b> by the final epoch's ({final}) D"
            except ExplorerError:
                pass
        return (_png_html(render.digit(img, IMAGE_PX), caption), _score_label(p, epoch),
                latent.format_vector(z))

    # ------------------------------------------------------------------ handlers
    def loadable_final(run: str):
        """The final epoch whose D also scores the slider image, its snapshot loaded and its
        scoring graph traced (so no slider move pays for either), or None."""
        final = final_epoch(run)
        if final is not None:
            try:
                engine.snapshot(run, final).score(np.zeros((1, 28, 28), np.float32))
            except ExplorerError:
                final = None
        finals[run] = final
        return final

    @_err
    def on_slide(run, epoch, base, dims, *vals):
        run, epoch = need(run, epoch)
        _, z = compose(run, epoch, base, dims, vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:])
        # the final epoch is a fact of the run, kept server-side (set when a point or snapshot is
        # chosen, refreshed by the run-list timer): no disk access or tracing here after that
        final = finals[run] if run in finals else loadable_final(run)
        return render_point(run, epoch, z, final)

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
    def on_point(run, epoch, base, dims, how: str, pasted: str = "", dims_text: str = "", vals=()):
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
        elif how == "nudge":  # a small step from the point on screen (sliders included)
            if len(vals) == N_DIM_SLIDERS + N_PCA_SLIDERS:
                _, base = compose(run, epoch, base, dims, vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:])
            base = np.clip(base + 0.35 * latent.random_vector(dim), -4, 4).astype(np.float32)
        elif how == "paste":
            base = latent.parse_vector(pasted, dim)
        elif how == "dims" and len(vals) == N_DIM_SLIDERS + N_PCA_SLIDERS:
            _, base = compose(run, epoch, base, dims, vals[:N_DIM_SLIDERS], vals[N_DIM_SLIDERS:])
        if how == "snapshot" or not dims or max(dims) >= dim:
            dims = engine.top_dims(run, epoch, N_DIM_SLIDERS)
        if how == "dims":
            parts = [p for p in re.split(r"[\s,;]+", dims_text or "") if p]
            try:
                chosen = list(dict.fromkeys(int(p) for p in parts))
            except ValueError:
                raise ExplorerError("dimensions must be whole numbers separated by commas") from None
            if not chosen or any(not 0 <= c < dim for c in chosen):
                raise ExplorerError(f"choose dimensions between 0 and {dim - 1}")
            dims = (chosen + [d for d in dims if d not in chosen])[:N_DIM_SLIDERS]
        final = loadable_final(run)  # loads the final D now, not on the first slider move
        html_, label, text = render_point(run, epoch, base, final)
        return [html_, label, text, base.tolist(), dims, ", ".join(map(str, dims)),
                *slider_updates(run, epoch, base, dims)]

    def new_gif_path(run, epoch) -> Path:
        with gif_lock:
            old = sorted(gif_dir.glob("*.gif"), key=lambda p: p.stat().st_mtime)
            for p in old[: max(0, len(old) - MAX_GIFS + 1)]:
                p.unlink(missing_ok=True)
        return gif_dir / f"path-{run}-epoch{epoch}-{time.time_ns()}.gif"

    @_err
    def on_interpolate(run: str, epoch: float, a_text: str, b_text: str, steps: float, path: str):
        run, epoch = need(run, epoch)
        snap = engine.snapshot(run, epoch)
        a = latent.parse_vector(a_text, snap.latent_dim)
        b = latent.parse_vector(b_text, snap.latent_dim)
        imgs, scores, _ = engine.interpolate(run, epoch, a, b, latent.clamp_steps(steps), path)
        final, final_scores = final_epoch(run), None
        if final is not None and final != epoch:
            try:
                final_scores = engine.scores(run, final, imgs)
            except ExplorerError:
                final = None
        strip = render.strip(imgs, scores, cell=84, scores2=final_scores,
                             score2_name="final D")
        gif = new_gif_path(run, epoch)
        gif.write_bytes(render.gif_bytes(imgs, scores))
        df = pd.DataFrame({"step": np.arange(len(scores)), "P(real)": scores.astype(float),
                           "judged by": f"D of epoch {epoch}"})
        if final_scores is not None:
            df = pd.concat([df, pd.DataFrame({"step": np.arange(len(scores)),
                                              "P(real)": final_scores.astype(float),
                                              "judged by": f"D of final epoch {final}"})])
        return strip, df, str(gif), str(gif)

    def endpoint_text(run, epoch, which, current):
        run, epoch = need(run, epoch)
        dim = engine.snapshot(run, epoch).latent_dim
        if which == "current":
            if not (current or "").strip():
                raise ExplorerError("there is no current point yet: open the Latent sliders tab first")
            return current
        return latent.format_vector(latent.random_vector(dim))

    @_err
    def on_compare(run: str, points: float, seed: float, final_d: bool):
        if not run or not isinstance(run, str):
            raise ExplorerError("pick a run first (top of the page)")
        skipped: list = []
        epochs, imgs, scores = engine.compare(run, points, seed, bool(final_d), skipped=skipped)
        info = registry.get(run)
        metrics = registry.metrics(run)
        rows = figures.epoch_rows(info, metrics)
        best_all = figures.best_epoch(rows)
        best_disk = figures.best_epoch([dict(r, snapshot="on disk" if r["epoch"] in epochs else "-")
                                        for r in rows], on_disk_only=True)
        last = epochs[-1]
        who = f"the final epoch's ({last}) D" if final_d else "each row's own epoch's D"
        labels = [f"epoch {e}" + ("\nbest FCD" if best_disk and e == best_disk[0] else "") for e in epochs]
        hi = tuple(i for i, e in enumerate(epochs) if best_disk and e == best_disk[0])
        grid = render.grid(imgs, scores, labels, cell=72, highlight_rows=hi)

        loss_df = _frame([{"epoch": r["epoch"], "loss": r[k], "series": k}
                          for r in rows for k in ("d_loss", "g_loss") if r.get(k) is not None],
                         ["epoch", "loss", "series"])
        acc_df = _frame([{"epoch": r["epoch"], "accuracy": r[k], "series": k}
                         for r in rows for k in ("d_acc_real", "d_acc_fake") if r.get(k) is not None],
                        ["epoch", "accuracy", "series"])
        fcd_pts = [{"epoch": r["epoch"], "FCD": r["fcd"], "series": "FCD"} for r in rows if r["fcd"] is not None]
        if best_all and fcd_pts:  # the best-epoch marker: a vertical line at that epoch
            lo, top = min(p["FCD"] for p in fcd_pts), max(p["FCD"] for p in fcd_pts)
            fcd_pts += [{"epoch": best_all[0], "FCD": lo, "series": f"best: epoch {best_all[0]}"},
                        {"epoch": best_all[0], "FCD": top, "series": f"best: epoch {best_all[0]}"}]
        fcd_df = _frame(fcd_pts, ["epoch", "FCD", "series"])
        is_df = _frame([{"epoch": r["epoch"], "classifier score": r["classifier_score"]}
                        for r in rows if r["classifier_score"] is not None], ["epoch", "classifier score"])

        floor = figures.fcd_floor(metrics, info)
        floor_txt = f"; real digits score about {floor:.1f}" if floor is not None else ""
        on_disk_txt = ", ".join(map(str, epochs))
        parts = []
        if best_all:
            parts.append(f"**Best epoch by FCD: {best_all[0]}** (FCD {best_all[1]:.2f}; lower is better{floor_txt}).")
            if best_disk and best_disk[0] != best_all[0]:
                parts.append(f"Epoch {best_all[0]} was not kept on disk; the best snapshot on disk is "
                             f"**epoch {best_disk[0]}** (FCD {best_disk[1]:.2f}), framed in blue below.")
            elif best_disk:
                parts.append("Its row is framed in blue below.")
        else:
            parts.append("No quality figures in this run (trained with --quality-samples 0).")
        parts.append(f"Plots cover all {len(rows)} epochs in metrics.jsonl; the grid shows the "
                     f"{len(epochs)} snapshot(s) on disk (epochs {on_disk_txt}). "
                     f"Scores under the images are P(real) by {who}.")
        if skipped:
            parts.append("Left out: " + "; ".join(f"epoch {e} ({html.escape(str(r))[:160]})" for e, r in skipped) + ".")
        table = pd.DataFrame(rows)
        if not table.empty:
            table.insert(1, "best", ["best FCD" if best_all and e == best_all[0] else "" for e in table["epoch"]])
            table = table.round(4)
        return grid, " ".join(parts), loss_df, acc_df, fcd_df, is_df, table

    def scored_samples(run: str, e, cache: dict | None = None):
        """samples.png with each cell's P(real) by the same epoch's D -> (image, note)."""
        from PIL import Image

        try:
            with Image.open(e.path / "samples.png") as im:
                im.load()
                pic = im.convert("L")
        except (OSError, ValueError) as exc:
            return None, f"samples.png unreadable ({exc.__class__.__name__})"
        cells = render.split_samples(pic)
        if cells is None or e.broken:
            big = pic.resize((pic.width * 2, pic.height * 2), Image.NEAREST)
            return big, ("" if cells is not None else "samples.png is not an 8-column grid of 28 px "
                         "digits; shown without scores")
        try:
            p = engine.scores(run, e.epoch, cells)
        except ExplorerError as exc:
            big = pic.resize((pic.width * 2, pic.height * 2), Image.NEAREST)
            return big, f"no scores: {exc}"
        rows = len(cells) // 8
        return render.grid(cells.reshape(rows, 8, 28, 28), p.reshape(rows, 8), cell=56, pad=5), ""

    def on_snapshot_view(run, epoch):
        empty = _frame([], ["digit", "share"], text=("digit",))
        if not run:
            return "No run chosen. Train one in the **Train** tab, or start with `--runs-dir`.", None, "", empty
        try:
            info = registry.get(run)
        except ExplorerError as exc:
            return f"**{exc}**", None, "", empty
        i = info.info
        cfg = i.get("config") if isinstance(i.get("config"), dict) else {}
        ds = i.get("dataset") if isinstance(i.get("dataset"), dict) else {}
        vs = i.get("versions") if isinstance(i.get("versions"), dict) else {}
        on_disk = [e.epoch for e in info.epochs]
        done = i.get("epochs_done")
        pruned = ""
        if isinstance(done, int) and on_disk and len(on_disk) < done:
            pruned = f" (the others were not kept; their figures are in the Compare tab)"
        facts = [f"### {info.name}  ·  {info.status}",
                 f"- preset **{i.get('preset', '?')}**, latent {i.get('latent_dim', '?')}, "
                 f"pixels {i.get('pixel_range', '?')}, D outputs {'logits' if i.get('d_outputs_logits', True) else 'probabilities'}",
                 f"- data: {ds.get('source', '?')} ({ds.get('n_images', '?')} images)",
                 f"- epochs done {done if done is not None else '?'} of {cfg.get('epochs', '?')}, batch {cfg.get('batch_size', '?')}, "
                 f"lr G {cfg.get('lr_g', '?')} / D {cfg.get('lr_d', '?')}, seed {cfg.get('seed', '?')}, {cfg.get('precision', '')}",
                 f"- snapshots on disk: epochs {', '.join(map(str, on_disk)) or 'none yet'}{pruned}",
                 f"- command: `{i.get('command', '?')}`",
                 f"- created {i.get('created', '?')}, TF {vs.get('tensorflow', '?')}, Keras {vs.get('keras', '?')}"]
        if info.broken:
            facts.append(f"- **broken: {info.broken}**")
        samples, qtxt, hist_df = None, "", empty
        if epoch not in (None, ""):
            try:
                e = info.epoch(engine.epoch_number(epoch))
            except ExplorerError as exc:
                return "\n".join(facts), None, f"**{exc}**", empty
            samples, note = scored_samples(run, e)
            s = e.summary or {}
            q = s.get("quality") if isinstance(s.get("quality"), dict) else {}
            lines = [f"### Epoch {e.epoch}"]
            if e.broken:
                lines.append(f"**Epoch {e.epoch} is broken: {e.broken}**")
            lines += [f"- d_loss {_fmt(s.get('d_loss'))}, g_loss {_fmt(s.get('g_loss'))}, "
                      f"D accuracy real {_fmt(s.get('d_acc_real'), '.2f')} / fake {_fmt(s.get('d_acc_fake'), '.2f')}",
                      f"- {_fmt(s.get('images_per_s'), '.0f')} images/s, epoch {_fmt(s.get('epoch_time_s'), '.1f')} s, "
                      f"total {_fmt(s.get('elapsed_s'), '.0f')} s"]
            if q:
                lines += [f"- **FCD {_fmt(q.get('fcd'), '.2f')}** (real digits: {_fmt(q.get('fcd_floor'), '.2f')}; lower is better)",
                          f"- classifier score {_fmt(q.get('classifier_score'), '.2f')} / 10, "
                          f"confident {_fmt((q.get('confident_share') or 0) * 100 if isinstance(q.get('confident_share'), (int, float)) else None, '.0f')}%, "
                          f"digits covered {q.get('mode_coverage', '?')}/10"]
                hist = q.get("digit_histogram")
                if isinstance(hist, list) and len(hist) == 10:
                    hist_df = pd.DataFrame({"digit": [str(d) for d in range(10)],
                                            "share": [float(h) if isinstance(h, (int, float)) else 0.0 for h in hist]})
            else:
                lines.append("- no quality figures for this epoch")
            if samples is not None and not note and not e.broken:
                lines.append(f"- the samples' captions: P(real) by epoch {e.epoch}'s D")
            if note:
                lines.append(f"- {note}")
            qtxt = "\n".join(lines)
        return "\n".join(facts), samples, qtxt, hist_df

    # ------------------------------------------------------------------ train tab
    @_err
    def on_train(name, preset, epochs, batch, max_images, data, precision="float32", resume=False):
        name = check_run_name(name)
        run_dir = train_dir / name
        if resume:
            if not (run_dir / "run.json").is_file():
                raise ExplorerError(f"there is no run {name!r} in the runs folder to resume")
            try:
                epochs = int(epochs) if epochs not in (None, "") else None
            except (TypeError, ValueError, OverflowError):
                raise ExplorerError("epochs must be a whole number") from None
            if epochs is not None and not 1 <= epochs <= 100_000:
                raise ExplorerError("epochs must be from 1 to 100000")
            args = ["--resume"] + (["--epochs", str(epochs)] if epochs else [])
        else:
            if run_dir.exists():
                raise ExplorerError(f"run {name!r} already exists: press Resume to continue it, or pick a new name")
            if preset not in PRESETS:
                raise ExplorerError(f"unknown preset {str(preset)[:40]!r}: choose {', '.join(PRESETS)}")
            try:
                epochs, batch = int(epochs), int(batch)
                max_images = int(max_images) if max_images not in (None, "", 0) else None
            except (TypeError, ValueError, OverflowError):
                raise ExplorerError("epochs, batch size and max images must be whole numbers") from None
            if not 1 <= epochs <= 100_000 or not 1 <= batch <= 65_536 or (max_images is not None and max_images < 1):
                raise ExplorerError("epochs (1-100000), batch size (1-65536) and max images must be at least 1")
            precision = precision or "float32"
            if precision not in PRECISIONS:
                raise ExplorerError(f"unknown precision {str(precision)[:40]!r}: choose {', '.join(PRECISIONS)}")
            args = ["--preset", preset, "--epochs", str(epochs), "--batch-size", str(batch),
                    "--precision", precision]
            if max_images:
                args += ["--max-images", str(max_images)]
            if (data or "").strip():
                args += ["--data", data.strip()]
        p = trainer.start(name, args)
        return f"started `{name}` (pid {p.pid})", gr.update(active=True)

    @_err
    def on_stop(name):
        name = check_run_name(name)
        if trainer.stop(name):
            return f"stop requested for `{name}`: it ends after the current steps, keeping whole epochs"
        return f"`{name}` is not training in this app"

    def latest_samples(name: str):
        try:
            info = registry.get(name)
        except ExplorerError:
            return None
        good = info.good_epochs()
        if not good:
            return None
        e = good[-1]
        key = (name, e.epoch, registry.stamp(e.path / "samples.png"))
        if key not in train_samples_cache:
            img, _ = scored_samples(name, e)
            train_samples_cache.clear()  # one picture per run is all the tab shows
            train_samples_cache[key] = (img, e.epoch)
        return train_samples_cache[key]

    def on_poll(name):
        try:
            name = check_run_name(name)
        except ExplorerError as exc:
            return f"**{exc}**", "", _frame([], ["step", "loss", "series"]), None, gr.update(active=False)
        state, last = trainer.state(name)
        prog = None
        try:
            prog = json.loads((train_dir / name / "progress.json").read_text())
            prog = prog if isinstance(prog, dict) else None
        except (OSError, ValueError):
            pass
        lines = [f"**{name}**: process {state}"]
        pct = 0.0
        if prog:
            try:
                if prog.get("steps_per_epoch"):
                    pct = max(0.0, min(100.0, 100.0 * prog["step_in_epoch"] / prog["steps_per_epoch"]))
                    lines.append(f"epoch {prog['epoch']}/{prog['epochs']} · step {prog['step_in_epoch']}/"
                                 f"{prog['steps_per_epoch']} ({pct:.0f}%) · {_fmt(prog.get('images_per_s'), '.0f')} img/s · "
                                 f"d_loss {_fmt(prog.get('d_loss'))} · g_loss {_fmt(prog.get('g_loss'))}")
            except (KeyError, TypeError, ValueError):
                pass
            lines.append(f"status: {prog.get('status')}" + (f" · {prog['error']}" if prog.get("error") else ""))
        if last and state.startswith("exited") and not state.endswith(" 0"):
            lines.append(f"`{last[:300]}`")
        rows = []
        try:
            metrics = registry.metrics(name)
        except ExplorerError:  # the process has not written run.json yet
            metrics = []
        for r in metrics:
            if r.get("kind") == "step" and all(isinstance(r.get(k), (int, float)) for k in ("step", "d_loss", "g_loss")):
                rows += [{"step": r["step"], "loss": r["d_loss"], "series": "d_loss"},
                         {"step": r["step"], "loss": r["g_loss"], "series": "g_loss"}]
        latest = latest_samples(name)
        samples = latest[0] if latest else None
        if latest:
            lines.append(f"latest samples: epoch {latest[1]}, captions P(real) by that epoch's D")
        # decided afresh at the end: a poll that began before a Resume click must not switch the
        # timer off after the Resume has switched it on (its answer can arrive second)
        running = trainer.is_training(name)
        bar = (f'<div style="background:#eee;border-radius:4px;height:14px;width:100%">'
               f'<div id="train-progress" style="background:#4a7;height:14px;border-radius:4px;width:{pct:.1f}%"></div></div>')
        return ("\n\n".join(lines), bar, _frame(rows[-2000:], ["step", "loss", "series"]),
                samples, gr.update(active=running))

    # ------------------------------------------------------------------ layout
    first_runs = run_choices()
    first_run = preferred_run([v for _, v in first_runs])
    first_epoch = default_epoch(first_run) if first_run else None
    if first_epoch is not None:  # warm the first page: models, traces, directions, dimensions
        try:
            engine.directions(first_run, first_epoch, N_PCA_SLIDERS)
            engine.top_dims(first_run, first_epoch, N_DIM_SLIDERS)
        except ExplorerError as exc:
            print(f"note: {exc}", file=sys.stderr)

    with gr.Blocks(title="Latent Explorer", delete_cache=(900, 1800)) as app:
        gr.Markdown("# Latent Explorer\nTrain a DCGAN on digits, then see what it learned. "
                    "Every generated image carries the discriminator's verdict, **P(real)** "
                    "(1 = looks real to D, 0 = looks fake).")
        with gr.Row():
            run_dd = gr.Dropdown(first_runs, value=first_run, label="Run", scale=3, elem_id="run-dd",
                                 info="runs found on disk (broken ones are marked)", allow_custom_value=True)
            epoch_dd = gr.Dropdown(epoch_choices(first_run), value=first_epoch, label="Epoch", scale=2,
                                   elem_id="epoch-dd", info="snapshots of this run on disk",
                                   allow_custom_value=True)
            refresh_btn = gr.Button("↻ Refresh runs", scale=1)
        base_state = gr.State([])
        dims_state = gr.State([])
        seen_state = gr.State(None)
        refresh_timer = gr.Timer(3.0)

        with gr.Tabs():
            with gr.Tab("Snapshot", id="snapshot"):
                with gr.Row():
                    with gr.Column():
                        facts_md = gr.Markdown(elem_id="facts")
                        quality_md = gr.Markdown(elem_id="quality")
                        hist_plot = gr.BarPlot(x="digit", y="share", title="Digits the generator draws "
                                               "(by the quality classifier)", y_lim=[0, 1], height=220,
                                               elem_id="digit-hist")
                    with gr.Column():
                        gr.Markdown("**Samples** (samples.png: the same fixed latent points every epoch), "
                                    "each with P(real) by this epoch's D")
                        samples_img = gr.Image(label="samples", show_label=False, type="pil",
                                               interactive=False, elem_id="samples")

            with gr.Tab("Latent sliders", id="sliders"):
                with gr.Row():
                    with gr.Column(scale=1):
                        image_html = gr.HTML(elem_id="latent-image-box")
                        score_lbl = gr.Label(label="Discriminator verdict (this epoch's D)", elem_id="score")
                        with gr.Row():
                            random_btn = gr.Button("Random point", elem_id="random-btn")
                            reset_btn = gr.Button("Reset", elem_id="reset-btn")
                            nudge_btn = gr.Button("Nudge", elem_id="nudge-btn")
                        vec_txt = gr.Textbox(label="Latent vector (copy it, or paste one and press Apply)",
                                             lines=3, elem_id="vector", buttons=["copy"])
                        paste_btn = gr.Button("Apply pasted vector")
                    with gr.Column(scale=1):
                        gr.Markdown("**Latent dimensions**: the 8 that move the image most (measured); "
                                    "type others under the sliders")
                        dim_sliders = [gr.Slider(-4, 4, value=0, step=0.05, label=f"z[{i}]",
                                                 elem_id=f"dim-slider-{i}") for i in range(N_DIM_SLIDERS)]
                        with gr.Row():
                            dims_txt = gr.Textbox(label="Dimensions shown (0-based, comma separated)", scale=3,
                                                  elem_id="dims-txt")
                            dims_btn = gr.Button("Show these", scale=1)
                        gr.Markdown("**Main directions of variation** (PCA of the generator's first "
                                    "features, mapped back to latent space, as in GANSpace); "
                                    "0 = the point above")
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
                    steps_sl = gr.Slider(latent.MIN_STEPS, latent.MAX_STEPS, value=10, step=1, label="Steps",
                                         elem_id="steps")
                    path_rd = gr.Radio(["spherical", "linear"], value="spherical", label="Path")
                    interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interp-btn")
                gr.Markdown("**The path A → B**: each frame with P(real) by this epoch's D and, "
                            "when this is not the final epoch, by the final epoch's D (\"final D\")")
                strip_img = gr.Image(label="path", show_label=False, type="pil", interactive=False,
                                     elem_id="strip")
                with gr.Row():
                    path_plot = gr.LinePlot(x="step", y="P(real)", color="judged by", title="P(real) along the path",
                                            y_lim=[0, 1], height=280, elem_id="path-plot")
                    gif_img = gr.Image(label="Animation (A → B → A)", type="filepath", interactive=False,
                                       elem_id="gif")
                    gif_file = gr.File(label="Download the GIF", elem_id="gif-file")

            with gr.Tab("Compare epochs", id="compare"):
                with gr.Row():
                    points_sl = gr.Slider(1, 16, value=8, step=1, label="Latent points")
                    seed_nb = gr.Number(value=0, precision=0, label="Seed of the points", minimum=0)
                    final_cb = gr.Checkbox(label="Score every row with the final epoch's D", value=False)
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                best_md = gr.Markdown(elem_id="best-epoch")
                gr.Markdown("**The same latent points through every epoch on disk** (one row per epoch)")
                compare_img = gr.Image(label="epochs", show_label=False, type="pil", interactive=False,
                                       elem_id="compare-grid")
                with gr.Row():
                    fcd_plot = gr.LinePlot(x="epoch", y="FCD", color="series",
                                           title="FCD per epoch (lower is better; vertical line: best epoch)",
                                           height=260, elem_id="fcd-plot")
                    is_plot = gr.LinePlot(x="epoch", y="classifier score", title="Classifier score (max 10)",
                                          height=260, y_lim=[0, 10])
                with gr.Row():
                    loss_plot = gr.LinePlot(x="epoch", y="loss", color="series", title="Losses", height=260)
                    acc_plot = gr.LinePlot(x="epoch", y="accuracy", color="series", title="D accuracy", height=260,
                                           y_lim=[0, 1])
                epoch_table = gr.Dataframe(label="Per-epoch figures (from metrics.jsonl)", interactive=False,
                                           elem_id="epoch-table")

            with gr.Tab("Train", id="train"):
                with gr.Row():
                    tr_name = gr.Textbox(label="Run name", value=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
                                         elem_id="train-name")
                    tr_preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset")
                    tr_epochs = gr.Number(value=15, precision=0, label="Epochs (Resume: new total)",
                                          elem_id="train-epochs")
                    tr_batch = gr.Number(value=64, precision=0, label="Batch size")
                    tr_max = gr.Number(value=None, precision=0, label="Max images (empty: all)",
                                       elem_id="train-max")
                with gr.Row():
                    tr_data = gr.Textbox(label="Data: a folder of MNIST IDX files or an .npz (empty: Keras' "
                                               "MNIST, downloads once)", placeholder="../shared/data/mnist",
                                         elem_id="train-data", scale=3)
                    tr_precision = gr.Dropdown(
                        list(PRECISIONS), value="float32", label="Precision", elem_id="train-precision",
                        info="bfloat16 trains faster on CPUs with avx512_bf16 (README: Performance); "
                             "onednn_bfloat16 keeps float32 snapshots", scale=1)
                with gr.Row():
                    train_btn = gr.Button("Train", variant="primary", elem_id="train-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                    resume_btn = gr.Button("Resume", elem_id="resume-btn")
                gr.Markdown("Training runs as a separate process; the rest of the app keeps working, "
                            "and each finished epoch appears in the run picker above.")
                tr_status = gr.Markdown(elem_id="train-status")
                tr_bar = gr.HTML()
                with gr.Row():
                    tr_loss = gr.LinePlot(x="step", y="loss", color="series", title="Losses (live)", height=300)
                    with gr.Column():
                        gr.Markdown("**Latest samples**, each with P(real) by that epoch's D")
                        tr_samples = gr.Image(label="latest samples", show_label=False, type="pil",
                                              interactive=False, elem_id="train-samples")
                train_timer = gr.Timer(1.0, active=False)

        # ------------------------------------------------------------------ wiring
        all_sliders = [*dim_sliders, *pca_sliders]
        slider_inputs = [run_dd, epoch_dd, base_state, dims_state, *all_sliders]
        slide_outputs = [image_html, score_lbl, vec_txt]
        point_outputs = [image_html, score_lbl, vec_txt, base_state, dims_state, dims_txt,
                         *all_sliders]
        for i, s in enumerate(all_sliders):
            # .input fires while dragging (not on programmatic updates, so no loops); always_last
            # drops stale moves and guarantees the released position is rendered
            s.input(on_slide, slider_inputs, slide_outputs, trigger_mode="always_last",
                    show_progress="hidden", api_name="slide" if i == 0 else None,
                    api_visibility="public" if i == 0 else "undocumented")

        def point_handler(how):
            def fn(run, epoch, base, dims, pasted="", dims_text="", *vals):
                return on_point(run, epoch, base, dims, how, pasted, dims_text, vals)
            fn.__name__ = f"point_{how}"
            return fn

        common = [run_dd, epoch_dd, base_state, dims_state]
        with_vals = common + [vec_txt, dims_txt, *all_sliders]
        random_btn.click(point_handler("random"), common, point_outputs, api_visibility="undocumented")
        reset_btn.click(point_handler("reset"), common, point_outputs, api_visibility="undocumented")
        nudge_btn.click(point_handler("nudge"), with_vals, point_outputs, api_visibility="undocumented")
        paste_btn.click(point_handler("paste"), common + [vec_txt], point_outputs, api_visibility="undocumented")
        vec_txt.submit(point_handler("paste"), common + [vec_txt], point_outputs, api_visibility="undocumented")
        dims_btn.click(point_handler("dims"), with_vals, point_outputs, api_visibility="undocumented")
        dims_txt.submit(point_handler("dims"), with_vals, point_outputs, api_visibility="undocumented")

        epoch_outputs = [facts_md, samples_img, quality_md, hist_plot, *point_outputs]

        def on_epoch_change(run, epoch, base, dims):
            try:  # first: it loads the snapshot, whose D then scores the samples
                pt = on_point(run, epoch, base, dims, "snapshot")
            except gr.Error as exc:
                if run and epoch not in (None, ""):
                    gr.Warning(exc.message)
                pt = [f"<p>{exc.message}</p>", None, "", base, dims, "",
                      *[gr.skip()] * (N_DIM_SLIDERS + N_PCA_SLIDERS)]
            facts, samples, q, hist = on_snapshot_view(run, epoch)
            return [facts, samples, q, hist, *pt]

        # .input (a person's choice), not .change: handlers that set the epoch themselves (run
        # change, refresh, page load) render the views too, so no view is rendered twice and no
        # late duplicate overwrites a newer choice
        epoch_dd.input(on_epoch_change, [run_dd, epoch_dd, base_state, dims_state], epoch_outputs,
                       api_visibility="undocumented")

        def on_run_change(run, base, dims):
            ep = default_epoch(run)
            return [gr.update(choices=epoch_choices(run), value=ep), *on_epoch_change(run, ep, base, dims)]

        run_dd.input(on_run_change, [run_dd, base_state, dims_state], [epoch_dd, *epoch_outputs],
                     api_visibility="undocumented")

        def on_refresh(run, epoch):
            runs = run_choices()
            names = [v for _, v in runs]
            run_v = run if run in names else preferred_run(names)
            eps = epoch_choices(run_v)
            ep_vals = [v for _, v in eps]
            ep_v = epoch if epoch in ep_vals else default_epoch(run_v)
            return gr.update(choices=runs, value=run_v), gr.update(choices=eps, value=ep_v)

        def refresh_views(run, epoch, base, dims):
            """Dropdowns as on disk now; the views too when the chosen run or epoch changed."""
            run_up, ep_up = on_refresh(run, epoch)
            if run_up["value"] != run or ep_up["value"] != epoch:
                return [run_up, ep_up, *on_epoch_change(run_up["value"], ep_up["value"], base, dims)]
            if not run_up["value"]:
                return [run_up, ep_up, *[gr.skip()] * len(epoch_outputs)]
            loadable_final(run_up["value"])  # a new epoch may have become the final one
            facts = on_snapshot_view(run_up["value"], None)[0]  # epochs done / on disk, status
            return [run_up, ep_up, facts, *[gr.skip()] * (len(epoch_outputs) - 1)]

        refresh_inputs = [run_dd, epoch_dd, base_state, dims_state]
        refresh_btn.click(refresh_views, refresh_inputs, [run_dd, epoch_dd, *epoch_outputs],
                          api_visibility="undocumented")

        def on_tick(run, epoch, base, dims, seen):
            """New runs and epochs appear without a restart; per session, only when they change."""
            sig = json.dumps([run_choices(), epoch_choices(run)], default=str)
            if sig == seen:
                return [gr.skip(), gr.skip(), *[gr.skip()] * len(epoch_outputs), seen]
            return [*refresh_views(run, epoch, base, dims), sig]

        refresh_timer.tick(on_tick, [*refresh_inputs, seen_state], [run_dd, epoch_dd, *epoch_outputs, seen_state],
                           show_progress="hidden", api_visibility="undocumented")

        def on_load(run, epoch, base, dims):
            # the run list as it is now (runs may have appeared since the server started)
            run_up, ep_up = on_refresh(run, epoch)
            run, epoch = run_up["value"], ep_up["value"]
            return [run_up, ep_up, *on_epoch_change(run, epoch, base, dims)]

        app.load(on_load, [run_dd, epoch_dd, base_state, dims_state], [run_dd, epoch_dd, *epoch_outputs],
                 api_visibility="undocumented")

        a_cur.click(_err(lambda r, e, c: endpoint_text(r, e, "current", c)), [run_dd, epoch_dd, vec_txt], a_txt,
                    api_visibility="undocumented")
        b_cur.click(_err(lambda r, e, c: endpoint_text(r, e, "current", c)), [run_dd, epoch_dd, vec_txt], b_txt,
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
                        [tr_name, tr_preset, tr_epochs, tr_batch, tr_max, tr_data, tr_precision],
                        [tr_status, train_timer], api_name="train")
        resume_btn.click(lambda n, e: on_train(n, None, e, None, None, None, None, resume=True),
                         [tr_name, tr_epochs], [tr_status, train_timer], api_name="resume")
        stop_btn.click(on_stop, tr_name, tr_status, api_name="stop")
        train_timer.tick(on_poll, tr_name, [tr_status, tr_bar, tr_loss, tr_samples, train_timer],
                         show_progress="hidden", api_visibility="undocumented")

        def on_load_train():
            """A page opened (or reloaded) while a run trains from this app watches that run."""
            running = trainer.running()
            if running:
                return gr.update(value=running[-1]), gr.update(active=True)
            return gr.skip(), gr.skip()

        app.load(on_load_train, None, [tr_name, train_timer], api_visibility="undocumented")

        # ------------------------------------------------------------------ API-only endpoints
        @_err
        def list_runs() -> str:
            """All runs on disk with their status and epochs (JSON)."""
            out = []
            for r in registry.list_runs():
                out.append({"name": r.name, "status": r.status, "broken": r.broken,
                             "latent_dim": r.info.get("latent_dim"),
                             "epochs": [{"epoch": e.epoch, "broken": e.broken,
                                         "fcd": figures.num(((e.summary or {}).get("quality") or {}).get("fcd"))
                                         if isinstance((e.summary or {}).get("quality"), dict) else None}
                                        for e in r.epochs]})
            return json.dumps(out)

        @_err
        def generate(run: str, epoch: int, vector: str) -> tuple[str, float]:
            """Render one latent vector (text, comma-separated) -> (PNG data URI, P(real) by that epoch's D)."""
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
