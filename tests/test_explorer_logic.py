"""The explorer's logic layer, called directly: registry, latent maths, engine, rendering."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from explorer import latent, render
from explorer.engine import Engine, SnapshotError
from explorer.registry import ExplorerError, RunRegistry

finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=32)


def vec(dim):
    return st.lists(finite, min_size=dim, max_size=dim).map(lambda v: np.asarray(v, np.float32))


# ----------------------------------------------------------------------------- latent maths
@settings(max_examples=60, deadline=None)
@given(vec(16), vec(16), st.integers(2, 64))
def test_lerp_and_slerp_hit_both_endpoints(a, b, steps):
    for kind in ("linear", "spherical"):
        p = latent.path(a, b, steps, kind)
        assert p.shape == (steps, 16)
        np.testing.assert_allclose(p[0], a, atol=1e-4)
        np.testing.assert_allclose(p[-1], b, atol=1e-4)
        assert np.all(np.isfinite(p))


@settings(max_examples=60, deadline=None)
@given(vec(32), vec(32))
def test_slerp_keeps_the_norm_between_equal_norm_endpoints(a, b):
    if np.linalg.norm(a) < 1e-3 or np.linalg.norm(b) < 1e-3:
        return
    b = b / np.linalg.norm(b) * np.linalg.norm(a)
    p = latent.slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), np.linalg.norm(a), rtol=1e-3, atol=1e-4)


def test_linear_midpoint_shrinks_norm_but_spherical_does_not():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    mid_l = latent.lerp(a, b, 0.5)[0]
    mid_s = latent.slerp(a, b, 0.5)[0]
    assert np.linalg.norm(mid_l) < 0.85 * np.linalg.norm(a)
    assert np.linalg.norm(mid_s) == pytest.approx(np.linalg.norm(a), rel=1e-4)


def test_slerp_of_opposite_points_stays_finite_on_the_sphere():
    a = np.ones(8, np.float32)
    p = latent.slerp(a, -a, np.linspace(0, 1, 5))
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), np.linalg.norm(a), rtol=1e-4)


@settings(max_examples=80, deadline=None)
@given(vec(12))
def test_vector_round_trips_through_text(v):
    parsed = latent.parse_vector(latent.format_vector(v), 12)
    np.testing.assert_allclose(parsed, v, atol=1e-4)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_vector_parser_never_crashes_on_any_text(text):
    try:
        v = latent.parse_vector(text, 4)
    except ExplorerError as exc:
        assert str(exc)  # a message, always
    else:
        assert v.shape == (4,) and np.all(np.isfinite(v)) and np.abs(v).max() <= latent.MAX_ABS


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "empty"),
        ("1, 2, 3", "has 3 numbers but this generator takes 4"),
        ("1, 2, three, 4", "words"),
        ("1, nan, 2, 3", "NaN or infinity"),
        ("1, inf, 2, 3", "NaN or infinity"),
        ("1e30, 0, 0, 0", "within"),
    ],
)
def test_vector_parser_messages_say_what_is_wrong(text, needle):
    with pytest.raises(ExplorerError, match=needle):
        latent.parse_vector(text, 4)


@pytest.mark.parametrize("steps", [0, 1, 1_000_000, -3, 2.5, "x", float("nan")])
def test_bad_step_counts_are_refused_with_the_range(steps):
    with pytest.raises(ExplorerError, match="from 2 to 64"):
        latent.clamp_steps(steps)


def test_pca_directions_are_orthonormal_and_ordered():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 16))
    mix = rng.standard_normal((16, 40))
    feats = np.tanh(z @ mix) + 0.01 * rng.standard_normal((500, 40))
    d, var = latent.pca_directions(feats, z, 6)
    assert d.shape == (6, 16)
    np.testing.assert_allclose(d @ d.T, np.eye(6), atol=1e-5)
    assert np.all(np.diff(var) <= 1e-9) and 0 < var.sum() <= 1


# ----------------------------------------------------------------------------- registry
def test_registry_lists_runs_epochs_and_quality(trained_runs):
    reg = RunRegistry([trained_runs])
    [run] = reg.list_runs()
    assert run.name == "tiny" and run.status == "completed" and run.latent_dim == 64
    assert [e.epoch for e in run.epochs] == [1, 2, 3]
    assert all(e.broken is None for e in run.epochs)
    assert run.epochs[-1].summary["quality"]["fcd"] > 0
    assert "FCD" in run.epochs[-1].label


@pytest.mark.parametrize(
    "name", ["..", "../tiny", "/etc", "/etc/passwd", "tiny/../../x", "", "nope", "tiny/epochs", "~", "%2e%2e"]
)
def test_registry_refuses_names_outside_the_runs_folder(trained_runs, name):
    reg = RunRegistry([trained_runs])
    with pytest.raises(ExplorerError):
        reg.get(name)


def test_registry_sees_a_run_being_written(runs_copy):
    reg = RunRegistry([runs_copy])
    run_dir = runs_copy / "tiny"
    info = json.loads((run_dir / "run.json").read_text())
    info["status"] = "training"
    (run_dir / "run.json").write_text(json.dumps(info))
    shutil.rmtree(run_dir / "epochs" / "epoch-0003")
    (run_dir / "epochs" / ".epoch-0003.tmp-123").mkdir()  # a writer's half folder: invisible
    (run_dir / "epochs" / ".epoch-0003.tmp-123" / "generator.keras").write_bytes(b"half")
    run = reg.get("tiny")
    assert run.status == "training" and [e.epoch for e in run.epochs] == [1, 2]
    shutil.copytree(run_dir / "epochs" / "epoch-0002", run_dir / "epochs" / "epoch-0003")
    assert [e.epoch for e in reg.get("tiny").epochs] == [1, 2, 3]  # appears without a restart


def test_broken_snapshots_are_listed_as_broken_with_a_reason(runs_copy):
    ep = runs_copy / "tiny" / "epochs"
    (ep / "epoch-0001" / "discriminator.keras").unlink()
    (ep / "epoch-0002" / "summary.json").write_text("{not json")
    (ep / "epoch-0003" / "generator.keras").write_bytes(b"")
    run = RunRegistry([runs_copy]).get("tiny")
    reasons = {e.epoch: e.broken for e in run.epochs}
    assert "missing discriminator.keras" in reasons[1]
    assert "summary.json unreadable" in reasons[2]
    assert "empty generator.keras" in reasons[3]
    eng = Engine(RunRegistry([runs_copy]))
    with pytest.raises(SnapshotError, match="broken"):
        eng.snapshot("tiny", 1)


# ----------------------------------------------------------------------------- engine
@pytest.fixture(scope="module")
def engine(trained_runs):
    return Engine(RunRegistry([trained_runs]))


def test_generate_returns_an_image_in_range_and_a_probability(engine):
    z = latent.random_vector(64, 3)
    img, p = engine.generate("tiny", 3, z)
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.01
    assert 0.0 <= p <= 1.0


def test_score_is_sigmoid_of_the_same_epochs_discriminator_logit(engine, trained_runs):
    import keras

    z = latent.random_vector(64, 4)[None]
    img, p = engine.snapshot("tiny", 2).generate(z)
    ep = trained_runs / "tiny" / "epochs" / "epoch-0002"
    g = keras.saving.load_model(ep / "generator.keras", safe_mode=True, compile=False)
    d = keras.saving.load_model(ep / "discriminator.keras", safe_mode=True, compile=False)
    logit = float(np.asarray(d(g(z, training=False), training=False))[0, 0])
    assert p[0] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)
    np.testing.assert_allclose(img[0], (np.asarray(g(z, training=False))[0, ..., 0] + 1) / 2, atol=1e-5)


def test_models_are_loaded_once_and_the_cache_is_bounded(trained_runs):
    eng = Engine(RunRegistry([trained_runs]), cache_size=2)
    s1 = eng.snapshot("tiny", 1)
    assert eng.snapshot("tiny", 1) is s1
    eng.snapshot("tiny", 2)
    eng.snapshot("tiny", 3)
    assert eng.cached() == [("tiny", 2), ("tiny", 3)]


def test_slider_path_does_not_retrace(engine):
    snap = engine.snapshot("tiny", 3)
    before = snap._gen_score.experimental_get_tracing_count()
    for i in range(20):
        engine.generate("tiny", 3, latent.random_vector(64, i))
    engine.interpolate("tiny", 3, latent.random_vector(64, 1), latent.random_vector(64, 2), 17)
    assert snap._gen_score.experimental_get_tracing_count() == before


@pytest.mark.parametrize("bad", [[np.nan] * 64, [np.inf] * 64, [1e30] * 64, [0.0] * 63])
def test_engine_refuses_hostile_vectors(engine, bad):
    with pytest.raises(ExplorerError):
        engine.generate("tiny", 3, bad)


def test_unknown_epochs_and_runs_are_clear_errors(engine):
    with pytest.raises(ExplorerError, match="no epoch 99"):
        engine.snapshot("tiny", 99)
    with pytest.raises(ExplorerError, match="unknown run"):
        engine.snapshot("../tiny", 1)
    with pytest.raises(ExplorerError, match="epoch must be a number"):
        engine.snapshot("tiny", "../../etc")


def test_interpolation_frames_follow_the_path_and_scores_are_probabilities(engine):
    a, b = latent.random_vector(64, 10), latent.random_vector(64, 11)
    imgs, scores, zs = engine.interpolate("tiny", 3, a, b, 9, "spherical")
    assert imgs.shape == (9, 28, 28) and scores.shape == (9,)
    assert np.all((scores >= 0) & (scores <= 1))
    img_a, _ = engine.generate("tiny", 3, a)
    np.testing.assert_allclose(imgs[0], img_a, atol=1e-5)
    assert np.abs(imgs[0] - imgs[-1]).mean() > 0.01


def test_compare_renders_the_same_points_through_every_epoch(engine):
    epochs, imgs, scores = engine.compare("tiny", n_points=5, seed=0)
    assert epochs == [1, 2, 3] and imgs.shape == (3, 5, 28, 28) and scores.shape == (3, 5)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.abs(imgs[0] - imgs[-1]).mean() > 0.01  # the generator changed
    _, _, final_scores = engine.compare("tiny", n_points=5, seed=0, final_d=True)
    np.testing.assert_allclose(final_scores[-1], scores[-1], atol=1e-6)  # same D for the last row
    assert not np.allclose(final_scores[0], scores[0])


def test_pca_directions_of_a_real_generator_are_orthonormal(engine):
    d, var = engine.directions("tiny", 3, 6)
    assert d.shape == (6, 64)
    np.testing.assert_allclose(d @ d.T, np.eye(6), atol=1e-4)
    assert engine.directions("tiny", 3, 6)[0] is d  # cached per snapshot
    dims = engine.top_dims("tiny", 3, 8)
    assert len(set(dims)) == 8 and all(0 <= x < 64 for x in dims)


def test_snapshot_with_wrong_latent_size_is_refused(runs_copy):
    info_path = runs_copy / "tiny" / "run.json"
    info = json.loads(info_path.read_text())
    info["latent_dim"] = 32
    info_path.write_text(json.dumps(info))
    with pytest.raises(SnapshotError, match="takes 64 latent values"):
        Engine(RunRegistry([runs_copy])).snapshot("tiny", 1)


def test_a_keras_file_with_a_lambda_layer_is_refused_by_safe_mode(runs_copy):
    import keras

    inp = keras.Input((64,))
    x = keras.layers.Dense(784)(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    out = keras.layers.Reshape((28, 28, 1))(x)
    path = runs_copy / "tiny" / "epochs" / "epoch-0002" / "generator.keras"
    keras.Model(inp, out).save(path)
    eng = Engine(RunRegistry([runs_copy]))
    with pytest.raises(SnapshotError, match="safe mode"):
        eng.snapshot("tiny", 2)
    assert eng.snapshot("tiny", 1) is not None  # the other snapshots stay usable


# ----------------------------------------------------------------------------- rendering
def test_rendering_shapes_and_pixels():
    rng = np.random.default_rng(0)
    imgs = rng.random((3, 5, 28, 28)).astype(np.float32)
    big = render.digit(imgs[0, 0], 280)
    assert big.size == (280, 280) and big.mode == "L"
    px = np.asarray(big)
    assert px[0, 0] == int(imgs[0, 0, 0, 0] * 255 + 0.5)
    g = render.grid(imgs, rng.random((3, 5)), [f"epoch {i}" for i in range(3)], cell=40)
    assert g.mode == "RGB" and g.width > 5 * 40 and g.height > 3 * 40
    gif = render.gif_bytes(imgs[0], rng.random(5))
    im = Image.open(__import__("io").BytesIO(gif))
    assert im.format == "GIF" and im.n_frames == 8  # there and back


# ----------------------------------------------------------------------------- broken snapshots
def _epoch(runs, n):
    return runs / "tiny" / "epochs" / f"epoch-{n:04d}"


def _reasons(runs):
    return {e.epoch: e.broken for e in RunRegistry([runs]).get("tiny").epochs}


def _assert_refused_and_others_usable(runs, epoch, needle):
    """Listed as broken (before any load), refused with the reason, the other epochs still load."""
    assert needle in (_reasons(runs)[epoch] or ""), _reasons(runs)
    eng = Engine(RunRegistry([runs]))
    with pytest.raises(SnapshotError, match=re.escape(needle)):
        eng.snapshot("tiny", epoch)
    other = next(e for e in (1, 2, 3) if e != epoch)
    img, p = eng.generate("tiny", other, latent.random_vector(64, 0))
    assert img.shape == (28, 28) and 0 <= p <= 1


def test_a_truncated_generator_is_listed_broken_before_loading(runs_copy):
    g = _epoch(runs_copy, 2) / "generator.keras"
    g.write_bytes(g.read_bytes()[: g.stat().st_size // 2])
    _assert_refused_and_others_usable(runs_copy, 2, "truncated")


def test_a_garbage_discriminator_is_listed_broken(runs_copy):
    (_epoch(runs_copy, 1) / "discriminator.keras").write_bytes(b"definitely not a zip file " * 40)
    _assert_refused_and_others_usable(runs_copy, 1, "discriminator.keras is truncated or not a .keras file")


def test_a_missing_discriminator_is_listed_broken(runs_copy):
    (_epoch(runs_copy, 3) / "discriminator.keras").unlink()
    _assert_refused_and_others_usable(runs_copy, 3, "missing discriminator.keras")


def test_a_generator_of_the_wrong_latent_size_is_listed_broken(runs_copy):
    from models import get_preset

    get_preset("dcgan").build_generator(32).save(_epoch(runs_copy, 2) / "generator.keras")
    _assert_refused_and_others_usable(runs_copy, 2, "takes 32 latent values")


def test_a_lambda_layer_is_listed_broken_without_loading_it(runs_copy):
    import keras

    inp = keras.Input((64,))
    x = keras.layers.Dense(784)(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)  # would only scale, but it is code all the same
    keras.Model(inp, keras.layers.Reshape((28, 28, 1))(x)).save(_epoch(runs_copy, 3) / "generator.keras")
    _assert_refused_and_others_usable(runs_copy, 3, "Lambda layer")


def test_a_custom_layer_class_is_refused_with_a_clear_message(runs_copy):
    import keras

    @keras.saving.register_keras_serializable(package="evil")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inp = keras.Input((28, 28, 1))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(Twice()(inp)))
    keras.Model(inp, out).save(_epoch(runs_copy, 1) / "discriminator.keras")
    keras.saving.get_custom_objects().pop("evil>Twice")  # as in a fresh app process
    _assert_refused_and_others_usable(
        runs_copy, 1, "Twice from module tests.test_explorer_logic (custom code)"
    )


def test_a_snapshot_that_fails_to_load_shows_as_broken_until_its_files_change(runs_copy):
    import zipfile

    g = _epoch(runs_copy, 2) / "generator.keras"
    good = g.read_bytes()
    with zipfile.ZipFile(runs_copy / "src.keras", "w") as out, zipfile.ZipFile(g) as src:
        for name in src.namelist():  # a well-formed zip whose weights are garbage
            out.writestr(name, b"\x00garbage" * 100 if name.endswith(".h5") else src.read(name))
    g.write_bytes((runs_copy / "src.keras").read_bytes())
    reg = RunRegistry([runs_copy])
    eng = Engine(reg)
    assert reg.get("tiny").epoch(2).broken is None  # looks whole from outside
    with pytest.raises(SnapshotError, match="generator.keras cannot be loaded"):
        eng.snapshot("tiny", 2)
    assert "cannot be loaded" in reg.get("tiny").epoch(2).broken  # now marked in the picker
    with pytest.raises(SnapshotError, match="broken"):
        eng.snapshot("tiny", 2)  # refused at once, no second load attempt
    g.write_bytes(good)  # the writer replaced it: usable again
    assert reg.get("tiny").epoch(2).broken is None
    assert eng.generate("tiny", 2, latent.random_vector(64, 0))[0].shape == (28, 28)


def test_garbage_run_json_and_empty_summary(runs_copy):
    shutil.copytree(runs_copy / "tiny", runs_copy / "garbage")
    (runs_copy / "garbage" / "run.json").write_text("[1, 2,")
    (_epoch(runs_copy, 1) / "summary.json").write_text("")
    reg = RunRegistry([runs_copy])
    runs = {r.name: r for r in reg.list_runs()}
    assert runs["garbage"].status == "broken" and "run.json unreadable" in runs["garbage"].broken
    assert all(e.broken for e in runs["garbage"].epochs)
    assert "empty summary.json" in runs["tiny"].epoch(1).broken
    eng = Engine(reg)
    with pytest.raises(SnapshotError, match="run.json unreadable"):
        eng.snapshot("garbage", 3)
    assert 0 <= eng.generate("tiny", 3, latent.random_vector(64, 0))[1] <= 1


# ----------------------------------------------------------------------------- compare: epochs with gaps
def _gappy(runs):
    """'tiny' with epoch 2 pruned from disk: metrics.jsonl still has all three epochs."""
    shutil.rmtree(_epoch(runs, 2))
    return runs


def test_epoch_figures_cover_all_epochs_while_the_grid_uses_those_on_disk(runs_copy):
    from explorer import figures

    reg = RunRegistry([_gappy(runs_copy)])
    info = reg.get("tiny")
    rows = figures.epoch_rows(info, reg.metrics("tiny"))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["snapshot"] for r in rows] == ["on disk", "not kept on disk", "on disk"]
    assert all(r["fcd"] > 0 and r["d_loss"] is not None for r in rows)
    best = figures.best_epoch(rows)
    assert best == min(((r["epoch"], r["fcd"]) for r in rows), key=lambda t: t[1])
    best_disk = figures.best_epoch(rows, on_disk_only=True)
    assert best_disk[0] in (1, 3)
    epochs, imgs, scores = Engine(reg).compare("tiny", n_points=4, seed=1)
    assert epochs == [1, 3] and imgs.shape == (2, 4, 28, 28) and scores.shape == (2, 4)


def test_epoch_figures_fall_back_to_summaries_and_survive_bad_values(runs_copy):
    from explorer import figures

    run_dir = runs_copy / "tiny"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    epoch_lines = [json.loads(l) for l in lines if '"kind": "epoch"' in l]
    # epoch 1 logged twice (a resume), epoch 3 missing from the log, a torn last line
    first = dict(epoch_lines[0], d_loss=0.123)
    broken_q = dict(epoch_lines[1], quality={"fcd": None, "classifier_score": "x"})
    (run_dir / "metrics.jsonl").write_text(
        "\n".join([json.dumps(epoch_lines[0]), json.dumps(first), json.dumps(broken_q), '{"kind": "ep'])
        + "\n"
    )
    reg = RunRegistry([runs_copy])
    rows = figures.epoch_rows(reg.get("tiny"), reg.metrics("tiny"))
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # 3 from its summary.json
    assert rows[0]["d_loss"] == 0.123
    assert rows[1]["fcd"] is None and rows[1]["classifier_score"] is None
    assert figures.best_epoch(rows)[0] in (1, 3)
    assert figures.best_epoch([dict(r, fcd=None) for r in rows]) is None


def test_compare_leaves_out_an_epoch_that_fails_to_load_and_says_why(runs_copy):
    g = _epoch(runs_copy, 2) / "generator.keras"
    g.write_bytes(g.read_bytes()[:1000])
    eng = Engine(RunRegistry([runs_copy]))
    skipped = []
    epochs, imgs, scores = eng.compare("tiny", n_points=3, seed=0, skipped=skipped)
    assert epochs == [1, 3] and imgs.shape[0] == 2
    assert skipped and skipped[0][0] == 2 and "truncated" in skipped[0][1]


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(n_points=0), "points must be a whole number from 1 to 32"),
        (dict(n_points=33), "points"),
        (dict(n_points=float("nan")), "points"),
        (dict(n_points=2.5), "points"),
        (dict(seed=-1), "seed"),
        (dict(seed="x"), "seed"),
    ],
)
def test_compare_refuses_bad_counts_and_seeds(engine, kw, needle):
    with pytest.raises(ExplorerError, match=needle):
        engine.compare("tiny", **kw)


@pytest.mark.parametrize("epoch", ["abc", float("nan"), float("inf"), 2.5, None, "../../etc"])
def test_bad_epoch_values_are_clear_errors(engine, epoch):
    with pytest.raises(ExplorerError, match="epoch must be a number"):
        engine.snapshot("tiny", epoch)


# ----------------------------------------------------------------------------- scoring samples.png
def test_samples_png_splits_into_its_digits_and_is_scored_by_the_same_epochs_d(trained_runs, engine):
    ep = trained_runs / "tiny" / "epochs" / "epoch-0002"
    with Image.open(ep / "samples.png") as im:
        cells = render.split_samples(im)
    assert cells.shape == (64, 28, 28) and 0 <= cells.min() and cells.max() <= 1
    assert cells.std(axis=(1, 2)).min() > 0  # digits, not padding
    p = engine.scores("tiny", 2, cells)
    assert p.shape == (64,) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p, engine.snapshot("tiny", 2).score(cells), atol=1e-6)
    # a fresh engine scores with only D loaded, and agrees
    fresh = Engine(RunRegistry([trained_runs]))
    np.testing.assert_allclose(fresh.scores("tiny", 2, cells), p, atol=1e-5)
    assert fresh.cached() == []  # the snapshots being explored were not evicted
    assert render.split_samples(Image.new("L", (100, 37))) is None


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 64), st.integers(1, 16), st.booleans())
def test_strips_wrap_and_caption_every_frame(n, per_row, two_scores):
    rng = np.random.default_rng(n)
    imgs = rng.random((n, 28, 28)).astype(np.float32)
    s = rng.random(n)
    im = render.strip(imgs, s, cell=40, per_row=per_row, scores2=s if two_scores else None)
    rows = -(-n // per_row)  # as few rows as fit, equally long: no row more than one frame short
    cols = -(-n // rows)
    assert cols <= per_row and rows * cols - n < rows
    cell = max(
        40, render._text_w("final D 0.00") + 4 if two_scores else 0, render._text_w("P(real) 0.00") + 4
    )
    assert im.width == cols * (cell + 6) + 6
    assert im.height == rows * (cell + 15 * (1 + two_scores) + 6) + 6
    # the first frame is pasted at (6, 6) at full size
    px = np.asarray(im.convert("L"))[6 : 6 + cell, 6 : 6 + cell]
    expect = np.asarray(render.digit(imgs[0], cell))
    np.testing.assert_array_equal(px, expect)


def test_sixteen_frames_are_two_rows_of_eight_and_verdicts_are_graded():
    im = render.strip(np.zeros((16, 28, 28), np.float32), np.full(16, 0.5), cell=40, per_row=12)
    big = render.strip(np.zeros((8, 28, 28), np.float32), np.full(8, 0.5), cell=40, per_row=12)
    assert im.width == big.width and im.height > big.height  # 8 wide, 2 high
    words = [render.verdict(p) for p in (0.97, 0.7, 0.46, 0.3, 0.02, float("nan"))]
    assert words == [
        "looks real to D",
        "leans real",
        "a coin flip for D",
        "leans fake",
        "looks fake to D",
        "no verdict",
    ]


def test_keras_safe_mode_itself_refuses_a_lambda_layer_with_a_clear_message(runs_copy):
    """Below the registry's look inside the file, loading runs in Keras' safe mode as well."""
    import keras

    from explorer.engine import _load_model

    inp = keras.Input((64,))
    out = keras.layers.Reshape((28, 28, 1))(
        keras.layers.Lambda(lambda t: t * 0 + 1)(keras.layers.Dense(784)(inp))
    )
    path = runs_copy / "lambda.keras"
    keras.Model(inp, out).save(path)
    run = RunRegistry([runs_copy]).get("tiny")
    with pytest.raises(SnapshotError, match="custom code .* safe mode refuses"):
        _load_model(run, 2, path)
