"""The self-conditioned preset (scgan, models/clusters.py): clusters found in the real digits
without their labels, living in G and D as fixed layers, through the CLI and a resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.clusters import MAX_CLUSTERS, cluster_count, fit_clusters
from tests.test_cdcgan import MNIST, cli, load
from training.data import load_idx_folder


@pytest.fixture(scope="module")
def digits():
    x, y = load_idx_folder(MNIST)
    return x.astype(np.float32) / 127.5 - 1.0, y


@pytest.fixture(scope="module")
def clusters(digits):
    return fit_clusters(digits[0], 64, seed=0)


def nearest(clusters, images) -> np.ndarray:
    return (images.reshape(len(images), -1) @ clusters.d_kernel + clusters.d_bias).argmax(1)


def test_one_cluster_per_100_images_at_most_100():
    assert [cluster_count(n) for n in (64, 199, 200, 1024, 10_000, 70_000)] == [
        1,
        1,
        2,
        10,
        100,
        MAX_CLUSTERS,
    ]


def test_the_clusters_of_the_real_digits_are_mostly_one_digit_and_found_the_same_way_twice(digits, clusters):
    x, y = digits
    lab = nearest(clusters, x)
    k = clusters.k
    assert k == 100 and sorted(set(lab)) == list(range(k))
    assert np.allclose(np.bincount(lab, minlength=k) / len(x), clusters.shares)  # D's layer = k-means
    # the labels are never used; yet most clusters hold one digit (pixel k-means on MNIST: ~0.88)
    purity = sum(np.bincount(y[lab == j]).max() for j in range(k)) / len(y)
    assert purity > 0.82, purity
    again = fit_clusters(x, 64, seed=0)
    assert np.array_equal(again.d_kernel, clusters.d_kernel) and np.array_equal(
        again.g_kernel, clusters.g_kernel
    )


def test_z0_draws_each_cluster_as_often_as_the_data_holds_it(clusters):
    z = np.random.default_rng(1).normal(size=(40_000, 64)).astype(np.float32)
    drawn = np.bincount((z @ clusters.g_kernel + clusters.g_bias).argmax(1), minlength=clusters.k) / len(z)
    assert np.abs(drawn - clusters.shares).max() < 0.01
    # only z[0] picks: the other 63 numbers are the style within the cluster
    z2 = z.copy()
    z2[:, 1:] = np.random.default_rng(2).normal(size=(len(z), 63))
    assert np.array_equal((z @ clusters.g_kernel).argmax(1), (z2 @ clusters.g_kernel).argmax(1))


def test_the_keras_layers_pick_the_clusters_and_load_in_safe_mode(digits, clusters, tmp_path):
    import keras

    from models.clusters import sc_discriminator, sc_generator

    g, d = sc_generator(64, clusters=clusters), sc_discriminator(clusters=clusters)
    x = digits[0][:256, :, :, None]
    z = np.random.default_rng(3).normal(size=(256, 64)).astype(np.float32)
    picked = keras.Model(d.input, d.get_layer("cluster").output)(x).numpy().argmax(1)
    assert np.array_equal(picked, nearest(clusters, x))
    g_picked = keras.Model(g.input, g.get_layer("cluster").output)(z).numpy().argmax(1)
    assert np.array_equal(g_picked, (z @ clusters.g_kernel + clusters.g_bias).argmax(1))
    for model, inp in ((g, z), (d, x)):
        model.save(tmp_path / "m.keras")
        again = load(tmp_path / "m.keras")
        assert np.allclose(again(inp).numpy(), model(inp).numpy(), atol=1e-5)


def test_scgan_trains_through_the_cli_and_a_resume_keeps_its_clusters(tmp_path):
    run = tmp_path / "sc"
    args = ("--preset", "scgan", "--data", str(MNIST), "--max-images", "1000", "--batch-size", "50")
    cli("--run-dir", str(run), *args, "--epochs", "1", "--quality-samples", "200")
    cli("--run-dir", str(run), "--resume", "--epochs", "2")
    meta = json.loads((run / "run.json").read_text())
    assert meta["preset"] == "scgan" and meta["clusters"] == 10 and meta["conditional"] is False
    assert meta["status"] == "completed" and meta["epochs_done"] == 2
    g1, g2 = (load(run / "epochs" / f"epoch-000{e}" / "generator.keras") for e in (1, 2))
    d1, d2 = (load(run / "epochs" / f"epoch-000{e}" / "discriminator.keras") for e in (1, 2))
    assert len(g2.inputs) == 1 and len(d2.inputs) == 1  # the explorer's plain G(z) and D(image)
    for a, b in ((g1, g2), (d1, d2)):  # the fixed layers kept, the rest trained on
        assert np.array_equal(
            a.get_layer("cluster_logits").kernel.numpy(), b.get_layer("cluster_logits").kernel.numpy()
        )
    assert not np.allclose(d1.get_weights()[-1], d2.get_weights()[-1])
    x, _ = load_idx_folder(MNIST)
    fresh = fit_clusters(x[:1000].astype(np.float32) / 127.5 - 1.0, 64, seed=0)
    assert np.allclose(g2.get_layer("cluster_logits").kernel.numpy(), fresh.g_kernel)
    z = np.random.default_rng(0).normal(size=(16, 64)).astype(np.float32)
    assert np.isfinite(d2(g2(z)).numpy()).all()
    shutil.rmtree(run)


def test_a_projection_starts_in_the_clusters_nearest_the_digit(digits, clusters):
    """Your digit's search (explorer/yourdigit.py) cannot cross clusters by gradient (z[0] picks
    G's cluster through a step), so its starts are put in the clusters nearest the digit."""
    import keras

    from models.clusters import geometry, sc_discriminator, sc_generator, starts_near

    g, d = sc_generator(64, clusters=clusters), sc_discriminator(clusters=clusters)
    geom = geometry(g, d)
    mids = geom[0]  # (mids, thresholds, D kernel, D bias)
    g_of = keras.Model(g.input, g.get_layer("cluster").output)
    probe = np.zeros((clusters.k, 64), np.float32)
    probe[:, 0] = mids
    assert np.array_equal(
        g_of(probe).numpy().argmax(1), np.arange(clusters.k)
    )  # each middle draws its cluster
    x = digits[0][:20]
    z0 = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    for image in x:
        z = starts_near(geom, image, z0)
        drawn = g_of(z).numpy().argmax(1)
        ranked = np.argsort(-(image.reshape(1, -1) @ clusters.d_kernel + clusters.d_bias)[0])
        assert list(drawn) == list(ranked[:8]) and np.array_equal(z[:, 1:], z0[:, 1:])
    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4)])
    assert geometry(plain, plain) is None and starts_near(None, x[0], z0) is z0
