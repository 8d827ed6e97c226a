"""--resume never deletes what it cannot replace (issue 9, item 1).

The shipped demo run (runs/demo) keeps a few epochs (1, 3, 7 and its last) and no checkpoint/. Resuming a copy
of it used to delete every epoch folder and empty metrics.jsonl, then train from scratch. The
same shape (pruned epochs, no checkpoint/) is made here from the session's small real run, whose
epoch of 512 digits trains in a few seconds (an epoch of the demo's 10k digits takes 20 s or
more on an AVX2 CPU); the demo itself is resumed through the web in test_web_training.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests._demo import DEMO, DEMO_FINAL, epoch_dir
from tests.test_training import assert_whole_epoch, run_training


def _tree_hash(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def pruned_run(trained_runs, tmp_path) -> Path:
    """The small real run shaped like the demo: epochs 1 and 3 on disk, no checkpoint/."""
    run = tmp_path / "tiny"
    shutil.copytree(trained_runs / "tiny", run)
    shutil.rmtree(run / "checkpoint", ignore_errors=True)
    shutil.rmtree(run / "epochs" / "epoch-0002")
    return run


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    if not epoch_dir().is_dir():
        pytest.skip("runs/demo is not in this checkout")
    dst = tmp_path / "demo"
    shutil.copytree(DEMO, dst)
    return dst


def test_resume_without_checkpoint_continues_from_the_last_epoch_and_keeps_everything(pruned_run):
    run = pruned_run
    assert not (run / "checkpoint").exists()
    before = _tree_hash(run / "epochs")
    lines_before = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)

    proc = run_training(
        "--run-dir", str(run), "--resume", "--epochs", "4", "--quality-samples", "100", timeout=600
    )

    # every epoch folder that was there is still there, byte for byte
    after = _tree_hash(run / "epochs")
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["epoch-0001", "epoch-0003", "epoch-0004"]
    # every original metrics line is still there, unchanged and in order, then epoch 4's
    lines_after = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    assert lines_after[: len(lines_before)] == lines_before
    new = [json.loads(l) for l in lines_after[len(lines_before) :]]
    assert new and {r["epoch"] for r in new} == {4}
    assert [r["kind"] for r in new][-1] == "epoch"
    # epoch 4 is whole and continues the count of steps and time
    assert_whole_epoch(run / "epochs" / "epoch-0004")
    s3 = json.loads((run / "epochs/epoch-0003/summary.json").read_text())
    s4 = json.loads((run / "epochs/epoch-0004/summary.json").read_text())
    assert s4["global_step"] == s3["global_step"] + s4["steps"]
    assert s4["elapsed_s"] > s3["elapsed_s"]
    assert s4["quality"]["n_samples"] == 100
    # run.json says how it was resumed, and the user was told
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_done"] == 4
    assert len(info["resumes"]) == 1
    assert info["resumes"][0]["from_epoch"] == 3
    assert info["resumes"][0]["optimizer_state"].startswith("fresh")
    said = [l for l in proc.stderr.splitlines() if "epoch-0003" in l and "optimizer" in l]
    assert len(said) == 1, proc.stderr[-2000:]
    # the default preset's clusters (fixed layers of G and D) came back with epoch 3's weights
    # (a resume does not look for them again: models/presets.py `fitted`)
    from tests.test_training import load_model

    for net in ("generator", "discriminator"):
        k3, k4 = (
            load_model(run / f"epochs/epoch-000{e}/{net}.keras").get_layer("cluster_logits").get_weights()[0]
            for e in (3, 4)
        )
        assert np.array_equal(k3, k4) and np.abs(k4).max() > 0, net


def test_resume_from_a_corrupt_last_epoch_refuses_and_changes_nothing(demo_copy):
    run = demo_copy
    gen = run / "epochs" / epoch_dir().name / "generator.keras"
    gen.write_bytes(gen.read_bytes()[: gen.stat().st_size // 2])  # a torn copy
    before = _tree_hash(run)
    names_before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))

    proc = run_training("--run-dir", str(run), "--resume", "--epochs", str(DEMO_FINAL + 1), check=False)

    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert epoch_dir().name in errors[0] and "generator.keras" in errors[0]
    assert _tree_hash(run) == before
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == names_before


def test_metrics_lines_of_an_epoch_are_replaced_only_when_that_epoch_is_written(tmp_path):
    """A killed writer's lines of epochs 2 and 3 stay until the re-trained epoch replaces them."""
    from training.runfolder import MetricsLog, read_jsonl

    path = tmp_path / "metrics.jsonl"
    old = [
        {"kind": "step", "epoch": 1, "step": 1},
        {"kind": "epoch", "epoch": 1},
        {"kind": "step", "epoch": 2, "step": 2},
        {"kind": "epoch", "epoch": 2},
        {"kind": "step", "epoch": 3, "step": 3},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in old) + '{"kind": "st')  # torn by a kill
    log = MetricsLog(path)
    log.mark()
    log.append({"kind": "step", "epoch": 2, "step": 20})
    assert read_jsonl(path)[:5] == old  # nothing dropped while epoch 2 is being re-trained
    log.append_epoch({"kind": "epoch", "epoch": 2, "new": True})
    rows = read_jsonl(path)
    assert rows == [
        old[0],
        old[1],
        {"kind": "step", "epoch": 2, "step": 20},
        {"kind": "epoch", "epoch": 2, "new": True},
        old[4],
    ]  # epoch 3's line kept
    log.append({"kind": "step", "epoch": 3, "step": 30})
    log.append_epoch({"kind": "epoch", "epoch": 3})
    assert [(r["epoch"], r.get("step")) for r in read_jsonl(path)] == [
        (1, 1),
        (1, None),
        (2, 20),
        (2, None),
        (3, 30),
        (3, None),
    ]


def test_a_writer_killed_between_its_two_renames_loses_no_epoch(tmp_path):
    """epochs/.epoch-0002.old-PID with no epoch-0002 beside it is the only copy: it goes back."""
    from training.runfolder import clean_temporaries, list_epochs

    epochs = tmp_path / "epochs"
    (epochs / ".epoch-0002.old-7").mkdir(parents=True)
    (epochs / ".epoch-0002.old-7" / "summary.json").write_text("{}")
    (epochs / ".epoch-0002.tmp-7").mkdir()  # maybe partial: never trusted
    (epochs / "epoch-0001").mkdir()
    (epochs / ".epoch-0001.old-7").mkdir()  # its replacement landed: a leftover
    clean_temporaries(tmp_path)
    assert list_epochs(tmp_path) == [1, 2]
    assert (epochs / "epoch-0002" / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in epochs.iterdir()) == ["epoch-0001", "epoch-0002"]
