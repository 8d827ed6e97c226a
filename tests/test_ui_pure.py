"""The explorer's pure builders (explorer.tables, explorer.figures) and training process
control (explorer.trainer), on the bundled demo run's real files and on damaged values."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from explorer import facts, figures, tables
from explorer.registry import EpochInfo, ExplorerError, RunInfo, RunRegistry
from explorer.trainer import Trainer, check_data, check_run_name, last_log_line, new_run_args, resume_args
from tests._demo import DEMO_FINAL, DEMO_KEPT, DEMO_KEPT_TEXT, epoch_dir
from tests.conftest import ROOT

DEMO = ROOT / "runs" / "demo"


def _epoch(n, path, summary, broken=None) -> EpochInfo:
    """An EpochInfo as the registry makes it: summary.json validated once (explorer.facts);
    values it cannot take mark the epoch broken, the rest arrive cleaned."""
    try:
        return EpochInfo(n, path, broken=broken, facts=facts.epoch_summary(summary))
    except facts.FactsError as exc:
        return EpochInfo(n, path, broken=broken or str(exc))


BAD_VALUES = [None, "abc", "1e999", float("nan"), float("inf"), [], {}, True, -1]


@pytest.fixture(scope="module")
def demo() -> tuple[RunInfo, list[dict]]:
    reg = RunRegistry([ROOT / "runs"])
    return reg.get("demo"), reg.metrics("demo")


def _summary() -> dict:
    return json.loads((epoch_dir() / "summary.json").read_text())


def test_run_facts_of_the_demo_run(demo):
    info, _ = demo
    md = tables.run_facts(info)
    assert md.startswith("### demo  ·  completed")
    assert "preset **scgan**, latent 64" in md and "10000 images" in md
    assert "self-conditioned on 100 clusters of them (z[0] picks one)" in md
    assert f"epochs done {DEMO_FINAL} of {DEMO_FINAL}" in md
    assert f"epochs {DEMO_KEPT_TEXT} (the others were not kept" in md
    assert "TF 2.21.0" in md


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_run_facts_never_raise_on_bad_values(bad, tmp_path):
    info = {
        "preset": bad,
        "latent_dim": bad,
        "config": bad,
        "dataset": {"n_images": bad},
        "versions": bad,
        "epochs_done": bad,
        "command": bad,
        "d_outputs_logits": bad,
    }
    md = tables.run_facts(
        RunInfo("x", tmp_path, info, broken="run.json says so", epochs=[EpochInfo(1, tmp_path)])
    )
    assert md.startswith("### x  ·  broken") and "**broken: run.json says so**" in md
    assert "?" in tables.run_facts(RunInfo("empty", tmp_path))


def test_epoch_quality_and_histogram_of_a_real_summary(tmp_path):
    s = _summary()
    md = tables.epoch_quality(_epoch(DEMO_FINAL, tmp_path, s), samples_shown=True)
    assert md.startswith(f"### Epoch {DEMO_FINAL}")
    assert f"**FCD {s['quality']['fcd']:.2f}**" in md and f"d_loss {s['d_loss']:.3f}" in md
    assert f"the samples' captions: P(real) by epoch {DEMO_FINAL}'s D" in md
    hist = tables.digit_histogram(s["quality"])
    assert list(hist["digit"]) == [str(d) for d in range(10)]
    assert hist["share"].sum() == pytest.approx(sum(s["quality"]["digit_histogram"]))


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_epoch_quality_never_raises_on_bad_values(bad, tmp_path):
    s = {k: bad for k in ("d_loss", "g_loss", "d_acc_real", "images_per_s", "elapsed_s")}
    s["quality"] = {
        "fcd": bad,
        "confident_share": bad,
        "classifier_score": bad,
        "digit_histogram": [bad] * 10,
    }
    e = _epoch(2, tmp_path, s, broken="generator.keras missing")
    md = tables.epoch_quality(e, False, "a note")
    assert "**Epoch 2 is broken: generator.keras missing**" in md and "- a note" in md
    if not isinstance(bad, (int, float)) or not math.isfinite(bad):
        assert "d_loss n/a" in md
    hist = tables.digit_histogram(s["quality"])
    assert hist is not None and len(hist) == 10
    assert tables.digit_histogram({"digit_histogram": bad}) is None
    no_q = _epoch(3, tmp_path, {"quality": bad})
    md = tables.epoch_quality(no_q, True)
    assert "no quality figures" in md or f"**Epoch 3 is broken: {no_q.broken}**" in md


def test_compare_figures_of_the_demo_run(demo):
    info, metrics = demo
    rows = figures.epoch_rows(info, metrics)
    assert [r["epoch"] for r in rows] == list(range(1, DEMO_FINAL + 1))
    best = figures.best_epoch(rows)
    best_disk = figures.best_epoch(rows, on_disk_only=True)
    frames = tables.compare_frames(rows, best)
    assert set(frames["loss"]["series"]) == {"d_loss", "g_loss"} and len(frames["loss"]) == 2 * DEMO_FINAL
    assert f"best: epoch {best[0]}" in set(frames["fcd"]["series"])
    text = tables.compare_text(rows, DEMO_KEPT, best, best_disk, figures.fcd_floor(metrics, info), "X")
    assert f"**Best epoch by FCD: {best[0]}**" in text and f"epochs {DEMO_KEPT_TEXT}" in text
    assert "real digits score about" in text and "P(real) by X." in text
    table = tables.epoch_table(rows, best)
    assert list(table.columns[:3]) == ["Epoch", "Best", "FCD (lower: better)"]
    assert (table["Best"] == "best FCD").sum() == 1 and table["Best"][0] == "best FCD"  # on top
    assert table["Epoch"][0] == best[0] and sorted(table["Epoch"]) == list(range(1, DEMO_FINAL + 1))
    assert list(table["Epoch"][1:]) == sorted(e for e in range(1, DEMO_FINAL + 1) if e != best[0])


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_compare_builders_never_raise_on_bad_metrics(bad, tmp_path):
    metrics = [
        {"kind": "epoch", "epoch": 1, "d_loss": bad, "quality": {"fcd": bad, "fcd_floor": bad}},
        {"kind": "epoch", "epoch": bad, "d_loss": 1.0},
        {"kind": "epoch"},
    ]
    info = RunInfo("x", tmp_path, epochs=[_epoch(2, tmp_path, {"quality": bad, "g_loss": bad})])
    rows = figures.epoch_rows(info, metrics)
    best = figures.best_epoch(rows)
    frames = tables.compare_frames(rows, best)
    text = tables.compare_text(
        rows, [2], best, None, figures.fcd_floor(metrics, info), "X", skipped=[(3, "<script>")]
    )
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert isinstance(tables.epoch_table(rows, best), pd.DataFrame)
    assert frames["score"] is None
    assert tables.compare_text([], [], None, None, None, "X").startswith("No quality figures")


def test_train_status_of_a_real_progress_file():
    prog = {
        "epoch": 2,
        "epochs": 5,
        "step_in_epoch": 39,
        "steps_per_epoch": 156,
        "images_per_s": 512.3,
        "d_loss": 0.7,
        "g_loss": 1.9,
        "status": "training",
    }
    text, pct = tables.train_status("r1", "running", "", prog, latest_epoch=1)
    assert pct == pytest.approx(25.0)
    assert (
        "**r1**: training · process running" in text and "epoch 2/5 · step 39/156 (25%) · 512 img/s" in text
    )
    assert "status: training" in text and "latest samples: epoch 1" in text
    assert "width:25.0%" in tables.progress_bar(pct)
    failed = {"status": "failed", "error": "boom"}
    text, _ = tables.train_status("r1", "exited 1", "ValueError: bad data", failed)
    assert "status: failed · boom" in text and "`ValueError: bad data`" in text
    assert text.startswith("**r1**: failed")


@pytest.mark.parametrize(
    "state, stopping, status, phase",
    [
        ("running", False, None, "starting"),  # loading TensorFlow: no progress.json yet
        ("running", False, "training", "training"),
        ("running", True, "training", "stopping"),
        ("exited 0", False, "stopped", "stopped"),
        ("exited 0", False, "completed", "completed"),
        ("exited 1", False, "training", "failed"),  # died without writing its status
        ("exited -9", False, None, "failed"),
        ("none", False, None, "not started"),
        ("none", False, "completed", "completed"),
        ("running (pid 42, started outside this app)", False, "training", "training elsewhere"),
    ],
)
def test_train_phases_and_the_buttons_they_enable(state, stopping, status, phase):
    got = tables.train_phase(state, stopping, {"status": status} if status else None)
    assert got == phase
    train, stop, resume = tables.PHASE_BUTTONS.get(got, tables.IDLE_BUTTONS)
    assert stop == (got in ("starting", "training"))  # Stop only what this app is training
    assert train == resume == (got not in ("starting", "training", "stopping", "training elsewhere"))


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_train_status_never_raises_on_bad_progress(bad):
    prog = {k: bad for k in ("epoch", "epochs", "step_in_epoch", "steps_per_epoch", "images_per_s", "d_loss")}
    text, pct = tables.train_status("r", "none", "", prog)
    assert 0.0 <= pct <= 100.0 and text.startswith("**r**: not started · process none")
    assert tables.train_status("r", "none", "", bad)[1] == 0.0


def test_step_losses_from_real_metrics_and_bad_lines(demo):
    _, metrics = demo
    df = tables.step_losses(metrics)
    steps = [r for r in metrics if r.get("kind") == "step"]
    assert len(df) == min(2 * len(steps), 2000) and set(df["series"]) == {"d_loss", "g_loss"}
    bad = [
        {"kind": "step", "step": 1, "d_loss": "x", "g_loss": 1.0},
        {"kind": "step", "step": float("nan")},
        "not a dict",
        {"kind": "step", "step": True, "d_loss": 1, "g_loss": 1},
    ]
    assert tables.step_losses(bad) is None
    one = tables.step_losses([{"kind": "step", "step": 3, "d_loss": 1, "g_loss": 2}])
    assert list(one["loss"]) == [1.0, 2.0]


def test_fmt_and_frame():
    assert tables.fmt(0.12345) == "0.123" and tables.fmt("nan") == "n/a" and tables.fmt(None) == "n/a"
    assert tables.frame([], ["a"]) is None
    df = tables.frame([{"epoch": 1, "series": 2}], ["epoch", "series"])
    assert df["epoch"].dtype == float and df["series"].iloc[0] == "2"


# ----------------------------------------------------------------------------- explorer.trainer
@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", ".hidden", "x" * 65, "", "..", None, 3])
def test_check_run_name_refuses_paths(name):
    with pytest.raises(ExplorerError, match="run name"):
        check_run_name(name)


def test_reading_train_status_creates_nothing(tmp_path):
    t = Trainer(tmp_path)
    assert t.state("never-trained") == ("none", "")
    assert not t.is_training("never-trained") and t.running() == [] and not t.stop("never-trained")
    assert list(tmp_path.iterdir()) == []  # no runs/.logs from only looking


def test_last_log_line_skips_tensorflow_noise():
    log = "epoch 1\r50%\r100%\nI0000 00:00 cuda\nW0000 x\n\nWARNING: All log messages\n"
    assert last_log_line(log) == "100%" and last_log_line("") == ""


def test_train_arguments_are_checked(tmp_path):
    roots = [ROOT / "data"]  # relative data paths are the trainer's, whose working folder is the repo
    args = new_run_args(
        tmp_path / "new", "dcgan", "3", 32, "", " data/x ", None, ("dcgan",), ("float32",), roots
    )
    assert args == [
        "--preset",
        "dcgan",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--precision",
        "float32",
        "--data",
        str(ROOT / "data" / "x"),
    ]
    for call, needle in [
        ((tmp_path, "dcgan", 1, 1, None, "", "float32"), "already exists"),
        ((tmp_path / "n", "gan", 1, 1, None, "", "float32"), "unknown preset"),
        ((tmp_path / "n", "dcgan", "x", 1, None, "", "float32"), "Epochs: a whole number"),
        ((tmp_path / "n", "dcgan", 0, 1, None, "", "float32"), "Epochs: a whole number from 1 to 100000"),
        ((tmp_path / "n", "dcgan", 1, 0.5, None, "", "float32"), "Batch size: a whole number"),
        ((tmp_path / "n", "dcgan", 1, 1, -3, "", "float32"), "Max images: a whole number"),
        ((tmp_path / "n", "dcgan", 1, 1, None, "", "float16"), "unknown precision"),
    ]:
        with pytest.raises(ExplorerError, match=needle):
            new_run_args(*call, ("dcgan",), ("float32",))
    # quality samples: passed on when given (0: none), refused in the form's words when not whole
    common = (tmp_path / "q", "dcgan", 1, 1, None, "", "float32", ("dcgan",), ("float32",), ())
    assert new_run_args(*common, 0)[-2:] == ["--quality-samples", "0"]
    assert "--quality-samples" not in new_run_args(*common, "")  # empty: the trainer's default
    for bad in (-1, 2.5, "many", 10**6):
        with pytest.raises(ExplorerError, match="Quality samples: a whole number from 0 to 100000"):
            new_run_args(*common, bad)
    with pytest.raises(ExplorerError, match="no run 'nope'"):
        resume_args(tmp_path / "nope", 3)
    assert resume_args(DEMO, "") == ["--resume"] and resume_args(DEMO, 20) == ["--resume", "--epochs", "20"]
    with pytest.raises(ExplorerError, match="from 1 to 100000"):
        resume_args(DEMO, 0)


def test_picks_newest_answer_wins_and_remembers_the_run_it_showed():
    """The rule behind the pickers: an answer to an older pick is dropped, and the run an answer
    put in the picker is remembered, so a refresh tick sent before a link opened (carrying the
    old run) is recognised as stale instead of writing the old run's epochs under the new run."""
    from explorer.ui.pickers import Picks, answer_pick

    picks = Picks()
    assert picks.shown("s") is None
    run_up = {"__type__": "update", "value": "tiny", "choices": []}
    assert answer_pick(picks, "s", lambda: [run_up, "view"]) == [run_up, "view"]
    assert picks.shown("s") == "tiny" and picks.latest("s") == (1, 0)
    assert answer_pick(picks, "s", lambda: ["view"], run="demo") == ["view"]
    assert picks.shown("s") == "demo"

    # a pick answered while a newer one began: its outputs are skipped, the run not recorded
    def slow():
        answer_pick(picks, "s", lambda: ["newer"], run="newer")
        return ["older"]

    out = answer_pick(picks, "s", slow, run="older")
    assert len(out) == 1 and out[0] != "older" and picks.shown("s") == "newer"
    assert picks.shown("other session") is None


def test_history_of_points_goes_back_and_forward_like_a_browser():
    from explorer.ui import history

    h = history.empty()
    for z in ([1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]):  # the same point twice: one entry
        h = history.push(h, z)
    assert h == {"points": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "at": 2}
    h, z = history.step(h, -1)
    assert z == [3.0, 4.0] and history.labels(h) == ("◀ Back (1)", "Forward (1) ▶")
    h = history.push(h, [3.0, 4.0])  # showing it again is no new entry
    assert h["at"] == 1 and len(h["points"]) == 3
    h = history.push(h, [7.0, 8.0])  # a new point drops the forward entries
    assert h == {"points": [[1.0, 2.0], [3.0, 4.0], [7.0, 8.0]], "at": 2}
    assert history.step(h, +1) == (h, None)  # nothing later
    for i in range(100):
        h = history.push(h, [float(i), 0.0])
    assert len(h["points"]) == history.MAX_POINTS and h["points"][-1] == [99.0, 0.0]
    for bad in (None, "x", {"points": "no"}, {}):  # a damaged state starts afresh
        assert history.step(bad, -1)[1] is None and history.push(bad, [1.0])["points"] == [[1.0]]


def test_trash_and_rename_move_whole_runs_and_refuse_a_training_one(tmp_path):
    import subprocess
    import sys

    runs = tmp_path / "runs"
    src = ROOT / "runs" / "demo"
    for name in ("a", "b"):
        (runs / name / "epochs").mkdir(parents=True)
        (runs / name / "run.json").write_bytes((src / "run.json").read_bytes())
    t = Trainer(runs)
    with pytest.raises(ExplorerError, match="already exists"):
        t.rename("a", "b")
    with pytest.raises(ExplorerError, match="there is no run 'zz'"):
        t.trash("zz")
    with pytest.raises(ExplorerError, match="run name"):
        t.rename("a", "../escape")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        t.procs["a"] = sleeper  # a live trainer of 'a' started by this app
        for op in (lambda: t.trash("a"), lambda: t.rename("a", "c")):
            with pytest.raises(ExplorerError, match="is training: stop it first"):
                op()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert t.rename("a", "c") == runs / "c" and (runs / "c" / "run.json").is_file()
    target = t.trash("c")
    assert target.parent == runs / ".trash" and (target / "run.json").is_file() and not (runs / "c").exists()
    assert [r.name for r in RunRegistry([runs]).list_runs()] == ["b"]  # .trash is not a run


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", None, "no-such-evaluator", 7])
def test_the_snapshot_names_the_evaluator_that_scored_and_its_classes(name, tmp_path):
    """A Fashion-MNIST run's figures say which evaluator scored them and its histogram names the
    garments; MNIST's (named, unnamed as in older runs, or an unknown name) keep the digits."""
    from models.evaluator import FASHION_CLASSES

    hist = [0.1] * 10
    quality = {"fcd": 40.7, "classifier_score": 4.98, "confident_share": 0.38, "mode_coverage": 10}
    e = _epoch(3, tmp_path, {"quality": {**quality, "digit_histogram": hist, "evaluator": name}})
    assert not e.broken  # an unknown evaluator name is read as missing, never as a broken epoch
    text = tables.epoch_quality(e, samples_shown=False)
    frame = tables.digit_histogram(e.summary["quality"])
    assert list(frame["share"]) == hist
    if name == "fashion_mnist":
        assert "scored by the project's Fashion-MNIST garments evaluator" in text
        assert "classes covered 10/10" in text and "real Fashion-MNIST garments" in text
        assert list(frame["digit"]) == list(FASHION_CLASSES)
    else:
        assert "evaluator" not in text and "digits covered 10/10" in text
        assert list(frame["digit"]) == [str(d) for d in range(10)]


def test_the_run_picker_says_epochs_trained_and_snapshots_on_disk(demo, tmp_path):
    from explorer.facts import RunFacts
    from explorer.ui.context import run_note

    run, _ = demo  # 20 epochs trained, only some snapshots kept
    kept = f", {len(DEMO_KEPT)} on disk" if len(DEMO_KEPT) != DEMO_FINAL else ""
    assert run_note(run) == f"completed, {DEMO_FINAL} epochs{kept}"

    def info(status, done, epochs, broken=()):
        facts_ = RunFacts(latent_dim=64, pixel_range=(-1.0, 1.0), status=status, epochs_done=done)
        eps = [EpochInfo(n, tmp_path / str(n), broken="truncated" if n in broken else None) for n in epochs]
        return RunInfo("r", tmp_path, facts=facts_, epochs=eps)

    assert run_note(info("training", 1, [1])) == "training, 1 epoch"
    assert run_note(info("completed", 3, [1, 2, 3], broken=[3])) == "completed, 3 epochs, 1 broken"
    assert run_note(info("stopped", 5, [2, 5], broken=[2])) == "stopped, 5 epochs, 2 on disk, 1 broken"
    # run.json a step behind a snapshot just written: the snapshot counts
    assert run_note(info("training", 3, [1, 2, 3, 4])) == "training, 4 epochs"
    assert run_note(info("training", None, [1, 2])) == "training, 2 epochs"
    assert run_note(info("starting", 0, [])) == "starting, 0 epochs"
    assert run_note(RunInfo("b", tmp_path, broken="run.json unreadable")) == "broken: run.json unreadable"


def test_the_train_tab_offers_what_lies_in_its_data_folders_and_each_offer_passes_the_form(tmp_path):
    """A folder of pictures put in an allowed data folder (data/ next to the runs) is offered by
    name in the Train tab's data field, as is an .npz; nothing the form would refuse is offered."""
    from explorer.ui.train import data_choices

    root = tmp_path / "data"
    (root / "my-photos" / "cats").mkdir(parents=True)
    (root / "sketches").mkdir()
    (root / "digits.npz").write_bytes(b"PK")
    (root / "notes.txt").write_text("not a data set")
    (root / ".cache").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "escape").symlink_to(outside)  # its real path leaves the root: the form refuses it
    (root / "loop").symlink_to(root / "loop")  # a symlink loop: skipped, nothing raises
    values = [v for _, v in data_choices([root])]
    assert values == [str(root), f"{root}/digits.npz", f"{root}/my-photos", f"{root}/sketches"]
    for value in values:
        assert check_data(value, [root]) == str(Path(value).resolve())
    with pytest.raises(ExplorerError, match="Data: not inside"):
        check_data(str(root / "escape"), [root])
    assert data_choices([tmp_path / "missing"])[0][1].endswith("missing")  # the root, nothing more
    many = tmp_path / "many"
    for i in range(60):
        (many / f"set-{i:02d}").mkdir(parents=True)
    offered = [v for _, v in data_choices([many])]
    assert len(offered) == 51 and offered[-1].endswith("set-49")  # the root and the first 50


def test_a_folder_of_images_takes_an_image_size_and_channels_that_its_preset_can_build(tmp_path):
    """The Train form's image size and channels: passed on for a folder of images, "auto" leaves
    the trainer's defaults, and anything the trainer would refuse is refused in the form's words."""
    from models.presets import PRESETS
    from tests.conftest import MNIST

    pictures = tmp_path / "data" / "pictures"
    pictures.mkdir(parents=True)
    roots = [tmp_path / "data"]

    def args(preset, data, size, ch):
        common = (preset, 1, 32, None, str(data), "float32", PRESETS, ("float32",), roots + [MNIST])
        return new_run_args(tmp_path / "runs" / "new", *common, None, size, ch)

    assert args("dcgan", pictures, "64", "3")[-4:] == ["--image-size", "64", "--channels", "3"]
    assert args("scgan", pictures, "28", "auto")[-2:] == ["--image-size", "28"]
    assert args("scgan", pictures, None, "1")[-2:] == ["--channels", "1"]
    assert args("scgan", MNIST, "auto", "auto")[-2:] == ["--data", str(MNIST.resolve())]  # nothing added
    for preset, data, size, ch, needle in [
        ("scgan", pictures, "64", "auto", "preset 'scgan' builds 28/32 px; choose dcgan for 64 px"),
        ("keras-io", pictures, "auto", "3", "preset 'keras-io' builds grey images only"),
        ("scgan", MNIST, "32", "auto", "apply to a folder of images"),  # IDX digits: 28x28 grey
        ("scgan", "", "auto", "3", "apply to a folder of images"),  # Keras' MNIST
        ("dcgan", pictures, "48", "auto", "Image size: 28, 32 or 64 px"),
        ("dcgan", pictures, "huge", "auto", "Image size: a whole number"),
        ("dcgan", pictures, "auto", "2", "Channels: 1 (grey) or 3 (RGB)"),
    ]:
        with pytest.raises(ExplorerError, match=re.escape(needle)):
            args(preset, data, size, ch)
