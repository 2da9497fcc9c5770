"""Functional ancestry builders: a ViT and two CNN families.

Each builder is a `keras.Model` subclass whose graph is built in `__init__`
(keras-hub style) as `stem -> unit_0 .. unit_{L-1} -> head`. Units are single
layers named `<kind>_<index>` (`transformer_block_3`, `conv_block_0`,
`residual_block_5`), the stem is named `stem` and head layers start with
`head_`. Models output logits (no softmax): train with `from_logits=True`.
"""

import keras
from keras import layers

from keras_learngene.models._layers import (
    ConvBlock,
    PatchEmbedding,
    ResidualBlock,
    TokenPooling,
    TransformerBlock,
)

_PACKAGE = "keras_learngene"


def _check_image_shape(image_shape):
    shape = tuple(image_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in shape):
        raise ValueError(
            f"image_shape must be (height, width, channels) with positive ints, got "
            f"{image_shape!r}; e.g. (28, 28, 1) for Fashion-MNIST."
        )
    return shape


class _Ancestry(keras.Model):
    """Shared `get_config`/`from_config` for builders whose config is their args."""

    _arg_names = ()

    def _finish(self, inputs, outputs, args, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        for key in self._arg_names:
            setattr(self, key, args[key])

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for key in self._arg_names:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _classifier_head(x, num_classes, dropout):
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, name="head_dense")(x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VisionTransformer(_Ancestry):
    """A Vision Transformer ancestry (Dosovitskiy et al., arXiv 2010.11929).

    Stem: `PatchEmbedding` (patches, projection, optional class token, learned
    position embedding). Units: `num_layers` pre-norm `TransformerBlock`s named
    `transformer_block_<i>`. Head: layer norm, class-token or mean pooling,
    dense logits.

    Args:
        image_shape: `(height, width, channels)`; height and width divisible by
            `patch_size`.
        num_classes: number of output logits.
        patch_size: patch side in pixels.
        num_layers: number of transformer blocks (units).
        hidden_dim: token width.
        num_heads: attention heads per block.
        mlp_dim: MLP width inside each block.
        use_class_token: pool the class token (True) or the mean token (False).
        dropout: dropout inside blocks and before the head.
        **kwargs: `name`, `trainable`.

    Example:
    ```python
    model = keras_learngene.models.VisionTransformer((28, 28, 1), num_classes=6)
    logits = model(np.zeros((2, 28, 28, 1)))
    ```
    """

    _arg_names = (
        "image_shape", "num_classes", "patch_size", "num_layers", "hidden_dim",
        "num_heads", "mlp_dim", "use_class_token", "dropout",
    )

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        patch_size=4,
        num_layers=8,
        hidden_dim=64,
        num_heads=4,
        mlp_dim=128,
        use_class_token=True,
        dropout=0.0,
        **kwargs,
    ):
        args = dict(locals())
        args["image_shape"] = _check_image_shape(image_shape)
        inputs = keras.Input(args["image_shape"], name="images")
        x = PatchEmbedding(patch_size, hidden_dim, use_class_token, name="stem")(inputs)
        for i in range(num_layers):
            x = TransformerBlock(num_heads, mlp_dim, dropout, name=f"transformer_block_{i}")(x)
        x = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
        x = TokenPooling("class" if use_class_token else "mean", name="head_pool")(x)
        self._finish(inputs, _classifier_head(x, num_classes, dropout), args, **kwargs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VGGNet(_Ancestry):
    """A VGG-style CNN ancestry: conv + batch norm + ReLU blocks.

    Stem: one `ConvBlock` named `stem`. Units: one `ConvBlock` per entry of
    `filters`, named `conv_block_<i>`, with 2x2 max pooling after the blocks
    listed in `pool_after`. Head: global average pooling, dense logits.

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: number of output logits.
        filters: output channels of each unit.
        pool_after: indices of the units followed by 2x2 max pooling.
        stem_filters: channels of the stem block.
        dropout: dropout before the head.
        stem_pool: 2x2 max pooling at the end of the stem. With it and no
            `pool_after`, every unit sees the same shape, so any units chain
            without bridges (the benchmark's `vgg_iso`).
        **kwargs: `name`, `trainable`.
    """

    _arg_names = ("image_shape", "num_classes", "filters", "pool_after", "stem_filters", "dropout",
                  "stem_pool")

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        filters=(32, 32, 64, 64, 64, 128, 128, 128),
        pool_after=(1, 4),
        stem_filters=32,
        dropout=0.0,
        stem_pool=False,
        **kwargs,
    ):
        args = dict(locals())
        args["image_shape"] = _check_image_shape(image_shape)
        args["filters"], args["pool_after"] = tuple(filters), tuple(pool_after)
        bad = [i for i in args["pool_after"] if not 0 <= i < len(args["filters"])]
        if bad:
            raise ValueError(
                f"VGGNet: pool_after={args['pool_after']!r} names units {bad} that do not "
                f"exist; there are {len(args['filters'])} units (0..{len(args['filters']) - 1})."
            )
        inputs = keras.Input(args["image_shape"], name="images")
        x = ConvBlock(stem_filters, pool=stem_pool, name="stem")(inputs)
        for i, f in enumerate(args["filters"]):
            x = ConvBlock(f, pool=i in args["pool_after"], name=f"conv_block_{i}")(x)
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
        self._finish(inputs, _classifier_head(x, num_classes, dropout), args, **kwargs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResNet(_Ancestry):
    """A small ResNet ancestry of basic residual blocks (He et al., arXiv 1512.03385).

    Stem: one `ConvBlock` named `stem`. Units: one `ResidualBlock` per entry of
    `filters`, named `residual_block_<i>`; a block whose channel count differs
    from the previous one downsamples with stride 2. Head: global average
    pooling, dense logits.

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: number of output logits.
        filters: output channels of each unit.
        stem_filters: channels of the stem block.
        dropout: dropout before the head.
        **kwargs: `name`, `trainable`.
    """

    _arg_names = ("image_shape", "num_classes", "filters", "stem_filters", "dropout")

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        filters=(32, 32, 32, 64, 64, 64, 128, 128),
        stem_filters=32,
        dropout=0.0,
        **kwargs,
    ):
        args = dict(locals())
        args["image_shape"] = _check_image_shape(image_shape)
        args["filters"] = tuple(filters)
        inputs = keras.Input(args["image_shape"], name="images")
        x = ConvBlock(stem_filters, name="stem")(inputs)
        previous = stem_filters
        for i, f in enumerate(args["filters"]):
            x = ResidualBlock(f, strides=2 if f != previous else 1, name=f"residual_block_{i}")(x)
            previous = f
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
        self._finish(inputs, _classifier_head(x, num_classes, dropout), args, **kwargs)
