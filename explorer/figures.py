"""Per-epoch figures of a run for the Compare view: one row per epoch the run ever finished.

metrics.jsonl holds every epoch's summary, also of epochs whose snapshot folders were pruned
from disk (a demo run may keep epochs 1, 5 and 15 of 15); summary.json files fill in epochs
missing from metrics.jsonl (a truncated or missing log). Plots use every epoch; the image grid
uses the epochs on disk. The best epoch is the one with the lowest FCD.
"""

from __future__ import annotations

import math

from explorer.registry import RunInfo
from training.runfolder import as_epoch

FIELDS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake")
QUALITY = (
    ("fcd", "fcd"),
    ("classifier_score", "classifier_score"),
    ("confident_share", "confident_share"),
    ("modes", "mode_coverage"),
    ("memorised", "memorised_share"),
)


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def epoch_rows(info: RunInfo, metrics: list[dict]) -> list[dict]:
    """Rows sorted by epoch: figures, and where the snapshot is (on disk / broken / pruned)."""
    by_epoch: dict[int, dict] = {}
    for r in metrics:
        if r.get("kind") == "epoch":
            e = as_epoch(r.get("epoch"))  # Infinity, NaN, 1.5, "3", true: not an epoch
            if e is not None:
                by_epoch[e] = r  # a later line for the same epoch wins (resume)
    disk = {e.epoch: e for e in info.epochs}
    for e in info.epochs:
        if e.epoch not in by_epoch and isinstance(e.summary, dict):
            by_epoch[e.epoch] = e.summary
    rows = []
    for ep in sorted(by_epoch):
        s = by_epoch[ep]
        q = s.get("quality") if isinstance(s.get("quality"), dict) else {}
        row = {
            "epoch": ep,
            **{k: num(s.get(k)) for k in FIELDS},
            **{k: num(q.get(src)) for k, src in QUALITY},
        }
        if info.facts is not None and info.num_classes:  # conditional: the share drawn as the digit asked
            row["drawn_as_asked"] = num(q.get("conditional_accuracy"))
        e = disk.get(ep)
        row["snapshot"] = (
            "not kept on disk" if e is None else f"broken: {e.broken}" if e.broken else "on disk"
        )
        rows.append(row)
    return rows


def best_epoch(rows: list[dict], on_disk_only: bool = False) -> tuple[int, float] | None:
    """(epoch, FCD) with the lowest FCD, or None when no epoch was scored."""
    scored = [
        (r["epoch"], r["fcd"])
        for r in rows
        if r.get("fcd") is not None and (not on_disk_only or r["snapshot"] == "on disk")
    ]
    return min(scored, key=lambda t: (t[1], t[0])) if scored else None


def fcd_floor(metrics: list[dict], info: RunInfo) -> float | None:
    """FCD of real digits against real digits (the evaluator's noise floor), when recorded."""
    sources = [r for r in metrics if r.get("kind") == "epoch"] + [e.summary or {} for e in info.epochs]
    for s in reversed(sources):
        q = s.get("quality") if isinstance(s.get("quality"), dict) else {}
        if num(q.get("fcd_floor")) is not None:
            return num(q["fcd_floor"])
    return None
