"""Forms of the library's own ancestries (`keras_learngene.models`).

Their units are single layers named `<kind>_<index>`, after a layer named
`stem`; head layers start with `head_`.
"""

import math
import re

import keras
import numpy as np
from keras import ops

from keras_learngene.forms._base import Anatomy, Form, clone_layer
from keras_learngene.models import ConvBlock, PatchEmbedding, ResidualBlock, TransformerBlock


class BlocksForm(Form):
    """A chain `stem -> <prefix>_0 .. <prefix>_{L-1} -> head_*` of named layers."""

    unit_prefixes = ()

    def _units(self, model):
        pattern = re.compile(rf"^({'|'.join(self.unit_prefixes)})_(\d+)$")
        found = [(int(m.group(2)), layer) for layer in model.layers
                 if (m := pattern.match(layer.name))]
        return [layer for _, layer in sorted(found, key=lambda item: item[0])]

    def matches(self, model):
        names = {layer.name for layer in getattr(model, "layers", [])}
        return "stem" in names and bool(self._units(model))

    def split(self, model):
        if not self.matches(model):
            raise ValueError(
                f"Form {self.name!r} needs a layer named 'stem' followed by layers named "
                f"{'/'.join(p + '_<i>' for p in self.unit_prefixes)}; model {model.name!r} "
                "has none. Use form='functional' for other Functional models."
            )
        stem, units = model.get_layer("stem"), self._units(model)
        previous = stem
        for unit in units:  # the units must form a chain, or cutting would lose layers
            if unit.input is not previous.output:
                raise ValueError(
                    f"Layer {unit.name!r} does not take the output of {previous.name!r}; "
                    f"form {self.name!r} needs the units in one chain after the stem."
                )
            previous = unit
        return Anatomy(
            input_shape=tuple(model.inputs[0].shape[1:]),
            stem=stem,
            units=units,
            unit_outputs=[unit.output for unit in units],
            stem_output=stem.output,
            head=[layer for layer in model.layers if layer.name.startswith("head_")],
        )


class ViTForm(BlocksForm):
    """The library's `VisionTransformer`: units are `TransformerBlock`s; the
    stem is the `PatchEmbedding`, whose position embedding is resized
    (bilinear) when a descendant takes another image size."""

    name = "vit"
    description = "keras_learngene ViT: transformer blocks after a patch-embedding stem"
    unit_prefixes = ("transformer_block",)

    def matches(self, model):
        return super().matches(model) and isinstance(model.get_layer("stem"), PatchEmbedding)

    def identity_unit(self, like, input_shape, name):
        """A fresh `TransformerBlock` whose residual branches output zero: the
        attention's output projection and the MLP's output layer are zeroed
        (kernel and bias), so `x + 0 + 0 = x` in training and inference mode
        alike; the other weights keep their random initialisation, so the
        branches start learning from the first step."""
        if not isinstance(like, TransformerBlock):
            return super().identity_unit(like, input_shape, name)
        unit = self.fresh_unit(like, input_shape, name)
        zero_layers(unit.attention._output_dense, unit.mlp_out)
        return unit

    def token_pooling(self, stem):
        has_token = isinstance(stem, PatchEmbedding) and stem.use_class_token
        return "class" if has_token else "mean"

    def adapt_stem(self, stem, input_shape):
        input_shape = tuple(input_shape)
        old_shape = tuple(stem.input.shape[1:]) if stem._inbound_nodes else None
        if old_shape is None or old_shape == input_shape:
            return stem
        if old_shape[-1] != input_shape[-1]:
            raise ValueError(
                f"The learngene takes {old_shape[-1]} input channels, the new task has "
                f"{input_shape[-1]}; convert the images to {old_shape[-1]} channels."
            )
        new = clone_layer(stem, stem.name, input_shape)
        new.projection.set_weights(stem.projection.get_weights())
        if stem.use_class_token:
            new.class_token.assign(stem.class_token)
        new.position_embedding.assign(
            resize_position_embedding(
                np.asarray(ops.convert_to_numpy(stem.position_embedding)),
                stem.grid, new.grid, stem.use_class_token,
            )
        )
        return new


def resize_position_embedding(embedding, old_grid, new_grid, has_class_token):
    """Bilinearly resizes a `(1, tokens, dim)` ViT position embedding from an
    `old_grid` of patches to a `new_grid` (the class token's entry is kept).

    Returns:
        A numpy array `(1, new_tokens, dim)`.
    """
    dim = embedding.shape[-1]
    head, grid = (embedding[:, :1], embedding[:, 1:]) if has_class_token else (None, embedding)
    grid = grid.reshape(1, old_grid[0], old_grid[1], dim)
    resized = ops.image.resize(grid, tuple(new_grid), interpolation="bilinear")
    resized = np.asarray(ops.convert_to_numpy(resized)).reshape(1, -1, dim)
    return resized if head is None else np.concatenate([head, resized], axis=1)


class CNNForm(BlocksForm):
    """The library's `VGGNet` and `ResNet`: units are `ConvBlock`s or
    `ResidualBlock`s after a conv stem. Fresh units stacked onto a learngene
    keep the shape at their junction (no pooling, stride 1, as many filters as
    input channels)."""

    name = "cnn"
    description = "keras_learngene VGG-style and ResNet CNNs: conv or residual blocks"
    unit_prefixes = ("conv_block", "residual_block")

    def fresh_unit(self, like, input_shape, name, preserve_shape=True):
        if not preserve_shape:
            return super().fresh_unit(like, input_shape, name, preserve_shape=False)
        channels = input_shape[-1]
        if isinstance(like, ResidualBlock):
            unit = ResidualBlock(channels, strides=1, name=name)
        elif isinstance(like, ConvBlock):
            unit = ConvBlock(channels, pool=False, name=name)
        else:
            return super().fresh_unit(like, input_shape, name, preserve_shape)
        unit.build((None,) + tuple(input_shape))
        return unit

    def identity_unit(self, like, input_shape, name):
        """A fresh unit that starts as the identity on its input, which in
        these CNNs is always the output of a ReLU (non-negative):

        - `ResidualBlock` (stride 1, as many filters as input channels): the
          last batch norm's scale and offset are zero, so the branch outputs
          zero and the block returns `relu(0 + x) = x` in either mode.
        - `ConvBlock` (no pooling): a Dirac kernel (each channel copies
          itself) and a batch norm that passes its input in inference mode
          (moving mean 0, variance 1, scale `sqrt(1 + epsilon)`, offset 0),
          then `relu(x) = x`. In training mode a batch norm normalises by the
          batch's statistics instead; `keras_learngene.head_start` (or
          `align_batchnorm`) moves every batch norm's statistics to the new
          task's images without changing what the model computes, so that
          training starts from the same function (Net2DeeperNet sets them
          from data the same way).
        """
        unit = self.fresh_unit(like, input_shape, name)
        if isinstance(unit, ResidualBlock):
            zero_layers(unit.norm2)
        elif isinstance(unit, ConvBlock):
            kernel = np.zeros(tuple(unit.conv.kernel.shape), dtype="float32")
            center = (kernel.shape[0] // 2, kernel.shape[1] // 2)
            for c in range(kernel.shape[2]):
                kernel[center[0], center[1], c, c] = 1.0
            unit.conv.kernel.assign(kernel)
            norm = unit.norm
            norm.moving_mean.assign(np.zeros(norm.moving_mean.shape, "float32"))
            norm.moving_variance.assign(np.ones(norm.moving_variance.shape, "float32"))
            norm.gamma.assign(np.full(norm.gamma.shape, math.sqrt(1.0 + norm.epsilon),
                                      "float32"))
            norm.beta.assign(np.zeros(norm.beta.shape, "float32"))
        else:
            return super().identity_unit(like, input_shape, name)
        return unit

    def bridge(self, input_shape, output_shape, name, like=None):
        """Fresh blocks from one stage's shape to another's: one downsampling
        block (pooling conv block, or stride-2 residual block) per halving of
        the spatial size, or one block when only the channels change."""
        (h, w, _), (h2, w2, channels) = input_shape, output_shape
        if not (h2 and w2) or h2 > h or w2 > w:
            return None
        halvings = max(round(math.log2(h / h2)), 0)
        residual = isinstance(like, ResidualBlock)

        def block(i, down):
            block_name = name if halvings <= 1 else f"{name}_{i}"
            if residual:
                return ResidualBlock(channels, strides=2 if down else 1, name=block_name)
            return ConvBlock(channels, pool=down, name=block_name)

        blocks = [block(i, True) for i in range(halvings)] or [block(0, False)]
        layer = blocks[0] if len(blocks) == 1 else keras.Sequential(blocks, name=name)
        layer.build((None,) + tuple(input_shape))
        out = tuple(layer.compute_output_shape((None,) + tuple(input_shape))[1:])
        return layer if out == tuple(output_shape) else None


def zero_layers(*layers_):
    """Sets every weight of each layer to zero (a residual branch's last
    layers, so the branch starts as zero)."""
    for layer in layers_:
        for weight in layer.weights:
            weight.assign(np.zeros(tuple(weight.shape), dtype=weight.dtype))
