"""Faster kernels for the same layers: a one-map convolution computed another way.

A ``Conv2D`` with ONE output map (``keras-io``'s last layer: 7x7, 128 maps -> 1 image, stride 1)
is a shape oneDNN handles badly on this CPU: its forward pass and its kernel gradient each take
as long as the 128 -> 128 transposed convolution before it, with a tenth of its work.
The same numbers come out of kernels that are fast here (batch 64, bf16 / float32; the whole
layer, forward and both gradients: ``benchmarks/one_map_conv.py``, 26 -> 6 / 40 -> 10 ms):

- forward: a depthwise convolution (one 7x7 filter per input map) summed over the maps:
  2.9 / 5.2 ms instead of 10.4 / 19.3 ms;
- input gradient: the gradient map convolved (stride 1) with the flipped kernel, 1 -> 128 maps;
- kernel gradient: the filter gradient of that 1 -> 128 convolution with the roles of image and
  gradient swapped, then flipped back: 1.4 / 3.1 ms instead of 11.9 / 18.6 ms.

``accelerate(model)`` rebinds ``convolution_op`` on each such layer of a built model, so the
model keeps its stock Keras layers, weights and config: snapshots save and load exactly as
before, with nothing of this project needed to read them. Only the arithmetic order differs
(float32 outputs agree to about 1e-6 relative; tests/test_fast_ops.py).
"""

from __future__ import annotations

import types


def _qualifies(layer) -> bool:
    import keras

    if type(layer) is not keras.layers.Conv2D:
        return False
    kh, kw = layer.kernel_size
    return (
        layer.filters == 1
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and getattr(layer, "groups", 1) == 1
        and layer.padding == "same"
        and layer.data_format == "channels_last"
        and kh % 2 == 1
        and kw % 2 == 1
        and keras.backend.backend() == "tensorflow"
    )


def one_map_conv(x, kernel):
    """``conv2d(x, kernel, stride 1, SAME)`` for a kernel of shape (kh, kw, C, 1), kh and kw odd.

    Same value and gradients as ``tf.nn.conv2d``; the zero padding of an odd kernel is
    symmetric, which is what lets the flipped-kernel identities below hold at the borders.
    """
    import tensorflow as tf

    def flip_t(w):  # (kh, kw, a, b) -> spatially flipped (kh, kw, b, a)
        return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])

    @tf.custom_gradient
    def conv(x, w):
        y = tf.reduce_sum(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME"), -1, keepdims=True)

        def grad(dy):
            dx = tf.nn.conv2d(dy, flip_t(w), 1, "SAME")
            dv = tf.compat.v1.nn.conv2d_backprop_filter(
                dy, tf.stack([tf.shape(w)[0], tf.shape(w)[1], 1, tf.shape(w)[2]]), x, [1, 1, 1, 1], "SAME"
            )
            return dx, flip_t(dv)

        return y, grad

    # read a variable kernel out here, so the custom gradient sees a plain tensor input
    return conv(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))


def _fast_convolution_op(self, inputs, kernel):
    return one_map_conv(inputs, kernel)


def accelerate(model) -> int:
    """Swap in the faster kernel on every qualifying layer of ``model``; returns how many."""

    def walk(m):  # nested models included
        for layer in getattr(m, "layers", []):
            yield layer
            yield from walk(layer)

    n = 0
    for layer in walk(model):
        if _qualifies(layer) and "convolution_op" not in vars(layer):
            layer.convolution_op = types.MethodType(_fast_convolution_op, layer)
            n += 1
    return n
