"""Markdown and DataFrames the views show, built from run.json / summary / progress dicts.

Pure functions (no Gradio, no disk): whatever the dicts hold (missing keys, strings where
numbers belong, NaN) they return text and frames, never raise.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from explorer.figures import num
from explorer.registry import EpochInfo, RunInfo


def fmt(v, spec: str = ".3f", missing: str = "n/a") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return missing
    return format(f, spec) if np.isfinite(f) else missing


def frame(rows: list[dict], columns: list[str], text: tuple[str, ...] = ("series",)) -> pd.DataFrame | None:
    """A plot's DataFrame with fixed dtypes, or None when there is nothing to plot yet: an empty
    frame sets the plot up for good with category axes and no colour series (no lines ever)."""
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({c: (str if c in text else float) for c in columns})


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


# ----------------------------------------------------------------------------- snapshot view
def run_facts(info: RunInfo) -> str:
    """The run's facts (run.json) as markdown."""
    i = _dict(info.info)
    cfg, ds, vs = _dict(i.get("config")), _dict(i.get("dataset")), _dict(i.get("versions"))
    on_disk = [e.epoch for e in info.epochs]
    done = i.get("epochs_done")
    pruned = ""
    if isinstance(done, int) and on_disk and len(on_disk) < done:
        pruned = " (the others were not kept; their figures are in the Compare tab)"
    d_out = "logits" if i.get("d_outputs_logits", True) else "probabilities"
    facts = [
        f"### {info.name}  ·  {info.status}",
        f"- preset **{i.get('preset', '?')}**, latent {i.get('latent_dim', '?')}, "
        f"pixels {i.get('pixel_range', '?')}, D outputs {d_out}",
        f"- data: {ds.get('source', '?')} ({ds.get('n_images', '?')} images"
        + (f", {ds['preprocessing']}" if isinstance(ds.get("preprocessing"), str) else "")
        + ")",
        f"- images {'x'.join(map(str, i.get('image_shape') or [28, 28, 1]))}"
        + (
            f"; self-conditioned on {i['clusters']} clusters of them (z[0] picks one)"
            if i.get("clusters")
            else ""
        ),
        f"- epochs done {done if done is not None else '?'} of {cfg.get('epochs', '?')}, "
        f"batch {cfg.get('batch_size', '?')}, lr G {cfg.get('lr_g', '?')} / D {cfg.get('lr_d', '?')}, "
        f"seed {cfg.get('seed', '?')}, {cfg.get('precision', '')}",
        f"- snapshots on disk: epochs {', '.join(map(str, on_disk)) or 'none yet'}{pruned}",
        f"- command: `{i.get('command', '?')}`",
        f"- created {i.get('created', '?')}, TF {vs.get('tensorflow', '?')}, Keras {vs.get('keras', '?')}",
    ]
    if i.get("conditional") is True:
        facts.insert(
            2, f"- **conditional** on {i.get('num_classes', '?')} digit labels: samples one row per digit"
        )
    skipped = _dict(ds.get("skipped")).get("count")
    if isinstance(skipped, int) and skipped:
        facts.append(f"- {skipped} unreadable image file(s) skipped (run.json lists them)")
    if isinstance(i.get("quality_note"), str):
        facts.append(f"- quality not scored: {i['quality_note']}")
    if info.broken:
        facts.append(f"- **broken: {info.broken}**")
    return "\n".join(facts)


def _evaluator(quality: dict):
    """The evaluator that scored these figures (models/evaluator.py): its name in the summary,
    MNIST's when none is named (runs scored before evaluators had names)."""
    from models.evaluator import EVALUATORS

    name = _dict(quality).get("evaluator")
    return EVALUATORS.get(name if isinstance(name, str) else "mnist", EVALUATORS["mnist"])


def digit_histogram(quality: dict) -> pd.DataFrame | None:
    """The classifier's class shares (ten numbers) as a bar plot's frame, or None; the classes
    are the scoring evaluator's (digits 0-9, or Fashion-MNIST's garments)."""
    hist = _dict(quality).get("digit_histogram")
    if not isinstance(hist, list) or len(hist) != 10:
        return None
    shares = [num(h) if not isinstance(h, bool) and num(h) is not None else 0.0 for h in hist]
    return pd.DataFrame({"digit": list(_evaluator(quality).classes), "share": shares})


def epoch_quality(e: EpochInfo, samples_shown: bool, note: str = "") -> str:
    """One epoch's figures (summary.json) as markdown."""
    s = _dict(e.summary)
    q = _dict(s.get("quality"))
    lines = [f"### Epoch {e.epoch}"]
    if e.broken:
        lines.append(f"**Epoch {e.epoch} is broken: {e.broken}**")
    lines += [
        f"- d_loss {fmt(s.get('d_loss'))}, g_loss {fmt(s.get('g_loss'))}, D accuracy real "
        f"{fmt(s.get('d_acc_real'), '.2f')} / fake {fmt(s.get('d_acc_fake'), '.2f')}",
        f"- {fmt(s.get('images_per_s'), '.0f')} images/s, epoch {fmt(s.get('epoch_time_s'), '.1f')} s, "
        f"total {fmt(s.get('elapsed_s'), '.0f')} s",
    ]
    if q and any(v is not None for v in q.values()):
        share = num(q.get("confident_share"))
        ev = _evaluator(q)
        real, kinds = ("digits", "digits") if ev.name == "mnist" else (ev.judges, "classes")
        lines += [
            f"- **FCD {fmt(q.get('fcd'), '.2f')}** (real {real}: {fmt(q.get('fcd_floor'), '.2f')}; "
            "lower is better)",
            f"- classifier score {fmt(q.get('classifier_score'), '.2f')} / 10, confident "
            f"{fmt(share * 100 if share is not None else None, '.0f')}%, "
            f"{kinds} covered {fmt(q.get('mode_coverage'), '.0f')}/10",
        ]
        if ev.name != "mnist":
            lines.append(f"- scored by the project's {ev.judges} evaluator (`{ev.name}`)")
        asked = num(q.get("conditional_accuracy"))
        if asked is not None:
            lines.append(f"- **{asked * 100:.1f}%** of the samples read as the digit asked for")
    elif isinstance(s.get("quality_note"), str):
        lines.append(f"- quality not scored: {s['quality_note']}")
    else:
        lines.append("- no quality figures for this epoch")
    if samples_shown and not note and not e.broken:
        lines.append(f"- the samples' captions: P(real) by epoch {e.epoch}'s D")
    if note:
        lines.append(f"- {note}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- compare view
def compare_frames(rows: list[dict], best_all) -> dict[str, pd.DataFrame | None]:
    """The Compare plots' frames (loss, acc, fcd with the best-epoch marker, classifier score)."""
    loss = frame(
        [
            {"epoch": r["epoch"], "loss": r[k], "series": k}
            for r in rows
            for k in ("d_loss", "g_loss")
            if r.get(k) is not None
        ],
        ["epoch", "loss", "series"],
    )
    acc = frame(
        [
            {"epoch": r["epoch"], "accuracy": r[k], "series": k}
            for r in rows
            for k in ("d_acc_real", "d_acc_fake")
            if r.get(k) is not None
        ],
        ["epoch", "accuracy", "series"],
    )
    fcd_pts = [
        {"epoch": r["epoch"], "FCD": r["fcd"], "series": "FCD"} for r in rows if r.get("fcd") is not None
    ]
    if best_all and fcd_pts:  # the best-epoch marker: a vertical line at that epoch
        lo, top = min(p["FCD"] for p in fcd_pts), max(p["FCD"] for p in fcd_pts)
        marker = f"best: epoch {best_all[0]}"
        fcd_pts += [{"epoch": best_all[0], "FCD": v, "series": marker} for v in (lo, top)]
    score = frame(
        [
            {"epoch": r["epoch"], "classifier score": r["classifier_score"]}
            for r in rows
            if r.get("classifier_score") is not None
        ],
        ["epoch", "classifier score"],
    )
    memo = frame(
        [
            {"epoch": r["epoch"], "memorised %": 100 * r["memorised"]}
            for r in rows
            if r.get("memorised") is not None
        ],
        ["epoch", "memorised %"],
    )
    fcd = frame(fcd_pts, ["epoch", "FCD", "series"])
    return {"loss": loss, "acc": acc, "fcd": fcd, "score": score, "memorised": memo}


def compare_text(
    rows: list[dict], epochs: list[int], best_all, best_disk, floor, judge: str, skipped=(), note=None
) -> str:
    """The Compare view's summary: best epoch by FCD, what the grid and plots cover."""
    floor_txt = f"; real digits score about {floor:.1f}" if floor is not None else ""
    parts = []
    if best_all:
        parts.append(
            f"**Best epoch by FCD: {best_all[0]}** (FCD {best_all[1]:.2f}; lower is better{floor_txt})."
        )
        if best_disk and best_disk[0] != best_all[0]:
            parts.append(
                f"Epoch {best_all[0]} was not kept on disk; the best snapshot on disk is "
                f"**epoch {best_disk[0]}** (FCD {best_disk[1]:.2f}), framed in blue below."
            )
        elif best_disk:
            parts.append("Its row is framed in blue below.")
    elif isinstance(note, str):
        parts.append(f"Quality not scored: {html.escape(note)}.")
    else:
        parts.append("No quality figures in this run (trained with --quality-samples 0).")
    parts.append(
        f"Plots cover all {len(rows)} epochs in metrics.jsonl; the grid shows the "
        f"{len(epochs)} snapshot(s) on disk (epochs {', '.join(map(str, epochs))}). "
        f"Scores under the images are P(real) by {judge}."
    )
    if skipped:
        left = "; ".join(f"epoch {e} ({html.escape(str(r))[:160]})" for e, r in skipped)
        parts.append(f"Left out: {left}.")
    return " ".join(parts)


EPOCH_COLUMNS = {
    "epoch": "Epoch",
    "best": "Best",
    "fcd": "FCD (lower: better)",
    "drawn_as_asked": "Drawn as the digit asked (share)",
    "classifier_score": "Classifier score (of 10)",
    "confident_share": "Confident share",
    "modes": "Digits covered (of 10)",
    "memorised": "Memorised share",
    "d_loss": "D loss",
    "g_loss": "G loss",
    "d_acc_real": "D accuracy on real",
    "d_acc_fake": "D accuracy on fake",
    "snapshot": "Snapshot",
}


def epoch_table(rows: list[dict], best_all) -> pd.DataFrame:
    """The per-epoch table: readable column names, quality first, and the best epoch's row on
    top (then every epoch in order), so the best is in view without scrolling."""
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table.insert(1, "best", ["best FCD" if best_all and e == best_all[0] else "" for e in table["epoch"]])
    table = table.round(4)
    if best_all:
        top = table[table["epoch"] == best_all[0]]
        table = pd.concat([top, table[table["epoch"] != best_all[0]]], ignore_index=True)
    known = [c for c in EPOCH_COLUMNS if c in table.columns]
    table = table[known + [c for c in table.columns if c not in EPOCH_COLUMNS]]
    return table.rename(columns=EPOCH_COLUMNS)


# ----------------------------------------------------------------------------- train view
def progress_lines(prog) -> tuple[list[str], float]:
    """progress.json -> (markdown lines, percent of the epoch done, 0-100)."""
    prog = _dict(prog)
    if not prog:
        return [], 0.0
    lines, pct = [], 0.0
    step, per = num(prog.get("step_in_epoch")), num(prog.get("steps_per_epoch"))
    if per and step is not None:
        pct = max(0.0, min(100.0, 100.0 * step / per))
        lines.append(
            f"epoch {prog.get('epoch', '?')}/{prog.get('epochs', '?')} · step "
            f"{prog.get('step_in_epoch')}/{prog.get('steps_per_epoch')} ({pct:.0f}%) · "
            f"{fmt(prog.get('images_per_s'), '.0f')} img/s · d_loss {fmt(prog.get('d_loss'))} · "
            f"g_loss {fmt(prog.get('g_loss'))}"
        )
    lines.append(f"status: {prog.get('status')}" + (f" · {prog['error']}" if prog.get("error") else ""))
    return lines, pct


# The Train tab's buttons by phase: (Train, Stop, Resume) enabled
PHASE_BUTTONS = {
    "starting": (False, True, False),
    "training": (False, True, False),
    "stopping": (False, False, False),
    "training elsewhere": (False, False, False),
}
IDLE_BUTTONS = (True, False, True)


def train_phase(state: str, stopping: bool, prog) -> str:
    """What a run of the Train tab is doing, in a word: starting (the process loads TensorFlow,
    about 20 s), training, stopping, stopped, completed, failed, training elsewhere, or not
    started; from the process state (explorer.trainer) and the run's progress.json."""
    status = _dict(prog).get("status")
    status = status if isinstance(status, str) else None
    if state.startswith("running (pid"):
        return "training elsewhere"
    if state == "running":
        return "stopping" if stopping else "training" if status == "training" else "starting"
    if state.startswith("exited") and not state.endswith(" 0"):
        return "failed"
    if status in ("stopped", "completed", "failed"):
        return status
    return "stopped" if state.startswith("exited") else "not started"


def train_status(
    name: str, state: str, last_log: str, prog, latest_epoch=None, phase=None
) -> tuple[str, float]:
    """The Train tab's status markdown and the progress bar's percent."""
    phase = phase or train_phase(state, False, prog)
    lines = [f"**{name}**: {phase} · process {state}"]
    more, pct = progress_lines(prog)
    lines += more
    if last_log and state.startswith("exited") and not state.endswith(" 0"):
        lines.append(f"`{last_log[:300]}`")
    if latest_epoch is not None:
        lines.append(f"latest samples: epoch {latest_epoch}, captions P(real) by that epoch's D")
    return "\n\n".join(lines), pct


def progress_bar(pct: float) -> str:
    return (
        f'<div style="background:#eee;border-radius:4px;height:14px;width:100%">'
        f'<div id="train-progress" style="background:#4a7;height:14px;border-radius:4px;'
        f'width:{pct:.1f}%"></div></div>'
    )


def step_losses(metrics: list[dict], last: int = 2000) -> pd.DataFrame | None:
    """The live loss plot's frame: d_loss and g_loss per logged step (the last rows only)."""
    rows = []
    for r in metrics:
        if not isinstance(r, dict) or r.get("kind") != "step":
            continue
        vals = [None if isinstance(r.get(k), bool) else num(r.get(k)) for k in ("step", "d_loss", "g_loss")]
        if None not in vals:
            step = int(vals[0])  # a whole step: the axis reads 10, not 10.000000
            rows += [
                {"step": step, "loss": vals[1], "series": "d_loss"},
                {"step": step, "loss": vals[2], "series": "g_loss"},
            ]
    return frame(rows[-last:], ["step", "loss", "series"])
