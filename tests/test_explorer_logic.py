"""The explorer's logic layer, called directly: registry, latent maths, engine, rendering."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
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


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("1, 2, 3", "has 3 numbers but this generator takes 4"),
    ("1, 2, three, 4", "words"),
    ("1, nan, 2, 3", "NaN or infinity"),
    ("1, inf, 2, 3", "NaN or infinity"),
    ("1e30, 0, 0, 0", "within"),
])
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


@pytest.mark.parametrize("name", ["..", "../tiny", "/etc", "/etc/passwd", "tiny/../../x", "", "nope",
                                  "tiny/epochs", "~", "%2e%2e"])
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
