"""Corrupt run folders on disk (issue 9, items 2-4): each marks only its own run or epoch broken.

Real files: a copy of the session's real 3-epoch training ('tiny') and of the bundled demo sit
beside the damaged run; the damaged run is a copy of 'tiny' with one file spoiled the way the
issue reports (or, in the Hypothesis test, any way at all).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import figures, latent, render
from explorer.engine import Engine
from explorer.registry import ExplorerError, RunRegistry

ROOT = Path(__file__).resolve().parents[1]
DEEP = b"[" * 100_000 + b"]" * 100_000
GOOD = ("tiny", "demo")


@pytest.fixture(scope="module")
def root(trained_runs, tmp_path_factory) -> Path:
    """A runs folder with two good runs ('tiny': real training, 'demo': the bundled one)."""
    dst = tmp_path_factory.mktemp("corrupt-runs")
    shutil.copytree(trained_runs / "tiny", dst / "tiny")
    shutil.copytree(ROOT / "runs" / "demo", dst / "demo")
    return dst


@pytest.fixture(scope="module")
def engine(root) -> Engine:
    return Engine(RunRegistry([root]))


@pytest.fixture
def bad(root, trained_runs):
    """A copy of 'tiny' named 'bad' beside the good runs, removed afterwards (it is only a copy)."""
    path = root / "bad"
    shutil.copytree(trained_runs / "tiny", path)
    yield path
    shutil.rmtree(path)


def _one_line(exc: Exception) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and len(msg) < 600, msg
    return msg


def _good_runs_still_work(engine: Engine) -> None:
    runs = {r.name: r for r in engine.registry.list_runs()}
    for name in GOOD:
        assert runs[name].broken is None and runs[name].good_epochs(), runs[name]
        last = runs[name].good_epochs()[-1].epoch
        img, p = engine.generate(name, last, latent.random_vector(runs[name].latent_dim, 0))
        assert img.shape == (28, 28) and 0 <= p <= 1


def _listed(engine: Engine, name: str = "bad"):
    runs = {r.name: r for r in engine.registry.list_runs()}  # must not raise, whatever is on disk
    json.dumps(
        [
            {
                "name": r.name,
                "status": r.status,
                "broken": r.broken,
                "info": r.info,
                "epochs": [{"label": e.label, "summary": e.summary, "fcd": e.fcd} for e in r.epochs],
            }
            for r in runs.values()
        ],
        allow_nan=False,
    )  # the API's answer: plain, finite JSON
    return runs[name]


def _set_field(path: Path, key: str, json_text: str) -> None:
    """Put raw JSON text (e.g. 1e400, which json.dumps cannot write) as one field's value."""
    path.write_bytes(_json_with(json.loads(path.read_text()), key, json_text, None))


# ----------------------------------------------------------------------------- item 2
def test_latent_dim_1e400_marks_only_that_run_broken(engine, bad):
    # before: int(float('inf')) -> "cannot convert float infinity to integer" from list_runs
    _set_field(bad / "run.json", "latent_dim", "1e400")
    run = _listed(engine)
    assert run.status == "broken" and "latent_dim is inf" in run.broken
    assert all(e.broken for e in run.epochs)
    with pytest.raises(ExplorerError, match="latent_dim"):
        engine.generate("bad", 3, latent.random_vector(64, 0))
    _good_runs_still_work(engine)


def test_run_json_nested_100k_deep_marks_only_that_run_broken(engine, bad):
    # before: "maximum recursion depth exceeded" (a RecursionError) from list_runs
    (bad / "run.json").write_bytes(DEEP)
    run = _listed(engine)
    assert run.status == "broken" and "nested more than" in run.broken
    assert run.info == {}
    _good_runs_still_work(engine)


def test_summary_nested_100k_deep_marks_only_that_epoch_broken(engine, bad):
    (bad / "epochs" / "epoch-0002" / "summary.json").write_bytes(DEEP)
    run = _listed(engine)
    assert run.broken is None and "summary.json" in run.epoch(2).broken
    assert "nested more than" in run.epoch(2).broken
    assert [e.epoch for e in run.good_epochs()] == [1, 3]
    _good_runs_still_work(engine)


# ----------------------------------------------------------------------------- item 3
@pytest.mark.parametrize(
    "quality, needle",
    [('{"fcd": "bad"}', "fcd is 'bad', not a number"), ('"oops"', "quality is 'oops', not an object")],
)
def test_summary_with_wrong_quality_types_marks_that_epoch_broken(engine, bad, quality, needle):
    # before: EpochInfo.label raised ("Unknown format code 'f'" / "'str' object has no attribute")
    _set_field(bad / "epochs" / "epoch-0003" / "summary.json", "quality", quality)
    run = _listed(engine)
    assert needle in run.epoch(3).broken and run.epoch(3).summary is None
    assert figures.epoch_rows(run, engine.registry.metrics("bad"))  # Compare's figures still build
    _good_runs_still_work(engine)


def test_pixel_range_up_to_1e308_marks_the_run_broken_and_nan_scores_draw(engine, bad):
    # before: loaded, D saw inf pixels, P(real) was NaN and render._score_color raised
    _set_field(bad / "run.json", "pixel_range", "[0, 1e308]")
    run = _listed(engine)
    assert run.status == "broken" and "pixel_range" in run.broken
    with pytest.raises(ExplorerError, match="pixel_range"):
        engine.compare("bad", 2)
    assert render._score_color(float("nan")) == (120, 120, 120)
    pic = render.grid(np.zeros((1, 2, 28, 28)), np.array([[np.nan, 0.5]]))
    assert pic.size[0] > 0
    _good_runs_still_work(engine)


@pytest.mark.parametrize(
    "line",
    [
        b'{"kind": "epoch", "epoch": 2, "d_loss": 1.0, "note": "\xff\xfe"}',
        b'{"kind": "epoch", "epoch": 1e400, "d_loss": 1.0}',
        b'{"kind": "epoch", "epoch": 2, "x": ' + DEEP + b"}",
        b'{"kind": "epoch", "epoch": 2, "d_loss": 1e400, "quality": {"fcd": "bad"}}',
    ],
    ids=["non-utf8", "epoch-1e400", "deep", "inf-and-bad-quality"],
)
def test_bad_metrics_lines_are_skipped_or_cleaned_and_compare_works(engine, bad, line):
    # before: UnicodeDecodeError / OverflowError / RecursionError out of Compare
    m = bad / "metrics.jsonl"
    good_rows = [json.loads(x) for x in m.read_text().splitlines()]
    m.write_bytes(m.read_bytes() + line + b"\n")
    rows = engine.registry.metrics("bad")
    assert len(rows) in (len(good_rows), len(good_rows) + 1)
    for r in rows:
        assert isinstance(r["epoch"], int)
        assert all(v is None or np.isfinite(v) for v in r.values() if isinstance(v, float))
    info = engine.registry.get("bad")
    table = figures.epoch_rows(info, rows)
    assert [r["epoch"] for r in table] == [1, 2, 3]
    assert figures.best_epoch(table) is not None
    epochs, imgs, scores = engine.compare("bad", 2, epochs=[3])  # one snapshot loaded: enough here
    assert epochs == [3] and imgs.shape == (1, 2, 28, 28) and np.all((0 <= scores) & (scores <= 1))
    _good_runs_still_work(engine)


# ----------------------------------------------------------------------------- item 4
def test_a_deleted_epoch_is_not_served_from_memory_and_a_replaced_one_is_reloaded(runs_copy):
    reg = RunRegistry([runs_copy])
    eng = Engine(reg)
    z = latent.random_vector(64, 3)
    img1, _ = eng.generate("tiny", 1, z)
    img3, _ = eng.generate("tiny", 3, z)
    eng.generate("tiny", 2, z)
    assert not np.allclose(img1, img3)
    ep = runs_copy / "tiny" / "epochs"
    shutil.rmtree(ep / "epoch-0002")  # a copy: the test's own files
    assert [e.epoch for e in reg.get("tiny").epochs] == [1, 3]
    with pytest.raises(ExplorerError, match="epoch 2 is no longer on disk") as err:
        eng.generate("tiny", 2, z)
    _one_line(err.value)
    with pytest.raises(ExplorerError, match="no epoch 2"):  # and stays refused, now by the registry
        eng.scores("tiny", 2, np.zeros((1, 28, 28), np.float32))
    assert ("tiny", 2) not in eng.cached()
    # epoch 1's generator copied over epoch 3's, keeping its time stamp and (same model) its size
    shutil.copy2(ep / "epoch-0001" / "generator.keras", ep / "epoch-0003" / "generator.keras")
    img3_now, p = eng.generate("tiny", 3, z)
    np.testing.assert_allclose(img3_now, img1, atol=1e-5)
    assert 0 <= p <= 1


# ----------------------------------------------------------------------------- any corruption
EVIL = [
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "1e308",
    "-1",
    "0",
    "1.5",
    "1180591620717411303424",
    '"x"',
    '"\\ud800"',
    "true",
    "null",
    "[]",
    "{}",
    "[0, 1e308]",
    "[1, 0]",
    "[0, 0]",
    "[-1, 1]",
    "[28, 28, 1]",
    '["a", 1]',
    "[" * 40 + "]" * 40,
    '{"fcd": "bad", "digit_histogram": [1e400, "x"]}',
    '{"fcd": NaN, "mode_coverage": 1e400}',
    "64",
    "3",
]
RUN_FIELDS = [
    "latent_dim",
    "pixel_range",
    "image_shape",
    "d_outputs_logits",
    "status",
    "config",
    "epochs_done",
    "preset",
    "dataset",
    "versions",
]
SUMMARY_FIELDS = ["epoch", "d_loss", "quality", "steps", "images_per_s"]
WHOLE = st.sampled_from([b"", b"{not json", b"\xff\xfe{}", DEEP, b"[1, 2]", b'"text"', b"null"]) | st.binary(
    max_size=40
)


def _json_with(good: dict, key: str | None, evil: str | None, whole: bytes | None) -> bytes:
    if whole is not None:
        return whole
    obj = dict(good)
    obj[key] = "@EVIL@"
    return json.dumps(obj).replace('"@EVIL@"', evil).encode("utf-8", "surrogatepass")


def _lambda_keras() -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "config.json",
            json.dumps(
                {
                    "class_name": "Functional",
                    "config": {
                        "layers": [
                            {"class_name": "Lambda", "module": "keras.layers", "config": {"function": "evil"}}
                        ]
                    },
                }
            ),
        )
        zf.writestr("model.weights.h5", b"\x89HDF\r\n")
    return buf.getvalue()


def _keras(choice: str, good: bytes, blob: bytes) -> bytes | None:
    return {
        "missing": None,
        "empty": b"",
        "truncated": good[: len(good) // 3],
        "random": blob,
        "lambda": _lambda_keras(),
    }[choice]


a_json = st.tuples(st.none() | WHOLE, st.sampled_from(EVIL))
damage = st.fixed_dictionaries(
    {
        "run": st.tuples(st.sampled_from(RUN_FIELDS), a_json),
        "summaries": st.lists(st.tuples(st.sampled_from(SUMMARY_FIELDS), a_json), min_size=1, max_size=2),
        "keras": st.lists(
            st.sampled_from(["missing", "empty", "truncated", "random", "lambda"]), min_size=2, max_size=4
        ),
        "blob": st.binary(max_size=200),
        "metrics": st.lists(
            st.sampled_from(EVIL).map(lambda e: f'{{"kind": "epoch", "epoch": {e}, "d_loss": {e}}}'.encode())
            | st.binary(max_size=60)
            | st.just(b'{"epoch": 2, "q": ' + DEEP + b"}"),
            max_size=4,
        ),
        "progress": WHOLE,
    }
)


def _write_bad_run(path: Path, tiny: Path, d: dict) -> None:
    """A run folder spoiled as ``d`` says: run.json, every epoch's summary and models, logs."""
    shutil.rmtree(path, ignore_errors=True)  # only the previous example's spoiled copy
    (path / "epochs").mkdir(parents=True)
    good_run = json.loads((tiny / "run.json").read_text())
    key, (whole, evil) = d["run"]
    (path / "run.json").write_bytes(_json_with(good_run, key, evil, whole))
    g_bytes = (tiny / "epochs" / "epoch-0001" / "generator.keras").read_bytes()
    for i, (skey, (swhole, sevil)) in enumerate(d["summaries"], start=1):
        ep = path / "epochs" / f"epoch-{i:04d}"
        ep.mkdir()
        good_sum = json.loads((tiny / "epochs" / "epoch-0001" / "summary.json").read_text())
        (ep / "summary.json").write_bytes(_json_with(good_sum, skey, sevil, swhole))
        shutil.copy(tiny / "epochs" / "epoch-0001" / "samples.png", ep / "samples.png")
        choices = d["keras"][2 * i - 2 : 2 * i] or ["random"] * 2
        for name, choice in zip(("generator.keras", "discriminator.keras"), choices):
            data = _keras(choice, g_bytes, d["blob"])
            if data is not None:
                (ep / name).write_bytes(data)
    (path / "epochs" / "epoch-0009").write_bytes(b"a file, not a folder")
    good_log = (tiny / "metrics.jsonl").read_bytes()
    (path / "metrics.jsonl").write_bytes(good_log + b"\n".join(d["metrics"]) + b"\n")
    (path / "progress.json").write_bytes(d["progress"])


def _tree_state(root: Path) -> dict:
    """Every file: content hash for the spoiled run, (size, mtime, inode) for the big good ones."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st_ = p.stat()
            rel = str(p.relative_to(root))
            small = rel.startswith("bad") or p.suffix != ".keras"
            out[rel] = (
                hashlib.sha256(p.read_bytes()).hexdigest()
                if small
                else (st_.st_size, st_.st_mtime_ns, st_.st_ino)
            )
    return out


def _every_call(engine: Engine, run: str, epochs: list[int]) -> None:
    z = np.zeros(64, np.float32)
    calls = [lambda: engine.compare(run, 2, skipped=[]), lambda: engine.compare(run, 2)]
    for e in sorted(set(epochs) | {1}):
        calls += [
            lambda e=e: engine.generate(run, e, z),
            lambda e=e: engine.interpolate(run, e, z, z, 3),
            lambda e=e: engine.scores(run, e, np.zeros((2, 28, 28), np.float32)),
            lambda e=e: engine.directions(run, e, 3),
            lambda e=e: engine.top_dims(run, e, 3),
        ]
    for call in calls:
        try:
            call()
        except ExplorerError as exc:
            _one_line(exc)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(d=damage)
def test_any_corrupt_run_folder_only_breaks_itself(root, trained_runs, engine, d):
    path = root / "bad"
    _write_bad_run(path, trained_runs / "tiny", d)
    before = _tree_state(root)
    try:
        run = _listed(engine)
        metrics = engine.registry.metrics("bad")
        assert all(isinstance(r.get("epoch", 0), int) for r in metrics)
        progress = engine.registry.progress("bad")
        assert progress is None or isinstance(progress, dict)
        rows = figures.epoch_rows(run, metrics)
        figures.best_epoch(rows), figures.fcd_floor(metrics, run)
        _every_call(engine, "bad", [e.epoch for e in run.epochs])
        _good_runs_still_work(engine)
        assert engine.compare("tiny", 2)[0] == [1, 2, 3]
        assert _tree_state(root) == before  # nothing on disk changed
    finally:
        shutil.rmtree(path, ignore_errors=True)
    assert {r.name for r in engine.registry.list_runs()} == set(GOOD)
    assert os.path.isdir(root / "tiny" / "epochs" / "epoch-0003")
