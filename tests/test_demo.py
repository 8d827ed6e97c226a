"""The bundled demo run: what a fresh clone opens on must be whole, small, honest and readable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_training import ROOT, assert_whole_epoch, load_model

DEMO = ROOT / "runs" / "demo"


def _info() -> dict:
    return json.loads((DEMO / "run.json").read_text())


def test_demo_is_whole_and_small():
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 25_000_000, f"the demo run is {size / 1e6:.1f} MB; keep it under 25 MB"
    info = _info()
    assert info["status"] == "completed"
    assert info["command"].startswith("python -m training ")
    kept = info["demo"]["kept_epochs"]
    on_disk = sorted(int(p.name.split("-")[1]) for p in (DEMO / "epochs").iterdir())
    assert on_disk == kept and len(kept) >= 3 and kept[-1] == info["epochs_done"]
    for e in kept:
        assert_whole_epoch(DEMO / "epochs" / f"epoch-{e:04d}")
    # metrics.jsonl holds every epoch, including the pruned ones (the Compare curves use them)
    logged = [json.loads(l) for l in (DEMO / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["epoch"] for r in logged if r["kind"] == "epoch") == list(
        range(1, info["epochs_done"] + 1)
    )


def test_demo_facts_match_its_preset_and_models():
    from models import get_preset

    info = _info()
    preset = get_preset(info["preset"])
    assert info["latent_dim"] == preset.latent_dim
    assert tuple(info["pixel_range"]) == preset.pixel_range
    final = DEMO / "epochs" / f"epoch-{info['epochs_done']:04d}"
    g = load_model(final / "generator.keras")
    d = load_model(final / "discriminator.keras")
    assert g.input_shape == (None, info["latent_dim"])
    z = np.random.default_rng(0).standard_normal((32, info["latent_dim"])).astype("float32")
    x = np.asarray(g(z, training=False))
    assert x.shape == (32, 28, 28, 1)
    lo, hi = info["pixel_range"]
    assert lo - 1e-6 <= x.min() and x.max() <= hi + 1e-6
    assert np.asarray(d(x, training=False)).shape == (32, 1)


def test_demo_final_epoch_draws_readable_digits_and_its_recorded_fcd_reproduces():
    """Re-score the final generator with the shipped evaluator: same figure as recorded, and
    below the readable threshold, while the first epoch is far above it."""
    from training.quality import READABLE_FCD, score_generator

    info = _info()
    kept = info["demo"]["kept_epochs"]
    fcd = {}
    for e in (kept[0], kept[-1]):
        folder = DEMO / "epochs" / f"epoch-{e:04d}"
        recorded = json.loads((folder / "summary.json").read_text())["quality"]
        q = score_generator(
            load_model(folder / "generator.keras"),
            info["latent_dim"],
            info["pixel_range"],
            n=recorded["n_samples"],
        )
        assert q["fcd"] == pytest.approx(recorded["fcd"], rel=0.02, abs=0.5)
        fcd[e] = q
    first, last = fcd[kept[0]], fcd[kept[-1]]
    assert last["fcd"] < READABLE_FCD < first["fcd"]
    assert last["mode_coverage"] == 10 and last["classifier_score"] > 6
