"""The quality evaluator and metrics, measured on the real digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import MNIST
from training.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    x, y, _ = load_dataset(data=str(MNIST))
    return x.astype(np.float32)[..., None] / 255.0, y


@pytest.fixture(scope="module")
def scorer():
    from training.quality import QualityScorer

    return QualityScorer.load()


def test_shipped_evaluator_is_at_least_98_percent_on_held_out_digits(digits, scorer):
    from models.evaluator import EVALUATOR_DIR

    x, y = digits
    report = json.loads((EVALUATOR_DIR / "report.json").read_text())
    assert report["held_out_accuracy"] >= 0.98 and report["train"] == "first 8000"
    _, probs = scorer.embed(x[8000:])
    acc = float((probs.argmax(1) == y[8000:]).mean())
    assert acc >= 0.98
    assert acc == pytest.approx(report["held_out_accuracy"], abs=0.002)


def test_frechet_distance_basics():
    from training.quality import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 8))
    b = rng.standard_normal((500, 8)) * 2 + 1
    mu_a, s_a, mu_b, s_b = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    assert frechet_distance(mu_a, s_a, mu_a, s_a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(mu_a, s_a, mu_b, s_b) == pytest.approx(
        frechet_distance(mu_b, s_b, mu_a, s_a), rel=1e-6
    )
    # closed form for diagonal covariances: |mu|^2 + sum (sqrt(v1) - sqrt(v2))^2
    got = frechet_distance(np.zeros(3), np.diag([1.0, 4, 9]), np.ones(3), np.diag([4.0, 4, 1]))
    assert got == pytest.approx(3 + 1 + 0 + 4, rel=1e-6)


def test_fcd_orders_real_blurred_and_noise(digits, scorer):
    import tensorflow as tf

    x, _ = digits
    sample = x[:2000]
    k = np.outer(*[np.exp(-(np.arange(-3, 4) ** 2) / 2.0)] * 2).astype(np.float32)
    blurred = tf.nn.conv2d(sample, (k / k.sum())[:, :, None, None], 1, "SAME").numpy()
    noise = np.random.default_rng(0).random(sample.shape, dtype=np.float32)
    real, blur, rand = (scorer.score(s) for s in (sample, blurred, noise))
    assert real["fcd"] < 3 * real["fcd_floor"] + 1
    assert real["fcd"] < 10 < blur["fcd"] < rand["fcd"]
    assert 8 < real["classifier_score"] <= 10
    assert real["confident_share"] > 0.95 and real["mode_coverage"] == 10
    assert sum(real["digit_histogram"]) == pytest.approx(1.0)
    assert rand["classifier_score"] < 3


def test_a_single_repeated_digit_scores_about_one(digits, scorer):
    x, y = digits
    ones = np.repeat(x[y == 1][:1], 500, axis=0)
    q = scorer.score(ones)
    assert q["classifier_score"] == pytest.approx(1.0, abs=0.05)
    assert q["mode_coverage"] == 1 and q["digit_histogram"][1] == pytest.approx(1.0)


def test_score_generator_is_deterministic(scorer):
    import keras

    from training.quality import score_generator

    keras.utils.set_random_seed(0)
    from models import get_preset

    p = get_preset("dcgan")
    g = p.build_generator(p.latent_dim)
    a = score_generator(g, p.latent_dim, p.pixel_range, n=300)
    b = score_generator(g, p.latent_dim, p.pixel_range, n=300)
    assert a == b and a["n_samples"] == 300 and a["fcd"] > 100  # an untrained G is far from digits
