"""Forms for keras-hub backbones (`pip install` as in docs/tutorials/keras_hub.md).

Three families of `keras_hub.models` backbones can be ancestries, on their own or wrapped in
a Functional model that adds a head (a `keras_hub.models.ImageClassifier`, or
`keras.Model(inputs, head(backbone(inputs)))`):

- `ViTBackbone` (`form="keras_hub_vit"`): its transformer blocks sit inside one
  `ViTEncoder` layer, where no graph shows them; the form calls the backbone's own layers
  again (patching and embedding, then each block) to get a Functional cut with one unit
  per block.
- `ResNetBackbone` (`form="keras_hub_resnet"`): the generic Functional cut (one unit per
  residual block, `stack0_block0_unit`, ...).
- `VGGBackbone` (`form="keras_hub_vgg"`): one unit per VGG block (its convolutions and its
  pooling), the first block being the stem.

A backbone outputs features (no classification head): descendants get the library's head,
as for any form. Learngenes and descendants hold only Keras' own layers and the library's
(`PatchEmbedding` for a ViT's stem, Functional sub-models of standard layers for blocks),
never keras-hub classes, so they save, load and inherit where keras-hub is not installed.
`keras_learngene.default_plugins.forms` registers these forms when keras-hub is installed,
without importing it (`import keras_hub` takes seconds, and imports TensorFlow where it is
installed): a model can only be a keras-hub one once keras-hub is imported, so until then the
forms match nothing, and they import keras-hub's classes on first use.
"""

import functools
import re
import sys
import types
import weakref

import keras
import numpy as np
from keras import layers, ops

from keras_learngene.forms._base import Anatomy, _in_global_precision
from keras_learngene.forms._functional import FunctionalForm
from keras_learngene.forms._library import ViTForm, resize_position_embedding, zero_layers
from keras_learngene.models import PatchEmbedding


def _loaded():
    """Whether keras-hub is imported (no keras-hub object exists before)."""
    return "keras_hub" in sys.modules


@functools.cache
def hub():
    """The keras-hub classes the forms need (imports keras-hub)."""
    from keras_hub.models import ResNetBackbone, VGGBackbone, ViTBackbone
    from keras_hub.src.models.vit import vit_layers

    return types.SimpleNamespace(
        ResNetBackbone=ResNetBackbone, VGGBackbone=VGGBackbone, ViTBackbone=ViTBackbone,
        ViTEncoder=vit_layers.ViTEncoder, ViTEncoderBlock=vit_layers.ViTEncoderBlock,
        ViTPatchingAndEmbedding=vit_layers.ViTPatchingAndEmbedding,
    )


def _is(obj, name):
    """`isinstance(obj, <keras-hub class name>)`, False before keras-hub is imported."""
    return _loaded() and isinstance(obj, getattr(hub(), name))


def find_backbone(model, name):
    """The keras-hub backbone of `model`: `model` itself when it is a
    `keras_hub.models.<name>`, else the one such backbone nested in a
    single-input single-output Functional `model` and called on its input;
    else `None`."""
    if not _loaded():
        return None
    classes = getattr(hub(), name)
    if isinstance(model, classes):
        return model
    if not hasattr(model, "_nodes_by_depth") or len(model.inputs) != 1 or \
            len(model.outputs) != 1:
        return None
    found = [layer for layer in model.layers if isinstance(layer, classes)]
    if len(found) != 1:
        return None
    backbone = found[0]
    for node in getattr(backbone, "_inbound_nodes", []):
        if len(node.input_tensors) == 1 and node.input_tensors[0] is model.inputs[0]:
            return backbone
    return None


def _head_layers(model, backbone):
    """The layers of `model` around `backbone` (its head), when it is wrapped."""
    if model is backbone:
        return []
    return [layer for layer in model.layers
            if layer is not backbone and not isinstance(layer, layers.InputLayer)]


def _check_channels_last(backbone, form):
    if getattr(backbone, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"Form {form!r} cuts channels_last backbones; {backbone.name!r} is "
            f"{backbone.data_format}. Build it with data_format='channels_last'."
        )


def _standard_copy(layer, name):
    """A new layer of `layer`'s (standard Keras) class and config, named `name`,
    in the precision in force (see `keras_learngene.forms.clone_layer`)."""
    config = _in_global_precision(layer.get_config())
    config["name"] = name
    return type(layer).from_config(config)


class _Cached:
    """`split` cached per model, so repeated calls return the same units."""

    def _cached_split(self, model, split):
        cache = self.__dict__.setdefault("_cache", weakref.WeakKeyDictionary())
        try:
            return cache[model]
        except (KeyError, TypeError):
            pass
        anatomy = split(model)
        try:
            cache[model] = anatomy
        except TypeError:
            pass
        return anatomy


# ---- ViT ---------------------------------------------------------------------------------


def vit_block_model(block, input_shape, name, copy_weights):
    """A keras-hub `ViTEncoderBlock` as a Functional model of standard layers.

    The same computation (`x + MHA(LN(x))`, then `x + MLP(LN(x))` with the
    block's GELU MLP and dropouts) and the same config; with `copy_weights`
    the same weights, else freshly initialised. Its input leaves the token
    count free, `(None, hidden_dim)`.
    """
    dim = input_shape[-1]
    inputs = keras.Input((None, dim), name=f"{name}_input")
    ln_1 = _standard_copy(block.layer_norm_1, "ln_1")
    mha = _standard_copy(block.mha, "mha")
    dropout = _standard_copy(block.dropout, "dropout")
    ln_2 = _standard_copy(block.layer_norm_2, "ln_2")
    dense_1 = _standard_copy(block.mlp.dense_1, "mlp_dense_1")
    dense_2 = _standard_copy(block.mlp.dense_2, "mlp_dense_2")
    mlp_dropout_1 = _standard_copy(block.mlp.dropout, "mlp_dropout_1")
    mlp_dropout_2 = _standard_copy(block.mlp.dropout, "mlp_dropout_2")
    x = ln_1(inputs)
    x = dropout(mha(x, x))
    x = layers.Add(name="attention_residual")([x, inputs])
    y = mlp_dropout_2(dense_2(mlp_dropout_1(dense_1(ln_2(x)))))
    outputs = layers.Add(name="mlp_residual")([x, y])
    model = keras.Model(inputs, outputs, name=name)
    if copy_weights:
        pairs = [(ln_1, block.layer_norm_1), (mha, block.mha), (ln_2, block.layer_norm_2),
                 (dense_1, block.mlp.dense_1), (dense_2, block.mlp.dense_2)]
        for new, old in pairs:
            new.set_weights(old.get_weights())
    return model


def vit_patch_embedding(embedding, input_shape, name, copy_weights):
    """A keras-hub `ViTPatchingAndEmbedding` as the library's `PatchEmbedding`
    (the same computation: a patch convolution, a class token, a learned
    position embedding), built for `input_shape`; with `copy_weights` the
    same weights (the position embedding resized bilinearly to another grid)."""
    patch = tuple(embedding.patch_size)
    if patch[0] != patch[1] or not embedding.use_patch_bias:
        raise ValueError(
            f"Form 'keras_hub_vit' copies stems with square patches and a patch bias; "
            f"{embedding.name!r} has patch_size={patch}, use_patch_bias="
            f"{embedding.use_patch_bias}."
        )
    stem = PatchEmbedding(patch_size=patch[0], hidden_dim=embedding.hidden_dim,
                          use_class_token=embedding.use_class_token, name=name)
    stem.build((None,) + tuple(input_shape))
    if copy_weights:
        stem.projection.set_weights(embedding.patch_embedding.get_weights())
        if embedding.use_class_token:
            stem.class_token.assign(ops.convert_to_numpy(embedding.class_token))
        table = np.asarray(ops.convert_to_numpy(embedding.position_embedding.embeddings))[None]
        old_grid = tuple(s // p for s, p in zip(embedding.image_size, patch))
        if old_grid != tuple(stem.grid):
            table = resize_position_embedding(table, old_grid, stem.grid,
                                              embedding.use_class_token)
        stem.position_embedding.assign(table)
    return stem


class HubViTForm(_Cached, ViTForm):
    """keras-hub `ViTBackbone`s: units are its transformer blocks.

    The blocks live inside the backbone's `ViTEncoder` layer, so the cut is a
    new Functional graph over the backbone's own layers, from the model's
    input: the patching-and-embedding layer (the stem), then each block (the
    units); the encoder's final layer norm is head. Copies are standard layers:
    the stem becomes the library's `PatchEmbedding` (so descendants can take
    another image size, as with the library's ViT), each block a Functional
    model of `LayerNormalization`, `MultiHeadAttention`, `Dense`, `Dropout` and
    `Add` layers named like the block (see `vit_block_model`).
    """

    name = "keras_hub_vit"
    description = "keras-hub ViTBackbone (or a model around one): its transformer blocks"

    def matches(self, model):
        return find_backbone(model, "ViTBackbone") is not None

    def split(self, model):
        return self._cached_split(model, self._split)

    def _split(self, model):
        backbone = find_backbone(model, "ViTBackbone")
        if backbone is None:
            raise ValueError(
                f"Form {self.name!r} needs a keras_hub.models.ViTBackbone, or a Functional "
                f"model that calls one on its input; {getattr(model, 'name', model)!r} is "
                "neither."
            )
        _check_channels_last(backbone, self.name)
        embedding = next(layer for layer in backbone.layers
                         if _is(layer, "ViTPatchingAndEmbedding"))
        encoder = next(layer for layer in backbone.layers if _is(layer, "ViTEncoder"))
        stem_output = x = embedding(model.inputs[0])
        outputs = []
        for block in encoder.encoder_layers:
            x = block(x)
            outputs.append(x)
        return Anatomy(
            input_shape=tuple(model.inputs[0].shape[1:]),
            stem=embedding,
            units=list(encoder.encoder_layers),
            unit_outputs=outputs,
            stem_output=stem_output,
            head=[encoder.layer_norm] + _head_layers(model, backbone),
        )

    def copy_unit(self, unit, input_shape, name):
        if _is(unit, "ViTEncoderBlock"):
            return vit_block_model(unit, input_shape, name, copy_weights=True)
        if _is(unit, "ViTPatchingAndEmbedding"):
            return vit_patch_embedding(unit, input_shape, name, copy_weights=True)
        return super().copy_unit(unit, input_shape, name)

    def fresh_unit(self, like, input_shape, name, preserve_shape=True):
        if _is(like, "ViTEncoderBlock"):
            return vit_block_model(like, input_shape, name, copy_weights=False)
        if _is(like, "ViTPatchingAndEmbedding"):
            return vit_patch_embedding(like, input_shape, name, copy_weights=False)
        return super().fresh_unit(like, input_shape, name, preserve_shape)

    def identity_unit(self, like, input_shape, name):
        """A fresh encoder block whose residual branches output zero (the
        attention's output projection and the MLP's last dense zeroed), as
        the library's ViT form does."""
        if not _is(like, "ViTEncoderBlock"):
            return super().identity_unit(like, input_shape, name)
        unit = vit_block_model(like, input_shape, name, copy_weights=False)
        zero_layers(unit.get_layer("mha")._output_dense, unit.get_layer("mlp_dense_2"))
        return unit

    def token_pooling(self, stem):
        if _is(stem, "ViTPatchingAndEmbedding"):
            return "class" if stem.use_class_token else "mean"
        return super().token_pooling(stem)


# ---- ResNet ------------------------------------------------------------------------------


class HubResNetForm(FunctionalForm):
    """keras-hub `ResNetBackbone`s (v1 / v2, basic / bottleneck / vd blocks):
    the generic Functional cut, which gives one unit per residual block
    (`stack0_block0_unit`, ...) after a stem of the input convolutions and
    pooling; a model around the backbone is inlined (see `FunctionalForm`)."""

    name = "keras_hub_resnet"
    description = "keras-hub ResNetBackbone (or a model around one): its residual blocks"

    def matches(self, model):
        return find_backbone(model, "ResNetBackbone") is not None and super().matches(model)

    def split(self, model):
        backbone = find_backbone(model, "ResNetBackbone")
        if backbone is None:
            raise ValueError(
                f"Form {self.name!r} needs a keras_hub.models.ResNetBackbone, or a Functional "
                f"model that calls one on its input; {getattr(model, 'name', model)!r} is "
                "neither."
            )
        _check_channels_last(backbone, self.name)
        return super().split(model)


# ---- VGG ---------------------------------------------------------------------------------

_VGG_LAYER = re.compile(r"^block(\d+)_")


class HubVGGForm(_Cached, FunctionalForm):
    """keras-hub `VGGBackbone`s: one unit per VGG block (`block<i>_conv<j>`
    layers and `block<i>_pool`), the first block being the stem.

    Units are Functional sub-models sharing the backbone's layers, whose input
    leaves the spatial size free. A fresh unit that must keep the shape at its
    junction (every VGG block pools) has the block's convolutions with as many
    filters as input channels, and no pooling.
    """

    name = "keras_hub_vgg"
    description = "keras-hub VGGBackbone (or a model around one): its conv blocks"

    def matches(self, model):
        return find_backbone(model, "VGGBackbone") is not None

    def split(self, model):
        return self._cached_split(model, self._split)

    def _split(self, model):
        backbone = find_backbone(model, "VGGBackbone")
        if backbone is None:
            raise ValueError(
                f"Form {self.name!r} needs a keras_hub.models.VGGBackbone, or a Functional "
                f"model that calls one on its input; {getattr(model, 'name', model)!r} is "
                "neither."
            )
        blocks = {}
        for layer in backbone.layers:
            if isinstance(layer, layers.InputLayer):
                continue
            match = _VGG_LAYER.match(layer.name)
            if not match:
                raise ValueError(
                    f"Form {self.name!r} expects the layers of VGGBackbone {backbone.name!r} to "
                    f"be named block<i>_...; found {layer.name!r}."
                )
            blocks.setdefault(int(match.group(1)), []).append(layer)
        if len(blocks) < 2:
            raise ValueError(
                f"VGGBackbone {backbone.name!r} has {len(blocks)} block: after the stem (the "
                "first block) no unit is left to cut."
            )
        pieces = []
        for i, block in sorted(blocks.items()):
            channels = block[0].input.shape[-1]
            inputs = keras.Input((None, None, channels), name=f"block{i}_input")
            x = inputs
            for layer in block:
                x = layer(x)
            pieces.append(keras.Model(inputs, x, name="stem" if not pieces else f"block{i}"))
        stem_output = x = pieces[0](model.inputs[0])
        outputs = []
        for unit in pieces[1:]:
            x = unit(x)
            outputs.append(x)
        return Anatomy(
            input_shape=tuple(model.inputs[0].shape[1:]),
            stem=pieces[0],
            units=pieces[1:],
            unit_outputs=outputs,
            stem_output=stem_output,
            head=_head_layers(model, backbone),
        )

    def fresh_unit(self, like, input_shape, name, preserve_shape=True):
        if not preserve_shape:
            return super().fresh_unit(like, input_shape, name, preserve_shape=False)
        try:
            out = tuple(like.compute_output_shape((None,) + tuple(input_shape)))[1:]
        except ValueError:  # a unit built for another size
            out = None
        if out == tuple(input_shape):
            return super().fresh_unit(like, input_shape, name, preserve_shape=True)
        channels = input_shape[-1]
        inputs = keras.Input((None, None, channels), name=f"{name}_input")
        x = inputs
        for layer in like.layers:
            if isinstance(layer, layers.Conv2D):
                config = _in_global_precision(layer.get_config())
                config.update(filters=channels, strides=(1, 1), padding="same")
                x = type(layer).from_config(config)(x)
        if x is inputs:
            raise ValueError(f"Unit {like.name!r} has no convolution to imitate.")
        return keras.Model(inputs, x, name=name)

    def adapt_stem(self, stem, input_shape):
        return FunctionalForm.adapt_stem(self, stem, input_shape)
