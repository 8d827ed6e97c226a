"""Generator / discriminator builders as named presets.

- ``dcgan``: a lean DCGAN for 28x28x1 (the InfoGAN-style MNIST networks: 4x4
  kernels, BatchNorm in G, a 128-unit dense layer in D), Adam 5e-4 / beta_1 0.5, and the
  snapshotted generator is a weight average (EMA 0.999). The 128-unit head beat InfoGAN's
  1024 units on FCD at 12 epochs (34.9 vs 43.1; benchmarks/dcgan_ablation.py), D 3.8 MB not
  26 MB. About 4x fewer multiply-adds per image than ``keras-io``.
  D sees every image, real and fake, through DiffAugment (``translation,cutout_grey``:
  training/augment.py): it delays D's overfitting of the 10k digits (FCD 19.8 at epoch 37
  against 30.4 at best without; README, Quality; benchmarks/dcgan_ablation.py --augment) for
  about 2 % of the step's CPU time.
  The same lean networks build for 32x32 (8x8 base instead of 7x7), grey or colour; for 64x64
  ``dcgan`` builds the DCGAN paper's networks as in its authors' code (dcgan.torch: G
  512-256-128-64 from 4x4, D 64-128-256-512, 4x4 kernels, BatchNorm, N(0, 0.02) weights).
- ``scgan`` (default): ``dcgan`` self-conditioned on clusters of the images (models/clusters.py).
- ``keras-io``: the keras.io "DCGAN from scratch" networks.
- ``tf-tutorial``: the TensorFlow DCGAN tutorial networks.
- ``cdcgan``: the ``dcgan`` networks conditioned on the digit label (10 classes): G takes
  (z, label) with the label's embedding concatenated to z; D takes (image, label) with the
  label's embedding as a second image channel and a projection term (Miyato & Koyama 2018:
  the logit gains <embed(label), features>). Only Keras' own layers (snapshots load in safe mode).

Every discriminator ends in a float32 ``Dense(1)`` producing a logit, so the models work
under the ``mixed_bfloat16`` policy unchanged. ``Preset.for_shape`` gives the preset for the
data's image shape (the preset itself for 28x28x1; ``ValueError`` when it has no such networks).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.clusters import sc_discriminator, sc_generator

if TYPE_CHECKING:  # keras (and TensorFlow) load only when a network is built
    import keras

IMAGE_SHAPE = (28, 28, 1)
D_HEAD_UNITS = 128  # the dcgan discriminator's dense layer (see the module docstring)


@dataclass(frozen=True)
class Preset:
    name: str
    latent_dim: int
    pixel_range: tuple[float, float]
    build_generator: Callable[[int], keras.Model]
    build_discriminator: Callable[[], keras.Model]
    lr_g: float
    lr_d: float
    beta_1: float = 0.5
    ema: float = 0.0  # decay of the generator's weight average (0: off)
    augment: str = "none"  # DiffAugment policy for D's inputs (training/augment.py)
    batch_size: int = 64
    epochs: int = 10
    description: str = ""
    d_outputs_logits: bool = True
    image_shape: tuple[int, int, int] = field(default=IMAGE_SHAPE)
    num_classes: int = 0  # > 0: G takes (z, label) and D takes (image, label)
    sizes: tuple[int, ...] = (28,)  # square image sides the builders take (image_shape=...)
    colour: bool = False  # the builders also take 3 channels
    clustered: bool = False  # the builders take clusters= (models/clusters.py), fitted per run
    clusters: object = field(default=None, compare=False, repr=False)  # the fitted Clusters

    def for_shape(self, shape) -> Preset:
        """This preset for images of ``shape`` (height, width, channels); ValueError when it has
        no networks for it. 28x28x1 is the preset itself (the same builders, weights, speed)."""
        shape = tuple(int(v) for v in shape)
        if shape == self.image_shape:
            return self
        side, width, ch = shape
        if side != width or side not in self.sizes or ch not in ((1, 3) if self.colour else (1,)):
            sizes = "/".join(map(str, self.sizes))
            raise ValueError(
                f"preset {self.name!r} has no networks for {side}x{width}x{ch} images (it builds "
                f"{sizes} px{', grey or colour' if self.colour else ' grey'}); use --preset dcgan"
            )
        return dataclasses.replace(
            self,
            image_shape=shape,
            build_generator=functools.partial(self.build_generator, image_shape=shape),
            build_discriminator=functools.partial(self.build_discriminator, image_shape=shape),
        )

    def fitted(self, images_u8, seed: int = 0, restored: bool = False) -> Preset:
        """A clustered preset with its clusters found in ``images_u8`` (the run's training images,
        deterministic: the same images give the same clusters); any other preset as it is.
        ``restored``: the run resumes from weights that hold its clusters already (they are fixed
        layers of G and D, and a resume restores every weight or stops with an error), so only
        their shapes are needed: k-means is skipped (5 s of a resume on 10k digits)."""
        if not self.clustered:
            return self
        from models.clusters import of_images

        c = of_images(images_u8, self.latent_dim, self.pixel_range, seed, restored)
        return dataclasses.replace(
            self,
            clusters=c,
            build_generator=functools.partial(self.build_generator, clusters=c),
            build_discriminator=functools.partial(self.build_discriminator, clusters=c),
        )

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def facts(self) -> dict:
        """The facts a reader of a run needs to rebuild and interpret the models."""
        return {
            "preset": self.name,
            "latent_dim": self.latent_dim,
            "pixel_range": list(self.pixel_range),
            "d_outputs_logits": self.d_outputs_logits,
            "image_shape": list(self.image_shape),
            "conditional": self.conditional,
            **({"num_classes": self.num_classes} if self.conditional else {}),
            **({"clusters": self.clusters.k} if self.clusters is not None else {}),
        }


# --------------------------------------------------------------------------- dcgan (default)
def _dcgan_generator(latent_dim: int, image_shape=IMAGE_SHAPE) -> keras.Model:
    import keras

    if image_shape[0] == 64:
        return _paper_generator(latent_dim, image_shape[-1])
    z = keras.Input((latent_dim,), name="z")
    return keras.Model(z, _dcgan_g_body(z, image_shape), name="generator")


def _dcgan_g_body(x, image_shape=IMAGE_SHAPE):
    """The dcgan generator's layers on an input tensor (z, or z with a label's embedding)."""
    from keras import layers

    base = image_shape[0] // 4  # 7 for 28 px, 8 for 32 px
    x = layers.Dense(base * base * 128, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((base, base, 128))(x)
    x = layers.Conv2DTranspose(64, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same")(x)
    return layers.Activation("tanh", dtype="float32", name="image")(x)


def _dcgan_discriminator(head_units: int = D_HEAD_UNITS, image_shape=IMAGE_SHAPE) -> keras.Model:
    """Conv 64, Conv 128 (4x4, stride 2), a dense head of ``head_units`` (0: none), a logit."""
    import keras
    from keras import layers

    if image_shape[0] == 64:
        return _paper_discriminator(image_shape)
    img = keras.Input(image_shape, name="image")
    x = layers.Conv2D(64, 4, strides=2, padding="same")(img)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(128, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    if head_units:
        x = layers.Dense(head_units)(x)
        x = layers.LeakyReLU(0.2)(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(img, out, name="discriminator")


def _paper_generator(latent_dim: int, channels: int) -> keras.Model:
    """The DCGAN paper's 64x64 generator (dcgan.torch, ngf=64): 4x4x512 -> 64x64xC."""
    import keras
    from keras import layers

    init = keras.initializers.RandomNormal(0.0, 0.02)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(4 * 4 * 512, use_bias=False, kernel_initializer=init)(z)
    x = layers.Reshape((4, 4, 512))(x)
    for width in (256, 128, 64):
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2DTranspose(
            width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=init
        )(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer=init)(x)
    out = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, out, name="generator")


def _paper_discriminator(image_shape) -> keras.Model:
    """The DCGAN paper's 64x64 discriminator (dcgan.torch, ndf=64): 64-128-256-512, then a logit."""
    import keras
    from keras import layers

    init = keras.initializers.RandomNormal(0.0, 0.02)
    img = keras.Input(image_shape, name="image")
    x = layers.Conv2D(64, 4, strides=2, padding="same", kernel_initializer=init)(img)
    x = layers.LeakyReLU(0.2)(x)
    for width in (128, 256, 512):
        x = layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=init)(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, dtype="float32", name="logit", kernel_initializer=init)(x)
    return keras.Model(img, out, name="discriminator")


# --------------------------------------------------------------------------- keras.io
def _kerasio_generator(latent_dim: int) -> keras.Model:
    import keras
    from keras import layers

    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(7 * 7 * 128)(z)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Reshape((7, 7, 128))(x)
    x = layers.Conv2DTranspose(128, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2DTranspose(128, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(1, 7, padding="same")(x)
    out = layers.Activation("sigmoid", dtype="float32", name="image")(x)
    return keras.Model(z, out, name="generator")


def _kerasio_discriminator() -> keras.Model:
    import keras
    from keras import layers

    img = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(64, 3, strides=2, padding="same")(img)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalMaxPooling2D()(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(img, out, name="discriminator")


# --------------------------------------------------------------------------- TF tutorial
def _tftutorial_generator(latent_dim: int) -> keras.Model:
    import keras
    from keras import layers

    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(7 * 7 * 256, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Reshape((7, 7, 256))(x)
    x = layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False)(x)
    out = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, out, name="generator")


def _tftutorial_discriminator() -> keras.Model:
    import keras
    from keras import layers

    img = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(64, 5, strides=2, padding="same")(img)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(128, 5, strides=2, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(img, out, name="discriminator")


# --------------------------------------------------------------------------- cdcgan (conditional)
N_CLASSES = 10  # the MNIST digits
LABEL_EMBED = 32


def _label_input():
    import keras

    return keras.Input((), dtype="int32", name="label")


def _cdcgan_generator(latent_dim: int) -> keras.Model:
    """The dcgan generator on [z, embed(label)]: the same point drawn as any digit."""
    import keras
    from keras import layers

    z, label = keras.Input((latent_dim,), name="z"), _label_input()
    # unit-scale embeddings (Keras' default is +-0.05): the label speaks as loud as z from step 1
    e = layers.Embedding(
        N_CLASSES, LABEL_EMBED, keras.initializers.RandomNormal(stddev=1.0), name="label_embedding"
    )(label)
    return keras.Model([z, label], _dcgan_g_body(layers.Concatenate()([z, e])), name="generator")


def _cdcgan_discriminator() -> keras.Model:
    """The dcgan discriminator with the label as a second channel, plus a projection term."""
    import keras
    from keras import layers

    img, label = keras.Input(IMAGE_SHAPE, name="image"), _label_input()
    h, w, _ = IMAGE_SHAPE
    plane = layers.Embedding(
        N_CLASSES, h * w, keras.initializers.RandomNormal(stddev=1.0), name="label_plane"
    )(label)
    x = layers.Concatenate()([img, layers.Reshape((h, w, 1))(plane)])
    x = layers.LeakyReLU(0.2)(layers.Conv2D(64, 4, strides=2, padding="same")(x))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(128, 4, strides=2, padding="same")(x))
    feats = layers.LeakyReLU(0.2)(layers.Dense(D_HEAD_UNITS)(layers.Flatten()(x)))
    proj = layers.Embedding(N_CLASSES, D_HEAD_UNITS, name="label_projection")(label)
    inner = layers.Dense(1, use_bias=False, name="projection")(layers.Multiply()([feats, proj]))
    logit = layers.Add(dtype="float32", name="logit")([layers.Dense(1)(feats), inner])
    return keras.Model([img, label], logit, name="discriminator")


PRESETS: dict[str, Preset] = {
    "dcgan": Preset(
        name="dcgan",
        latent_dim=64,
        pixel_range=(-1.0, 1.0),
        build_generator=_dcgan_generator,
        build_discriminator=_dcgan_discriminator,
        lr_g=5e-4,
        lr_d=5e-4,
        beta_1=0.5,
        ema=0.999,
        augment="translation,cutout_grey",  # see the module docstring
        batch_size=64,
        epochs=15,
        description="Lean DCGAN (4x4 kernels, BN in G): readable digits in minutes on a CPU",
        sizes=(28, 32, 64),
        colour=True,
    ),
    "keras-io": Preset(
        name="keras-io",
        latent_dim=128,
        pixel_range=(0.0, 1.0),
        build_generator=_kerasio_generator,
        build_discriminator=_kerasio_discriminator,
        lr_g=4e-4,
        lr_d=3e-4,
        beta_1=0.9,
        batch_size=64,
        epochs=30,
        description="keras.io 'DCGAN from scratch' networks (Adam 3e-4 D / 4e-4 G)",
    ),
    "tf-tutorial": Preset(
        name="tf-tutorial",
        latent_dim=100,
        pixel_range=(-1.0, 1.0),
        build_generator=_tftutorial_generator,
        build_discriminator=_tftutorial_discriminator,
        lr_g=1e-4,
        lr_d=1e-4,
        beta_1=0.9,
        batch_size=256,
        epochs=50,
        description="TensorFlow DCGAN tutorial networks (BatchNorm, 5x5, tanh)",
    ),
}
# the dcgan recipe (settings, EMA), its networks conditioned on the digit
PRESETS["cdcgan"] = dataclasses.replace(
    PRESETS["dcgan"],
    name="cdcgan",
    build_generator=_cdcgan_generator,
    build_discriminator=_cdcgan_discriminator,
    description="Conditional dcgan: G(z, digit), D(image, digit); ask for any digit",
    num_classes=N_CLASSES,
    augment="none",  # DiffAugment is measured on dcgan only
    sizes=(28,),  # its builders take no image_shape: MNIST-shaped digits only
    colour=False,
)
# the dcgan recipe self-conditioned on k-means clusters of the training images (models/clusters.py)
PRESETS["scgan"] = dataclasses.replace(
    PRESETS["dcgan"],
    name="scgan",
    build_generator=sc_generator,
    build_discriminator=sc_discriminator,
    description="dcgan self-conditioned on k-means clusters of your images (no labels needed)",
    augment="none",
    epochs=20,
    sizes=(28, 32),
    clustered=True,
)
DEFAULT_PRESET = "scgan"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
