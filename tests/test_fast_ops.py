"""models/fast_ops.py: the one-map convolution gives the stock layer's values and gradients,
and an accelerated model still saves as, and loads back into, stock Keras layers."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from models.fast_ops import accelerate, one_map_conv  # noqa: E402


@pytest.mark.parametrize("kernel,size,channels", [(7, 28, 128), (3, 9, 5), (5, 6, 1), (1, 4, 3)])
def test_one_map_conv_matches_conv2d_values_and_gradients(kernel, size, channels):
    rng = np.random.default_rng(kernel)
    x = tf.constant(rng.normal(size=(3, size, size, channels)), tf.float32)
    w = tf.constant(rng.normal(size=(kernel, kernel, channels, 1)) * 0.1, tf.float32)
    up = tf.constant(rng.normal(size=(3, size, size, 1)), tf.float32)  # a non-uniform upstream

    def run(f):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = f(x, w)
            loss = tf.reduce_sum(y * up)
        return (y, *tape.gradient(loss, [x, w]))

    want = run(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"))
    got = run(one_map_conv)
    for name, g, r in zip(("value", "d input", "d kernel"), got, want):
        assert g.shape == r.shape, name
        scale = float(tf.reduce_max(tf.abs(r))) + 1e-6
        err = float(tf.reduce_max(tf.abs(g - r))) / scale
        assert err < 1e-5, f"{name}: relative error {err}"


def _stock_net():
    z = keras.Input((4,))
    x = keras.layers.Dense(8 * 8 * 6)(z)
    x = keras.layers.Reshape((8, 8, 6))(x)
    x = keras.layers.Conv2D(6, 3, padding="same")(x)  # 6 maps: left alone
    x = keras.layers.Conv2D(1, 5, padding="same", activation="sigmoid")(x)  # accelerated
    return keras.Model(z, x)


def test_accelerated_model_trains_the_same_and_saves_stock_layers(tmp_path):
    keras.utils.set_random_seed(3)
    stock = _stock_net()
    fast = _stock_net()
    fast.set_weights(stock.get_weights())
    assert accelerate(fast) == 1
    z = tf.constant(np.random.default_rng(0).normal(size=(5, 4)), tf.float32)

    def grads(m):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(m(z, training=True) - 0.3))
        return loss, tape.gradient(loss, m.trainable_variables)

    (l1, g1), (l2, g2) = grads(stock), grads(fast)
    np.testing.assert_allclose(l2.numpy(), l1.numpy(), rtol=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6)

    path = tmp_path / "fast.keras"
    fast.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    last = loaded.layers[-1]
    assert type(last) is keras.layers.Conv2D and "convolution_op" not in vars(last)
    np.testing.assert_allclose(loaded(z).numpy(), stock(z).numpy(), rtol=1e-5, atol=1e-6)


def test_layers_that_do_not_qualify_are_left_alone():
    z = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(1, 3, strides=2, padding="same")(z)  # stride 2
    x = keras.layers.Conv2D(1, 2, padding="same")(x)  # even kernel: asymmetric padding
    x = keras.layers.Conv2D(1, 3, padding="valid")(x)
    x = keras.layers.Conv2DTranspose(1, 3, padding="same")(x)
    assert accelerate(keras.Model(z, x)) == 0


def test_nested_models_are_walked_and_accelerating_twice_changes_nothing():
    inner = _stock_net()
    z = keras.Input((4,))
    outer = keras.Model(z, inner(z))
    assert accelerate(outer) == 1
    assert accelerate(outer) == 0  # already done
